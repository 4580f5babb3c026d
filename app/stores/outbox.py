"""The outbox: every message a booking owes the caller, written with the booking itself.

A confirmation, reminder, reschedule or cancellation notice is a row here, inserted or
updated in the same database transaction as the booking change that calls for it
(``BookingStore.book(..., also=...)``). So a crash never loses a confirmation, and a booking
that did not commit never sends one. A background sender (``app.messaging``) claims due
rows, sends them and marks each ``sent``, ``failed`` (with the reason) or ``skipped``.

Life of a row::

    held ──release──▶ pending ──claim──▶ sending ──▶ sent
      │                  ▲                  │ └────▶ failed (after max attempts, or refused)
      └──▶ skipped       └──── retry ◀──────┘ └────▶ skipped (opted out, booking cancelled)

``held``: a confirmation booked before the caller chose text or email (the dialogue asks
right after booking). It carries a default route (a text to the calling number) and is
released by the caller's answer, by the goodbye, or by the sender once ``hold_until`` has
passed (a dropped call), so nobody misses a confirmation because they hung up.

Claiming is one ``UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED) RETURNING``: on
PostgreSQL replicas skip each other's rows; SQLite has one writer at a time, so the same
statement is atomic there. Each claim gets a fresh token and a lease; a row whose sender
died in ``sending`` is claimed again once its lease ends, and marks from a stale claim
(token changed) are ignored.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, cast

from sqlalchemy import (
    CheckConstraint,
    Connection,
    Engine,
    Index,
    Integer,
    Row,
    String,
    Table,
    Text,
    and_,
    delete,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from app.domain.identity import MAX_CALLER_ID_LENGTH
from app.domain.state import Booking
from app.settings import Settings
from app.stores.database import Base, UTCDateTime

Kind = Literal["confirmation", "reminder", "reschedule", "cancellation"]
Channel = Literal["sms", "whatsapp", "email"]
Status = Literal["held", "pending", "sending", "sent", "failed", "skipped"]

KINDS: tuple[str, ...] = ("confirmation", "reminder", "reschedule", "cancellation")
CHANNELS: tuple[str, ...] = ("sms", "whatsapp", "email")
STATUSES: tuple[str, ...] = ("held", "pending", "sending", "sent", "failed", "skipped")
UNSENT = ("held", "pending")
GONE_OUT = ("sending", "sent")
"""A confirmation in one of these reached (or may have reached) the caller: later changes
to the booking owe them a notice on the same channel."""

DEFAULT_HOLD = timedelta(minutes=10)
_OFFSET = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([dhm])\s*$", re.I)
_UNIT = {"d": "days", "h": "hours", "m": "minutes"}


def parse_offsets(spec: str) -> tuple[timedelta, ...]:
    """``"24h,2h"`` -> (24 h, 2 h); ``""`` -> (); raises ValueError on anything else."""
    found: list[timedelta] = []
    for part in (p for p in spec.split(",") if p.strip()):
        match = _OFFSET.match(part)
        if match is None:
            raise ValueError(f"reminder offset {part!r} is not like 24h, 90m or 2d")
        found.append(timedelta(**{_UNIT[match.group(2).lower()]: float(match.group(1))}))
    return tuple(sorted(set(found), reverse=True))


def offset_label(offset: timedelta) -> str:
    minutes = int(offset.total_seconds() // 60)
    if minutes % (24 * 60) == 0:
        return f"{minutes // (24 * 60)}d"
    return f"{minutes // 60}h" if minutes % 60 == 0 else f"{minutes}m"


class OutboxRow(Base):
    """One message owed to a caller."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    """One row per logical message ("confirmation:7KQ2"): a retried write never doubles it."""
    kind: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str | None] = mapped_column(String(16))
    address: Mapped[str | None] = mapped_column(String(MAX_CALLER_ID_LENGTH))
    body: Mapped[str | None] = mapped_column(Text)
    """The text as sent (rendered when claimed, so it shows the tour as it is then)."""
    caller_id: Mapped[str | None] = mapped_column(String(MAX_CALLER_ID_LENGTH))
    booking_code: Mapped[str | None] = mapped_column(String(16))
    property_id: Mapped[str | None] = mapped_column(String(128))
    tour_type: Mapped[str | None] = mapped_column(String(16))
    tour_start: Mapped[datetime | None] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    hold_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    claim_token: Mapped[str | None] = mapped_column(String(32))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    provider_id: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        CheckConstraint(
            "status IN ('held', 'pending', 'sending', 'sent', 'failed', 'skipped')",
            name="ck_outbox_status",
        ),
        Index("ix_outbox_due", "status", "next_attempt_at"),
        Index("ix_outbox_booking", "booking_code"),
        Index("ix_outbox_caller", "caller_id", "created_at"),
    )


_T = cast(Table, OutboxRow.__table__)


@dataclass(frozen=True)
class Route:
    """Where a booking's messages go: ``final`` routes are pending at once, others held."""

    channel: str | None
    address: str | None
    final: bool = False


