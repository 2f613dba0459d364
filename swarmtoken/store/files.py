"""A node's own parameter files: content-addressed on disk, served only once released.

Layout of the store folder::

    <sha256>.safetensors     one file per distinct state dict, named by its hash
    released/<sha256>        an empty marker: this file may be served to peers
    commits/<commitment>     the sha256 of the file a commitment opens (see commitments)

A file is written before its hash is committed on chain but must stay private until
the commit window closes (commit-reveal: otherwise a lazy peer could copy another
node's update and commit it as its own). Release markers live on disk, so a
restarted node keeps serving what it had already revealed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..atomic import write_atomically
from .codec import StateDict, decode_verified, serialize
from .hashing import normalize_sha256, sha256_hex

SUFFIX = ".safetensors"
#: How a file being written starts (readers never see it under a content address; a
#: killed writer's leftovers are removed at start).
PARTIAL = ".partial-"


@dataclass(frozen=True)
class StoredFile:
    """A saved state dict: ``sha256`` is what goes on chain (as hex), ``size`` in bytes."""

    sha256: str
    path: Path
    size: int


class ParameterStore:
    """Content-addressed safetensors files in one folder (created if missing).

    Safe to use from the node's thread while a `ParameterServer` thread reads: a
    file appears atomically (written aside, then renamed over its name), and a
    release marker is an empty file.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self._released = self.root / "released"
        self._released.mkdir(parents=True, exist_ok=True)
        self._commits = self.root / "commits"
        self._commits.mkdir(exist_ok=True)

    def remove_partials(self) -> int:
        """Delete the temporary files of writes that never finished (a process killed while
        writing); returns how many. Only the store's owner may call this, at start, before it
        writes anything (a live writer's temporary file would go too)."""
        partials = list(self.root.glob(PARTIAL + "*"))
        for path in partials:
            path.unlink(missing_ok=True)
        return len(partials)

    def path_for(self, sha256: str | bytes) -> Path:
        """Where the file with this hash lives (whether or not it exists)."""
        return self.root / f"{normalize_sha256(sha256)}{SUFFIX}"

    def save(self, state: StateDict) -> StoredFile:
        """Serialise ``state`` (see `codec.serialize`) and store it under its hash.

        Saving equal tensors again rewrites the same name, which also repairs a
        copy damaged on disk. A new file is not released.
        """
        return self.put(serialize(state))

    def put(self, data: bytes) -> StoredFile:
        """Store bytes exactly as they are under their hash: a peer's file kept to serve it
        on (a re-serialised copy might not hash to what the peer committed). Not released."""
        sha = sha256_hex(data)
        path = self.path_for(sha)
        write_atomically(path, data, prefix=PARTIAL)
        return StoredFile(sha256=sha, path=path, size=len(data))

    def has(self, sha256: str | bytes) -> bool:
        """True if the file is on disk, released or not."""
        return self.path_for(sha256).is_file()

    def release(self, sha256: str | bytes) -> None:
        """Allow peers to download this file from now on (idempotent).

        Raises:
            FileNotFoundError: the store holds no file with this hash, so the
                node would be announcing a file it cannot serve.
        """
        sha = normalize_sha256(sha256)
        if not self.has(sha):
            raise FileNotFoundError(f"cannot release {sha}: no such parameter file in {self.root}")
        (self._released / sha).touch()

    def is_released(self, sha256: str | bytes) -> bool:
        """True once `release` was called for this hash (in this process or before a restart)."""
        return (self._released / normalize_sha256(sha256)).is_file()

    def bind_commitment(self, commitment: str | bytes, sha256: str | bytes) -> None:
        """Record that ``commitment`` opens to the file ``sha256``, so the file is also
        served under the commitment (once released)."""
        sha = normalize_sha256(sha256)
        if not self.has(sha):
            raise FileNotFoundError(f"cannot bind a commitment to {sha}: no such parameter file in {self.root}")
        write_atomically(self._commits / normalize_sha256(commitment), sha.encode(), prefix=PARTIAL)

    def unbind_commitment(self, commitment: str | bytes) -> None:
        """Stop serving anything under ``commitment`` (idempotent); the file stays."""
        (self._commits / normalize_sha256(commitment)).unlink(missing_ok=True)

    def opened_by(self, commitment: str | bytes) -> str | None:
        """The sha256 of the file ``commitment`` opens, if this store bound one."""
        try:
            return normalize_sha256((self._commits / normalize_sha256(commitment)).read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    def load(self, sha256: str | bytes, *, reference: StateDict | None = None) -> StateDict:
        """Read back one of the node's own files (after a restart, say) with the same
        checks as a download, so a file corrupted on disk is never trained on.

        Raises:
            FileNotFoundError: no file with this hash.
            HashMismatchError, MalformedFileError, ShapeMismatchError, NonFiniteError.
        """
        path = self.path_for(sha256)
        return decode_verified(path.read_bytes(), normalize_sha256(sha256), str(path), reference)
