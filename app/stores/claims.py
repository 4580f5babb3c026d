"""Leased claims on a caller's consolidation, so one process at a time does it.

Several ``tourline serve`` replicas share one database. Each may be asked to consolidate
the same caller (two calls of theirs ended on two replicas; every replica's start-up
catch-up sees every pending caller). Consolidation reads the caller's pending work and
indexes it: two processes doing that at once would index one batch twice. A claim is one
row per caller naming its owner and when the lease ends; taking it is a single
``INSERT … ON CONFLICT DO UPDATE … WHERE`` that succeeds only if the row is absent, has
lapsed, or is already ours. That one statement is atomic on PostgreSQL (a concurrent
upsert of the same key waits on the row and re-checks the condition) and on SQLite (one
writer at a time), so the same code is correct on both.

Rows hold a hash of the caller id, not the id: a claim left behind by a killed process
must not keep a forgotten caller's number in the database.

A lease, not a lock held by a connection: a process killed mid-consolidation leaves a row
behind, and another process may take it once ``expires_at`` has passed, or at once when
the holder was a process on the same host that no longer exists (a restart after kill -9).
Owners renew the lease between steps of a long run and stop if they lost it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Column, Engine, String, Table, delete, select, update

from app.stores.database import Base, UTCDateTime, hashed_key, upsert_insert
from app.stores.replicas import ended_here, process_owner

__all__ = ["DEFAULT_LEASE_S", "ClaimStore", "consolidation_claims", "process_owner"]

DEFAULT_LEASE_S = 120.0  # far above one caller's consolidation; renewed between steps

consolidation_claims = Table(
    "consolidation_claims",
    Base.metadata,
    Column("caller_key", String(64), primary_key=True),  # sha256 of the caller id
    Column("owner", String(160), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
)


class ClaimStore:
    """Take, renew and release leased claims on callers; see the module docstring."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._insert: Any = upsert_insert(engine, "claims")

    def claim(self, caller_id: str, owner: str, lease_s: float = DEFAULT_LEASE_S) -> bool:
        """Take the caller for ``lease_s`` seconds; False if another owner holds a live lease."""
        now = datetime.now(UTC)
        table = consolidation_claims
        stmt = self._insert(table).values(
            caller_key=hashed_key(caller_id),
            owner=owner,
            expires_at=now + timedelta(seconds=lease_s),
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[table.c.caller_key],
            set_={"owner": stmt.excluded.owner, "expires_at": stmt.excluded.expires_at},
            where=(table.c.expires_at <= now) | (table.c.owner == owner),
        )
        # RETURNING, not rowcount: drivers count a skipped DO UPDATE differently.
        with self.engine.begin() as conn:
            if conn.execute(stmt.returning(table.c.owner)).first() is not None:
                return True
        holder = self.holder(caller_id)
        if holder is None or not ended_here(holder):
            return False
        # The holder was a process on this host that is gone (a kill -9 and a restart):
        # take its lease now rather than after it lapses, if no one else did meanwhile.
        with self.engine.begin() as conn:
            taken = conn.execute(
                update(table)
                .where(table.c.caller_key == hashed_key(caller_id), table.c.owner == holder)
                .values(owner=owner, expires_at=now + timedelta(seconds=lease_s))
            )
        return bool(taken.rowcount)

    def renew(self, caller_id: str, owner: str, lease_s: float = DEFAULT_LEASE_S) -> bool:
        """Extend our lease; False if it is no longer ours (it lapsed and was taken)."""
        table = consolidation_claims
        with self.engine.begin() as conn:
            result = conn.execute(
                update(table)
                .where(table.c.caller_key == hashed_key(caller_id), table.c.owner == owner)
                .values(expires_at=datetime.now(UTC) + timedelta(seconds=lease_s))
            )
        return bool(result.rowcount)

    def release(self, caller_id: str, owner: str) -> bool:
        """Give the caller back (only if the claim is still ours)."""
        table = consolidation_claims
        with self.engine.begin() as conn:
            result = conn.execute(
                delete(table).where(
                    table.c.caller_key == hashed_key(caller_id), table.c.owner == owner
                )
            )
        return bool(result.rowcount)

    def holder(self, caller_id: str) -> str | None:
        """Who holds a live claim on the caller, or None."""
        table = consolidation_claims
        with self.engine.connect() as conn:
            return conn.scalar(
                select(table.c.owner).where(
                    table.c.caller_key == hashed_key(caller_id),
                    table.c.expires_at > datetime.now(UTC),
                )
            )
