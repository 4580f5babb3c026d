"""One Conversation: a caller's planner, and what the conversation keeps in memory.

Every channel runs its conversations through this class (the phone and avatar loop, the
LiveKit worker, ``tourline chat``, ``demo_memory.py``), so what is remembered, and when,
is decided here once:

- what the caller said, once it is final (a channel may hold it back, e.g. while a turn can
  still be taken back);
- what the agent said, once it is over: the whole reply, and the part the caller heard
  when they cut in;
- a snapshot of the PlannerState after each reply (MemoryService skips unchanged ones);
- the end of the call, once, with the final state.

A failing memory never stops a conversation: a write that fails is logged and dropped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Collection
from typing import Protocol

from app.domain.context import CallerContext
from app.domain.state import PlannerState
from app.logging.flight_recorder import FlightRecorder
from app.planner.agent_planner import AgentPlanner, PlannerKit

log = logging.getLogger("tourline.conversation")

CONTEXT_TIMEOUT_S = 0.5
"""The longest the greeting waits for the caller's memory; past it, a stranger's greeting."""


class ConversationMemory(Protocol):
    """The part of MemoryService a conversation uses."""

    async def aload_context(self, caller_id: str, timeout_s: float = ...) -> CallerContext: ...

    def start_call(self, caller_id: str, call_id: str, channel: str) -> None: ...

    def record_exchange(
        self,
        caller_id: str,
        call_id: str,
        channel: str,
        role: str,
        text: str,
        *,
        interrupted: bool = ...,
        heard: str | None = ...,
    ) -> int: ...

    def save_snapshot(self, caller_id: str, call_id: str, state: PlannerState) -> None: ...

    def end_call(self, caller_id: str, call_id: str, state: PlannerState | None = ...) -> None: ...


class Conversation:
    """One caller's conversation on one channel: the planner, plus its memory writes."""

    def __init__(
        self,
        planner: AgentPlanner,
        memory: ConversationMemory | None,
        *,
        call_id: str,
        channel: str,
        caller_id: str | None = None,
    ) -> None:
        """Use ``open``: it loads the caller's memory first and opens the call in it."""
        self.planner = planner
        self.memory = memory
        self.call_id = call_id
        self.channel = channel
        self.caller_id = planner.caller_id if caller_id is None else caller_id
        self._ended = False

    @classmethod
    async def open(
        cls,
        planners: PlannerKit,
        memory: ConversationMemory | None,
        *,
        caller_id: str,
        call_id: str,
        channel: str,
        recorder: FlightRecorder | None = None,
        context_timeout_s: float = CONTEXT_TIMEOUT_S,
    ) -> Conversation:
        """What memory holds about the caller, then their planner; the call is opened."""
        context: CallerContext | None = None
        if memory is not None:
            started = time.perf_counter()
            context = await memory.aload_context(caller_id, context_timeout_s)
            took_ms = round((time.perf_counter() - started) * 1000, 2)
            if recorder is not None:
                recorder.event("context_loaded", ms=took_ms, returning=context.is_returning)
            log.info(
                "call %s: context loaded in %.0f ms (returning: %s)",
                call_id,
                took_ms,
                context.is_returning,
            )
        planner = planners.conversation(caller_id, context)
        conversation = cls(planner, memory, call_id=call_id, channel=channel, caller_id=caller_id)
        conversation._write(lambda m: m.start_call(caller_id, call_id, channel), "start_call")
        return conversation

    # ------------------------------------------------------------------ the planner's side

    @property
    def state(self) -> PlannerState:
        return self.planner.state

    @property
    def ended(self) -> bool:
        """The agent said goodbye."""
        return self.planner.ended

    def greet(self) -> AsyncIterator[str]:
        return self.planner.greet()

    def respond(self, text: str, unsure: Collection[str] = ()) -> AsyncIterator[str]:
        return self.planner.respond(text, unsure)

    def respond_dtmf(self, digits: str) -> AsyncIterator[str]:
        return self.planner.respond_dtmf(digits)

    def on_silence(self) -> AsyncIterator[str]:
        return self.planner.on_silence()

    # ------------------------------------------------------------------ what is kept

    def caller_said(self, text: str) -> None:
        """The caller's words (a key press as ``[digits]``), durable at once."""
        if text:
            self._exchange("user", text)

    def agent_said(self, full: str, *, heard: str | None = None) -> None:
        """An agent reply that is over. ``heard``: what the caller heard of it, when they
        cut in (None: all of it)."""
        if full:
            interrupted = heard is not None
            self._exchange("agent", full, interrupted=interrupted, heard=heard)

    def snapshot(self) -> None:
        """The PlannerState as it is now (after a reply)."""
        state = self.planner.state
        self._write(lambda m: m.save_snapshot(self.caller_id, self.call_id, state), "snapshot")

    def end(self) -> None:
        """Final snapshot, call marked ended, consolidation queued; once."""
        if self._ended:
            return
        self._ended = True
        state = self.planner.state
        self._write(lambda m: m.end_call(self.caller_id, self.call_id, state), "end_call")

    def _exchange(
        self, role: str, text: str, *, interrupted: bool = False, heard: str | None = None
    ) -> None:
        def write(memory: ConversationMemory) -> None:
            memory.record_exchange(
                self.caller_id,
                self.call_id,
                self.channel,
                role,
                text,
                interrupted=interrupted,
                heard=heard,
            )

        self._write(write, f"{role} exchange")

    def _write(self, write: _Write, what: str) -> None:
        if self.memory is None:
            return
        try:
            write(self.memory)
        except Exception:
            log.warning("memory %s failed for call %s", what, self.call_id, exc_info=True)


class _Write(Protocol):
    def __call__(self, memory: ConversationMemory, /) -> object: ...
