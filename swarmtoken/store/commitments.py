"""Commitments that bind an update to its sender and epoch, and fetching by them.

A node commits ``keccak256(abi.encode(node, epoch, sha256))`` (address, uint256,
bytes32), not the file's hash. The file is served under the committer's own base URI at
``/commits/<commitment>`` once the commit window closes. Whoever downloads it hashes the
bytes and recomputes the commitment from the committer's address: a member that copies
someone else's commitment from the chain gets a commitment its own address does not
reproduce, whatever file it serves, and a copy of someone's file served after the reveal
was committed under another hash. So nobody can be paid for an update it did not commit
before it could see the others'.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import TypeVar

from eth_abi import encode
from eth_utils import keccak, to_checksum_address

from .client import DEFAULT_MAX_BYTES, download_any
from .codec import StateDict, decode
from .errors import FetchError
from .hashing import normalize_sha256, sha256_hex

COMMIT_ROUTE = "/commits/"
K = TypeVar("K", bound=Hashable)


class CommitmentMismatchError(FetchError):
    """The served file does not open the committer's commitment: a copied commitment, or
    a file other than the one committed."""


def commitment_of(node: str, epoch: int, sha256: str | bytes) -> str:
    """The commitment (hex) of ``node``'s file with hash ``sha256`` in ``epoch``, as
    ``submitUpdate`` takes it (``hex_to_bytes32``) and the contract's NatSpec defines it."""
    digest = bytes.fromhex(normalize_sha256(sha256))
    return keccak(encode(["address", "uint256", "bytes32"], [to_checksum_address(node), epoch, digest])).hex()


def commit_url(base_uri: str, commitment: str) -> str:
    """Where the committer serves the file behind ``commitment``: under its enrolled base
    URI, never an address the committer chose per commit."""
    return f"{base_uri.rstrip('/')}{COMMIT_ROUTE}{normalize_sha256(commitment)}"


def download_committed(
    base_uri: str,
    node: str,
    epoch: int,
    commitment: str,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    timeout: float = 10.0,
    retries: int = 3,
    backoff: float = 0.5,
) -> tuple[str, bytes]:
    """The raw bytes of ``node``'s update for ``epoch`` as served under ``base_uri`` (the
    committer's own, or any peer's that kept a copy), checked to open ``commitment``, and
    their sha256. Whoever serves them, bytes that open the commitment are the committed file.

    Raises:
        CommitmentMismatchError, UnreachableError, FileTooLargeError.
    """
    url = commit_url(base_uri, commitment)
    data = download_any(url, max_bytes=max_bytes, timeout=timeout, retries=retries, backoff=backoff)
    sha = sha256_hex(data)
    if commitment_of(node, epoch, sha) != normalize_sha256(commitment):
        raise CommitmentMismatchError(url, f"the file (sha256 {sha[:12]}) does not open {node}'s commitment "
                                           f"{normalize_sha256(commitment)[:12]} for epoch {epoch}")
    return sha, data


def fetch_committed(
    base_uri: str,
    node: str,
    epoch: int,
    commitment: str,
    *,
    reference: StateDict | None = None,
    **limits: float,
) -> tuple[str, StateDict]:
    """`download_committed`, then decode and check the file (``limits`` as there); return
    its sha256 and the state dict.

    Raises:
        CommitmentMismatchError, and every `FetchError` of a download and decode.
    """
    sha, data = download_committed(base_uri, node, epoch, commitment, **limits)
    return sha, decode(data, commit_url(base_uri, commitment), reference)


def shared_files(files: Mapping[K, str]) -> dict[str, list[K]]:
    """The files (sha256) that more than one commitment resolves to, with those
    commitments' keys in order. No rule can tell which of them produced the file and which
    copied it, so the leader, every validator and the audit reject them all."""
    by_sha: dict[str, list[K]] = {}
    for key, sha in files.items():
        by_sha.setdefault(sha, []).append(key)
    return {sha: keys for sha, keys in by_sha.items() if len(keys) > 1}
