"""The leasing desk: availability, offers and bookings, shared by every planner.

Both the rule planner and the LLM tools call this one object, so "is 11 AM Saturday free?"
has exactly one answer whichever brain asked. It also knows which messages this line can
really send (``offered``): a booking queues its confirmation and reminders in the outbox in
the booking's own transaction, and the caller's "by text" or "by email" routes them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import Connection

from app.domain import tour_rules
from app.domain.catalog import Catalog
from app.domain.identity import is_phone
from app.domain.state import Booking, ContactPreference, TourType
from app.stores.bookings import AlsoWrite, BookingStore
from app.stores.outbox import OutboxStore, Route

HORIZON_DAYS = 14
PREFERENCE_CHANNELS: dict[str, str] = {"text": "sms", "email": "email"}
"""What the caller says ("by text") and the outbox channel that does it."""


@dataclass(frozen=True)
class Contact:
    """How a booking's caller can be reached, and how they said they want their messages."""

    phone: str | None = None
    email: str | None = None
    preference: ContactPreference | None = None


@dataclass(frozen=True)
class SlotCheck:
    """The answer to "can I have this time?"."""

    start: datetime
    ok: bool
    problem: str | None = None  # past / closed_day / outside_hours / off_grid / taken
    alternatives: list[datetime] = field(default_factory=list)


