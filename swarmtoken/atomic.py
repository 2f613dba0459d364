"""Replacing a file so that readers and a crash see either the old or the new content,
never a torn one: the parameter store's files and the local chain's state both rely on it."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomically(path: Path, data: bytes, prefix: str, mode: int | None = None,
                     sync_dir: bool = False) -> None:
    """Write ``data`` to a temporary file named ``prefix...`` next to ``path``, fsync it and
    rename it over ``path``. ``mode`` replaces mkstemp's 0600 (for files another program
    reads); ``sync_dir`` also makes the rename itself durable (for a file whose loss after a
    reported success would undo history)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=prefix, suffix=".tmp")
    try:
        if mode is not None:
            os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if sync_dir:
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
