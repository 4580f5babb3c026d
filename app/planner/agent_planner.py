"""AgentPlanner: one conversation's brain, streaming what the agent says sentence by sentence.

The planner holds the conversation's ``PlannerState`` and delegates each turn to a
``PlannerBrain``: the deterministic ``RulePlanner`` by default, or an OpenAI-compatible LLM
with tools when one is configured. Both share one ``TourDesk``, so availability and
bookings are the same whichever brain runs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import Engine

from app.domain import spoken
from app.domain.catalog import Catalog
from app.domain.context import CallerContext
from app.domain.identity import is_phone
from app.domain.state import TOUR_TYPE_WORDS, Booking, PlannerState, TourType
from app.domain.text import split_sentences
from app.planner import names
from app.planner.prompts import Prompts
from app.planner.rules import RulePlanner
from app.planner.tour_desk import Contact, TourDesk
from app.planner.understanding import understand
from app.settings import Settings
from app.stores.bookings import BookingStore
from app.stores.database import create_db_engine, init_schema
from app.stores.outbox import OutboxPolicy, OutboxStore, Route

DTMF_MEANINGS = {"1": "yes", "2": "no", "0": "repeat that", "*": "start over", "#": "yes"}
# Questions a single key answers: yes/no, or a pick among numbered options.
NUMBERED_QUESTIONS = frozenset({"property_number", "tour_type_number", "pick_slot", "unit_choice"})
SINGLE_KEY_QUESTIONS = NUMBERED_QUESTIONS | frozenset(
    {
        "confirm",
        "confirm_reschedule",
        "cancel_confirm",
        "resume",
        "anything_else",
        "book_today",
        "confirm_name",
        "confirm_property",
    }
)

CLOSED_ANSWER_QUESTIONS = (SINGLE_KEY_QUESTIONS - {"pick_slot"}) | {"tour_type", "manage_booking"}
"""Answered in a word or two from a small set: recognition hints only get in the way."""


class PlannerBrain(Protocol):
    """What decides the agent's words for a turn. Mutates the state it is given."""

    def greet(self, state: PlannerState, context: CallerContext | None) -> AsyncIterator[str]: ...

    def respond(
        self, state: PlannerState, text: str, unsure: Collection[str] = ()
    ) -> AsyncIterator[str]: ...

    def on_silence(self, state: PlannerState) -> AsyncIterator[str]: ...


class RuleBrain:
    """The deterministic planner as a streaming brain (it is fast, so it yields at once)."""

    def __init__(self, rules: RulePlanner) -> None:
        self.rules = rules

    async def greet(self, state: PlannerState, context: CallerContext | None) -> AsyncIterator[str]:
        for sentence in split_sentences(self.rules.greet(state, context)):
            yield sentence

    async def respond(
        self, state: PlannerState, text: str, unsure: Collection[str] = ()
    ) -> AsyncIterator[str]:
        for sentence in split_sentences(self.rules.respond(state, text, unsure)):
            yield sentence

    async def on_silence(self, state: PlannerState) -> AsyncIterator[str]:
        for sentence in split_sentences(self.rules.on_silence(state)):
            yield sentence


class AgentPlanner:
    """The planner for one conversation: state in, sentences out."""

    def __init__(
        self,
        brain: PlannerBrain,
        caller_id: str,
        context: CallerContext | None = None,
        building_names: tuple[str, ...] = (),
    ) -> None:
        self.brain = brain
        self.caller_id = caller_id
        self.context = context
        self._building_names = building_names
        self.state = context.prefilled_state() if context else PlannerState()
        self.state.caller_id = caller_id
        if is_phone(caller_id) and not self.state.phone:
            self.state.phone = caller_id
        elif "@" in caller_id and not self.state.email:
            self.state.email = caller_id
        self.state.changed = []

    @property
    def ended(self) -> bool:
        return self.state.ended

    def greet(self) -> AsyncIterator[str]:
        """The agent speaks first."""
        return self.brain.greet(self.state, self.context)

    def respond(self, text: str, unsure: Collection[str] = ()) -> AsyncIterator[str]:
        """Stream the agent's reply to one caller turn, sentence by sentence.

        ``unsure``: words the recognizer was not confident of; a name or building among
        them is read back ("Was that Priya?") rather than taken as heard."""
        return self.brain.respond(self.state, text, unsure)

    def recognition_hints(self) -> list[str]:
        """Words this call is likely to hear: building names, the caller's remembered name,
        the times just offered. Lets the recognizer lean toward them.

        None after a question with a short closed answer (yes/no, in person/virtual, a
        number): there hints never help, and Whisper loops on them ("Yes. Yes. Yes.",
        "virtual virtual virtual ...", measured on 5 noisy renders each), costing a redo.
        """
        awaiting = self.state.awaiting
        if awaiting in CLOSED_ANSWER_QUESTIONS:
            return []
        times = [spoken.clock(slot) for slot in self.state.offered_slots]
        if awaiting == "pick_slot":
            return list(dict.fromkeys(times))
        hints = list(self._building_names)
        if self.state.caller_name:
            hints.append(self.state.caller_name)
        hints.extend(times)
        return list(dict.fromkeys(hints))

    @property
    def takes_single_key(self) -> bool:
        """Is the question just asked answered by one key press (yes/no, a numbered pick)?"""
        return self.state.awaiting in SINGLE_KEY_QUESTIONS

    def on_silence(self) -> AsyncIterator[str]:
        return self.brain.on_silence(self.state)

    def respond_dtmf(self, digits: str) -> AsyncIterator[str]:
        """Keypad input: 1 yes, 2 no, 0 repeat, * start over; a long run is a phone number.

        After a numbered choice ("press 2 for Hudson 360") a digit is that choice."""
        if self.state.awaiting in NUMBERED_QUESTIONS and digits in ("1", "2", "3"):
            return self.respond(f"number {digits}")
        text = DTMF_MEANINGS.get(digits, f"my number is {digits}" if len(digits) >= 10 else digits)
        return self.respond(text)


