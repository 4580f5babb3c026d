"""Facts about a caller, read off the PlannerState without any LLM.

The planner already understood the caller: each turn it records which caller fields
changed (``PlannerState.changed``). Each field maps to a stable *slot*, and a slot holds
one short sentence ("Has two cats"). A later change produces the same slot with new text,
so memory replaces the old sentence instead of piling up contradictions; a field the
caller took back ("let's start over") produces the slot with ``text=None``: forget it.

The wording reuses the planner's own helpers (:mod:`app.domain.spoken`), so memory says
"a one-bedroom" and "$2,400" exactly as the agent does.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from app.domain import spoken
from app.domain.catalog import Catalog
from app.domain.state import CALLER_FIELDS, TOUR_TYPE_WORDS, Booking, PlannerState

# Slots in the order a person would list what they know about a caller.
SLOT_ORDER: tuple[str, ...] = (
    "name",
    "property_interest",
    "unit_size",
    "budget",
    "move_in",
    "pets",
    "tour_type",
    "contact",
    "email",
    "phone",
    "booking",
)

# Which slots a changed PlannerState field can affect. tour_time has none: a time asked
# for is stale by the next call; the booking it leads to is the fact worth keeping.
FIELD_SLOTS: dict[str, tuple[str, ...]] = {
    "caller_name": ("name",),
    "property_id": ("property_interest", "unit_size"),
    "unit_size": ("property_interest", "unit_size"),
    "budget": ("budget",),
    "move_in": ("move_in",),
    "pets": ("pets",),
    "tour_type": ("tour_type",),
    "contact_preference": ("contact",),
    "email": ("email",),
    "phone": ("phone",),
    "booking": ("booking",),
}

_CONFIRM_BY = {"text": "text", "email": "email", "call": "a phone call"}


@dataclass(frozen=True)
class Fact:
    """One slot's sentence; ``text=None`` means the slot no longer holds anything."""

    slot: str
    text: str | None
    value: str | None = None  # the raw value, for lookups that must not parse text

    @property
    def rank(self) -> int:
        return SLOT_ORDER.index(self.slot) if self.slot in SLOT_ORDER else len(SLOT_ORDER)


class FactExtractor:
    """Turns PlannerState fields into slot facts; needs the catalog for building names."""

    def __init__(self, catalog: Catalog | None = None, timezone: str | None = None) -> None:
        self.catalog = catalog
        self.tz = catalog.tz if catalog is not None else ZoneInfo(timezone or "UTC")

    def changed(self, state: PlannerState, *, caller_id: str | None = None) -> list[Fact]:
        """Facts for the fields that changed this turn (``state.changed``)."""
        return self.for_fields(state, state.changed, caller_id=caller_id)

    def current(self, state: PlannerState, *, caller_id: str | None = None) -> list[Fact]:
        """Every slot the state fills now (no removals): a full re-index from a snapshot."""
        return [f for f in self.for_fields(state, CALLER_FIELDS, caller_id=caller_id) if f.text]

    def for_fields(
        self, state: PlannerState, fields: Iterable[str], *, caller_id: str | None = None
    ) -> list[Fact]:
        slots: list[str] = []
        for name in fields:
            for slot in FIELD_SLOTS.get(name, ()):
                if slot not in slots:
                    slots.append(slot)
        facts = [self.slot_fact(state, slot, caller_id=caller_id) for slot in slots]
        return sorted(facts, key=lambda f: f.rank)

    def slot_fact(self, state: PlannerState, slot: str, *, caller_id: str | None = None) -> Fact:
        """The sentence for one slot as the state fills it now."""
        text, value = self._text(state, slot, caller_id)
        return Fact(slot, text, value)

    def booking_sentence(self, booking: Booking) -> str:
        """Booked a virtual tour of Hudson 360 on Thursday, November 26 at 6:30 PM, code 4RZ8."""
        tour = spoken.tour(booking.tour_type, self._property(booking.property_id))
        when = spoken.when(booking.start.astimezone(self.tz))
        verb = "Booked" if booking.status == "booked" else "Cancelled"
        return f"{verb} {tour} on {when}, code {booking.confirmation_code}"

    # ------------------------------------------------------------------ slots

    def _text(
        self, state: PlannerState, slot: str, caller_id: str | None
    ) -> tuple[str | None, str | None]:
        if slot == "name":
            name = state.caller_name
            return (f"Name is {name}", name) if name else (None, None)
        if slot == "property_interest":
            if not state.property_id:
                return None, None
            where = self._property(state.property_id)
            what = f"{spoken.unit(state.unit_size)} at {where}" if state.unit_size else where
            return f"Interested in {what}", state.property_id
        if slot == "unit_size":
            # With a building known, the unit is part of property_interest.
            if not state.unit_size or state.property_id:
                return None, None
            return f"Looking for {spoken.unit(state.unit_size)}", state.unit_size
        if slot == "budget":
            if not state.budget:
                return None, None
            return f"Budget about {spoken.money(state.budget)} a month", str(state.budget)
        if slot == "move_in":
            if state.move_in is None:
                return None, None
            day = f"{spoken.day(state.move_in)}, {state.move_in.year}"
            return f"Wants to move in around {day}", state.move_in.isoformat()
        if slot == "pets":
            if state.pets is None:
                return None, None
            if not state.pets:
                return "Has no pets", "none"
            described = spoken.pets(state.pets)
            return f"Has {described}", described
        if slot == "tour_type":
            if not state.tour_type:
                return None, None
            kind = spoken.with_article(TOUR_TYPE_WORDS[state.tour_type])
            return f"Prefers {kind} tour", state.tour_type
        if slot == "contact":
            pref = state.contact_preference
            if not pref:
                return None, None
            return f"Wants confirmations by {_CONFIRM_BY[pref]}", pref
        if slot == "email":
            return (f"Email is {state.email}", state.email) if state.email else (None, None)
        if slot == "phone":
            if not state.phone or state.phone == caller_id:
                return None, None  # the number they call from is the key, not news
            return f"Phone number is {state.phone}", state.phone
        if slot == "booking":
            if state.booking is None:
                return None, None
            return self.booking_sentence(state.booking), state.booking.confirmation_code
        raise ValueError(f"unknown fact slot {slot!r}")

    def _property(self, property_id: str) -> str:
        if self.catalog is not None and property_id in self.catalog.properties:
            return self.catalog.name_of(property_id)
        return property_id
