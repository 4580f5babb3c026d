"""PlannerState must round-trip through JSON exactly and report its own changes."""

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from app.domain.context import CallerContext
from app.domain.state import Booking, Pet, PlannerState

NY = ZoneInfo("America/New_York")


def full_state() -> PlannerState:
    start = datetime(2026, 11, 28, 11, 0, tzinfo=NY)
    return PlannerState(
        caller_name="Dana Lee",
        phone="+14155550101",
        email="dana.lee@example.com",
        property_id="hudson-360",
        unit_size="1br",
        pets=[Pet(kind="cat", count=2), Pet(kind="dog")],
        budget=2500,
        move_in=date(2026, 12, 1),
        tour_type="in_person",
        tour_time=start,
        booking=Booking(
            confirmation_code="4RZ8",
            status="booked",
            property_id="hudson-360",
            tour_type="in_person",
            start=start,
        ),
        contact_preference="text",
        awaiting="anything_else",
        offered_slots=[start],
        skipped=["budget"],
        turns=7,
    )


def test_json_round_trip_is_exact() -> None:
    state = full_state()
    again = PlannerState.from_json(state.to_json())
    assert again == state
    assert again.to_json() == state.to_json()
    assert again.tour_time == state.tour_time and again.tour_time.utcoffset() is not None


def test_update_reports_only_real_changes() -> None:
    state = PlannerState(budget=2500)
    state.begin_turn()
    assert state.update(budget=2500, unit_size="2br") == ["unit_size"]
    assert state.update(budget=3000) == ["budget"]
    assert state.changed == ["unit_size", "budget"]
    state.begin_turn()
    assert state.changed == [] and state.turns == 2


def test_bookkeeping_changes_are_not_caller_facts() -> None:
    state = PlannerState()
    state.update(awaiting="name", caller_name="Dana")
    assert state.changed == ["caller_name"]


def test_update_rejects_unknown_fields_and_bad_values() -> None:
    state = PlannerState()
    with pytest.raises(AttributeError):
        state.update(favourite_colour="blue")
    with pytest.raises(ValueError):
        state.update(unit_size="penthouse")


def test_prefilled_state_keeps_preferences_but_not_stale_times() -> None:
    old = full_state()
    old.booking = old.booking.model_copy(update={"status": "cancelled"})
    context = CallerContext(caller_id="+14155550101", name="Dana Lee", state=old)
    fresh = context.prefilled_state()
    assert (fresh.caller_name, fresh.unit_size, fresh.property_id) == (
        "Dana Lee",
        "1br",
        "hudson-360",
    )
    assert fresh.tour_time is None and fresh.booking is None
    assert fresh.awaiting is None and fresh.turns == 0 and fresh.changed == []


def test_prefilled_state_keeps_a_time_the_last_call_was_about_to_book() -> None:
    """Cut off at "Shall I book it?": the caller should not have to say the time again
    (the planner drops it if it has passed)."""
    old = full_state()
    old.booking = None
    old.awaiting = "confirm"
    fresh = CallerContext(caller_id="+14155550101", state=old).prefilled_state()
    assert fresh.tour_time == old.tour_time and fresh.awaiting is None
