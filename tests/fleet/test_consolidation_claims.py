"""Consolidation claims: replicas on one database index each caller's batch exactly once.

Each consolidator here has its own engine, store and claim owner, as a replica would; they
share one counting stand-in for the vector store, so a batch indexed twice (by any of them)
shows up as a second write of the same key. Run on SQLite (threads, separate connections)
and on the real PostgreSQL (a database of this module's own).
"""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from app.domain.catalog import Catalog
from app.domain.state import PlannerState
from app.memory.caller_memories import CallerMemories
from app.memory.consolidation import ClaimLostError, ConsolidationReport, Consolidator
from app.memory.facts import FactExtractor
from app.settings import Settings
from app.stores.claims import ClaimStore, process_owner
from app.stores.conversations import ConversationStore
from app.stores.database import create_db_engine, init_schema

WAIT_S = 30.0  # a bound for a hang, never a pace


class CountingMemories:
    """The vector store's write side, counting writes per (caller, key); ``hold`` makes
    the write of one key wait for a gate, so a test can act while a claim is held."""

    backend = "counting"

    def __init__(self) -> None:
        self.writes: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()
        self.hold: dict[str, tuple[threading.Event, threading.Event]] = {}
        self.on_write: Any = None

    def put(
        self,
        caller_id: str,
        slot: str,
        text: str | None,
        *,
        kind: str = "fact",
        call_id: str | None = None,
        value: str | None = None,
    ) -> str:
        if slot in self.hold:
            entered, release = self.hold[slot]
            entered.set()
            assert release.wait(WAIT_S), "the test never opened the gate"
        if self.on_write is not None:
            self.on_write(slot)
        with self._lock:
            self.writes[(caller_id, slot)] += 1
            return "added" if self.writes[(caller_id, slot)] == 1 else "unchanged"

    def infer(self, caller_id: str, messages: list[dict[str, str]], call_id: str) -> int:
        raise AssertionError("no LLM in these tests")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fleet.db'}"
    else:
        yield str(request.getfixturevalue("fleet_db"))


@pytest.fixture
def engines(db: str) -> Iterator[list[Engine]]:
    """Four engines on the database: one to seed and check it, three "replicas"."""
    made = [create_db_engine(db) for _ in range(4)]
    init_schema(made[0])
    yield made
    for engine in made:
        engine.dispose()


@pytest.fixture(scope="module")
def facts() -> FactExtractor:
    return FactExtractor(Catalog.load(Settings().prompts_dir / "properties.yaml"))


def replica(
    engine: Engine, memories: CountingMemories, facts: FactExtractor, **kwargs: Any
) -> Consolidator:
    return Consolidator(
        ConversationStore(engine),
        memories,  # type: ignore[arg-type]  # the write side of CallerMemories is all it uses
        facts,
        claims=ClaimStore(engine),
        **kwargs,
    )


def a_call(store: ConversationStore, caller: str, name: str, *, end: bool = True) -> str:
    """One finished call of ``caller``: three turns each way and their snapshot."""
    call_id = f"CA{uuid.uuid4().hex[:16]}"
    store.start_call(caller, call_id, "phone")
    for turn in range(3):
        store.append_exchange(caller, call_id, "phone", "agent", f"question {turn}")
        store.append_exchange(caller, call_id, "phone", "user", f"answer {turn}")
    state = PlannerState()
    state.update(caller_name=name, property_id="hudson-360")
    store.add_snapshot(caller, call_id, state.to_json())
    if end:
        store.end_call(call_id, "completed")
    return call_id


def fresh_caller() -> str:
    return f"+1415{random.randrange(10**6, 10**7)}"


def test_three_replicas_index_each_batch_once(engines: list[Engine], facts: FactExtractor) -> None:
    seed = ConversationStore(engines[0])
    callers = [fresh_caller() for _ in range(12)]
    call_ids = {
        c: [a_call(seed, c, f"Caller {i}") for _ in range(2)] for i, c in enumerate(callers)
    }
    memories = CountingMemories()
    replicas = [replica(e, memories, facts) for e in engines[1:]]
    start = threading.Barrier(len(replicas))

    def catch_up(index: int) -> list[ConsolidationReport]:
        """What a replica's start-up does: every pending caller, in its own order."""
        order = list(callers)
        random.Random(index).shuffle(order)
        start.wait(WAIT_S)
        return [replicas[index].run(cid, "resumed after restart") for cid in order]

    with ThreadPoolExecutor(len(replicas)) as pool:
        reports = [r for batch in pool.map(catch_up, range(len(replicas))) for r in batch]

    summarized = sorted(call for r in reports for call in r.calls_summarized)
    assert summarized == sorted(call for calls in call_ids.values() for call in calls)
    summaries = {k: n for k, n in memories.writes.items() if k[1].startswith("summary:")}
    assert len(summaries) == 2 * len(callers)
    assert set(summaries.values()) == {1}, "a call's summary was indexed twice"
    fact_writes = {k: n for k, n in memories.writes.items() if not k[1].startswith("summary:")}
    assert {c for c, _ in fact_writes} == set(callers)
    assert set(fact_writes.values()) == {1}, "a caller's facts were indexed twice"
    assert sum(r.exchanges_synced for r in reports) == len(callers) * 2 * 6
    for caller in callers:
        assert seed.unsynced_count(caller) == 0 and seed.pending_calls(caller) == []
        assert seed.last_summary(caller), "the summary is on the call, for every replica"
    assert not ClaimStore(engines[0]).holder(callers[0]), "claims are released"