@dataclass(frozen=True)
class OutboxPolicy:
    """What this deployment sends: the configured channels, reminders, the hold deadline."""

    channels: frozenset[str] = frozenset()
    reminders: tuple[timedelta, ...] = ()
    hold: timedelta = DEFAULT_HOLD

    @classmethod
    def from_settings(cls, settings: Settings) -> OutboxPolicy:
        return cls(settings.message_channels, parse_offsets(settings.reminders))


@dataclass(frozen=True)
class OutboxMessage:
    """A row as read back (for the sender, the dashboard and tests)."""

    id: int
    kind: str
    channel: str | None
    address: str | None
    body: str | None
    caller_id: str | None
    booking_code: str | None
    property_id: str | None
    tour_type: str | None
    tour_start: datetime | None
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    provider_id: str | None
    claim_token: str | None
    dedupe_key: str
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None

    @classmethod
    def from_row(cls, row: Row[Any]) -> OutboxMessage:
        return cls(**{name: getattr(row, name) for name in cls.__dataclass_fields__})


def _now() -> datetime:
    return datetime.now(UTC)


def _booking_fields(booking: Booking) -> dict[str, Any]:
    return {
        "booking_code": booking.confirmation_code,
        "property_id": booking.property_id,
        "tour_type": booking.tour_type,
        "tour_start": booking.start,
    }


def _row_values(
    key: str, kind: str, status: str, due: datetime, now: datetime, **values: Any
) -> dict[str, Any]:
    return {
        "dedupe_key": key,
        "kind": kind,
        "status": status,
        "attempts": 0,
        "next_attempt_at": due,
        "created_at": now,
        "updated_at": now,
        **values,
    }


