"""Who may close whose calls, and tokens spent once, on the real PostgreSQL (and SQLite).

In-process: a MemoryService starting on a shared database ends exactly the open calls whose
process is dead (module docstring of app/stores/replicas.py) and leaves every other call
alone; a database made before calls had owners gets the column; a call token is spent once
across two engines (two replicas) on one database.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, update

from app.memory.service import MemoryService
from app.stores.call_tokens import CallTokenStore
from app.stores.conversations import ConversationStore
from app.stores.database import create_db_engine
from app.stores.replicas import ReplicaRegistry, replicas
from tests.memory.conftest import offline_settings

CALLER = "+14155550142"
HERE = socket.gethostname()[:100]


def ended_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


@pytest.fixture
def engine(postgres_url: str) -> Engine:
    engine = create_db_engine(postgres_url)
    yield engine
    engine.dispose()


@pytest.mark.postgres
def test_only_calls_of_dead_processes_are_ended(
    engine: Engine, postgres_url: str, tmp_path: Path
) -> None:
    store = ConversationStore(engine)
    owners = {
        "live elsewhere": "replica-b.internal:4242:aaaaaaaaaaaa",
        "silent elsewhere": "replica-c.internal:4242:bbbbbbbbbbbb",
        "gone elsewhere": "replica-d.internal:4242:cccccccccccc",
        "killed here": f"{HERE}:{ended_pid()}:dddddddddddd",
        "live here": f"{HERE}:{os.getppid()}:eeeeeeeeeeee",
        # Same host name, another pid namespace (containers with host networking): its
        # pid can't be looked up from here, so only its lease can say it died.
        "beside us": f"{HERE}:{ended_pid()}:ffffffffffff:0badcafe",
    }
    for name in ("live elsewhere", "silent elsewhere", "killed here", "live here", "beside us"):
        ReplicaRegistry(engine, owners[name], lease_s=30).register()
    with engine.begin() as conn:  # its last heartbeat was a minute ago: past its lease
        conn.execute(
            update(replicas)
            .where(replicas.c.owner == owners["silent elsewhere"])
            .values(heartbeat_at=datetime.now(UTC) - timedelta(seconds=60))
        )
    for name, owner in owners.items():
        store.start_call(CALLER, name, "phone", owner=owner)
        store.append_exchange(CALLER, name, "phone", "user", f"hello from {name}")
    store.start_call(CALLER, "before owners", "phone")  # recorded by an older version
    store.start_call(CALLER, "a text thread", "sms")

    settings = offline_settings(tmp_path / "data", database_url=postgres_url)
    with MemoryService.open(settings, engine=engine) as memory:
        outcomes = {c: store.get_call(c).outcome for c in [*owners, "before owners"]}
        assert outcomes == {
            "live elsewhere": None,
            "silent elsewhere": "abandoned",
            "gone elsewhere": "abandoned",
            "killed here": "abandoned",
            "live here": None,
            "beside us": None,
            "before owners": None,  # idle for less than 30 minutes: may be live
        }
        assert store.get_call("a text thread").ended_at is None
        ended = store.get_call("killed here")
        assert ended.ended_at == store.last_activity("killed here")  # when it went quiet
        assert memory.flush(60)
        assert store.get_call("killed here").consolidated  # summarized like any call

        # A call this process serves names it; its process is alive, so nobody ends it.
        memory.start_call(CALLER, "ours", "phone")
        assert store.get_call("ours").owner == memory.owner
        other = ReplicaRegistry(engine, "replica-e.internal:1:ffffffffffff", lease_s=30)
        other.register()
        assert other.dead([memory.owner, owners["live elsewhere"]]) == set()
        assert other.dead([owners["gone elsewhere"]]) == {owners["gone elsewhere"]}
    # Closed cleanly: its row is gone, so a call it left open is now an orphan.
    assert other.dead([memory.owner]) == {memory.owner}


@pytest.mark.postgres
def test_a_replica_taken_for_dead_registers_again(engine: Engine) -> None:
    registry = ReplicaRegistry(engine, f"{HERE}:{os.getpid()}:123456789012", lease_s=30)
    registry.register()
    assert registry.beat() is True
    registry.leave()
    assert registry.beat() is False  # its row was gone: written again
    assert ReplicaRegistry(engine, "x:1:y", lease_s=30).dead([registry.owner]) == set()


@pytest.mark.parametrize("db_url", ["sqlite", "postgres"], indirect=True)
def test_calls_made_before_owners_get_the_column(db_url: str) -> None:
    engine = create_db_engine(db_url)
    try:
        with engine.begin() as conn:  # the calls table as an earlier Tourline made it
            conn.exec_driver_sql(
                "CREATE TABLE calls (call_id VARCHAR(128) PRIMARY KEY, caller_id VARCHAR(320) "
                "NOT NULL, channel VARCHAR(16) NOT NULL, started_at TIMESTAMP NOT NULL, "
                "ended_at TIMESTAMP, outcome VARCHAR(32), summary TEXT, consolidated BOOLEAN "
                "NOT NULL, CONSTRAINT ck_calls_channel CHECK (channel IN ('phone', 'avatar', "
                "'livekit', 'chat', 'sms', 'whatsapp')))"
            )
            conn.exec_driver_sql(
                "INSERT INTO calls VALUES ('old', '+14155550142', 'phone', "
                "'2026-01-05 10:00:00', NULL, NULL, NULL, FALSE)"
            )
        store = ConversationStore(engine)
        assert store.get_call("old").owner is None
        assert store.start_call(CALLER, "new", "avatar", owner="h:1:z")
        assert store.get_call("new").owner == "h:1:z"
        ConversationStore(engine)  # a second start (another replica) finds it done
    finally:
        engine.dispose()


@pytest.mark.parametrize("db_url", ["sqlite", "postgres"], indirect=True)
def test_a_call_token_is_spent_once_across_replicas(db_url: str) -> None:
    first, second = create_db_engine(db_url), create_db_engine(db_url)
    try:
        one, other = CallTokenStore(first), CallTokenStore(second)
        soon = datetime.now(UTC).timestamp() + 60
        assert one.spend("CA-1", soon) is True
        assert other.spend("CA-1", soon) is False  # the replay, on another replica
        assert one.spend("CA-1", soon) is False
        assert other.spend("CA-2", soon) is True  # another call is not affected
        lapsed = datetime.now(UTC).timestamp() - 1
        assert one.spend("CA-3", lapsed) is True
        assert other.spend("CA-3", soon) is True  # a new token once the old one lapsed
    finally:
        first.dispose()
        second.dispose()