class WouldChangeBookings(Exception):
    """A dry run reached a booking write; deliberately not a BookingError."""


class DryRunDesk(TourDesk):
    """Reads availability like the real desk, refuses every write."""

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
        raise WouldChangeBookings

    def reschedule(self, code: str, tour_type: TourType, new_start: datetime) -> Booking:
        raise WouldChangeBookings

    def cancel(self, code: str) -> Booking:
        raise WouldChangeBookings

    def _route(self, code: str, route: Route, booking: Booking | None = None) -> None:
        pass  # decides like the real desk (same channels), writes nothing

    def release_confirmation(self, code: str) -> None:
        pass


@dataclass
class PlannerKit:
    """Everything conversations share, built once per process."""

    settings: Settings
    catalog: Catalog
    prompts: Prompts
    bookings: BookingStore
    desk: TourDesk
    brain: PlannerBrain

    @classmethod
    def build(
        cls,
        settings: Settings,
        engine: Engine | None = None,
        clock: Callable[[], datetime] | None = None,
        catalog: Catalog | None = None,
    ) -> PlannerKit:
        if catalog is None:
            catalog = Catalog.load(settings.prompts_dir / "properties.yaml")
        prompts = Prompts.load(settings.prompts_dir)
        if engine is None:
            engine = create_db_engine(settings.resolved_database_url)
            init_schema(engine)
        bookings = BookingStore(engine, timezone=str(catalog.tz))
        outbox = OutboxStore(engine, OutboxPolicy.from_settings(settings))
        desk = TourDesk(catalog, bookings, clock=clock, outbox=outbox)
        brain: PlannerBrain
        dry_run: PlannerBrain | None = None
        if settings.llm_enabled:
            from app.planner.llm import LLMBrain

            brain = LLMBrain(settings, desk, prompts, fallback=RulePlanner(desk, prompts))
        else:
            brain = RuleBrain(RulePlanner(desk, prompts))
            dry_desk = DryRunDesk(catalog, bookings, clock=clock, outbox=outbox)
            dry_run = RuleBrain(RulePlanner(dry_desk, prompts))
        warm_up_parsers(desk.now())
        understand("hudson three sixty at noon", desk.now(), catalog)  # builds the matchers
        return cls(settings, catalog, prompts, bookings, desk, brain, dry_run)

    dry_run_brain: PlannerBrain | None = None
    """The rule brain on a desk that refuses to write: predicts a reply without side effects."""

    def conversation(self, caller_id: str, context: CallerContext | None = None) -> AgentPlanner:
        names = tuple(p.name for p in self.catalog.properties.values())
        return AgentPlanner(self.brain, caller_id, context, names)

    def greeting(self) -> list[str]:
        """What every new caller hears first, sentence by sentence."""
        return split_sentences(RulePlanner(self.desk, self.prompts).greet(PlannerState(), None))

    def fixed_phrases(self) -> list[str]:
        """What the agent says word for word to many callers: worth rendering at start-up.

        The new-caller greeting plus every placeholder-free line of dialogue.yaml and every
        opening with few fills ("So that's an in-person tour of Hudson 360,"), split the way
        the voice loop splits replies, so the cache keys match what gets spoken.
        """
        from app.domain.text import speakable_chunks

        tours = [
            spoken.tour(tour_type, place.name)
            for tour_type in TOUR_TYPE_WORDS
            for place in self.catalog.properties.values()
        ]
        # What follows "Got it:" when the caller answered one question: a building, a type.
        single_facts = [f"{place.name}." for place in self.catalog.properties.values()]
        single_facts += [f"{spoken.with_article(w)} tour." for w in TOUR_TYPE_WORDS.values()]
        lines = self.prompts.literal_lines() + self.prompts.openings({"tour": tours})
        lines += single_facts
        sentences = self.greeting() + split_sentences(lines)
        phrases: list[str] = []
        for sentence in sentences:
            phrases.append(sentence)
            phrases.extend(speakable_chunks([sentence], first_reply_chunk=True))
        return list(dict.fromkeys(phrases))

    async def predict(self, state: PlannerState, text: str) -> Prediction | None:
        """What the planner would answer ``text`` with, worked out on a copy of ``state``.

        Lets the voice loop judge whether a pause ends the turn and render the reply while
        it waits. None when prediction is unavailable (LLM brain) or the turn would book,
        move or cancel a tour: those only ever happen for real.
        """
        if self.dry_run_brain is None:
            return None
        scratch = PlannerState.from_json(state.to_json())
        try:
            sentences = [s async for s in self.dry_run_brain.respond(scratch, text)]
        except WouldChangeBookings:
            return None
        progressed = bool(scratch.changed) or scratch.awaiting != state.awaiting
        return Prediction(sentences, progressed)


@dataclass(frozen=True)
class Prediction:
    sentences: list[str]
    progressed: bool  # the caller's words moved the conversation on (not a re-prompt)


def warm_up_parsers(now: datetime) -> None:
    """dateparser builds its tables on first use (~200 ms), and the name data loads on first
    use (~0.4 s): do both at start-up, not in a caller's first turn."""
    import dateparser

    names.warm_up()

    dateparser.parse(
        "next friday", languages=["en"], settings={"RELATIVE_BASE": now.replace(tzinfo=None)}
    )
