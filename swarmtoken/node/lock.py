"""One node process per keystore: an exclusive lock on a file next to the keystore.

Two processes on one key race each other's transactions (both commit, both report) and
both lose. The lock is an advisory ``flock`` held for the life of the process, so the
kernel releases it when the process dies, however it dies: no stale lock to clean up.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


class KeystoreInUseError(RuntimeError):
    """Another process holds the keystore's lock; the message names it and what to do."""


class KeystoreLock:
    """``<keystore>.lock``, locked exclusively by :meth:`acquire` until :meth:`release` or
    the process ends; the file holds the owner's pid for the error message."""

    def __init__(self, keystore: str | Path) -> None:
        self.keystore = Path(keystore)
        self.path = self.keystore.with_name(self.keystore.name + ".lock")
        self._fd: int | None = None

    def acquire(self) -> KeystoreLock:
        """Take the lock, or raise :class:`KeystoreInUseError` at once (never waits)."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise KeystoreInUseError(f"keystore {self.keystore} is already in use by another node process "
                                     f"(pid {owner}); stop that process first, one process per key") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
