"""A backup taken before ``tourline forget`` does not bring the caller back on import.

As a user runs it: export, forget, import that older backup (the caller stays forgotten,
and the import says how much it left out and how to override), the caller calling again
after the forget is kept, and ``--restore-forgotten`` brings the old records back. The
tombstone holds a hash of the caller id, never the id.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from app.memory.backup import open_backup
from app.stores.conversations import forgotten_callers
from sim.server import clean_env
from tests.memory.conftest import OpenService
from tests.memory.seeding import DANA, DANA_CALLS, OMAR, converse, dana_state, seed

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]


def tourline(data_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        cwd=REPO,
        env=clean_env(data_dir, **env),
        capture_output=True,
        text=True,
        timeout=300,
    )


def records_of(backup: Path, caller: str) -> list[dict[str, Any]]:
    """The backup's records that belong to ``caller`` (rows by caller_id, memories by user)."""
    with open_backup(backup, "r") as handle:
        found = [json.loads(line) for line in handle]
    return [
        r
        for r in found
        if r.get("caller_id") == caller or (r.get("payload") or {}).get("user_id") == caller
    ]


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_an_old_backup_does_not_resurrect_a_forgotten_caller(
    open_service: OpenService, data_dir: Path, tmp_path: Path
) -> None:
    memory = open_service()
    code = seed(memory, data_dir)
    memory.close()  # the CLI processes need the data dir's owner lock
    before = tmp_path / "before.jsonl"
    ok(tourline(data_dir, "export", "-o", str(before)))
    ok(tourline(data_dir, "forget", DANA))
    hers = len(records_of(before, DANA))
    assert hers > 10  # calls, exchanges, snapshots, a booking, memories

    out = ok(tourline(data_dir, "import", str(before)))
    assert f"Left out {hers} records of 1 caller forgotten after this backup was taken" in out
    assert "--restore-forgotten" in out
    memory = open_service()
    assert memory.caller_profile(DANA) is None
    assert memory.memories.count(DANA) == 0
    assert memory.bookings.get(code).status == "cancelled"  # not booked for her again
    assert memory.load_context(OMAR).name == "Omar Quist"  # the others came back as they were
    with memory.engine.connect() as conn:
        tombstones = conn.execute(select(forgotten_callers)).all()
    assert [t.caller_key for t in tombstones] == [hashlib.sha256(DANA.encode()).hexdigest()]
    assert DANA not in str(tombstones) and "0101" not in str(tombstones)

    # Dana calls again after the forget: a backup taken now holds that call, and is whole.
    converse(memory, DANA, "CA-dana-again", "phone", dana_state())
    assert memory.flush(60)
    memory.close()
    after = tmp_path / "after.jsonl"
    ok(tourline(data_dir, "export", "-o", str(after)))
    out = ok(tourline(data_dir, "import", str(after)))
    assert "Imported 0 records" in out and "Left out" not in out
    out = ok(tourline(data_dir, "import", str(before)))  # the old one still leaves her out
    assert "Imported 0 records" in out and f"Left out {hers} records" in out
    memory = open_service()
    calls = [c["call_id"] for c in memory.caller_profile(DANA)["calls"]]
    assert calls == ["CA-dana-again"]
    memory.close()

    # Forgotten by mistake: the user says so, and the old records come back (her booking
    # was kept without her name: it differs, so it takes --on-conflict replace as well).
    out = ok(
        tourline(data_dir, "import", str(before), "--restore-forgotten", "--on-conflict", "replace")
    )
    assert f"Imported {hers - 1} records" in out and "1 that differ replaced" in out
    assert "Left out" not in out
    memory = open_service()
    calls = sorted(c["call_id"] for c in memory.caller_profile(DANA)["calls"])
    assert calls == sorted([*DANA_CALLS, "CA-dana-again"])
    assert memory.load_context(DANA).name == "Dana Zyxwarble"
    assert memory.bookings.get(code).status == "booked"
