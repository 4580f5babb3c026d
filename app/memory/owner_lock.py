"""One owner per embedded store: an advisory lock file that names its holder.

Qdrant Edge already refuses a second opener of a shard (its WAL lock fails with
``Can't init WAL: Kind(WouldBlock)``), and SQLite would happily let two processes share the
mem0 history DB. The data dir as a whole needs one owner, and the second opener needs an
error that says who holds it and what to do instead. ``flock`` gives both: the lock is tied
to the open file, so it is released when the owner exits or is killed, and a second open in
the same process conflicts just like one in another process.

The lock file's first line names the holder (``pid 123 on host``). A server also advertises
where it listens (:func:`advertise`), one ``key value`` line each, so another process that
finds the data dir taken can talk to the owner instead (``tourline chat`` does):

    pid 123 on host
    server http://127.0.0.1:8000

:func:`read_owner` tells who holds a lock file without taking it from them.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["EmbeddedStoreLockedError", "Owner", "OwnerLock", "advertise", "read_owner"]

SERVER_KEY = "server"
_advertised: dict[str, str] = {}

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


def advertise(**fields: str | None) -> None:
    """Record ``fields`` (e.g. ``server="http://127.0.0.1:8000"``) in every lock this process
    takes from now on; ``None`` removes one. Readers see them through :func:`read_owner`."""
    for key, value in fields.items():
        if not key.isidentifier():
            raise ValueError(f"lock metadata key {key!r} must be a single word")
        if value is None:
            _advertised.pop(key, None)
        elif "\n" in value or not value.strip():
            raise ValueError(f"lock metadata {key}={value!r} must be one non-empty line")
        else:
            _advertised[key] = value.strip()


@dataclass(frozen=True)
class Owner:
    """Who holds a lock file: its first line, and what it advertised."""

    holder: str | None
    fields: dict[str, str] = field(default_factory=dict)

    @property
    def server_url(self) -> str | None:
        """The base URL of the server that owns the store, when the owner is one."""
        return self.fields.get(SERVER_KEY)


def read_owner(path: str | os.PathLike[str]) -> Owner | None:
    """The current owner of the lock file at ``path``, or None when nobody holds it.

    Probes with a shared, non-blocking ``flock`` that is released at once, and never writes.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _parse(_read_text(fd))
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


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
        lines = [f"pid {os.getpid()} on {socket.gethostname()}"]
        lines += [f"{key} {value}" for key, value in _advertised.items()]
        os.pwrite(fd, ("\n".join(lines) + "\n").encode(), 0)
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
    return _parse(_read_text(fd)).holder


def _read_text(fd: int) -> str:
    try:
        return os.pread(fd, 4096, 0).decode(errors="replace")
    except OSError:
        return ""


def _parse(text: str) -> Owner:
    """The holder's first line; then ``key value`` lines (a file from before them has none)."""
    first, *rest = text.strip().splitlines() or [""]
    fields: dict[str, str] = {}
    for line in rest:
        key, _, value = line.strip().partition(" ")
        if key and value.strip():
            fields[key] = value.strip()
    return Owner(first.strip() or None, fields)
