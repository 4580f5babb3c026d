"""Which Tourline processes on a shared database are alive: who may close whose calls.

Each call row names the process serving it (``calls.owner``, a name from
:func:`process_owner`). On a shared database (replicas on one ``DATABASE_URL``) every
process also keeps a row here and renews its ``heartbeat_at`` every third of its lease. A
process killed with a call on the line leaves that call open; a live process closes it
(``MemoryService``: at start and on every heartbeat) once its owner is *dead*:

- the owner ran on this host (same boot and pid namespace) and its pid no longer exists
  (kill -9: noticed at once);
- the owner's heartbeat is older than its lease (killed on another host, or the host died);
- the owner has no row (it closed cleanly, or its lapsed row was pruned).

Anything else is alive, so a live replica's call is never closed while it heartbeats. A
process that finds its own row gone (it stalled past its lease) writes it again and logs
it: its calls may have been closed meanwhile, and they go on being recorded anyway.

Order matters for the third rule: read the open calls *before* the rows. A process writes
its row before its first call, so an owner missing from rows read after its call was seen
really left.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import socket
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Column, Engine, Float, String, Table, delete, select, update

from app.stores.database import Base, UTCDateTime, upsert_insert

__all__ = ["DEFAULT_LEASE_S", "ReplicaRegistry", "ended_here", "process_owner", "replicas"]

log = logging.getLogger(__name__)

DEFAULT_LEASE_S = 30.0
"""A process that has not renewed its row for this long is dead (it renews every third)."""
OWNER_LENGTH = 160

replicas = Table(
    "replicas",
    Base.metadata,
    Column("owner", String(OWNER_LENGTH), primary_key=True),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("heartbeat_at", UTCDateTime(), nullable=False),
    Column("lease_s", Float, nullable=False),  # each process its own: settings may differ
)


def process_owner() -> str:
    """A name for this process that no other process (here or on another host) shares:
    ``host:pid:random:scope``. The random part tells apart a restarted container that
    reuses both host name and pid; the scope (see :func:`_pid_scope`) says which pids this
    one's pid can be compared with."""
    return f"{socket.gethostname()[:100]}:{os.getpid()}:{uuid.uuid4().hex[:12]}:{_pid_scope()}"


@functools.cache
def _pid_scope() -> str:
    """This boot and pid namespace, hashed: containers sharing a host name (host networking)
    each have pids of their own, and a pid from another boot means nothing now."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        boot = ""
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        namespace = ""
    parts = [boot, namespace]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:8]


def ended_here(owner: str) -> bool:
    """Whether ``owner`` (see :func:`process_owner`) was a process on this host, in this
    boot and pid namespace, that has ended. A process elsewhere, or one we can't tell
    about, is taken as alive (its lease will lapse)."""
    host, _, rest = owner.partition(":")
    pid_text, _, tail = rest.partition(":")
    scope = tail.partition(":")[2]
    if host != socket.gethostname()[:100] or not pid_text.isdigit():
        return False
    if scope and scope != _pid_scope():
        return False  # another pid namespace (or boot): its pids are not ours to look up
    pid = int(pid_text)
    if pid == os.getpid():
        return False  # this process's other owner name: alive by definition
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # someone else's live process
    return False


class ReplicaRegistry:
    """This process's row (register, heartbeat, leave) and who else is alive."""

    def __init__(self, engine: Engine, owner: str, lease_s: float = DEFAULT_LEASE_S) -> None:
        if lease_s <= 0:
            raise ValueError(f"lease_s must be positive, got {lease_s}")
        self.engine = engine
        self.owner = owner
        self.lease_s = lease_s
        self._insert: Any = upsert_insert(engine, "replicas")
        replicas.create(engine, checkfirst=True)

    def register(self) -> None:
        """Write (or renew) this process's row."""
        now = datetime.now(UTC)
        stmt = self._insert(replicas).values(
            owner=self.owner, started_at=now, heartbeat_at=now, lease_s=self.lease_s
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[replicas.c.owner], set_={"heartbeat_at": stmt.excluded.heartbeat_at}
        )
        with self.engine.begin() as conn:
            conn.execute(stmt)

    def beat(self) -> bool:
        """Renew the lease; False (and the row written again) if it had been taken away."""
        with self.engine.begin() as conn:
            renewed = conn.execute(
                update(replicas)
                .where(replicas.c.owner == self.owner)
                .values(heartbeat_at=datetime.now(UTC))
            ).rowcount
        if renewed:
            return True
        log.warning(
            "this process was taken for dead on the shared database (no heartbeat for "
            "%.0f s): other replicas may have closed its calls; registering again",
            self.lease_s,
        )
        self.register()
        return False

    def leave(self) -> None:
        """Remove this process's row (a clean exit: any call it left open is orphaned)."""
        with self.engine.begin() as conn:
            conn.execute(delete(replicas).where(replicas.c.owner == self.owner))

    def dead(self, owners: Iterable[str]) -> set[str]:
        """Which of ``owners`` are dead (module docstring). Read the calls naming them
        before calling this."""
        wanted = set(owners)
        if not wanted:
            return set()
        now = datetime.now(UTC)
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(replicas.c.owner, replicas.c.heartbeat_at, replicas.c.lease_s).where(
                    replicas.c.owner.in_(sorted(wanted))
                )
            ).all()
        beating = {
            row.owner
            for row in rows
            if now - row.heartbeat_at < timedelta(seconds=float(row.lease_s))
        }
        return {o for o in wanted if o != self.owner and (o not in beating or ended_here(o))}

    def prune(self) -> int:
        """Delete the rows of processes dead by their lease (their calls are then judged by
        the missing row); returns how many went."""
        now = datetime.now(UTC)
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(replicas.c.owner, replicas.c.heartbeat_at, replicas.c.lease_s)
            ).all()
        lapsed = [
            (row.owner, row.heartbeat_at)
            for row in rows
            if now - row.heartbeat_at >= timedelta(seconds=float(row.lease_s))
        ]
        gone = 0
        with self.engine.begin() as conn:
            for owner, seen in lapsed:  # unless it beat again since we looked
                gone += conn.execute(
                    delete(replicas).where(
                        replicas.c.owner == owner, replicas.c.heartbeat_at == seen
                    )
                ).rowcount
        return gone
