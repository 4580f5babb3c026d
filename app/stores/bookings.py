"""The booking store: tours that were promised to callers.

The database itself guarantees that a slot (property + start time, whatever the tour type)
holds at most one active booking, via a partial unique index. Two processes, or two calls
in one process, racing for the same slot therefore can't both win: the loser gets
``SlotTaken``. Every method is a short synchronous transaction; async callers should run
them in a worker thread.

Each write takes an optional ``also``: more writes run on the same connection, in the same
transaction, after the booking row changed (the outbox queues the messages the change owes
the caller there). Both commit together or not at all.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, cast, get_args
from zoneinfo import ZoneInfo

from sqlalchemy import (
    CheckConstraint,
    Connection,
    Engine,
    Index,
    Row,
    String,
    Table,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from app.domain.identity import MAX_CALLER_ID_LENGTH
from app.domain.state import Booking, TourType
from app.stores import outbox
from app.stores.database import Base, UTCDateTime, widen_varchar

PROPERTY_TIMEZONE = "America/New_York"

# A code read out over a phone line must survive the line and be written down right: no
# 0/O, 1/I/L, and none of the letters that rhyme on an 8 kHz line ("B, C, D, E, G, P, T,
# V, Z"; "F"/"S"/"X"; "M"/"N"; "A"/"J"/"K"-"8"; "H"-"8"; "Q"/"U"). The test suite's phone
# calls heard "TVGP" as "T, B, G, T". 14 symbols, 4 long: 38,416 codes.
CODE_ALPHABET = "23456789KMQRWY"
CODE_LENGTH = 4
_CODE_ATTEMPTS = 10
_CODE_SEPARATORS = re.compile(r"[\s\-]+")

_TOUR_TYPES: tuple[str, ...] = get_args(TourType)

AlsoWrite = Callable[[Connection, Booking], None]
"""Writes to make in the booking change's own transaction, given the changed booking."""


class BookingError(Exception):
    """Base class for booking failures the agent can explain to the caller."""


class SlotTaken(BookingError):
    """The slot already has an active booking."""

    def __init__(self, property_id: str, start: datetime) -> None:
        super().__init__(f"{property_id} at {start.isoformat()} is already booked")
        self.property_id = property_id
        self.start = start


class BookingNotFound(BookingError, LookupError):
    """No booking has this confirmation code."""

    def __init__(self, code: str) -> None:
        super().__init__(f"no booking with confirmation code {code!r}")
        self.code = code


class BookingCancelled(BookingError):
    """The booking exists but was cancelled, so it can't be rescheduled."""

    def __init__(self, code: str) -> None:
        super().__init__(f"booking {code!r} was cancelled")
        self.code = code


FORGOTTEN = "forgotten"
"""The caller id of a booking whose caller asked to be forgotten."""


class BookingRow(Base):
    """One row per booking; cancelled rows stay for history and code lookups."""

    __tablename__ = "bookings"

    id: Mapped[int] = mapped_column(primary_key=True)
    confirmation_code: Mapped[str] = mapped_column(String(16), unique=True)
    property_id: Mapped[str] = mapped_column(String(128))
    tour_type: Mapped[str] = mapped_column(String(16))
    start: Mapped[datetime] = mapped_column(UTCDateTime())
    caller_id: Mapped[str] = mapped_column(String(MAX_CALLER_ID_LENGTH))
    caller_name: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    status: Mapped[str] = mapped_column(String(16), default="booked")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        CheckConstraint("status IN ('booked', 'cancelled')", name="ck_bookings_status"),
        CheckConstraint("tour_type IN ('virtual', 'in_person')", name="ck_bookings_tour_type"),
        # The no-double-booking rule, enforced by the database for every writer.
        Index(
            "uq_bookings_active_slot",
            "property_id",
            "start",
            unique=True,
            sqlite_where=text("status = 'booked'"),
            postgresql_where=text("status = 'booked'"),
        ),
        Index("ix_bookings_caller", "caller_id", "status", "start"),
    )


_T = cast(Table, BookingRow.__table__)
_ACTIVE = _T.c.status == "booked"


