"""sha256 in the two spellings the swarm uses: 64 lowercase hex characters in file
names and URLs, and the raw 32 bytes the contract stores as ``bytes32``."""

from __future__ import annotations

import hashlib
import re

_HEX64 = re.compile(r"[0-9a-f]{64}")


def sha256_hex(data: bytes) -> str:
    """The content address of ``data``: what a node commits and names its file by."""
    return hashlib.sha256(data).hexdigest()


def is_sha256_hex(value: str) -> bool:
    """True for exactly 64 lowercase hex characters, the only spelling used in file
    names and URL paths (one spelling per file, so no path can alias another)."""
    return _HEX64.fullmatch(value) is not None


def normalize_sha256(value: str | bytes) -> str:
    """Accept a hash as hex (any case, optional ``0x``) or as the contract's 32 raw
    bytes, and return the canonical 64-character lowercase hex.

    Raises:
        ValueError: not a sha256 in either spelling.
    """
    if isinstance(value, bytes):
        return bytes32_to_hex(value)
    text = value.lower().removeprefix("0x")
    if not is_sha256_hex(text):
        raise ValueError(f"not a sha256 hex digest (64 hex characters): {value!r}")
    return text


def hex_to_bytes32(value: str) -> bytes:
    """The ``bytes32`` argument for ``submitUpdate``/``publishMerge``."""
    return bytes.fromhex(normalize_sha256(value))


def bytes32_to_hex(value: bytes) -> str:
    """A ``bytes32`` read from the chain (events return it as bytes) as hex.

    Raises:
        ValueError: not exactly 32 bytes.
    """
    if len(value) != 32:
        raise ValueError(f"a sha256 is 32 bytes, got {len(value)}")
    return bytes(value).hex()
