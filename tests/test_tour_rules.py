"""When tours can start: boundaries of both tour types, closed days, the grid, offers."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from app.domain import tour_rules
from app.domain.tour_rules import (
    free_slots_in_period,
    nearest_free_slots,
    slot_problem,
    upcoming_starts,
)

NY = ZoneInfo("America/New_York")
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=NY)  # Monday
TUESDAY = date(2026, 11, 24)
SUNDAY = date(2026, 11, 29)


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=NY)


def always_free(_slot: datetime) -> bool:
    return True


# ---------------------------------------------------------------- slot_problem


@pytest.mark.parametrize(
    ("hour", "minute", "problem"),
    [
        (10, 0, None),  # first start
        (17, 0, None),  # last start
        (13, 0, None),
        (9, 0, "outside_hours"),
        (9, 59, "outside_hours"),
        (17, 30, "outside_hours"),
        (18, 0, "outside_hours"),
        (10, 15, "off_grid"),
        (10, 30, "off_grid"),
        (16, 59, "off_grid"),
    ],
)
def test_in_person_hours(hour: int, minute: int, problem: str | None) -> None:
    assert slot_problem("in_person", at(TUESDAY, hour, minute), NOW) == problem


@pytest.mark.parametrize(
    ("hour", "minute", "problem"),
    [
        (9, 0, None),  # first start
        (19, 30, None),  # last start
        (10, 30, None),
        (14, 0, None),
        (8, 30, "outside_hours"),
        (20, 0, "outside_hours"),
        (19, 45, "outside_hours"),
        (10, 15, "off_grid"),
        (12, 45, "off_grid"),
    ],
)
def test_virtual_hours(hour: int, minute: int, problem: str | None) -> None:
    assert slot_problem("virtual", at(TUESDAY, hour, minute), NOW) == problem


def test_sunday_is_closed_in_person_but_open_virtually() -> None:
    assert slot_problem("in_person", at(SUNDAY, 11), NOW) == "closed_day"
    assert slot_problem("virtual", at(SUNDAY, 11), NOW) is None


def test_saturday_is_open_in_person() -> None:
    assert slot_problem("in_person", at(date(2026, 11, 28), 11), NOW) is None


def test_past_and_now_are_not_bookable() -> None:
    assert slot_problem("virtual", NOW, NOW) == "past"
    assert slot_problem("virtual", NOW - timedelta(minutes=30), NOW) == "past"
    assert slot_problem("virtual", NOW + timedelta(minutes=30), NOW) is None


def test_seconds_are_off_grid() -> None:
    assert slot_problem("virtual", at(TUESDAY, 10).replace(second=5), NOW) == "off_grid"


def test_rules_apply_in_new_york_time_whatever_the_timezone_given() -> None:
    # 15:00 UTC on 24 November is 10:00 in New York (EST, UTC-5).
    assert slot_problem("in_person", datetime(2026, 11, 24, 15, 0, tzinfo=UTC), NOW) is None
    # 14:00 UTC is 9:00 in New York: before the first in-person start.
    assert slot_problem("in_person", datetime(2026, 11, 24, 14, 0, tzinfo=UTC), NOW) == (
        "outside_hours"
    )


# ---------------------------------------------------------------- the grid of starts


def test_starts_per_day() -> None:
    in_person = tour_rules.HOURS["in_person"].starts_on(TUESDAY, NY)
    virtual = tour_rules.HOURS["virtual"].starts_on(TUESDAY, NY)
    assert [s.hour for s in in_person] == list(range(10, 18))
    assert len(virtual) == 22
    assert (virtual[0].hour, virtual[0].minute) == (9, 0)
    assert (virtual[-1].hour, virtual[-1].minute) == (19, 30)
    assert tour_rules.HOURS["in_person"].starts_on(SUNDAY, NY) == []
    assert len(tour_rules.HOURS["virtual"].starts_on(SUNDAY, NY)) == 22


def test_every_generated_start_passes_the_rules() -> None:
    for tour_type in ("in_person", "virtual"):
        for start in upcoming_starts(tour_type, NOW, 14):
            assert slot_problem(tour_type, start, NOW) is None


def test_starts_across_daylight_saving_change() -> None:
    spring_forward = date(2026, 3, 8)  # clocks jump from 2 AM to 3 AM in New York
    starts = tour_rules.HOURS["virtual"].starts_on(spring_forward, NY)
    assert len(starts) == 22
    assert all(s.utcoffset() == timedelta(hours=-4) for s in starts)


def test_upcoming_starts_skip_the_past_and_sunday() -> None:
    saturday_evening = at(date(2026, 11, 28), 16, 30)
    starts = list(upcoming_starts("in_person", saturday_evening, 3))
    assert starts[0] == at(date(2026, 11, 28), 17)
    assert starts[1] == at(date(2026, 11, 30), 10)  # Sunday skipped


# ---------------------------------------------------------------- offers


def test_nearest_free_slots_around_a_taken_slot() -> None:
    wanted = at(date(2026, 11, 28), 11)
    slots = nearest_free_slots("in_person", wanted, NOW, lambda s: s != wanted)
    assert slots == [at(date(2026, 11, 28), 10), at(date(2026, 11, 28), 12)]


def test_nearest_free_slots_after_hours_are_the_last_of_the_day() -> None:
    wanted = at(TUESDAY, 18)
    assert nearest_free_slots("in_person", wanted, NOW, always_free) == [
        at(TUESDAY, 16),
        at(TUESDAY, 17),
    ]
    assert nearest_free_slots("virtual", at(TUESDAY, 20), NOW, always_free) == [
        at(TUESDAY, 19),
        at(TUESDAY, 19, 30),
    ]


def test_nearest_free_slots_never_in_the_past() -> None:
    slots = nearest_free_slots("virtual", NOW - timedelta(hours=3), NOW, always_free)
    assert slots == [at(NOW.date(), 9, 30), at(NOW.date(), 10)]


def test_nearest_free_slots_skip_taken_ones() -> None:
    wanted = at(TUESDAY, 12)
    taken = {at(TUESDAY, 11), at(TUESDAY, 12), at(TUESDAY, 13)}
    slots = nearest_free_slots("in_person", wanted, NOW, lambda s: s not in taken)
    assert slots == [at(TUESDAY, 10), at(TUESDAY, 14)]


def test_nearest_free_slots_count() -> None:
    slots = nearest_free_slots("virtual", at(TUESDAY, 12), NOW, always_free, count=3)
    assert slots == [at(TUESDAY, 11, 30), at(TUESDAY, 12), at(TUESDAY, 12, 30)]


def test_nearest_free_slots_nothing_free() -> None:
    assert nearest_free_slots("virtual", at(TUESDAY, 12), NOW, lambda s: False) == []


@pytest.mark.parametrize(
    ("tour_type", "period", "expected"),
    [
        ("in_person", "morning", [(10, 0), (11, 0)]),
        ("in_person", "afternoon", [(12, 0), (13, 0)]),
        ("in_person", "evening", [(17, 0)]),
        ("in_person", None, [(10, 0), (11, 0)]),
        ("virtual", "morning", [(9, 0), (9, 30)]),
        ("virtual", "afternoon", [(12, 0), (12, 30)]),
        ("virtual", "evening", [(17, 0), (17, 30)]),
    ],
)
def test_free_slots_in_period(tour_type: str, period: str | None, expected: list) -> None:
    slots = free_slots_in_period(tour_type, TUESDAY, period, NOW, always_free)  # type: ignore[arg-type]
    assert [(s.hour, s.minute) for s in slots] == expected


def test_free_slots_in_period_today_skips_the_past() -> None:
    late_morning = at(NOW.date(), 10, 40)
    slots = free_slots_in_period("virtual", NOW.date(), "morning", late_morning, always_free)
    assert [(s.hour, s.minute) for s in slots] == [(11, 0), (11, 30)]


def test_free_slots_in_period_sunday_in_person_is_empty() -> None:
    assert free_slots_in_period("in_person", SUNDAY, "morning", NOW, always_free) == []
