"""The memory REST API against the real server process, on SQLite and on PostgreSQL.

Callers are seeded through MemoryService in this process before the server starts (the
data dir has one owner), then every check goes over HTTP to ``tourline serve``. What a
DELETE removed is checked in the stores themselves after the server has stopped: the SQL
tables, the vector store (through a fresh MemoryService), mem0's history DB, the raw files
of the memory dir and the call timelines.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from app.logging.flight_recorder import timeline_path
from app.memory.service import MEMORY_SUBDIR
from app.stores.conversations import calls, exchanges, planner_snapshots
from app.web.memory_routes import MIN_SEARCH_SCORE
from sim.server import free_port, running_server
from tests.memory.conftest import OpenService
from tests.memory.seeding import (
    DANA,
    DANA_CALLS,
    DANA_RAW,
    DANA_WORDS,
    OMAR,
    OMAR_CALL,
    OMAR_WORDS,
    seed,
)

pytestmark = pytest.mark.slow

KEY = "test-api-key-7f3a"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture
def seeded(open_service: OpenService, data_dir: Path) -> str:
    memory = open_service()
    code = seed(memory, data_dir)
    memory.close()  # the server must be the data dir's only owner
    return code


@pytest.fixture
def server_env(db_url: str) -> dict[str, str]:
    """The server uses the test's database: PostgreSQL through DATABASE_URL, else SQLite."""
    return {} if db_url.startswith("sqlite") else {"DATABASE_URL": db_url}


@contextmanager
def serve(data_dir: Path, **env: str) -> Iterator[httpx.Client]:
    with (
        running_server(data_dir, **env) as server,
        httpx.Client(base_url=server.base_url, timeout=150) as client,
    ):
        yield client


def server_log(data_dir: Path) -> str:
    return (data_dir / "server.log").read_text(errors="replace")


def text_of(response: httpx.Response) -> str:
    """The response body as lower-case text, without a search's echo of its own query."""
    body = response.json()
    if isinstance(body, dict):
        body = {k: v for k, v in body.items() if k != "query"}
    return json.dumps(body).lower()


# ---------------------------------------------------------------------- API key

ROUTES = [
    ("GET", f"/memory/search/{DANA}/tourline?query=pets"),
    ("GET", f"/memory/stats/{DANA}/tourline"),
    ("POST", f"/memory/check-batch/{DANA}/tourline"),
    ("GET", "/memory/health"),
    ("GET", f"/callers/{DANA}"),
    ("DELETE", "/callers/+14155550999"),
]


def check_every_route_needs_the_api_key(api: httpx.Client) -> None:
    for method, path in ROUTES:
        for headers in ({}, {"X-API-Key": "wrong"}, {"Authorization": "Bearer wrong"}):
            response = api.request(method, path, headers=headers)
            assert response.status_code == 401, (method, path, headers, response.text)
            assert "TOURLINE_API_KEY" in response.json()["detail"]
        for headers in (AUTH, {"X-API-Key": KEY}):
            response = api.request(method, path, headers=headers)
            assert response.status_code == 200, (method, path, response.text)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_without_a_key_the_api_is_open_and_the_log_says_so(
    seeded: str, data_dir: Path, server_env: dict[str, str]
) -> None:
    with serve(data_dir, **server_env) as api:
        assert api.get(f"/callers/{DANA}").status_code == 200
    log = server_log(data_dir)
    assert "TOURLINE_API_KEY is not set: the memory API" in log and "OPEN" in log


# ---------------------------------------------------------------------- shapes