class TourDesk:
    """Availability and bookings for every building, in the buildings' timezone."""

    def __init__(
        self,
        catalog: Catalog,
        bookings: BookingStore,
        clock: Callable[[], datetime] | None = None,
        outbox: OutboxStore | None = None,
    ) -> None:
        self.catalog = catalog
        self.bookings = bookings
        self.outbox = outbox
        self._clock = clock or (lambda: datetime.now(catalog.tz))
        self.on_queued: Callable[[], None] | None = None
        """Called after a change queued messages (the sender's ``wake``)."""

    def now(self) -> datetime:
        return self._clock().astimezone(self.catalog.tz)

    def _is_free_fn(self, property_id: str, around: datetime) -> Callable[[datetime], bool]:
        """One query for the whole search window instead of one per candidate slot."""
        start = min(around, self.now()) - timedelta(days=HORIZON_DAYS)
        taken = self.bookings.taken_between(
            property_id, start, around + timedelta(days=HORIZON_DAYS + 1)
        )
        return lambda slot: slot not in taken

    def check(self, tour_type: TourType, property_id: str, start: datetime) -> SlotCheck:
        """Whether ``start`` can be booked, and the nearest free starts when it can't."""
        now = self.now()
        start = start.astimezone(self.catalog.tz)
        problem: str | None = tour_rules.slot_problem(tour_type, start, now)
        is_free = self._is_free_fn(property_id, start)
        if problem is None and not is_free(start):
            problem = "taken"
        if problem is None:
            return SlotCheck(start, True)
        alternatives = tour_rules.nearest_free_slots(
            tour_type, start, now, is_free, count=2, horizon_days=HORIZON_DAYS
        )
        return SlotCheck(start, False, problem, alternatives)

    def offer(
        self, tour_type: TourType, property_id: str, day: date, period: str | None, count: int = 2
    ) -> list[datetime]:
        """Free starts on ``day`` in the named part of the day."""
        around = datetime.combine(day, datetime.min.time(), self.catalog.tz)
        is_free = self._is_free_fn(property_id, around)
        return tour_rules.free_slots_in_period(tour_type, day, period, self.now(), is_free, count)

    def nearest(
        self, tour_type: TourType, property_id: str, wanted: datetime, count: int = 2
    ) -> list[datetime]:
        is_free = self._is_free_fn(property_id, wanted)
        return tour_rules.nearest_free_slots(
            tour_type, wanted, self.now(), is_free, count=count, horizon_days=HORIZON_DAYS
        )

    def book(
        self,
        property_id: str,
        tour_type: TourType,
        start: datetime,
        caller_id: str,
        caller_name: str | None,
        email: str | None = None,
        contact: Contact | None = None,
    ) -> Booking:
        """Book after re-checking the rules; raises ``SlotTaken`` if someone was faster.

        The confirmation and reminders are queued in the same transaction: pending when
        ``contact`` already says how (a returning caller's "by text"), else held until the
        caller chooses (``send_confirmation``) or the call ends (``release_confirmation``)."""
        problem = tour_rules.slot_problem(tour_type, start, self.now())
        if problem is not None:
            raise ValueError(f"{start.isoformat()} can't be booked: {problem}")
        outbox, also = self.outbox, None
        if outbox is not None and self.channels:
            route = self.route_for(contact or Contact(email=email), caller_id)

            def queue(conn: Connection, booking: Booking) -> None:
                outbox.on_booked(conn, booking, caller_id, route, now=self.now())

            also = queue
        booking = self.bookings.book(
            property_id, tour_type, start, caller_id, caller_name, email, also=also
        )
        self._queued()
        return booking

    def reschedule(self, code: str, tour_type: TourType, new_start: datetime) -> Booking:
        problem = tour_rules.slot_problem(tour_type, new_start, self.now())
        if problem is not None:
            raise ValueError(f"{new_start.isoformat()} can't be booked: {problem}")
        also: AlsoWrite | None = None
        if self.outbox is not None:
            outbox, now = self.outbox, self.now()
            also = lambda conn, booking: outbox.on_rescheduled(conn, booking, now)  # noqa: E731
        moved = self.bookings.reschedule(code, new_start, also=also, tour_type=tour_type)
        self._queued()
        return moved

    def cancel(self, code: str) -> Booking:
        also: AlsoWrite | None = None
        if self.outbox is not None:
            outbox, now = self.outbox, self.now()
            also = lambda conn, booking: outbox.on_cancelled(conn, booking, now)  # noqa: E731
        cancelled = self.bookings.cancel(code, also=also)
        self._queued()
        return cancelled

    # -- messages ------------------------------------------------------------------------

    @property
    def channels(self) -> frozenset[str]:
        """The outbox channels configured here (``sms``, ``whatsapp``, ``email``)."""
        return self.outbox.policy.channels if self.outbox is not None else frozenset()

    @property
    def offered(self) -> tuple[str, ...]:
        """What the agent may offer for a confirmation: "text", "email", both or neither."""
        return tuple(p for p, ch in PREFERENCE_CHANNELS.items() if ch in self.channels)

    def chosen_route(self, contact: Contact) -> Route | None:
        """The route the caller's stated preference gives, if this line can do it: "call"
        is a final no-message route; None when the channel or the address is missing."""
        if contact.preference == "call":
            return Route(None, None, final=True)
        if contact.preference not in self.offered:
            return None
        if contact.preference == "text" and contact.phone and is_phone(contact.phone):
            return Route("sms", contact.phone, final=True)
        if contact.preference == "email" and contact.email:
            return Route("email", contact.email, final=True)
        return None

    def route_for(self, contact: Contact, caller_id: str) -> Route:
        """Where a new booking's messages go: the caller's choice, else held with a default
        (a text to the calling number, else an email to a known address)."""
        chosen = self.chosen_route(contact)
        if chosen is not None:
            return chosen
        phone = contact.phone or (caller_id if is_phone(caller_id) else None)
        if "sms" in self.channels and phone and is_phone(phone):
            return Route("sms", phone)
        if "email" in self.channels and contact.email:
            return Route("email", contact.email)
        return Route(None, None)

    def send_confirmation(
        self, code: str, contact: Contact, booking: Booking | None = None
    ) -> bool:
        """The caller chose how: route the booking's held messages that way (or, given the
        ``booking`` and it has no messages yet, queue them). False when this line can't
        (channel not configured, or no number or address yet)."""
        route = self.chosen_route(contact)
        if route is None:
            return False
        self._route(code, route, booking)
        return True

    def has_messages(self, code: str) -> bool:
        """Whether the outbox holds anything for this booking (a move is then notified
        the way its confirmation went)."""
        return self.outbox is not None and bool(self.outbox.for_booking(code))

    def release_confirmation(self, code: str) -> None:
        """The call is ending: held messages go by their default route now."""
        if self.outbox is not None and self.outbox.release(code):
            self._queued()

    def _route(self, code: str, route: Route, booking: Booking | None = None) -> None:
        outbox = self.outbox
        if outbox is not None and outbox.route(code, route.channel, route.address, booking):
            self._queued()

    def _queued(self) -> None:
        if self.on_queued is not None:
            self.on_queued()
