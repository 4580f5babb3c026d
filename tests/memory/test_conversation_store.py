"""The durable conversation log on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, inspect

from app.stores.conversations import ConversationStore
from app.stores.database import create_db_engine, init_schema

CALLER = "+14155550101"


@pytest.fixture
def store(db_url: str) -> Iterator[ConversationStore]:
    engine = create_db_engine(db_url)
    init_schema(engine)
    yield ConversationStore(engine)
    engine.dispose()


def test_init_schema_creates_the_tables_and_indexes(store: ConversationStore) -> None:
    engine: Engine = store.engine
    inspector = inspect(engine)
    assert {"calls", "exchanges", "planner_snapshots", "bookings"} <= set(
        inspector.get_table_names()
    )
    indexes = {i["name"]: i["column_names"] for i in inspector.get_indexes("exchanges")}
    assert indexes["ix_exchanges_caller_synced"] == ["caller_id", "synced"]
    snapshots = {i["name"]: i["column_names"] for i in inspector.get_indexes("planner_snapshots")}
    assert snapshots["ix_snapshots_caller"] == ["caller_id", "id"]


def test_exchanges_append_in_order_and_read_back(store: ConversationStore) -> None:
    assert store.start_call(CALLER, "call-1", "phone") is True
    assert store.start_call(CALLER, "call-1", "phone") is False  # a resumed call
    first = store.append_exchange(CALLER, "call-1", "phone", "agent", "Hello!")
    second = store.append_exchange(
        CALLER,
        "call-1",
        "phone",
        "agent",
        "Your tour is on Tuesday at eleven, and",
        interrupted=True,
        heard="Your tour is on",
    )
    assert second > first
    got = store.exchanges_of_call("call-1")
    assert [e.text for e in got] == ["Hello!", "Your tour is on Tuesday at eleven, and"]
    assert got[1].interrupted and got[1].said == "Your tour is on"
    assert got[0].said == "Hello!" and not got[0].synced
    assert got[0].created_at.tzinfo is not None
    assert store.unsynced_count(CALLER) == 2


def test_latest_snapshot_is_per_caller_and_per_call(store: ConversationStore) -> None:
    store.add_snapshot(CALLER, "call-1", '{"a": 1}')
    store.add_snapshot(CALLER, "call-2", '{"a": 2}')
    store.add_snapshot("+12125550199", "call-3", '{"a": 3}')
    latest = store.latest_snapshot(CALLER)
    assert latest is not None and latest.state_json == '{"a": 2}'
    by_call = store.latest_snapshot(CALLER, "call-1")
    assert by_call is not None and by_call.state_json == '{"a": 1}'
    assert store.latest_snapshot("+10000000000") is None


def test_ending_a_call_once_and_finding_pending_work(store: ConversationStore) -> None:
    store.start_call(CALLER, "call-1", "chat")
    store.append_exchange(CALLER, "call-1", "chat", "user", "hi")
    assert store.callers_needing_consolidation() == []  # still live
    assert [c.call_id for c in store.open_calls()] == ["call-1"]
    assert store.end_call("call-1") is True
    assert store.end_call("call-1", "abandoned") is False
    call = store.get_call("call-1")
    assert call is not None and call.outcome == "completed" and call.ended_at is not None
    assert store.callers_needing_consolidation() == [CALLER]
    ids = [e.id for e in store.unsynced_exchanges(CALLER)]
    store.finish_consolidation(CALLER, ids, {"call-1": "Text chat."})
    assert store.callers_needing_consolidation() == []
    assert store.last_summary(CALLER) == "Text chat."


def test_bad_channel_and_role_are_refused(store: ConversationStore) -> None:
    with pytest.raises(ValueError, match="channel"):
        store.start_call(CALLER, "call-1", "fax")
    with pytest.raises(ValueError, match="role"):
        store.append_exchange(CALLER, "call-1", "phone", "system", "hi")


def test_purge_removes_only_that_caller(store: ConversationStore) -> None:
    for caller, call_id in ((CALLER, "call-1"), ("+12125550199", "call-2")):
        store.start_call(caller, call_id, "phone")
        store.append_exchange(caller, call_id, "phone", "user", "hi")
        store.add_snapshot(caller, call_id, "{}")
    assert store.call_ids(CALLER) == {"call-1"}
    assert store.purge(CALLER) == {"exchanges": 1, "snapshots": 1, "calls": 1}
    assert set(store.caller_counts(CALLER).values()) == {0}
    assert store.caller_counts("+12125550199")["exchanges"] == 1
