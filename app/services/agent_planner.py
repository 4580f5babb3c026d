"""AgentPlanner: one conversation's brain, streaming what the agent says sentence by sentence.

The planner holds the conversation's ``PlannerState`` and delegates each turn to a
``PlannerBrain``: the deterministic ``RulePlanner`` by default, or an OpenAI-compatible LLM
with tools when one is configured. Both share one ``TourDesk``, so availability and
bookings are the same whichever brain runs.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import Engine

from app.identity import is_phone
from app.planner.catalog import Catalog
from app.planner.context import CallerContext
from app.planner.prompts import Prompts
from app.planner.rules import RulePlanner
from app.planner.state import PlannerState
from app.planner.tour_desk import TourDesk
from app.settings import Settings
from app.stores.bookings import BookingStore
from app.stores.database import create_db_engine, init_schema

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'$])")
DTMF_MEANINGS = {"1": "yes", "2": "no", "0": "repeat that", "*": "start over", "#": "yes"}


def split_sentences(parts: Iterable[str]) -> list[str]:
    """Break reply parts into sentences so speech can start on the first one."""
    return [s for part in parts for s in _SENTENCE_END.split(part.strip()) if s]


class PlannerBrain(Protocol):
    """What decides the agent's words for a turn. Mutates the state it is given."""

    def greet(self, state: PlannerState, context: CallerContext | None) -> AsyncIterator[str]: ...

    def respond(self, state: PlannerState, text: str) -> AsyncIterator[str]: ...

    def on_silence(self, state: PlannerState) -> AsyncIterator[str]: ...


class RuleBrain:
    """The deterministic planner as a streaming brain (it is fast, so it yields at once)."""

    def __init__(self, rules: RulePlanner) -> None:
        self.rules = rules

    async def greet(self, state: PlannerState, context: CallerContext | None) -> AsyncIterator[str]:
        for sentence in split_sentences(self.rules.greet(state, context)):
            yield sentence

    async def respond(self, state: PlannerState, text: str) -> AsyncIterator[str]:
        for sentence in split_sentences(self.rules.respond(state, text)):
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
    ) -> None:
        self.brain = brain
        self.caller_id = caller_id
        self.context = context
        self.state = context.prefilled_state() if context else PlannerState()
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

    def respond(self, text: str) -> AsyncIterator[str]:
        """Stream the agent's reply to one caller turn, sentence by sentence."""
        return self.brain.respond(self.state, text)

    def on_silence(self) -> AsyncIterator[str]:
        return self.brain.on_silence(self.state)

    def respond_dtmf(self, digits: str) -> AsyncIterator[str]:
        """Keypad input: 1 yes, 2 no, 0 repeat, * start over; a long run is a phone number."""
        text = DTMF_MEANINGS.get(digits, f"my number is {digits}" if len(digits) >= 10 else digits)
        return self.respond(text)


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
        clock=None,
    ) -> PlannerKit:
        catalog = Catalog.load(settings.prompts_dir / "properties.yaml")
        prompts = Prompts.load(settings.prompts_dir)
        if engine is None:
            engine = create_db_engine(settings.resolved_database_url)
            init_schema(engine)
        bookings = BookingStore(engine, timezone=str(catalog.tz))
        desk = TourDesk(catalog, bookings, clock=clock)
        brain: PlannerBrain
        if settings.llm_enabled:
            from app.planner.llm import LLMBrain

            brain = LLMBrain(settings, desk, prompts, fallback=RulePlanner(desk, prompts))
        else:
            brain = RuleBrain(RulePlanner(desk, prompts))
        warm_up_parsers(desk.now())
        return cls(settings, catalog, prompts, bookings, desk, brain)

    def conversation(self, caller_id: str, context: CallerContext | None = None) -> AgentPlanner:
        return AgentPlanner(self.brain, caller_id, context)


def warm_up_parsers(now: datetime) -> None:
    """dateparser builds its tables on first use (~200 ms): do it at start-up, not mid-call."""
    import dateparser

    dateparser.parse(
        "next friday", languages=["en"], settings={"RELATIVE_BASE": now.replace(tzinfo=None)}
    )
