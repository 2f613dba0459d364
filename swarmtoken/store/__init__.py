"""The data layer: a node's content-addressed parameter files, served to peers over
HTTP once released, and downloaded from peers with hash, size, format, shape and
finiteness checks.

Typical use in one epoch::

    store = ParameterStore(folder)
    server = ParameterServer(store).start()
    stored = store.save(model.state_dict())
    commitment = commitment_of(address, epoch, stored.sha256)
    store.bind_commitment(commitment, stored.sha256)
    # commit: submitUpdate(epoch, hex_to_bytes32(commitment), n)
    # after the commit window:
    store.release(stored.sha256)
    sha, peer_state = fetch_committed(peer_base_uri, peer, epoch, peer_commitment, reference=global_model)
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
from .commitments import (
    CommitmentMismatchError,
    commit_url,
    commitment_of,
    download_committed,
    fetch_committed,
    shared_files,
)
from .files import ParameterStore, StoredFile
from .hashing import bytes32_to_hex, hex_to_bytes32, normalize_sha256, sha256_hex
from .server import ParameterServer

__all__ = [
    "CommitmentMismatchError",
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
    "commit_url",
    "commitment_of",
    "fetch_committed",
    "download",
    "download_committed",
    "fetch",
    "hex_to_bytes32",
    "normalize_sha256",
    "serialize",
    "sha256_hex",
    "shared_files",
]
