"""Every caller id ``normalize_caller_id`` accepts works in every store, spaces included.

mem0 refuses a ``user_id`` with whitespace, so a device id like "my phone 7" (which the
avatar protocol and the REST API accept) used to be logged but never indexed, and could
not be searched or forgotten: ``DELETE /callers/my phone 7`` was a 503 and ``tourline
forget`` a traceback. These tests run it through memory, a backup, the API and the CLI.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine

from app.domain.identity import InvalidCallerId, normalize_caller_id
from app.logging.flight_recorder import FlightRecorder, timeline_path
from app.memory.backup import export_file, import_file
from app.memory.caller_memories import SPACE_IN_KEY, caller_of, memory_key
from app.memory.service import MEMORY_SUBDIR, MemoryService
from sim.server import running_server
from tests.memory.conftest import OpenService, offline_settings
from tests.memory.seeding import dana_state
from tests.memory.test_backup_cli import tourline

DEVICE = "my phone 7"
NEIGHBOURS = ("my phone 8", "my_phone_7", "myphone7", "my  phone 7")
CALLS = ("avatar-s1", "avatar-s2")


def remember(memory: MemoryService, data_dir: Path, caller: str = DEVICE) -> None:
    """Two avatar sessions of ``caller``, with their timelines, consolidated."""
    for call_id in CALLS:
        recorder = FlightRecorder(data_dir, call_id)
        recorder.event("start", caller=caller)
        recorder.close()
        memory.start_call(caller, call_id, "avatar")
        memory.record_exchange(caller, call_id, "avatar", "user", "I have two cats")
        memory.record_exchange(caller, call_id, "avatar", "agent", "Cats are welcome.")
        memory.save_snapshot(caller, call_id, dana_state())
        memory.end_call(caller, call_id, dana_state())
    assert memory.flush(120)


def files_holding(root: Path, needle: bytes) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


def test_memory_keys_never_collide() -> None:
    """The key of an id with spaces is one no accepted id can be, and it maps back."""
    assert memory_key("+14155550101") == "+14155550101"  # stored memories keep their key
    assert memory_key(DEVICE) != DEVICE and not any(c.isspace() for c in memory_key(DEVICE))
    keys = {memory_key(normalize_caller_id(c)) for c in (DEVICE, *NEIGHBOURS)}
    assert len(keys) == 1 + len(NEIGHBOURS)
    assert caller_of(memory_key(DEVICE)) == DEVICE
    with pytest.raises(InvalidCallerId):
        normalize_caller_id(memory_key(DEVICE))
    with pytest.raises(InvalidCallerId):
        normalize_caller_id(f"my{SPACE_IN_KEY}phone")


def test_a_device_id_with_spaces_is_remembered_recalled_indexed_and_forgotten(
    service: MemoryService, data_dir: Path
) -> None:
    remember(service, data_dir)

    context = service.load_context(f"  {DEVICE} ")
    assert context.caller_id == DEVICE and context.is_returning
    assert context.name == "Dana Zyxwarble"
    assert any("cat" in m.lower() for m in context.memories)
    assert context.last_summary and "Zyxwarble" in context.last_summary
    assert (service.memories.count(DEVICE) or 0) >= 5  # indexed: facts and call summaries
    found = service.search(DEVICE, "does the caller have pets")
    assert any("cat" in r["memory"].lower() for r in found)
    assert service.stats(DEVICE)["memories"] >= 5
    profile = service.caller_profile(DEVICE)
    assert profile is not None and profile["name"] == "Dana Zyxwarble"
    for other in NEIGHBOURS:
        assert not service.load_context(other).is_returning
        assert service.search(other, "pets") == []

    report = service.forget(DEVICE)
    assert report["caller_id"] == DEVICE
    assert (report["calls"], report["exchanges"], report["snapshots"]) == (2, 4, 2)
    assert report["memories"] >= 5 and report["recordings"] == 2
    assert not service.load_context(DEVICE).is_returning
    assert service.caller_profile(DEVICE) is None
    assert service.memories.count(DEVICE) == 0
    with sqlite3.connect(data_dir / MEMORY_SUBDIR / "mem0_history.db") as con:
        history = " ".join(str(row) for row in con.execute("SELECT * FROM history"))
    assert "Zyxwarble" not in history
    # Nowhere in the data dir (on SQLite its database too), while the service still runs.
    assert files_holding(data_dir, b"Zyxwarble") == []
    assert files_holding(data_dir, b"two cats") == []
    assert not any(timeline_path(data_dir, c).exists() for c in CALLS)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_device_id_with_spaces_survives_a_backup(
    service: MemoryService, data_dir: Path, tmp_path: Path
) -> None:
    remember(service, data_dir)
    backup = tmp_path / "backup.jsonl"
    export_file(service, backup)

    with MemoryService.open(offline_settings(tmp_path / "restored")) as copy:
        report = import_file(copy, backup)
        assert report.inserted["memory"] >= 5
        restored = copy.load_context(DEVICE)
        assert restored.name == "Dana Zyxwarble" and restored.last_summary
        assert any("cat" in r["memory"].lower() for r in copy.search(DEVICE, "pets"))
        assert copy.forget(DEVICE)["memories"] >= 5
        assert copy.memories.count(DEVICE) == 0


@pytest.fixture
def seeded_device(open_service: OpenService, data_dir: Path) -> None:
    memory = open_service()
    remember(memory, data_dir)
    memory.close()  # the server or CLI process must be the data dir's only owner


@pytest.mark.slow
def test_delete_forgets_a_device_id_with_spaces(
    seeded_device: None, data_dir: Path, db_url: str, open_service: OpenService
) -> None:
    env = {} if db_url.startswith("sqlite") else {"DATABASE_URL": db_url}
    with (
        running_server(data_dir, **env) as server,
        httpx.Client(base_url=server.base_url, timeout=150) as api,
    ):
        found = api.get("/memory/search/my phone 7/tourline", params={"query": "pets"})
        assert found.status_code == 200, found.text
        assert any("cat" in r["text"].lower() for r in found.json()["results"])
        deleted = api.delete("/callers/my%20phone%207")
        assert deleted.status_code == 200, deleted.text
        removed = deleted.json()
        assert removed["caller_id"] == DEVICE and removed["memories"] >= 5
        assert (removed["calls"], removed["recordings"]) == (2, 2)
        assert api.get("/callers/my phone 7").status_code == 404
        assert api.get("/callers/+14155550177", params={"q": "2125550199"}).status_code == 404
    memory = open_service()
    assert memory.memories.count(DEVICE) == 0 and not memory.load_context(DEVICE).is_returning
    log = (data_dir / "server.log").read_text(errors="replace")
    assert DEVICE not in log  # log lines carry masked ids only
    assert "+14155550177" not in log and "2125550199" not in log  # the access log's too
    assert "/callers/+1415•••0177" in log


@pytest.mark.slow
def test_the_cli_forgets_a_device_id_with_spaces(
    seeded_device: None, data_dir: Path, db_url: str, open_service: OpenService
) -> None:
    env = {} if db_url.startswith("sqlite") else {"DATABASE_URL": db_url}
    result = tourline(data_dir, "forget", DEVICE, **env)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    removed = json.loads(result.stdout)
    assert removed["caller_id"] == DEVICE and removed["memories"] >= 5
    assert (removed["calls"], removed["exchanges"], removed["recordings"]) == (2, 4, 2)
    memory = open_service()
    assert memory.memories.count(DEVICE) == 0 and memory.caller_profile(DEVICE) is None


@pytest.mark.slow
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_a_forget_that_fails_says_so_in_one_sentence(
    seeded_device: None, data_dir: Path, db_url: str, engine: Engine
) -> None:
    """A database that refuses the purge: one line on stderr, no traceback, and a retry works."""
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'deletes are switched off for maintenance'; END $$"
        )
        conn.exec_driver_sql(
            "CREATE TRIGGER no_deletes BEFORE DELETE ON exchanges "
            "FOR EACH ROW EXECUTE FUNCTION refuse()"
        )
    failed = tourline(data_dir, "forget", DEVICE, DATABASE_URL=db_url)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "Traceback" not in failed.stderr and DEVICE not in failed.stderr
    said = failed.stderr.strip().splitlines()[-1]
    assert said.startswith("error: could not forget my •••: ")
    assert "deletes are switched off for maintenance" in said

    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TRIGGER no_deletes ON exchanges")
    again = tourline(data_dir, "forget", DEVICE, DATABASE_URL=db_url)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["exchanges"] == 4
