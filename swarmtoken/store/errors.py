"""Why a parameter file from a peer was refused.

Every check a node runs on a downloaded file has its own error type, so the node
loop can tell "the peer is down" (skip it this epoch) from "the peer served
something other than what it committed" (reject and report it). All of them derive
from `FetchError` and carry the URL; the message names what was expected and what
was found.
"""

from __future__ import annotations


class FetchError(Exception):
    """A parameter file could not be obtained, or failed a check.

    Attributes:
        url: where the file was fetched from (a local path for a file read from
            the node's own store).
    """

    def __init__(self, url: str, detail: str) -> None:
        super().__init__(f"{url}: {detail}")
        self.url = url


class UnreachableError(FetchError):
    """No usable HTTP answer after the bounded retries (connection refused, timeout,
    5xx), or an answer that will not change by retrying (404, 400, ...).

    Attributes:
        status: the last HTTP status seen, ``None`` when no response arrived.
        attempts: how many requests were made.
    """

    def __init__(self, url: str, detail: str, *, status: int | None, attempts: int) -> None:
        super().__init__(url, detail)
        self.status = status
        self.attempts = attempts


class FileTooLargeError(FetchError):
    """The declared (Content-Length) or streamed size exceeds the caller's limit;
    the body is not read further."""


class HashMismatchError(FetchError):
    """The bytes do not hash to the committed sha256: a tampered, stale or wrong file."""


class MalformedFileError(FetchError):
    """The bytes hash correctly but are not a safetensors file (garbage, a pickle, a
    torch.save zip, ...). Nothing in them is executed."""


class ShapeMismatchError(FetchError):
    """The tensors' keys, shapes or dtypes differ from the reference model."""


class NonFiniteError(FetchError):
    """A floating-point tensor holds NaN or +/-Inf."""
