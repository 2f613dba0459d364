"""The data layer: a node's content-addressed parameter files, served to peers over
HTTP once released, and downloaded from peers with hash, size, format, shape and
finiteness checks.

Typical use in one epoch::

    store = ParameterStore(folder)
    server = ParameterServer(store).start()
    stored = store.save(model.state_dict())
    # commit: submitUpdate(epoch, hex_to_bytes32(stored.sha256), server.url_for(stored.sha256), n)
    # after the commit window:
    store.release(stored.sha256)
    peer_state = fetch(peer_uri, peer_hash, reference=global_model)
"""

from .codec import StateDict, serialize
from .errors import (
    FetchError,
    FileTooLargeError,
    HashMismatchError,
    MalformedFileError,
    NonFiniteError,
    ShapeMismatchError,
    UnreachableError,
)
from .client import DEFAULT_MAX_BYTES, download, fetch
from .files import ParameterStore, StoredFile
from .hashing import bytes32_to_hex, hex_to_bytes32, normalize_sha256, sha256_hex
from .server import ParameterServer

__all__ = [
    "DEFAULT_MAX_BYTES",
    "FetchError",
    "FileTooLargeError",
    "HashMismatchError",
    "MalformedFileError",
    "NonFiniteError",
    "ParameterServer",
    "ParameterStore",
    "ShapeMismatchError",
    "StateDict",
    "StoredFile",
    "UnreachableError",
    "bytes32_to_hex",
    "download",
    "fetch",
    "hex_to_bytes32",
    "normalize_sha256",
    "serialize",
    "sha256_hex",
]
