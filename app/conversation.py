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

Where the writes run: by default on the caller's thread, durable when the method returns
(``tourline chat``, scripts, tests). A realtime call opens with ``writes_off_loop=True``:
its writes then go, in order, to a :class:`WriteLane` of its own on a small shared pool of
threads, because each is a database commit and on the event loop 30 calls starting at once
held every other call's audio for most of a second. The order per call is kept
(``start_call`` -> exchanges -> snapshots -> ``end_call``), ``open`` returns once the call
is open in memory, and ``aend`` / ``flush`` return once everything written before is
durable.

If the caller is forgotten while the conversation goes on (``DELETE /callers/{id}``,
``tourline forget``), memory refuses the call's next write and the conversation writes
nothing more: the call continues, and keeps no trace of the caller.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Collection
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Protocol

from app.domain.context import CallerContext
from app.domain.identity import masked
from app.domain.state import PlannerState
from app.logging.flight_recorder import FlightRecorder
from app.planner.agent_planner import AgentPlanner, PlannerKit
from app.stores.conversations import CallForgottenError

log = logging.getLogger("tourline.conversation")

CONTEXT_TIMEOUT_S = 0.5
"""The longest the greeting waits for the caller's memory; past it, a stranger's greeting."""

WRITE_THREADS = 4
"""Threads shared by every call's off-loop memory writes (each call's writes stay in order
on its own lane; a slow commit of one call delays only the calls queued behind it)."""


class WriteLane:
    """One call's writes, run one at a time and in order, on a pool shared by all calls.

    Why not a thread per call: 60 calls would be 60 idle threads fighting for the GIL; why
    not one thread for all: one call's slow commit would hold every other call's writes.
    """

    def __init__(self, pool: ThreadPoolExecutor) -> None:
        self._pool = pool
        self._lock = threading.Lock()
        self._jobs: deque[tuple[Callable[[], object], Future[object]]] = deque()
        self._draining = False

    def submit(self, job: Callable[[], object]) -> Future[object]:
        """Queue ``job`` after every job submitted before it; its future holds its result."""
        future: Future[object] = Future()
        with self._lock:
            self._jobs.append((job, future))
            start, self._draining = not self._draining, True
        if start:
            self._pool.submit(self._drain)
        return future

    def _drain(self) -> None:
        while True:
            with self._lock:
                if not self._jobs:
                    self._draining = False
                    return
                job, future = self._jobs.popleft()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(job())
            except BaseException as exc:  # handed to whoever awaits the write
                future.set_exception(exc)


_pool_lock = threading.Lock()
_write_pool: ThreadPoolExecutor | None = None


def _shared_write_pool() -> ThreadPoolExecutor:
    global _write_pool
    with _pool_lock:
        if _write_pool is None:
            _write_pool = ThreadPoolExecutor(WRITE_THREADS, thread_name_prefix="tourline-write")
        return _write_pool


class ConversationMemory(Protocol):
    """The part of MemoryService a conversation uses."""

    commits_writes: bool
    """Each write is a database commit (MemoryService): a realtime call runs them off its
    event loop. False for in-process stand-ins, which are written in place."""

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
        lane: WriteLane | None = None,
    ) -> None:
        """Use ``open``: it loads the caller's memory first and opens the call in it.

        ``lane``: where the writes run (None: on the caller's thread, durable on return)."""
        self.planner = planner
        self.memory = memory
        self.call_id = call_id
        self.channel = channel
        self.caller_id = planner.caller_id if caller_id is None else caller_id
        self._ended = False
        self._forgotten = False  # the caller was forgotten mid-call: write nothing more
        self._lane = lane
        self._last_write: Future[object] | None = None  # the lane's newest write

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
        writes_off_loop: bool = False,
    ) -> Conversation:
        """What memory holds about the caller, then their planner; the call is opened.

        ``writes_off_loop``: memory writes run on the call's own ordered lane, off the
        calling thread (see the module docstring); the call is open when this returns."""
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
        lane = WriteLane(_shared_write_pool()) if writes_off_loop and memory is not None else None
        conversation = cls(
            planner, memory, call_id=call_id, channel=channel, caller_id=caller_id, lane=lane
        )
        conversation._write(lambda m: m.start_call(caller_id, call_id, channel), "start_call")
        await conversation.flush()  # open in memory before the first word, as without a lane
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
        state = self._state_now()
        self._write(lambda m: m.save_snapshot(self.caller_id, self.call_id, state), "snapshot")

    def end(self) -> None:
        """Final snapshot, call marked ended, consolidation queued; once.

        With a lane this only queues the end: ``aend`` waits until it is durable."""
        if self._ended:
            return
        self._ended = True
        state = self._state_now()
        self._write(lambda m: m.end_call(self.caller_id, self.call_id, state), "end_call")

    def _state_now(self) -> PlannerState:
        """The state to save: a copy when the lane saves it later, since the planner goes
        on changing its own (and must not while another thread serializes it)."""
        state = self.planner.state
        return state if self._lane is None else state.model_copy(deep=True)

    async def aend(self) -> None:
        """``end``, returning once every write of the call (the end too) has run."""
        self.end()
        await self.flush()

    async def flush(self) -> None:
        """Wait, off the event loop, until every write queued so far has run (or failed)."""
        last = self._last_write
        if last is not None:
            await asyncio.shield(asyncio.wrap_future(last))

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

    @property
    def forgotten(self) -> bool:
        """The caller was forgotten during this conversation; memory keeps none of it."""
        return self._forgotten

    def _write(self, write: _Write, what: str) -> None:
        """Run ``write`` now, or queue it on the call's lane (in order, off this thread)."""
        if self.memory is None or self._forgotten:
            return
        if self._lane is None:
            self._write_now(write, what)
        else:
            self._last_write = self._lane.submit(lambda: self._write_now(write, what))

    def _write_now(self, write: _Write, what: str) -> None:
        memory = self.memory
        if memory is None or self._forgotten:  # forgotten by a write queued before this one
            return
        try:
            write(memory)
        except CallForgottenError:
            self._forgotten = True
            log.info(
                "call %s: caller %s was forgotten; this call is no longer recorded",
                self.call_id,
                masked(self.caller_id),
            )
        except Exception:
            log.warning("memory %s failed for call %s", what, self.call_id, exc_info=True)


class _Write(Protocol):
    def __call__(self, memory: ConversationMemory, /) -> object: ...