def test_work_turned_away_is_done_by_the_holder(
    engines: list[Engine], facts: FactExtractor
) -> None:
    """Replica B's call ends while A consolidates the caller: B stands aside, and A (which
    looks again after releasing the claim) summarizes B's call too, once."""
    seed = ConversationStore(engines[0])
    caller = fresh_caller()
    first = a_call(seed, caller, "Dana Lee")
    memories = CountingMemories()
    entered, release = threading.Event(), threading.Event()
    memories.hold[f"summary:{first}"] = (entered, release)
    a = replica(engines[1], memories, facts)
    b = replica(engines[2], memories, facts)
    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(a.run, caller, "call ended")
        assert entered.wait(WAIT_S)
        second = a_call(ConversationStore(engines[2]), caller, "Dana Lee")
        turned_away = b.run(caller, "call ended")
        assert turned_away.claimed_elsewhere and not turned_away.consolidated
        release.set()
        done = running.result(WAIT_S)
    assert done.calls_summarized == [first, second]
    assert memories.writes[(caller, f"summary:{second}")] == 1
    assert seed.pending_calls(caller) == [] and seed.unsynced_count(caller) == 0


def test_a_killed_replicas_claim_lapses(engines: list[Engine], facts: FactExtractor) -> None:
    seed = ConversationStore(engines[0])
    caller = fresh_caller()
    call_id = a_call(seed, caller, "Sam Ortiz")
    claims = ClaimStore(engines[0])
    # A live replica's claim: the others stand aside and the work stays pending.
    assert claims.claim(caller, "replica-a", lease_s=600)
    assert claims.holder(caller) == "replica-a"
    memories = CountingMemories()
    b = replica(engines[2], memories, facts)
    assert b.run(caller).claimed_elsewhere
    assert not memories.writes and [c.call_id for c in seed.pending_calls(caller)] == [call_id]
    assert not claims.claim(caller, "replica-c")
    # replica-a is killed mid-run: its lease ends (modelled as a lease that has run out).
    assert claims.claim(caller, "replica-a", lease_s=-1)
    assert claims.holder(caller) is None
    report = b.run(caller)
    assert report.consolidated and report.calls_summarized == [call_id]
    assert not claims.renew(caller, "replica-a") and not claims.release(caller, "replica-a")


def test_a_run_that_outlives_its_lease_commits_nothing(
    engines: list[Engine], facts: FactExtractor
) -> None:
    """A's lease runs out mid-run and B takes the caller: A must not mark the batch done."""
    seed = ConversationStore(engines[0])
    caller = fresh_caller()
    call_id = a_call(seed, caller, "Ada Park")
    memories = CountingMemories()
    a = replica(engines[1], memories, facts, lease_s=-1)  # lapses the moment it is taken
    other = ClaimStore(engines[2])
    memories.on_write = lambda slot: other.claim(caller, "replica-b")
    with pytest.raises(ClaimLostError):
        a.run(caller)
    assert [c.call_id for c in seed.pending_calls(caller)] == [call_id]
    assert seed.unsynced_count(caller) == 6
    assert other.holder(caller) == "replica-b"


def test_the_memory_service_takes_claims(tmp_path: Path) -> None:
    """The real service wires its consolidator to claims on its own database."""
    from app.memory.service import MemoryService

    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=None,
        qdrant_url=None,
        openai_api_key=None,
        openai_base_url=None,
    )
    with MemoryService.open(settings) as service:
        assert isinstance(service.consolidator.claims, ClaimStore)
        assert isinstance(service.memories, CallerMemories)


def test_a_claim_of_a_process_gone_from_this_host_is_taken_at_once(engines: list[Engine]) -> None:
    """A restart after kill -9 on the same box need not wait out the dead process's lease;
    a holder on another host (or one still running here) is waited for."""
    claims = ClaimStore(engines[0])
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    here = socket.gethostname()[:100]
    caller = fresh_caller()
    assert claims.claim(caller, f"{here}:{gone.pid}:dead", lease_s=600)
    assert claims.claim(caller, process_owner())
    other = fresh_caller()
    assert claims.claim(other, f"{here}:{os.getpid()}:alive", lease_s=600)
    assert not claims.claim(other, process_owner())
    elsewhere = fresh_caller()
    assert claims.claim(elsewhere, f"another-host:{gone.pid}:x", lease_s=600)
    assert not claims.claim(elsewhere, process_owner())
