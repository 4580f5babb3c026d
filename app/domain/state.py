"""PlannerState: everything the agent knows in one conversation.

Memory snapshots it and prefills it on the next call, so it must round-trip through JSON
exactly, and it tracks which fields changed this turn so memory can turn changes into facts.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

UnitSize = Literal["studio", "1br", "2br", "3br"]
TourType = Literal["virtual", "in_person"]
ContactPreference = Literal["call", "text", "email"]
BookingStatus = Literal["booked", "cancelled"]

UNIT_SIZE_WORDS: dict[str, str] = {
    "studio": "a studio",
    "1br": "a one-bedroom",
    "2br": "a two-bedroom",
    "3br": "a three-bedroom",
}
TOUR_TYPE_WORDS: dict[str, str] = {"virtual": "virtual", "in_person": "in-person"}

# Fields a caller tells us about themselves; the dialogue bookkeeping below them is not.
CALLER_FIELDS: tuple[str, ...] = (
    "caller_name",
    "phone",
    "email",
    "property_id",
    "unit_size",
    "pets",
    "budget",
    "move_in",
    "tour_type",
    "tour_time",
    "booking",
    "contact_preference",
)

# What a caller states about themselves (no times or bookings): what planners may set.
PREFERENCE_FIELDS: tuple[str, ...] = tuple(
    name for name in CALLER_FIELDS if name not in ("tour_time", "booking")
)


class Pet(BaseModel):
    """One kind of pet and how many."""

    model_config = ConfigDict(frozen=True)

    kind: str
    count: int = 1


class Booking(BaseModel):
    """A tour the caller booked, as the booking store confirmed it."""

    model_config = ConfigDict(frozen=True)

    confirmation_code: str
    status: BookingStatus
    property_id: str
    tour_type: TourType
    start: datetime


class PlannerState(BaseModel):
    """The typed, serializable state of one conversation."""

    model_config = ConfigDict(validate_assignment=True)

    caller_name: str | None = None
    phone: str | None = None  # E.164
    email: str | None = None
    property_id: str | None = None
    unit_size: UnitSize | None = None
    pets: list[Pet] | None = None  # [] means "no pets", None means "not asked yet"
    budget: int | None = None  # dollars per month
    move_in: date | None = None
    tour_type: TourType | None = None
    tour_time: datetime | None = None  # timezone-aware, property local time
    booking: Booking | None = None
    contact_preference: ContactPreference | None = None

    # Dialogue bookkeeping, persisted so a call can resume mid-flow.
    caller_id: str | None = None  # who is talking (E.164, email or device id): books under it
    awaiting: str | None = None  # what the last question asked for
    offered_slots: list[datetime] = Field(default_factory=list)
    offered_for: str | None = None  # "in_person@hudson-360" ("@" alone: every building)
    skipped: list[str] = Field(default_factory=list)  # optional questions the caller passed on
    requested_day: date | None = None  # a day asked for before we could look up times
    requested_period: str | None = None
    rescheduling: bool = False
    last_question: str | None = None
    last_reply: str | None = None
    reprompts: int = 0  # how many times in a row we asked the same thing
    ask_streak: int = 0  # how many times in a row the current question was put to the caller
    asked_once: list[str] = Field(default_factory=list)  # optional questions already asked
    name_declined: bool = False  # the caller won't or can't give a name: book under caller ID
    name_tries: int = 0  # name questions after the first (again, read-back, spell) or misses
    pending_name: str | None = None  # a name we heard but are not sure of ("Was that Priya?")
    name_guess: str | None = None  # the best we heard while still asking: kept if asks run out
    pending_property: str | None = None  # a building we think we heard ("Did you mean ...?")
    wanted_time: datetime | None = None  # a time we couldn't give: back on the table if the
    # caller switches tour type ("a virtual one then": virtual tours run on Sundays)
    refused_time: datetime | None = None  # the last time refused as a closed day for the
    # tour type: asked for again, the tour becomes virtual (the only kind that day)
    wanted_day: date | None = None  # a day with no open time for this tour type: the same
    # day is asked again if the caller switches type ("Sunday? virtual then")
    unit_choice: list[str] = Field(default_factory=list)  # buildings offered on a size mismatch
    suggested_property: str | None = None  # the building the agent just recommended: "that one"
    last_topics: list[str] = Field(default_factory=list)  # last answered: "and at Riverview?"
    described_buildings: bool = False  # the three were described: "doesn't matter" again picks
    said_scope: bool = False  # "I can help you book a tour of ...": said once per call at most
    silences: int = 0
    turns: int = 0
    ended: bool = False
    changed: list[str] = Field(default_factory=list)  # fields changed this turn

    def begin_turn(self) -> None:
        """Start a new caller turn: forget last turn's changes."""
        self.turns += 1
        self.changed = []

    def update(self, **values: Any) -> list[str]:
        """Set fields, record the ones whose value really changed, and return them."""
        newly_changed: list[str] = []
        for name, value in values.items():
            if name not in type(self).model_fields:
                raise AttributeError(f"PlannerState has no field {name!r}")
            if getattr(self, name) == value:
                continue
            setattr(self, name, value)
            if name in CALLER_FIELDS and name not in self.changed:
                self.changed.append(name)
            newly_changed.append(name)
        return newly_changed

    def caller_facts(self) -> dict[str, Any]:
        """The caller-level fields as JSON-ready values (for memory and prompts)."""
        return self.model_dump(mode="json", include=set(CALLER_FIELDS), exclude_none=True)

    def to_json(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_json(cls, text: str) -> PlannerState:
        return cls.model_validate_json(text)
