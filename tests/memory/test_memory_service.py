"""MemoryService on real stores: SQLite files and PostgreSQL, mem0 on Qdrant Edge.

Every test runs on both databases (``db_url``). Nothing is mocked: failures are real
failures (a dropped table, a closed vector store), and background work is awaited with
``flush()``, never with sleeps.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, text, update

from app.domain.state import Pet, PlannerState
from app.logging.flight_recorder import FlightRecorder, timeline_path
from app.memory.consolidation import BATCH_SIZE
from app.memory.service import MEMORY_SUBDIR, MemoryService
from app.stores.conversations import ConversationStore, calls, exchanges, planner_snapshots
from tests.memory.conftest import OpenService

DANA = "(415) 555-0101"
DANA_ID = "+14155550101"
OMAR = "omar.quist@Example.com "
OMAR_ID = "omar.quist@example.com"


def dana_state(**changes) -> PlannerState:
    state = PlannerState()
    state.update(
        caller_name="Dana Zyxwarble",
        property_id="hudson-360",
        unit_size="1br",
        pets=[Pet(kind="cat", count=2)],
        budget=2500,
        **changes,
    )
    return state


def omar_state() -> PlannerState:
    state = PlannerState()
    state.update(caller_name="Omar Quist", property_id="riverview-lofts", pets=[])
    return state


def converse(
    service: MemoryService,
    caller: str,
    call_id: str,
    state: PlannerState,
    lines: int = 4,
    channel: str = "phone",
    end: bool = True,
) -> list[int]:
    """A short conversation the way the phone loop records it."""
    service.start_call(caller, call_id, channel)
    ids = []
    for i in range(lines):
        role = "agent" if i % 2 == 0 else "user"
        line = f"line {i} of {call_id}"
        ids.append(service.record_exchange(caller, call_id, channel, role, line))
    service.save_snapshot(caller, call_id, state)
    if end:
        service.end_call(caller, call_id, state)
    return ids


def slot_rows(service: MemoryService, caller_id: str, slot: str) -> list[dict]:
    found = service.memories.mem0.get_all(filters={"user_id": caller_id, "slot": slot}, top_k=50)
    return found["results"]


# ---------------------------------------------------------------------- context


def test_context_after_reopen_carries_name_and_preferences(open_service: OpenService) -> None:
    first = open_service()
    converse(first, DANA, "call-1", dana_state())
    first.close()

    second = open_service()
    context = second.load_context(DANA)
    assert context.caller_id == DANA_ID
    assert context.name == "Dana Zyxwarble"
    assert context.is_returning
    assert context.state is not None and context.state.budget == 2500
    assert "Has two cats" in context.memories
    assert "Interested in a one-bedroom at Hudson 360" in context.memories
    assert context.last_summary is not None and "Dana Zyxwarble" in context.last_summary
    assert "No tour booked" in context.last_summary
    prefilled = context.prefilled_state()
    assert (prefilled.caller_name, prefilled.unit_size) == ("Dana Zyxwarble", "1br")


def test_context_includes_the_upcoming_booking(service: MemoryService) -> None:
    start = (datetime.now(UTC) + timedelta(days=3)).replace(minute=0, second=0, microsecond=0)
    booking = service.bookings.book("hudson-360", "in_person", start, DANA_ID, "Dana Zyxwarble")
    state = dana_state(booking=booking)
    converse(service, DANA, "call-1", state)
    service.flush()
    context = service.load_context(DANA)
    assert context.upcoming_booking == booking
    assert any(f"code {booking.confirmation_code}" in m for m in context.memories)
    assert context.prefilled_state().booking == booking


def test_a_new_caller_gets_an_empty_context(service: MemoryService) -> None:
    context = service.load_context("+1 212 555 0100")
    assert context.caller_id == "+12125550100"
    assert not context.is_returning
    assert (context.name, context.state, context.memories) == (None, None, [])


def test_phone_formats_are_one_caller(service: MemoryService) -> None:
    converse(service, "(212) 555-0199", "call-1", omar_state(), end=False)
    service.record_exchange("+1 212 555 0199", "call-1", "phone", "user", "same caller")
    service.end_call("2125550199", "call-1")
    service.flush()
    for form in ("(212) 555-0199", "+1 212 555 0199", "2125550199", "+12125550199"):
        context = service.load_context(form)
        assert context.caller_id == "+12125550199"
        assert context.name == "Omar Quist"
        assert service.stats(form)["exchanges"] == 5
    profile = service.caller_profile("212.555.0199")
    assert profile is not None and len(profile["calls"]) == 1
    assert profile["calls"][0]["exchanges"] == 5


def test_no_cross_talk_between_callers(service: MemoryService) -> None:
    converse(service, DANA, "call-dana", dana_state())
    converse(service, OMAR, "call-omar", omar_state(), channel="avatar")
    service.flush()

    dana, omar = service.load_context(DANA), service.load_context(OMAR)
    assert (dana.name, omar.name) == ("Dana Zyxwarble", "Omar Quist")
    assert omar.caller_id == OMAR_ID
    assert not any("Omar" in m or "Riverview" in m for m in dana.memories)
    assert not any("Dana" in m or "cats" in m for m in omar.memories)
    assert "Omar" not in (dana.last_summary or "")
    for hit in service.search(DANA, "Omar Quist riverview lofts no pets", limit=10):
        assert "Omar" not in hit["memory"] and "Riverview" not in hit["memory"]
    for hit in service.search(OMAR, "Dana Zyxwarble cats hudson", limit=10):
        assert "Dana" not in hit["memory"] and "cats" not in hit["memory"]
    profile = service.caller_profile(OMAR)
    assert profile is not None
    assert [c["call_id"] for c in profile["calls"]] == ["call-omar"]
    assert "Dana" not in str(profile)


def test_search_and_stats(service: MemoryService) -> None:
    converse(service, DANA, "call-1", dana_state())
    service.flush()
    (best,) = service.search(DANA, "does she have any pets?", limit=1)
    assert best["memory"] == "Has two cats"
    assert (best["kind"], best["slot"], best["call_id"]) == ("fact", "pets", "call-1")
    everything = service.search(DANA, "", limit=50)
    assert everything[0]["memory"] == "Name is Dana Zyxwarble"
    stats = service.stats(DANA)
    assert stats["caller_id"] == DANA_ID
    assert (stats["calls"], stats["exchanges"], stats["unsynced"], stats["snapshots"]) == (
        1,
        4,
        0,
        1,
    )
    assert stats["memories_by_kind"] == {"fact": 4, "summary": 1}


def test_health_reports_backend_and_counts(service: MemoryService, db_url: str) -> None:
    converse(service, DANA, "call-1", dana_state())
    service.flush()
    health = service.health()
    assert health["ok"] is True
    assert health["backend"] == "qdrant-edge"
    assert health["database"] == ("sqlite" if db_url.startswith("sqlite") else "postgresql")
    assert health["persistent"] is True
    assert health["counts"]["exchanges"] == 4
    assert health["counts"]["callers"] == 1
    assert health["counts"]["memories"] == 5
    assert health["storage_bytes"] > 0
    assert health["last_backup"] is None
    service.note_backup("/backups/tourline.jsonl", lines=10)
    assert service.health()["last_backup"]["path"] == "/backups/tourline.jsonl"


def test_seed_api_names(service: MemoryService) -> None:
    service.store_conversation_memory(DANA, "call-1", "user", "hi, this is Dana")
    service.store_conversation_memory(DANA, "call-1", "assistant", "Nice to meet you, Dana.")
    service.end_call(DANA, "call-1", dana_state())
    service.flush()
    assert service.retrieve_user_context(DANA).name == "Dana Zyxwarble"
    summary = service.get_user_summary(DANA)
    assert summary is not None and summary.startswith("Phone call on")
    roles = [e.role for e in service.store.exchanges_of_call("call-1")]
    assert roles == ["user", "agent"]


# ---------------------------------------------------------------------- facts in mem0


def test_a_changed_preference_updates_instead_of_duplicating(service: MemoryService) -> None:
    service.start_call(DANA, "call-1", "phone")
    state = dana_state()
    service.save_snapshot(DANA, "call-1", state)
    service.flush()
    (before,) = slot_rows(service, DANA_ID, "budget")
    assert before["memory"] == "Budget about $2,500 a month"

    state.begin_turn()
    state.update(budget=2800)
    service.save_snapshot(DANA, "call-1", state)
    service.save_snapshot(DANA, "call-1", state)  # saved twice: still one change
    service.end_call(DANA, "call-1", state)
    service.flush()
    (after,) = slot_rows(service, DANA_ID, "budget")
    assert after["id"] == before["id"]
    assert after["memory"] == "Budget about $2,800 a month"
    assert after["metadata"]["kind"] == "fact"
    assert {"call_id", "ts"} <= set(after["metadata"])
    # consolidation re-indexed every slot from the snapshot: still one row per slot
    for slot in ("name", "property_interest", "pets", "budget"):
        assert len(slot_rows(service, DANA_ID, slot)) == 1
    events = [h["event"] for h in service.memories.mem0.history(before["id"])]
    assert events == ["ADD", "UPDATE"]
    context = service.load_context(DANA)
    assert [m for m in context.memories if m.startswith("Budget")] == [
        "Budget about $2,800 a month"
    ]


def test_a_retracted_fact_is_removed(service: MemoryService) -> None:
    service.start_call(DANA, "call-1", "phone")
    state = dana_state()
    service.save_snapshot(DANA, "call-1", state)
    service.flush()
    assert slot_rows(service, DANA_ID, "property_interest")
    state.begin_turn()
    state.update(property_id=None, unit_size=None)  # "let's start over"
    service.save_snapshot(DANA, "call-1", state)
    service.flush()
    assert slot_rows(service, DANA_ID, "property_interest") == []
    assert slot_rows(service, DANA_ID, "unit_size") == []


# ---------------------------------------------------------------------- forget


def test_forget_purges_every_trace(service: MemoryService, settings, data_dir: Path) -> None:
    start = (datetime.now(UTC) + timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
    booking = service.bookings.book("hudson-360", "virtual", start, DANA_ID, "Dana Zyxwarble")
    for call_id in ("call-1", "call-2"):
        recorder = FlightRecorder(settings.data_dir, call_id)
        recorder.event("start", caller="Dana Zyxwarble")
        recorder.close()
        converse(service, DANA, call_id, dana_state(booking=booking))
    converse(service, OMAR, "call-omar", omar_state())
    service.flush()
    assert timeline_path(settings.data_dir, "call-1").exists()

    report = service.forget("415 555 0101")
    assert report["caller_id"] == DANA_ID
    assert (report["exchanges"], report["snapshots"], report["calls"]) == (8, 2, 2)
    assert report["memories"] >= 5 and report["history_rows"] >= 5
    assert (report["recordings"], report["bookings_cancelled"]) == (2, 1)

    with service.engine.connect() as conn:
        for table in (calls, exchanges, planner_snapshots):
            assert conn.scalar(select(func.count()).where(table.c.caller_id == DANA_ID)) == 0
            assert conn.scalar(select(func.count()).where(table.c.caller_id == OMAR_ID)) > 0
    assert service.memories.mem0.vector_store.count({"user_id": DANA_ID}) == 0
    assert service.memories.mem0.vector_store.count({"user_id": OMAR_ID}) > 0
    history_db = data_dir / MEMORY_SUBDIR / "mem0_history.db"
    with sqlite3.connect(history_db) as con:
        texts = " ".join(str(row) for row in con.execute("SELECT * FROM history"))
    assert "Zyxwarble" not in texts and "Omar Quist" in texts
    leftovers = [
        p
        for p in (data_dir / MEMORY_SUBDIR).rglob("*")
        if p.is_file() and b"Zyxwarble" in p.read_bytes()
    ]
    assert leftovers == []
    assert not timeline_path(settings.data_dir, "call-1").exists()
    assert not timeline_path(settings.data_dir, "call-2").exists()
    cancelled = service.bookings.get(booking.confirmation_code)
    assert cancelled is not None and cancelled.status == "cancelled"

    assert not service.load_context(DANA).is_returning
    assert service.caller_profile(DANA) is None
    assert service.load_context(OMAR).name == "Omar Quist"


# ---------------------------------------------------------------------- concurrency


def test_twenty_concurrent_sessions_lose_nothing(service: MemoryService) -> None:
    sessions, lines = 20, 30
    barrier = threading.Barrier(sessions)
    errors: list[BaseException] = []
    written: dict[int, list[int]] = {}

    def session(n: int) -> None:
        caller = f"+1212555{n % 10:04d}"  # two sessions per caller, at once
        call_id = f"call-{n}"
        try:
            barrier.wait()
            ids = []
            state = PlannerState()
            for i in range(lines):
                role = "user" if i % 2 else "agent"
                ids.append(service.record_exchange(caller, call_id, "phone", role, f"{n}:{i}"))
                if i % 10 == 0:
                    state.begin_turn()
                    state.update(budget=2000 + n * 10 + i)
                    service.save_snapshot(caller, call_id, state)
            service.end_call(caller, call_id, state)
            written[n] = ids
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=session, args=(n,)) for n in range(sessions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert service.flush(120)

    all_ids = [i for ids in written.values() for i in ids]
    assert len(all_ids) == len(set(all_ids)) == sessions * lines
    with service.engine.connect() as conn:
        rows = conn.execute(select(exchanges.c.call_id, exchanges.c.text)).all()
        assert conn.scalar(select(func.count()).where(exchanges.c.synced.is_(False))) == 0
        assert conn.scalar(select(func.count()).where(calls.c.consolidated.is_(False))) == 0
    assert len(rows) == sessions * lines
    for n in range(sessions):
        got = sorted(int(t.split(":")[1]) for c, t in rows if c == f"call-{n}")
        assert got == list(range(lines))
    for n in range(10):
        assert len(slot_rows(service, f"+1212555{n:04d}", "budget")) == 1


# ---------------------------------------------------------------------- consolidation


def test_consolidation_runs_at_25_unsynced_exchanges(service: MemoryService) -> None:
    service.start_call(DANA, "call-1", "phone")
    service.save_snapshot(DANA, "call-1", dana_state())
    for i in range(BATCH_SIZE - 1):
        service.record_exchange(DANA, "call-1", "phone", "user", f"line {i}")
    service.flush()
    assert service.stats(DANA)["unsynced"] == BATCH_SIZE - 1
    assert service.check_batch(DANA)["consolidated"] is False

    service.record_exchange(DANA, "call-1", "phone", "user", "the 25th line")
    service.flush()
    assert service.stats(DANA)["unsynced"] == 0
    call = service.store.get_call("call-1")
    assert call is not None and call.ended_at is None and call.summary is None  # still live
    assert slot_rows(service, DANA_ID, "pets")[0]["memory"] == "Has two cats"

    for i in range(BATCH_SIZE):  # the on-demand check does the same
        service.store.append_exchange(DANA_ID, "call-1", "phone", "user", f"more {i}")
    report = service.check_batch(DANA, "tourline")
    assert report["consolidated"] is True
    assert report["unsynced_before"] == report["exchanges_synced"] == BATCH_SIZE
    assert report["agent"] == "tourline"
    assert service.check_batch(DANA)["consolidated"] is False


def test_consolidation_at_call_end_is_idempotent(service: MemoryService) -> None:
    converse(service, DANA, "call-1", dana_state())
    service.flush()
    call = service.store.get_call("call-1")
    assert call is not None and call.consolidated and call.outcome == "completed"
    assert call.summary is not None and "one-bedroom at Hudson 360" in call.summary
    assert service.stats(DANA)["unsynced"] == 0
    rows_before = sorted((r.slot, r.text) for r in service.memories.list(DANA_ID))
    assert service.check_batch(DANA) == {
        "caller_id": DANA_ID,
        "consolidated": False,
        "reason": "nothing to do",
        "agent": "tourline",
        "unsynced_before": 0,
        "pending_calls": 0,
        "threshold": BATCH_SIZE,
    }

    # A crash after the memories were written but before the bookkeeping: run it again.
    with service.engine.begin() as conn:
        conn.execute(update(exchanges).values(synced=False))
        conn.execute(update(calls).values(consolidated=False, summary=None))
    report = service.check_batch(DANA)
    assert report["consolidated"] is True and report["calls_summarized"] == ["call-1"]
    assert set(report["facts"]) == {"unchanged"}
    assert sorted((r.slot, r.text) for r in service.memories.list(DANA_ID)) == rows_before
    assert service.store.get_call("call-1").summary == call.summary


def test_consolidation_resumes_after_a_crash(open_service: OpenService, engine) -> None:
    # What a process killed mid-call leaves behind: a call never ended, its exchanges
    # and snapshot durable, nothing indexed.
    store = ConversationStore(engine)
    store.start_call(DANA_ID, "call-crashed", "phone")
    for i in range(3):
        store.append_exchange(DANA_ID, "call-crashed", "phone", "user", f"line {i}")
    store.add_snapshot(DANA_ID, "call-crashed", dana_state().to_json())
    # ...and one that ended but whose consolidation never ran.
    store.start_call(OMAR_ID, "call-ended", "chat")
    store.append_exchange(OMAR_ID, "call-ended", "chat", "user", "hello")
    store.add_snapshot(OMAR_ID, "call-ended", omar_state().to_json())
    store.end_call("call-ended")

    service = open_service()
    assert service.flush(60)
    crashed = service.store.get_call("call-crashed")
    assert crashed is not None and crashed.outcome == "abandoned" and crashed.consolidated
    assert crashed.summary is not None and crashed.summary.endswith("before a goodbye.")
    assert service.store.get_call("call-ended").consolidated
    assert service.store.counts()["unsynced"] == 0
    assert "Has two cats" in service.load_context(DANA).memories
    assert service.load_context(OMAR).name == "Omar Quist"


def test_vector_outage_keeps_calls_going_and_catches_up(
    open_service: OpenService, caplog: pytest.LogCaptureFixture
) -> None:
    first = open_service()
    converse(first, DANA, "call-1", dana_state())
    first.flush()
    first.memories.mem0.vector_store.close()  # the vector backend goes away

    with caplog.at_level(logging.WARNING):
        context = first.load_context(DANA)
    assert context.name == "Dana Zyxwarble"  # from the snapshot
    assert context.last_summary is not None
    assert context.memories == []
    assert "Semantic memory unavailable" in caplog.text

    state = dana_state()
    state.begin_turn()
    state.update(budget=3100)
    ids = converse(first, DANA, "call-2", state)  # durable writes go on
    assert first.flush(60)
    assert all(isinstance(i, int) for i in ids)
    assert first.store.get_call("call-2").consolidated is False
    first.close()

    second = open_service()  # the backend is back: indexing catches up
    assert second.flush(60)
    assert second.store.get_call("call-2").consolidated
    assert "Budget about $3,100 a month" in second.load_context(DANA).memories


# ---------------------------------------------------------------------- failures


def test_database_failure_gives_an_empty_context_and_a_warning(
    service: MemoryService, caplog: pytest.LogCaptureFixture
) -> None:
    converse(service, DANA, "call-1", dana_state())
    service.flush()
    with service.engine.begin() as conn:
        conn.execute(text("DROP TABLE planner_snapshots"))
    with caplog.at_level(logging.WARNING):
        context = service.load_context(DANA)
    assert context.caller_id == DANA_ID
    assert not context.is_returning
    assert "Memory store unavailable" in caplog.text


def test_aload_context_gives_up_at_its_timeout(
    service: MemoryService, caplog: pytest.LogCaptureFixture
) -> None:
    converse(service, DANA, "call-1", dana_state())
    service.flush()
    assert asyncio.run(service.aload_context(DANA)).name == "Dana Zyxwarble"
    with caplog.at_level(logging.WARNING):
        context = asyncio.run(service.aload_context(DANA, timeout_s=0))
    assert context.caller_id == DANA_ID and not context.is_returning
    assert "answering without it" in caplog.text


def test_bad_caller_ids(service: MemoryService) -> None:
    assert service.load_context("   ").caller_id == ""
    with pytest.raises(ValueError):
        service.record_exchange("  ", "call-1", "phone", "user", "hi")
    with pytest.raises(ValueError):
        service.record_exchange(DANA, "call-1", "fax", "user", "hi")
    with pytest.raises(ValueError):
        service.record_exchange(DANA, "call-2", "phone", "robot", "hi")