def check_routes_answer_with_their_shapes(api: httpx.Client, seeded: str, db_url: str) -> None:
    found = api.get(
        "/memory/search/(415) 555-0101/tourline",
        params={"query": "does she have any pets", "limit": 3},
        headers=AUTH,
    )
    assert found.status_code == 200, found.text
    body = found.json()
    assert (body["user_id"], body["agent"], body["limit"]) == (DANA, "tourline", 3)
    assert body["min_score"] == MIN_SEARCH_SCORE
    assert 1 <= body["count"] == len(body["results"]) <= 3
    top = body["results"][0]
    assert top["text"] == "Has two cats"
    assert top["score"] >= MIN_SEARCH_SCORE
    assert top["metadata"]["kind"] == "fact" and top["metadata"]["slot"] == "pets"
    assert top["metadata"]["call_id"] in DANA_CALLS

    listed = api.get("/memory/search/4155550101/tourline", headers=AUTH).json()
    assert listed["min_score"] is None and listed["count"] == 5
    assert listed["results"][0]["text"] == "Name is Dana Zyxwarble"  # context order
    assert all(r["score"] is None for r in listed["results"])

    unrelated = api.get(
        f"/memory/search/{DANA}/tourline",
        params={"query": "who won the football game last night"},
        headers=AUTH,
    ).json()
    assert all(r["score"] >= MIN_SEARCH_SCORE for r in unrelated["results"])

    stats = api.get("/memory/stats/+1 415 555 0101/tourline", headers=AUTH).json()
    assert stats["user_id"] == stats["caller_id"] == DANA
    assert (stats["calls"], stats["exchanges"], stats["snapshots"]) == (2, 8, 2)
    assert stats["unsynced"] == 0 and stats["batch_threshold"] == 25
    assert stats["memories"] == sum(stats["memories_by_kind"].values()) >= 6
    assert stats["memories_by_kind"]["summary"] == 2

    checked = api.post(f"/memory/check-batch/{DANA_RAW}/tourline", headers=AUTH)
    assert checked.status_code == 200, checked.text
    check = checked.json()
    assert check["caller_id"] == DANA and check["agent"] == "tourline"
    assert check["consolidated"] is False and check["reason"] == "nothing to do"
    assert (check["unsynced_before"], check["pending_calls"], check["threshold"]) == (0, 0, 25)

    health = api.get("/memory/health", headers=AUTH)
    assert health.status_code == 200, health.text
    report = health.json()
    assert report["ok"] is True and report["persistent"] is True
    assert report["backend"] == "qdrant-edge"
    assert report["database"] == ("sqlite" if db_url.startswith("sqlite") else "postgresql")
    counts = report["counts"]
    assert (counts["callers"], counts["calls"], counts["exchanges"]) == (2, 3, 12)
    assert counts["memories"] >= 10
    assert report["storage_bytes"] > 0
    assert report["last_backup"] is None

    caller = api.get("/callers/2125550199", headers=AUTH)
    assert caller.status_code == 404
    assert "+12125550199" in caller.json()["detail"]

    profile = api.get(f"/callers/{DANA_RAW}", headers=AUTH)
    assert profile.status_code == 200, profile.text
    dana = profile.json()
    assert dana["caller_id"] == DANA and dana["name"] == "Dana Zyxwarble"
    assert dana["profile"]["property_id"] == "hudson-360"
    assert {"slot": "pets", "text": "Has two cats"} in dana["facts"]
    assert {m["memory"] for m in dana["memories"]} >= {"Has two cats", "Name is Dana Zyxwarble"}
    assert sorted(c["call_id"] for c in dana["calls"]) == sorted(DANA_CALLS)
    assert all(c["exchanges"] == 4 and c["summary"] for c in dana["calls"])
    assert dana["upcoming_booking"]["confirmation_code"] == seeded


def check_invalid_caller_ids_are_422_with_a_reason(api: httpx.Client) -> None:
    for method, path in (
        ("GET", "/callers/555"),
        ("DELETE", "/callers/%20%20"),
        ("GET", "/memory/search/12/tourline?query=pets"),
        ("GET", "/memory/stats/%20/tourline"),
        ("POST", "/memory/check-batch/+/tourline"),
        ("GET", "/callers/" + "x" * 400),
    ):
        response = api.request(method, path, headers=AUTH)
        assert response.status_code == 422, (method, path, response.text)
        assert "invalid caller id" in response.json()["detail"], response.text
    too_many = api.get(f"/memory/search/{DANA}/tourline?limit=1000", headers=AUTH)
    assert too_many.status_code == 422


# ---------------------------------------------------------------------- isolation


def check_one_caller_never_sees_another(api: httpx.Client) -> None:
    for me, mine, theirs, raw in (
        (DANA, DANA_WORDS, OMAR_WORDS, DANA_RAW),
        (OMAR, OMAR_WORDS, DANA_WORDS, " OMAR.Quist@example.com"),
    ):
        responses = [
            api.get(f"/callers/{raw}", headers=AUTH),
            api.get(f"/memory/stats/{raw}/tourline", headers=AUTH),
            api.get(f"/memory/search/{raw}/tourline", headers=AUTH),
            api.post(f"/memory/check-batch/{raw}/tourline", headers=AUTH),
        ]
        # Searching for the other caller's words finds nothing of theirs.
        for word in (*theirs, " ".join(theirs)):
            responses.append(
                api.get(
                    f"/memory/search/{raw}/tourline",
                    params={"query": word, "limit": 100},
                    headers=AUTH,
                )
            )
        for response in responses:
            assert response.status_code == 200, response.text
            seen = text_of(response)
            assert me.lower() in seen
            leaked = [w for w in theirs if w in seen]
            assert leaked == [], (me, response.url, leaked)
        assert any(w in text_of(responses[0]) for w in mine)
    omar = api.get(f"/callers/{OMAR}", headers=AUTH).json()
    assert [c["call_id"] for c in omar["calls"]] == [OMAR_CALL]
    assert omar["upcoming_booking"] is None