class OutboxStore:
    """Queue, route, claim and settle outbox rows; safe across threads and processes.

    The ``on_*`` methods take the booking's open ``Connection``: they run inside the
    booking's transaction and commit or roll back with it.
    """

    def __init__(self, engine: Engine, policy: OutboxPolicy | None = None) -> None:
        self._engine = engine
        self.policy = policy or OutboxPolicy()
        _T.create(engine, checkfirst=True)

    @property
    def engine(self) -> Engine:
        return self._engine

    # -- in the booking's transaction ----------------------------------------------------

    def on_booked(
        self,
        conn: Connection,
        booking: Booking,
        caller_id: str,
        route: Route | None,
        now: datetime | None = None,
    ) -> None:
        """The confirmation and one reminder per offset, held or pending as ``route`` says."""
        if route is None or not self.policy.channels:
            return
        now = now or _now()
        status = self._status_for(route)
        hold_until = None if route.final else now + self.policy.hold
        common = {
            "channel": route.channel,
            "address": route.address,
            "caller_id": caller_id,
            "hold_until": hold_until,
            **_booking_fields(booking),
        }
        code = booking.confirmation_code
        rows = [_row_values(f"confirmation:{code}", "confirmation", status, now, now, **common)]
        rows += self._reminder_rows(booking, status, common, now)
        if rows:
            conn.execute(insert(_T), rows)

    def on_rescheduled(
        self, conn: Connection, booking: Booking, now: datetime | None = None
    ) -> None:
        """Unsent messages follow the tour to its new time; a caller already told the old
        time gets a reschedule notice; reminders are planned again for the new time."""
        now = now or _now()
        code = booking.confirmation_code
        confirmation = self._confirmation(conn, code)
        if confirmation is None:
            return
        conn.execute(
            update(_T)
            .where(_T.c.booking_code == code, _T.c.status.in_(UNSENT), _T.c.kind != "reminder")
            .values(tour_start=booking.start, updated_at=now)
        )
        self._skip_where(
            conn, and_(_T.c.booking_code == code, _T.c.kind == "reminder"), "moved", now
        )
        common = {
            "channel": confirmation.channel,
            "address": confirmation.address,
            "caller_id": confirmation.caller_id,
            **_booking_fields(booking),
        }
        if confirmation.status == "held":
            reminder_status: str | None = "held"
            common["hold_until"] = confirmation.hold_until
        elif confirmation.status in ("pending", *GONE_OUT):
            reminder_status = "pending"
        else:
            reminder_status = None  # skipped or failed: the caller gets nothing by message
        rows = []
        if reminder_status is not None:
            rows += self._reminder_rows(booking, reminder_status, common, now)
        if confirmation.status in GONE_OUT:
            key = f"reschedule:{code}:{booking.start.astimezone(UTC).isoformat()}"
            if self._key_free(conn, key):
                rows.append(_row_values(key, "reschedule", "pending", now, now, **common))
        if rows:
            conn.execute(insert(_T), rows)

    def on_cancelled(self, conn: Connection, booking: Booking, now: datetime | None = None) -> None:
        """Nothing more is sent about the tour; a caller told about it gets a cancellation."""
        now = now or _now()
        code = booking.confirmation_code
        confirmation = self._confirmation(conn, code)
        if confirmation is None:
            return
        self._skip_where(conn, _T.c.booking_code == code, "booking cancelled", now)
        key = f"cancellation:{code}"
        if confirmation.status in GONE_OUT and self._key_free(conn, key):
            values = {
                "channel": confirmation.channel,
                "address": confirmation.address,
                "caller_id": confirmation.caller_id,
                **_booking_fields(booking),
            }
            conn.execute(
                insert(_T).values(_row_values(key, "cancellation", "pending", now, now, **values))
            )

    # -- routing held confirmations -------------------------------------------------------

    def route(
        self,
        code: str,
        channel: str | None,
        address: str | None,
        booking: Booking | None = None,
        caller_id: str | None = None,
    ) -> int:
        """The caller chose: the held messages of a booking go by ``channel`` now (pending),
        or are skipped when ``channel`` is None ("call me"); returns rows changed.

        A booking with no messages at all (made before this line could send any) gets its
        confirmation and reminders now, when ``booking`` is given."""
        now = _now()
        where = and_(_T.c.booking_code == code, _T.c.status == "held")
        with self._engine.begin() as conn:
            if channel is None or address is None:
                return self._skip_where(conn, where, "no message wanted", now)
            if booking is not None and self._confirmation(conn, code) is None:
                before = len(self.policy.reminders) + 1
                self.on_booked(conn, booking, caller_id or address, Route(channel, address, True))
                return before
            result = conn.execute(
                update(_T)
                .where(where)
                .values(
                    channel=channel,
                    address=address,
                    status="pending",
                    hold_until=None,
                    updated_at=now,
                )
            )
        return int(result.rowcount)

    def release(self, code: str | None = None, now: datetime | None = None) -> int:
        """Held messages go out by their default route (or are skipped without one): those
        of ``code`` at once (the call ended), else those whose hold has run out."""
        now = now or _now()
        where = _T.c.status == "held"
        where = (
            and_(where, _T.c.booking_code == code) if code else and_(where, _T.c.hold_until <= now)
        )
        routed = and_(where, _T.c.channel.is_not(None), _T.c.address.is_not(None))
        with self._engine.begin() as conn:
            released = conn.execute(
                update(_T).where(routed).values(status="pending", hold_until=None, updated_at=now)
            ).rowcount
            self._skip_where(conn, where, "no channel or address", now)
        return int(released)

    # -- any message (part B, tests) -------------------------------------------------------

    def queue(
        self,
        kind: str,
        channel: str,
        address: str,
        *,
        caller_id: str | None = None,
        booking: Booking | None = None,
        body: str | None = None,
        dedupe_key: str | None = None,
        due: datetime | None = None,
    ) -> int | None:
        """Queue one message outside a booking change; None if ``dedupe_key`` was queued
        before. Without ``booking``, ``body`` is sent as is."""
        if kind not in KINDS or channel not in CHANNELS:
            raise ValueError(f"kind must be one of {KINDS} and channel one of {CHANNELS}")
        now = _now()
        values = _row_values(
            dedupe_key or f"{kind}:{secrets.token_hex(8)}",
            kind,
            "pending",
            due or now,
            now,
            channel=channel,
            address=address,
            caller_id=caller_id,
            body=body,
            **(_booking_fields(booking) if booking else {}),
        )
        try:
            with self._engine.begin() as conn:
                return int(conn.execute(insert(_T).values(values).returning(_T.c.id)).scalar_one())
        except IntegrityError:
            return None

    # -- the sender's side ----------------------------------------------------------------

    def claim(
        self, limit: int, lease: timedelta, now: datetime | None = None
    ) -> list[OutboxMessage]:
        """Take up to ``limit`` due rows (pending and due, or sending with a dead lease)."""
        now = now or _now()
        due = or_(
            and_(_T.c.status == "pending", _T.c.next_attempt_at <= now),
            and_(_T.c.status == "sending", _T.c.lease_until <= now),
        )
        pick = (
            select(_T.c.id)
            .where(due)
            .order_by(_T.c.next_attempt_at, _T.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        token = secrets.token_hex(16)
        with self._engine.begin() as conn:
            rows = conn.execute(
                update(_T)
                .where(_T.c.id.in_(pick), due)
                .values(
                    status="sending",
                    claim_token=token,
                    lease_until=now + lease,
                    attempts=_T.c.attempts + 1,
                    updated_at=now,
                )
                .returning(*_T.c)
            ).all()
        return sorted((OutboxMessage.from_row(r) for r in rows), key=lambda m: m.id)

    # The body is written with the outcome (one commit per message): what was sent, or
    # what the failed attempt tried to send.

    def mark_sent(self, message: OutboxMessage, provider_id: str | None, body: str) -> bool:
        now = _now()
        return self._settle(
            message, status="sent", provider_id=provider_id, sent_at=now, last_error=None, body=body
        )

    def mark_retry(self, message: OutboxMessage, error: str, at: datetime, body: str) -> bool:
        return self._settle(
            message, status="pending", last_error=error[:2000], next_attempt_at=at, body=body
        )

    def mark_failed(self, message: OutboxMessage, error: str, body: str | None = None) -> bool:
        values = {"body": body} if body is not None else {}
        return self._settle(message, status="failed", last_error=error[:2000], **values)

    def mark_skipped(self, message: OutboxMessage, reason: str) -> bool:
        return self._settle(message, status="skipped", last_error=reason)

    def unclaim(self, message: OutboxMessage) -> bool:
        """Give a claimed row back untried (a stopping sender), for another sender now."""
        return self._settle(
            message,
            status="pending",
            attempts=_T.c.attempts - 1,
            claim_token=None,
            lease_until=None,
        )

    # -- reads ---------------------------------------------------------------------------

    def for_caller(self, caller_id: str, limit: int = 100) -> list[OutboxMessage]:
        """A caller's messages, newest first (the dashboard's list, with status)."""
        return self._select(
            select(_T)
            .where(_T.c.caller_id == caller_id)
            .order_by(_T.c.created_at.desc(), _T.c.id.desc())
            .limit(limit)
        )

    def for_booking(self, code: str) -> list[OutboxMessage]:
        return self._select(select(_T).where(_T.c.booking_code == code).order_by(_T.c.id))

    def get(self, message_id: int) -> OutboxMessage | None:
        found = self._select(select(_T).where(_T.c.id == message_id))
        return found[0] if found else None

    def all(self) -> list[OutboxMessage]:
        return self._select(select(_T).order_by(_T.c.id))

    def counts(self) -> dict[str, int]:
        """Rows per status (for metrics and the bench)."""
        counts = dict.fromkeys(STATUSES, 0)
        for message in self.all():
            counts[message.status] += 1
        return counts

    # -- helpers -------------------------------------------------------------------------

    def _status_for(self, route: Route) -> str:
        if not route.final:
            return "held"
        return "pending" if route.channel and route.address else "skipped"

    def _reminder_rows(
        self, booking: Booking, status: str, common: dict[str, Any], now: datetime
    ) -> list[dict[str, Any]]:
        if status == "skipped":
            return []
        rows = []
        start_key = booking.start.astimezone(UTC).isoformat()
        for offset in self.policy.reminders:
            due = booking.start - offset
            if due <= now:
                continue  # too late for this one: never send a "tomorrow" an hour before
            key = f"reminder:{booking.confirmation_code}:{offset_label(offset)}:{start_key}"
            rows.append(_row_values(key, "reminder", status, due, now, **common))
        return rows

    def _confirmation(self, conn: Connection, code: str) -> Row[Any] | None:
        return conn.execute(
            select(_T).where(_T.c.booking_code == code, _T.c.kind == "confirmation")
        ).first()

    def _key_free(self, conn: Connection, key: str) -> bool:
        return conn.execute(select(_T.c.id).where(_T.c.dedupe_key == key)).first() is None

    def _skip_where(self, conn: Connection, where: Any, reason: str, now: datetime) -> int:
        result = conn.execute(
            update(_T)
            .where(where, _T.c.status.in_(UNSENT))
            .values(status="skipped", last_error=reason, hold_until=None, updated_at=now)
        )
        return int(result.rowcount)

    def _settle(self, message: OutboxMessage, **values: Any) -> bool:
        """Write the outcome only if this claim still holds the row (a stale sender whose
        lease ran out must not overwrite the newer claim)."""
        values["updated_at"] = _now()
        with self._engine.begin() as conn:
            result = conn.execute(
                update(_T)
                .where(
                    _T.c.id == message.id,
                    _T.c.claim_token == message.claim_token,
                    _T.c.status == "sending",
                )
                .values(**values)
            )
        return bool(result.rowcount)

    def _select(self, query: Any) -> list[OutboxMessage]:
        with self._engine.connect() as conn:
            return [OutboxMessage.from_row(row) for row in conn.execute(query)]


def create_table(engine: Engine) -> None:
    _T.create(engine, checkfirst=True)


def forget_caller(conn: Connection, caller_id: str) -> int:
    """Delete every message to or about a caller ("forget me"), in the caller's transaction."""
    result = conn.execute(delete(_T).where(_T.c.caller_id == caller_id))
    return int(result.rowcount)


def summarize(messages: Iterable[OutboxMessage]) -> list[dict[str, Any]]:
    """JSON-ready rows for an API or the dashboard (no claim tokens)."""
    return [
        {
            "id": m.id,
            "kind": m.kind,
            "channel": m.channel,
            "address": m.address,
            "status": m.status,
            "attempts": m.attempts,
            "booking_code": m.booking_code,
            "body": m.body,
            "last_error": m.last_error,
            "created_at": m.created_at.isoformat(),
            "sent_at": m.sent_at.isoformat() if m.sent_at else None,
        }
        for m in messages
    ]
