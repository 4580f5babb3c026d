"""When tours can start: the leasing office's rules, in the property's local time.

In person: Monday to Saturday, on the hour, 10:00 to 17:00 (the last start).
Virtual: every day, every 30 minutes, 09:00 to 19:30 (the last start).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Literal

from app.domain.state import TourType

SlotProblem = Literal["past", "closed_day", "outside_hours", "off_grid"]


@dataclass(frozen=True)
class TourHours:
    """Start times allowed for one tour type."""

    first_start: time
    last_start: time
    step_minutes: int
    weekdays: frozenset[int]  # Monday is 0

    def starts_on(self, day: date, tz: tzinfo | None) -> list[datetime]:
        if day.weekday() not in self.weekdays:
            return []
        start = datetime.combine(day, self.first_start, tz)
        last = datetime.combine(day, self.last_start, tz)
        step = timedelta(minutes=self.step_minutes)
        slots = []
        while start <= last:
            slots.append(start)
            start += step
        return slots


HOURS: dict[TourType, TourHours] = {
    "in_person": TourHours(time(10), time(17), 60, frozenset(range(6))),
    "virtual": TourHours(time(9), time(19, 30), 30, frozenset(range(7))),
}

# Parts of the day a caller may name instead of a time.
DAY_PERIODS: dict[str, tuple[time, time]] = {
    "morning": (time(0), time(11, 59)),
    "afternoon": (time(12), time(16, 59)),
    "evening": (time(17), time(23, 59)),
}


def slot_problem(tour_type: TourType, start: datetime, now: datetime) -> SlotProblem | None:
    """Why a start time can't be booked, or None when the rules allow it."""
    if start <= now:
        return "past"
    hours = HOURS[tour_type]
    local = start.astimezone(now.tzinfo)
    if local.weekday() not in hours.weekdays:
        return "closed_day"
    t = local.time()
    if t < hours.first_start or t > hours.last_start:
        return "outside_hours"
    minutes = t.hour * 60 + t.minute
    if t.second or t.microsecond or minutes % hours.step_minutes:
        return "off_grid"
    return None


def upcoming_starts(tour_type: TourType, after: datetime, days: int) -> Iterable[datetime]:
    """Allowed start times from ``after`` on, day by day, in order."""
    tz = after.tzinfo
    for offset in range(days):
        for slot in HOURS[tour_type].starts_on(after.date() + timedelta(days=offset), tz):
            if slot > after:
                yield slot


def nearest_free_slots(
    tour_type: TourType,
    wanted: datetime,
    now: datetime,
    is_free: Callable[[datetime], bool],
    count: int = 2,
    horizon_days: int = 14,
) -> list[datetime]:
    """The free, allowed starts closest to what the caller asked for, in time order."""
    window_start = max(now, wanted - timedelta(days=horizon_days))
    candidates = [
        s
        for s in upcoming_starts(tour_type, window_start, 2 * horizon_days + 1)
        if s > now and is_free(s)
    ]
    candidates.sort(key=lambda s: (abs((s - wanted).total_seconds()), s))
    return sorted(candidates[:count])


def free_slots_in_period(
    tour_type: TourType,
    day: date,
    period: str | None,
    now: datetime,
    is_free: Callable[[datetime], bool],
    count: int = 2,
) -> list[datetime]:
    """Free starts on ``day`` within a named part of the day (or the whole day)."""
    low, high = DAY_PERIODS.get(period or "", (time(0), time(23, 59)))
    slots = [
        s
        for s in HOURS[tour_type].starts_on(day, now.tzinfo)
        if low <= s.time() <= high and s > now and is_free(s)
    ]
    return slots[:count]