def test_the_read_routes_on_one_server(
    seeded: str, data_dir: Path, server_env: dict[str, str], db_url: str
) -> None:
    """Keys, shapes, caller-id validation and isolation: read-only checks, so one server per
    database answers them all (a server start costs several seconds)."""
    with serve(data_dir, TOURLINE_API_KEY=KEY, **server_env) as api:
        check_routes_answer_with_their_shapes(api, seeded, db_url)
        check_invalid_caller_ids_are_422_with_a_reason(api)
        check_one_caller_never_sees_another(api)
        check_every_route_needs_the_api_key(api)  # last: it DELETEs (an unknown caller)
    assert "API (/memory/*, /callers/*) is OPEN" not in server_log(data_dir)


# ---------------------------------------------------------------------- forget


def test_delete_purges_every_trace_and_cancels_bookings(
    seeded: str,
    data_dir: Path,
    server_env: dict[str, str],
    open_service: OpenService,
) -> None:
    for call_id in (*DANA_CALLS, OMAR_CALL):
        assert timeline_path(data_dir, call_id).exists()
    with serve(data_dir, TOURLINE_API_KEY=KEY, **server_env) as api:
        deleted = api.delete("/callers/+1 (415) 555-0101", headers=AUTH)
        assert deleted.status_code == 200, deleted.text
        removed = deleted.json()
        assert removed["forgotten"] is True and removed["caller_id"] == DANA
        assert (removed["exchanges"], removed["snapshots"], removed["calls"]) == (8, 2, 2)
        assert removed["memories"] >= 6 and removed["history_rows"] >= 6
        assert (removed["recordings"], removed["bookings_cancelled"]) == (2, 1)

        assert api.get(f"/callers/{DANA}", headers=AUTH).status_code == 404
        gone = api.get(f"/memory/search/{DANA}/tourline?query=pets", headers=AUTH).json()
        assert gone["results"] == []
        stats = api.get(f"/memory/stats/{DANA}/tourline", headers=AUTH).json()
        assert (stats["calls"], stats["exchanges"], stats["memories"]) == (0, 0, 0)
        assert api.get(f"/callers/{OMAR}", headers=AUTH).json()["name"] == "Omar Quist"

        again = api.delete(f"/callers/{DANA}", headers=AUTH).json()
        assert (again["exchanges"], again["memories"], again["bookings_cancelled"]) == (0, 0, 0)
    # The server has stopped: look in the stores themselves.
    memory = open_service()
    with memory.engine.connect() as conn:
        for table in (calls, exchanges, planner_snapshots):
            assert conn.scalar(select(func.count()).where(table.c.caller_id == DANA)) == 0
            assert conn.scalar(select(func.count()).where(table.c.caller_id == OMAR)) > 0
    assert memory.bookings.get(seeded).status == "cancelled"
    assert memory.memories.count(DANA) == 0 and memory.memories.count(OMAR) > 0
    assert not memory.load_context(DANA).is_returning
    history_db = data_dir / MEMORY_SUBDIR / "mem0_history.db"
    with sqlite3.connect(history_db) as con:
        history = " ".join(str(row) for row in con.execute("SELECT * FROM history"))
    assert "Zyxwarble" not in history and "Omar Quist" in history
    leftovers = [
        p
        for p in (data_dir / MEMORY_SUBDIR).rglob("*")
        if p.is_file() and b"Zyxwarble" in p.read_bytes()
    ]
    assert leftovers == []
    assert not any(timeline_path(data_dir, c).exists() for c in DANA_CALLS)
    assert timeline_path(data_dir, OMAR_CALL).exists()


# ---------------------------------------------------------------------- memory down


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_memory_down_is_503_with_a_reason(data_dir: Path, server_env: dict[str, str]) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"  # nothing listens: the vector store is down
    with serve(data_dir, TOURLINE_API_KEY=KEY, QDRANT_URL=nowhere, **server_env) as api:
        for method, path in ROUTES:
            response = api.request(method, path, headers=AUTH)
            assert response.status_code == 503, (method, path, response.text)
            assert "memory is unavailable" in response.text
        health = api.get("/memory/health", headers=AUTH).json()
        assert health["ok"] is False and health["backend"] is None
        assert api.get("/healthz").status_code == 200  # calls go on without memory
