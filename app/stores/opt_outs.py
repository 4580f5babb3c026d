"""Numbers that texted STOP: carriers require that they get no more messages from us.

One row per opted-out number (E.164). STOP adds it, START removes it; every sender asks
:meth:`OptOutStore.is_opted_out` right before it sends, so an opt-out that lands between a
booking and its confirmation still wins.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Column, Engine, String, Table, delete, insert, select
from sqlalchemy.exc import IntegrityError

from app.domain.identity import MAX_CALLER_ID_LENGTH
from app.stores.database import Base, UTCDateTime

opt_outs = Table(
    "opt_outs",
    Base.metadata,
    Column("address", String(MAX_CALLER_ID_LENGTH), primary_key=True),
    Column("channel", String(16), nullable=False),  # the channel the STOP came in on
    Column("opted_out_at", UTCDateTime(), nullable=False),
)


class OptOutStore:
    """Who asked not to be messaged; safe to share across threads and processes."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        opt_outs.create(engine, checkfirst=True)

    def opt_out(self, address: str, channel: str = "sms") -> bool:
        """Record a STOP; True if the address was not opted out before."""
        try:
            with self._engine.begin() as conn:
                conn.execute(
                    insert(opt_outs).values(
                        address=address, channel=channel, opted_out_at=datetime.now(UTC)
                    )
                )
        except IntegrityError:
            return False  # already opted out (perhaps by another replica a moment ago)
        return True

    def opt_in(self, address: str) -> bool:
        """Record a START; True if the address had opted out."""
        with self._engine.begin() as conn:
            result = conn.execute(delete(opt_outs).where(opt_outs.c.address == address))
        return bool(result.rowcount)

    def is_opted_out(self, address: str) -> bool:
        with self._engine.connect() as conn:
            found = conn.execute(
                select(opt_outs.c.address).where(opt_outs.c.address == address)
            ).first()
        return found is not None
