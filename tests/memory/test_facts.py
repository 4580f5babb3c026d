"""Facts from PlannerState changes: one sentence per slot, in the planner's own words."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from app.domain.catalog import Catalog
from app.domain.state import CALLER_FIELDS, Booking, Pet, PlannerState
from app.memory.facts import FIELD_SLOTS, SLOT_ORDER, Fact, FactExtractor
from app.settings import REPO_ROOT

NY = ZoneInfo("America/New_York")
CALLER = "+14155550101"


@pytest.fixture(scope="module")
def facts() -> FactExtractor:
    return FactExtractor(Catalog.load(REPO_ROOT / "prompts" / "properties.yaml"))


def texts(found: list[Fact]) -> dict[str, str | None]:
    return {f.slot: f.text for f in found}


def test_each_changed_field_becomes_a_short_sentence(facts: FactExtractor) -> None:
    state = PlannerState()
    state.update(
        caller_name="Dana Lee",
        property_id="21-west-end",
        unit_size="1br",
        budget=2400,
        move_in=date(2027, 1, 8),
        pets=[Pet(kind="cat", count=2)],
        tour_type="virtual",
        contact_preference="text",
        email="dana@example.com",
    )
    assert texts(facts.changed(state)) == {
        "name": "Name is Dana Lee",
        "property_interest": "Interested in a one-bedroom at 21 West End",
        "unit_size": None,  # folded into property_interest
        "budget": "Budget about $2,400 a month",
        "move_in": "Wants to move in around Friday, January 8, 2027",
        "pets": "Has two cats",
        "tour_type": "Prefers a virtual tour",
        "contact": "Wants confirmations by text",
        "email": "Email is dana@example.com",
    }
    assert [f.slot for f in facts.changed(state)] == [
        s for s in SLOT_ORDER if s in texts(facts.changed(state))
    ]


def test_booking_sentence_names_tour_time_and_code(facts: FactExtractor) -> None:
    state = PlannerState()
    booking = Booking(
        confirmation_code="4RZ8",
        status="booked",
        property_id="hudson-360",
        tour_type="virtual",
        start=datetime(2026, 11, 26, 18, 30, tzinfo=NY),
    )
    state.update(booking=booking)
    (fact,) = facts.changed(state)
    assert fact == Fact(
        "booking",
        "Booked a virtual tour of Hudson 360 on Thursday, November 26 at 6:30 PM, code 4RZ8",
        "4RZ8",
    )
    state.update(booking=booking.model_copy(update={"status": "cancelled"}))
    assert facts.changed(state)[0].text.startswith("Cancelled a virtual tour of Hudson 360")


def test_unchanged_fields_produce_nothing(facts: FactExtractor) -> None:
    state = PlannerState(caller_name="Dana Lee", budget=2400)
    state.begin_turn()
    assert facts.changed(state) == []
    state.update(tour_time=datetime(2026, 11, 26, 11, tzinfo=NY), awaiting="confirm")
    assert facts.changed(state) == []  # a requested time is not a fact worth keeping


def test_a_change_keeps_the_slot_and_a_retraction_empties_it(facts: FactExtractor) -> None:
    state = PlannerState(budget=2400, unit_size="2br", pets=[Pet(kind="dog")])
    state.begin_turn()
    state.update(budget=2800)
    assert texts(facts.changed(state)) == {"budget": "Budget about $2,800 a month"}
    state.begin_turn()
    state.update(unit_size=None, pets=[])  # "let's start over" / "no pets after all"
    assert texts(facts.changed(state)) == {
        "property_interest": None,
        "unit_size": None,
        "pets": "Has no pets",
    }


def test_unit_without_a_building_has_its_own_slot(facts: FactExtractor) -> None:
    state = PlannerState()
    state.update(unit_size="studio", pets=[Pet(kind="cat"), Pet(kind="dog", count=2)])
    assert texts(facts.changed(state)) == {
        "property_interest": None,
        "unit_size": "Looking for a studio",
        "pets": "Has a cat and two dogs",
    }


def test_current_lists_every_filled_slot_and_skips_the_callers_own_number(
    facts: FactExtractor,
) -> None:
    state = PlannerState(caller_name="Dana Lee", phone=CALLER, property_id="riverview-lofts")
    assert texts(facts.current(state, caller_id=CALLER)) == {
        "name": "Name is Dana Lee",
        "property_interest": "Interested in Riverview Lofts",
    }
    other = PlannerState(phone="+12125550199")
    assert texts(facts.current(other, caller_id=CALLER)) == {
        "phone": "Phone number is +12125550199"
    }


def test_every_caller_field_but_the_tour_time_has_a_slot() -> None:
    assert set(FIELD_SLOTS) == set(CALLER_FIELDS) - {"tour_time"}
    assert {s for slots in FIELD_SLOTS.values() for s in slots} == set(SLOT_ORDER)
