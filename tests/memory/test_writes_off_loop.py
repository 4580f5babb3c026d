"""A realtime call's memory writes run off the event loop, in order (issue 12, item 6).

Every write is a database commit. Done on the event loop, 30 calls starting at once (each
opening its call in memory, then a snapshot after the greeting) held every other call's
audio meanwhile: bench/call_starts.py saw /healthz wait 656-927 ms. Now a realtime call
writes on its own ordered lane on a shared pool of threads, and its end returns once all
of it is durable.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.conversation import Conversation
from app.domain.context import CallerContext
from app.domain.state import PlannerState
from app.memory.service import MemoryService
from app.planner.agent_planner import PlannerKit
from app.settings import Settings
from app.stores.conversations import exchanges, planner_snapshots

BURST = 30
COMMIT_S = 0.02
"""A commit on a busy disk: 30 calls' first writes alone were 600 ms of loop time on the loop."""


class SlowMemory:
    """Memory whose writes block like a commit, and which keeps what each call wrote."""

    commits_writes = True

    def __init__(self) -> None:
        self.written: dict[str, list[str]] = {}
        self.threads: set[str] = set()
        self.names: list[str | None] = []  # the caller's name in each snapshot, as saved
        self._lock = threading.Lock()

    async def aload_context(self, caller_id: str, timeout_s: float = 0.5) -> CallerContext:
        return CallerContext(caller_id=caller_id)

    def _commit(self, call_id: str, what: str) -> None:
        time.sleep(COMMIT_S)  # the store's own latency, not a synchronization
        with self._lock:
            self.written.setdefault(call_id, []).append(what)
            self.threads.add(threading.current_thread().name)

    def start_call(self, caller_id: str, call_id: str, channel: str) -> None:
        self._commit(call_id, "start")

    def record_exchange(
        self,
        caller_id: str,
        call_id: str,
        channel: str,
        role: str,
        text: str,
        *,
        interrupted: bool = False,
        heard: str | None = None,
    ) -> int:
        self._commit(call_id, f"{role}: {text}")
        return 1

    def save_snapshot(self, caller_id: str, call_id: str, state: PlannerState) -> None:
        self._commit(call_id, "snapshot")
        self.names.append(state.caller_name)

    def end_call(self, caller_id: str, call_id: str, state: PlannerState | None = None) -> None:
        self._commit(call_id, "end")


@pytest.fixture(scope="module")
def planners(tmp_path_factory: pytest.TempPathFactory) -> PlannerKit:
    return PlannerKit.build(Settings(data_dir=tmp_path_factory.mktemp("planner")))


async def one_call(planners: PlannerKit, memory: SlowMemory, n: int) -> None:
    """What a phone call writes: opened, a greeting heard, one turn, hung up."""
    conversation = await Conversation.open(
        planners,
        memory,
        caller_id=f"+1415555{n:04d}",
        call_id=f"CA{n}",
        channel="phone",
        writes_off_loop=True,
    )
    conversation.agent_said("Hello, this is Tourline.")
    conversation.snapshot()
    conversation.caller_said("Do you allow cats?")
    conversation.agent_said("Yes, two per apartment.")
    conversation.snapshot()
    await conversation.aend()
    assert memory.written[f"CA{n}"][-1] == "end"  # durable when aend returns


async def test_thirty_call_starts_do_not_hold_the_loop_on_memory_writes(
    planners: PlannerKit,
) -> None:
    """Not timed (tests do not time things): every commit ran on a thread other than the
    loop's, so a commit's latency can never be the loop's; bench/call_starts.py measures it."""
    memory = SlowMemory()
    await asyncio.gather(*(one_call(planners, memory, n) for n in range(BURST)))

    for n in range(BURST):  # each call's writes landed whole and in order
        assert memory.written[f"CA{n}"] == [
            "start",
            "agent: Hello, this is Tourline.",
            "snapshot",
            "user: Do you allow cats?",
            "agent: Yes, two per apartment.",
            "snapshot",
            "end",
        ]
    assert memory.threads and threading.current_thread().name not in memory.threads


async def test_a_call_is_open_in_memory_before_its_first_word(planners: PlannerKit) -> None:
    memory = SlowMemory()
    conversation = await Conversation.open(
        planners,
        memory,
        caller_id="+14155550100",
        call_id="CA-open",
        channel="phone",
        writes_off_loop=True,
    )
    assert memory.written["CA-open"] == ["start"]
    await conversation.aend()


async def test_off_loop_writes_are_durable_at_the_end_and_stop_at_a_forget(
    service: MemoryService, settings: Settings, data_dir: Path
) -> None:
    """The real store (SQLite and PostgreSQL): the end of the call is committed when
    ``aend`` returns, and a forget mid-call still stops every later write."""
    planners = PlannerKit.build(settings, engine=service.engine)
    kept = await Conversation.open(
        planners,
        service,
        caller_id="+14155550111",
        call_id="kept-1",
        channel="phone",
        writes_off_loop=True,
    )
    kept.caller_said("Hi, this is Omar. A studio at Hudson 360.")
    kept.agent_said("Sure, Omar.")
    kept.snapshot()
    await kept.aend()
    call = service.store.get_call("kept-1")
    assert call is not None and call.ended_at is not None
    assert [e.text for e in service.store.exchanges_of_call("kept-1")] == [
        "Hi, this is Omar. A studio at Hudson 360.",
        "Sure, Omar.",
    ]

    caller = "+14155550101"
    live = await Conversation.open(
        planners,
        service,
        caller_id=caller,
        call_id="live-1",
        channel="phone",
        writes_off_loop=True,
    )
    live.caller_said("Hi, this is Dana, I have two cats.")
    await live.flush()
    await asyncio.to_thread(service.forget, caller)
    live.caller_said("My email is dana@zyxwarble.example")
    live.snapshot()
    await live.aend()
    assert live.forgotten
    assert service.flush(120)
    with service.engine.connect() as conn:
        for table in (exchanges, planner_snapshots):
            count = conn.scalar(select(func.count()).where(table.c.call_id == "live-1"))
            assert count == 0
    assert service.store.get_call("live-1") is None


async def test_a_snapshot_saves_the_state_of_its_moment(planners: PlannerKit) -> None:
    """The lane saves a snapshot later; the planner's next turn must not leak into it."""
    memory = SlowMemory()
    conversation = await Conversation.open(
        planners,
        memory,
        caller_id="+14155550102",
        call_id="CA-snap",
        channel="phone",
        writes_off_loop=True,
    )
    conversation.state.update(caller_name="Dana")
    conversation.snapshot()
    conversation.state.update(caller_name="Omar")  # the next turn, before the save ran
    await conversation.aend()
    assert memory.names == ["Dana"]
