"""Twilio call tokens spent, in the database, so a token is used once across replicas.

The voice webhook gives each media stream a signed call token valid for about a minute
(``app/channels/twilio/twilio_http.py``). Each process remembers the tokens it accepted,
but behind a load balancer a ``start`` replayed to *another* replica within that minute
would find nothing there. So the first ``start`` also spends the token here: one row per
call (a SHA-256 of its sid) with the token's expiry, taken by one
``INSERT … ON CONFLICT DO UPDATE … WHERE`` that succeeds only if no unexpired row exists.
That statement is atomic on PostgreSQL (a concurrent insert of the same key waits and
re-checks the condition) and on SQLite (one writer at a time), so two replicas racing with
the same token cannot both win. Expired rows are deleted as spends go by.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Column, Engine, String, Table, delete

from app.stores.database import Base, UTCDateTime, hashed_key, upsert_insert

__all__ = ["CLEAN_EVERY_S", "CallTokenStore", "spent_call_tokens"]

CLEAN_EVERY_S = 60.0
"""How often a process deletes expired rows (each process, on its next spend)."""

spent_call_tokens = Table(
    "spent_call_tokens",
    Base.metadata,
    Column("token_key", String(64), primary_key=True),  # sha256 of the call sid
    Column("expires_at", UTCDateTime(), nullable=False),
)


class CallTokenStore:
    """Spend call tokens once across every process on the database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._insert: Any = upsert_insert(engine, "call tokens")
        spent_call_tokens.create(engine, checkfirst=True)
        self._lock = threading.Lock()
        self._next_clean = 0.0

    def spend(self, call_sid: str, expires: float) -> bool:
        """Spend the token of ``call_sid`` that expires at ``expires`` (epoch seconds):
        True the first time, False if a process already spent an unexpired one."""
        now = datetime.now(UTC)
        table = spent_call_tokens
        stmt = self._insert(table).values(
            token_key=hashed_key(call_sid), expires_at=datetime.fromtimestamp(expires, UTC)
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[table.c.token_key],
            set_={"expires_at": stmt.excluded.expires_at},
            where=table.c.expires_at < now,  # a later token of the same call, once it lapsed
        )
        with self.engine.begin() as conn:
            # RETURNING, not rowcount: drivers count a skipped DO UPDATE differently.
            spent = conn.execute(stmt.returning(table.c.token_key)).first() is not None
            if self._cleaning_due():
                conn.execute(delete(table).where(table.c.expires_at < now))
        return spent

    def _cleaning_due(self) -> bool:
        with self._lock:
            clock = time.monotonic()
            if clock < self._next_clean:
                return False
            self._next_clean = clock + CLEAN_EVERY_S
            return True