def upgrade_schema(engine: Engine) -> None:
    """Bring a bookings table made by an older Tourline up to date.

    ``caller_id`` was VARCHAR(64) before caller ids could be 320 characters (an email, a
    long device id); such a caller could talk to the agent but not book a tour.
    """
    widen_varchar(engine, _T.name, "caller_id", MAX_CALLER_ID_LENGTH)


def new_confirmation_code() -> str:
    """A random code like ``4RW8``: short enough to say, unambiguous to hear."""
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalize_code(code: str) -> str:
    """What the caller said or typed, as stored: upper case, no spaces or dashes."""
    return _CODE_SEPARATORS.sub("", code).upper()


def _require_aware(value: datetime, name: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {value!r}")


class BookingStore:
    """Books, cancels and moves tours; one instance per engine, safe across threads."""

    def __init__(self, engine: Engine, *, timezone: str = PROPERTY_TIMEZONE) -> None:
        self._engine = engine
        self._tz = ZoneInfo(timezone)
        _T.create(engine, checkfirst=True)
        outbox.create_table(engine)
        upgrade_schema(engine)

    # -- writes ------------------------------------------------------------------------

    def book(
        self,
        property_id: str,
        tour_type: TourType,
        start: datetime,
        caller_id: str,
        caller_name: str | None = None,
        email: str | None = None,
        also: AlsoWrite | None = None,
    ) -> Booking:
        """Book a slot, or raise ``SlotTaken`` if it already has an active booking."""
        if tour_type not in _TOUR_TYPES:
            raise ValueError(f"tour_type must be one of {_TOUR_TYPES}, got {tour_type!r}")
        if not property_id or not caller_id:
            raise ValueError("property_id and caller_id are required")
        _require_aware(start, "start")
        last_error: IntegrityError | None = None
        for _ in range(_CODE_ATTEMPTS):
            code = new_confirmation_code()
            now = datetime.now(UTC)
            values: dict[str, Any] = {
                "confirmation_code": code,
                "property_id": property_id,
                "tour_type": tour_type,
                "start": start,
                "caller_id": caller_id,
                "caller_name": caller_name,
                "email": email,
                "status": "booked",
                "created_at": now,
                "updated_at": now,
            }
            try:
                with self._engine.begin() as conn:
                    row = conn.execute(insert(_T).values(values).returning(*_T.c)).one()
                    booking = self._to_booking(row)
                    if also is not None:
                        also(conn, booking)
                return booking
            except IntegrityError as exc:
                # Either the slot is taken or (rarely) the random code already exists.
                # Asking afterwards avoids parsing backend-specific error messages.
                last_error = exc
                if self._code_exists(code):
                    continue
                if not self.is_free(property_id, start):
                    raise SlotTaken(property_id, start) from exc
                # The holder cancelled in between: the slot is free now, try again.
        assert last_error is not None
        raise last_error

    def cancel(self, code: str, also: AlsoWrite | None = None) -> Booking:
        """Cancel a booking and free its slot; cancelling twice is harmless (and runs
        ``also`` only the first time)."""
        wanted = normalize_code(code)
        now = datetime.now(UTC)
        with self._engine.begin() as conn:
            row = conn.execute(
                update(_T)
                .where(_T.c.confirmation_code == wanted, _ACTIVE)
                .values(status="cancelled", updated_at=now)
                .returning(*_T.c)
            ).first()
            cancelled = None if row is None else self._to_booking(row)
            if cancelled is not None and also is not None:
                also(conn, cancelled)
        if cancelled is not None:
            return cancelled
        existing = self.get(wanted)
        if existing is None:
            raise BookingNotFound(code)
        return existing

    def reschedule(
        self,
        code: str,
        new_start: datetime,
        also: AlsoWrite | None = None,
        tour_type: TourType | None = None,
    ) -> Booking:
        """Move an active booking to ``new_start`` at the same property, keeping its code
        (and to ``tour_type``, when given: "Sunday? A virtual one then").

        One UPDATE statement: the old slot is freed and the new one taken atomically, and if
        the new slot is taken the statement fails as a whole (``SlotTaken``), leaving the
        booking exactly as it was.
        """
        _require_aware(new_start, "new_start")
        wanted = normalize_code(code)
        now = datetime.now(UTC)
        try:
            with self._engine.begin() as conn:
                row = conn.execute(
                    update(_T)
                    .where(_T.c.confirmation_code == wanted, _ACTIVE)
                    .values(
                        start=new_start,
                        updated_at=now,
                        **({"tour_type": tour_type} if tour_type else {}),
                    )
                    .returning(*_T.c)
                ).first()
                moved = None if row is None else self._to_booking(row)
                if moved is not None and also is not None:
                    also(conn, moved)
        except IntegrityError as exc:
            existing = self.get(wanted)
            property_id = existing.property_id if existing else "?"
            raise SlotTaken(property_id, new_start) from exc
        if moved is not None:
            return moved
        if self.get(wanted) is None:
            raise BookingNotFound(code)
        raise BookingCancelled(wanted)

    def cancel_all_for_caller(self, caller_id: str) -> int:
        """Cancel every active booking of a caller and drop who made any of their bookings
        ("forget me": the rows keep only building, time and status), and delete the messages
        owed to them; returns how many were cancelled."""
        now = datetime.now(UTC)
        with self._engine.begin() as conn:
            result = conn.execute(
                update(_T)
                .where(_T.c.caller_id == caller_id, _ACTIVE)
                .values(status="cancelled", updated_at=now)
            )
            conn.execute(
                update(_T)
                .where(_T.c.caller_id == caller_id)
                .values(caller_id=FORGOTTEN, caller_name=None, email=None, updated_at=now)
            )
            outbox.forget_caller(conn, caller_id)
        return int(result.rowcount)

    # -- reads -------------------------------------------------------------------------

    def get(self, code: str) -> Booking | None:
        """The booking with this code (active or cancelled), or None."""
        with self._engine.connect() as conn:
            row = conn.execute(
                select(_T).where(_T.c.confirmation_code == normalize_code(code))
            ).first()
        return None if row is None else self._to_booking(row)

    def is_free(self, property_id: str, start: datetime) -> bool:
        """True if no active booking holds this slot (any tour type)."""
        _require_aware(start, "start")
        with self._engine.connect() as conn:
            row = conn.execute(
                select(_T.c.id)
                .where(_T.c.property_id == property_id, _T.c.start == start, _ACTIVE)
                .limit(1)
            ).first()
        return row is None

    def taken_between(self, property_id: str, start: datetime, end: datetime) -> set[datetime]:
        """Starts of active bookings with ``start <= s < end``, in the property timezone."""
        _require_aware(start, "start")
        _require_aware(end, "end")
        with self._engine.connect() as conn:
            starts = conn.scalars(
                select(_T.c.start).where(
                    _T.c.property_id == property_id,
                    _T.c.start >= start,
                    _T.c.start < end,
                    _ACTIVE,
                )
            ).all()
        return {s.astimezone(self._tz) for s in starts}

    def upcoming_for_caller(self, caller_id: str, now: datetime) -> Booking | None:
        """The caller's soonest active booking starting at or after ``now``."""
        _require_aware(now, "now")
        with self._engine.connect() as conn:
            row = conn.execute(
                select(_T)
                .where(_T.c.caller_id == caller_id, _T.c.start >= now, _ACTIVE)
                .order_by(_T.c.start, _T.c.id)
                .limit(1)
            ).first()
        return None if row is None else self._to_booking(row)

    # -- helpers -----------------------------------------------------------------------

    def _code_exists(self, code: str) -> bool:
        with self._engine.connect() as conn:
            found = conn.execute(
                select(_T.c.id).where(_T.c.confirmation_code == code).limit(1)
            ).first()
        return found is not None

    def _to_booking(self, row: Row[Any]) -> Booking:
        return Booking(
            confirmation_code=row.confirmation_code,
            status=row.status,
            property_id=row.property_id,
            tour_type=row.tour_type,
            start=row.start.astimezone(self._tz),
        )
