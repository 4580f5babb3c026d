"""``tourline export`` / ``import`` / ``forget`` as a user runs them: real processes, real stores.

The round trip is checked record by record: export, import into an empty data dir, export
again, and the two files hold the same records. A second process on a data dir the running
server owns must print the owner lock's sentence and exit non-zero, never a traceback.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from app.memory.backup import open_backup
from app.memory.service import LAST_BACKUP_FILE, MemoryService
from app.stores.conversations import exchanges
from app.stores.database import create_db_engine
from sim.server import clean_env, running_server
from tests.memory.conftest import OpenService, offline_settings
from tests.memory.seeding import DANA, DANA_RAW, OMAR, seed

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
LOCKED = 3  # the CLI's exit code when another process owns the data dir


@pytest.fixture
def seeded(open_service: OpenService, data_dir: Path) -> str:
    memory = open_service()
    code = seed(memory, data_dir)
    memory.close()  # the CLI processes need the data dir's owner lock
    return code


def tourline(
    data_dir: Path, *args: str, stdin: str = "", **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        cwd=REPO,
        env=clean_env(data_dir, **env),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
    )


def records(path: Path) -> list[dict[str, Any]]:
    """Every record of a backup but its header (which says when it was written)."""
    with open_backup(path, "r") as handle:
        lines = [json.loads(line) for line in handle]
    assert lines[0]["type"] == "tourline-backup" and lines[-1]["type"] == "end"
    return lines[1:]


def context_of(memory: MemoryService, caller: str) -> tuple[Any, ...]:
    context = memory.load_context(caller)
    return context.name, context.memories, context.last_summary, context.state


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_export_import_round_trip_is_lossless(
    seeded: str, data_dir: Path, tmp_path: Path, open_service: OpenService
) -> None:
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl.gz"
    exported = tourline(data_dir, "export", "--output", str(first))
    assert exported.returncode == 0, exported.stderr
    assert "Exported 3 calls, 12 exchanges, 3 snapshots, 1 bookings" in exported.stdout
    assert json.loads((data_dir / LAST_BACKUP_FILE).read_text())["path"] == str(first.resolve())
    kinds = [r["type"] for r in records(first)]
    assert {k: kinds.count(k) for k in set(kinds)} == {
        "call": 3,
        "exchange": 12,
        "snapshot": 3,
        "booking": 1,
        "memory": 11,
        "end": 1,
    }

    restored = tmp_path / "restored"
    imported = tourline(restored, "import", str(first))
    assert imported.returncode == 0, imported.stderr
    assert "Imported 30 records" in imported.stdout
    again = tourline(restored, "import", str(first))
    assert again.returncode == 0, again.stderr
    assert "Imported 0 records" in again.stdout and "30 already there" in again.stdout
    exported = tourline(restored, "export", "-o", str(second))
    assert exported.returncode == 0, exported.stderr
    assert records(second) == records(first)

    source = open_service()
    copy = MemoryService.open(offline_settings(restored))
    try:
        for caller in (DANA, OMAR):
            assert context_of(copy, caller) == context_of(source, caller)
        # Vectors came along: search works without re-embedding anything.
        assert copy.search(DANA_RAW, "does she have pets", 1)[0]["memory"] == "Has two cats"
        assert copy.bookings.get(seeded).status == "booked"
        new_id = copy.record_exchange(DANA, "CA-new", "phone", "user", "hello again")
        with copy.engine.connect() as conn:
            assert new_id == conn.scalar(select(func.max(exchanges.c.id)))
    finally:
        copy.close()


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_round_trip_through_postgresql(
    seeded: str, data_dir: Path, tmp_path: Path, postgres_url: str
) -> None:
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    assert tourline(data_dir, "export", "-o", str(first)).returncode == 0
    restored = tmp_path / "restored"
    imported = tourline(restored, "import", str(first), DATABASE_URL=postgres_url)
    assert imported.returncode == 0, imported.stderr
    exported = tourline(restored, "export", "-o", str(second), DATABASE_URL=postgres_url)
    assert exported.returncode == 0, exported.stderr
    assert records(second) == records(first)

    engine = create_db_engine(postgres_url)
    copy = MemoryService.open(offline_settings(restored), engine=engine)
    try:
        assert copy.load_context(DANA_RAW).name == "Dana Zyxwarble"
        # Explicit ids went in: PostgreSQL's sequence must have moved past them.
        new_id = copy.record_exchange(DANA, "CA-new", "phone", "user", "hello again")
        assert new_id > max(r["id"] for r in records(first) if r["type"] == "exchange")
    finally:
        copy.close()
        engine.dispose()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_import_refuses_what_is_not_a_whole_backup(
    seeded: str, data_dir: Path, tmp_path: Path
) -> None:
    backup = tmp_path / "backup.jsonl"
    assert tourline(data_dir, "export", "-o", str(backup)).returncode == 0
    lines = backup.read_text().splitlines(keepends=True)

    cut = tmp_path / "cut.jsonl"
    cut.write_text("".join(lines[:-1]))  # no end record: the copy stopped early
    result = tourline(tmp_path / "from-cut", "import", str(cut))
    assert result.returncode == 2
    assert "cut short" in result.stderr and "Traceback" not in result.stderr
    assert "nothing was imported" in result.stderr

    for name, text, message in (
        ("notes.jsonl", "hello\n", "not a Tourline backup"),
        ("bad.jsonl", lines[0] + '{"type": "exchange", "id": \n' + lines[-1], "line 2 is not JSON"),
        ("odd.jsonl", lines[0] + '{"type": "spaceship"}\n', "unknown record type"),
    ):
        path = tmp_path / name
        path.write_text(text)
        result = tourline(tmp_path / f"into-{name}", "import", str(path))
        assert result.returncode == 2, (name, result.stdout, result.stderr)
        assert message in result.stderr and "Traceback" not in result.stderr
    missing = tourline(tmp_path / "nowhere", "import", str(tmp_path / "missing.jsonl"))
    assert missing.returncode == 2 and "no backup file" in missing.stderr


def test_forget_from_the_command_line(
    seeded: str, data_dir: Path, db_url: str, open_service: OpenService
) -> None:
    env = {} if db_url.startswith("sqlite") else {"DATABASE_URL": db_url}
    result = tourline(data_dir, "forget", "+1 415-555-0101", **env)
    assert result.returncode == 0, result.stderr
    removed = json.loads(result.stdout)
    assert removed["caller_id"] == DANA
    assert (removed["exchanges"], removed["snapshots"], removed["calls"]) == (8, 2, 2)
    assert (removed["recordings"], removed["bookings_cancelled"]) == (2, 1)
    assert removed["memories"] >= 6

    memory = open_service()
    assert memory.caller_profile(DANA) is None
    assert memory.memories.count(DANA) == 0
    assert memory.bookings.get(seeded).status == "cancelled"
    assert memory.load_context(OMAR).name == "Omar Quist"
    memory.close()

    blank = tourline(data_dir, "forget", "   ", **env)
    assert blank.returncode == 2 and "invalid caller id" in blank.stderr


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_second_process_gets_one_clear_sentence(
    seeded: str, data_dir: Path, tmp_path: Path
) -> None:
    backup = tmp_path / "backup.jsonl"
    assert tourline(data_dir, "export", "-o", str(backup)).returncode == 0
    with running_server(data_dir) as server:
        # (`tourline chat` talks through the server instead: tests/test_chat_cli.py)
        for args, stdin in (
            (("export", "-o", str(tmp_path / "other.jsonl")), ""),
            (("import", str(backup)), ""),
            (("forget", DANA_RAW), ""),
        ):
            result = tourline(data_dir, *args, stdin=stdin)
            said = result.stdout + result.stderr
            assert result.returncode == LOCKED, (args, said)
            assert f"is already open by pid {server.process.pid}" in said, said
            assert "Use the running server's API instead" in said
            assert "Traceback" not in said
        assert not (tmp_path / "other.jsonl").exists()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_data_and_backups_are_the_owners_only(seeded: str, data_dir: Path, tmp_path: Path):
    """What callers said is not readable by other users of the machine."""
    backup = tmp_path / "private.jsonl"
    exported = tourline(data_dir, "export", "--output", str(backup))
    assert exported.returncode == 0, exported.stderr
    assert backup.stat().st_mode & 0o077 == 0
    assert data_dir.stat().st_mode & 0o777 == 0o700
    for path in data_dir.rglob("*"):
        if path.is_file():
            assert path.stat().st_mode & 0o077 == 0, f"{path} is readable by others"
