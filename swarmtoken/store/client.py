"""Download a peer's parameter file and refuse anything but what it committed.

A download is bounded three ways: ``max_bytes`` (checked against Content-Length
before reading, and again while streaming, so a lying or absent header cannot make
a node buffer more), ``timeout`` per attempt, and ``retries`` extra attempts with
exponential backoff (``backoff * 2**k`` seconds before retry ``k + 1``). Only
transient failures are retried: no connection, a timeout, a reset or truncated
body, 5xx, 408, 429, and 403, which is what a peer answers until it releases its
file (its poll of the chain may lag the commit window's close by a moment).
Anything else (404, 400, a wrong hash, a bad file) is final: the same request
would get the same answer.
"""

from __future__ import annotations

import http.client
import logging
import time
import urllib.error
import urllib.parse
import urllib.request

from .codec import StateDict, check_hash, decode
from .errors import FileTooLargeError, UnreachableError
from .hashing import normalize_sha256

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 256 * 2**20
RETRY_STATUSES = frozenset({403, 408, 429}) | frozenset(range(500, 600))
_CHUNK = 1 << 20


class _AttemptFailed(Exception):
    """One request got no usable answer; ``final`` when retrying cannot help."""

    def __init__(self, detail: str, *, status: int | None = None, final: bool = False) -> None:
        super().__init__(detail)
        self.status = status
        self.final = final


def fetch(
    url: str,
    expected_sha256: str | bytes,
    *,
    reference: StateDict | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    timeout: float = 10.0,
    retries: int = 3,
    backoff: float = 0.5,
) -> StateDict:
    """Download the state dict committed as ``expected_sha256`` from ``url``.

    Checks, in order: size, sha256, safetensors parse, keys/shapes/dtypes against
    ``reference`` (the previous global model; ``None`` skips this check), finite
    floats. ``expected_sha256`` is hex or the contract's 32 raw bytes.

    Raises:
        UnreachableError, FileTooLargeError, HashMismatchError, MalformedFileError,
        ShapeMismatchError, NonFiniteError: all `FetchError`, each naming ``url``.
        ValueError: a bad argument (not a hash, a non-positive limit).
    """
    data = download(url, expected_sha256, max_bytes=max_bytes, timeout=timeout, retries=retries, backoff=backoff)
    return decode(data, url, reference)


def download(
    url: str,
    expected_sha256: str | bytes,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    timeout: float = 10.0,
    retries: int = 3,
    backoff: float = 0.5,
) -> bytes:
    """The raw bytes at ``url``, hash-checked but not parsed: what an audit needs to
    confirm that a file is still served and still matches its on-chain hash.

    Raises:
        UnreachableError, FileTooLargeError, HashMismatchError.
        ValueError: a bad argument.
    """
    sha = normalize_sha256(expected_sha256)
    data = download_any(url, max_bytes=max_bytes, timeout=timeout, retries=retries, backoff=backoff)
    check_hash(data, sha, url)
    return data


def download_any(
    url: str,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    timeout: float = 10.0,
    retries: int = 3,
    backoff: float = 0.5,
) -> bytes:
    """The raw bytes at ``url``, bounded and retried like `download` but not checked
    against any hash: for a caller that checks what the bytes are bound to itself (a
    commitment binds sender, epoch and hash, see `commitments`).

    Raises:
        UnreachableError, FileTooLargeError.
        ValueError: a bad argument.
    """
    if max_bytes <= 0 or timeout <= 0 or retries < 0 or backoff < 0:
        raise ValueError(
            "need max_bytes > 0, timeout > 0, retries >= 0, backoff >= 0; "
            f"got max_bytes={max_bytes}, timeout={timeout}, retries={retries}, backoff={backoff}"
        )
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme not in ("http", "https"):
        detail = f"only http(s) URLs are fetched, not {scheme or 'a bare path'!r}"
        raise UnreachableError(url, detail, status=None, attempts=0)
    attempt = 0
    while True:
        attempt += 1
        try:
            data = _get(url, max_bytes, timeout)
        except _AttemptFailed as exc:
            if exc.final or attempt > retries:
                tried = f" (attempt {attempt} of at most {retries + 1})"
                raise UnreachableError(url, f"{exc}{tried}", status=exc.status, attempts=attempt) from None
            log.info("fetch %s: attempt %d of %d failed: %s", url, attempt, retries + 1, exc)
            time.sleep(backoff * 2 ** (attempt - 1))
            continue
        return data


def _get(url: str, max_bytes: int, timeout: float) -> bytes:
    """One request: the whole body, read in chunks within ``max_bytes`` and,
    roughly, within ``timeout`` overall (each socket read is bounded by it too, so a
    stalled peer and a trickling one both end the attempt).

    Raises:
        _AttemptFailed, FileTooLargeError.
    """
    deadline = time.monotonic() + timeout
    request = urllib.request.Request(url, headers={"Accept": "application/octet-stream"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            declared = response.headers.get("Content-Length")
            if declared is not None and declared.isdigit() and int(declared) > max_bytes:
                raise FileTooLargeError(url, f"expected at most {max_bytes} bytes, server declares {declared}")
            chunks, size = [], 0
            while chunk := response.read1(_CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise FileTooLargeError(url, f"expected at most {max_bytes} bytes, server sent more")
                if time.monotonic() > deadline:
                    raise _AttemptFailed(f"timed out after {timeout} s with {size} bytes received")
                chunks.append(chunk)
    except urllib.error.HTTPError as exc:
        reason = exc.read(200).decode("utf-8", "replace").strip() or exc.reason
        raise _AttemptFailed(
            f"HTTP {exc.code}: {reason}", status=exc.code, final=exc.code not in RETRY_STATUSES
        ) from None
    except (OSError, http.client.HTTPException) as exc:
        # URLError (refused, DNS), TimeoutError, connection resets.
        raise _AttemptFailed(f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}") from None
    if declared is not None and declared.isdigit() and size != int(declared):
        raise _AttemptFailed(f"connection closed after {size} of {declared} bytes")
    return b"".join(chunks)
