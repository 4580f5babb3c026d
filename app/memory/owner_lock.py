"""One owner per embedded store: an advisory lock file that names its holder.

Qdrant Edge already refuses a second opener of a shard (its WAL lock fails with
``Can't init WAL: Kind(WouldBlock)``), and SQLite would happily let two processes share the
mem0 history DB. The data dir as a whole needs one owner, and the second opener needs an
error that says who holds it and what to do instead. ``flock`` gives both: the lock is tied
to the open file, so it is released when the owner exits or is killed, and a second open in
the same process conflicts just like one in another process.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
from pathlib import Path

__all__ = ["EmbeddedStoreLockedError", "OwnerLock"]

ADVICE = (
    "One embedded store has one owner. Use the running server's API instead, "
    "point this process at another data dir (TOURLINE_DATA_DIR), "
    "or use the server backends (QDRANT_URL for vectors, DATABASE_URL for the log)."
)


class EmbeddedStoreLockedError(RuntimeError):
    """The embedded store is already open by another owner (this or another process)."""

    def __init__(self, path: str | os.PathLike[str], holder: str | None = None) -> None:
        self.path = str(path)
        self.holder = holder
        who = f" by {holder}" if holder else ""
        super().__init__(f"Embedded memory store {self.path} is already open{who}. {ADVICE}")


class OwnerLock:
    """An exclusive, non-blocking ``flock`` on ``path`` holding ``pid@host`` of the owner."""

    def __init__(self, path: str | os.PathLike[str], *, store: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.store = str(store)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> OwnerLock:
        if self._fd is not None:
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise EmbeddedStoreLockedError(self.store, holder) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    def __enter__(self) -> OwnerLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __del__(self) -> None:  # pragma: no cover - best effort at interpreter exit
        with contextlib.suppress(Exception):
            self.release()


def _read_holder(fd: int) -> str | None:
    try:
        text = os.pread(fd, 200, 0).decode(errors="replace").strip()
    except OSError:
        return None
    return text or None
