"""The leasing desk: availability, offers and bookings, shared by every planner.

Both the rule planner and the LLM tools call this one object, so "is 11 AM Saturday free?"
has exactly one answer whichever brain asked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from app.domain import tour_rules
from app.domain.catalog import Catalog
from app.domain.state import Booking, TourType
from app.stores.bookings import BookingStore

HORIZON_DAYS = 14


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
    ) -> None:
        self.catalog = catalog
        self.bookings = bookings
        self._clock = clock or (lambda: datetime.now(catalog.tz))

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
    ) -> Booking:
        """Book after re-checking the rules; raises ``SlotTaken`` if someone was faster."""
        problem = tour_rules.slot_problem(tour_type, start, self.now())
        if problem is not None:
            raise ValueError(f"{start.isoformat()} can't be booked: {problem}")
        return self.bookings.book(property_id, tour_type, start, caller_id, caller_name, email)

    def reschedule(self, code: str, tour_type: TourType, new_start: datetime) -> Booking:
        problem = tour_rules.slot_problem(tour_type, new_start, self.now())
        if problem is not None:
            raise ValueError(f"{new_start.isoformat()} can't be booked: {problem}")
        return self.bookings.reschedule(code, new_start)

    def cancel(self, code: str) -> Booking:
        return self.bookings.cancel(code)
