"""demo_memory.py is what developers run first: it must work offline on a fresh install."""

import subprocess
import sys
from pathlib import Path

from sim.server import clean_env

REPO = Path(__file__).resolve().parent.parent


def test_demo_narrates_five_steps_and_greets_the_returning_caller(tmp_path) -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "demo_memory.py")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=clean_env(tmp_path / "unused"),
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    steps = [
        "1. Storing exchanges",
        "2. Saving planner state",
        "3. Retrieving and searching context",
        "4. Loading it into the planner",
        "5. A second session",
    ]
    positions = [out.index(step) for step in steps]
    assert positions == sorted(positions)

    first, rest = out.split("2. Saving planner state")
    assert "exchanges written durably" in first
    assert "Name is Dana Lee" in rest
    assert "Has two cats" in rest
    assert "call summary: Phone call on" in rest
    assert "caller id:    +14155550101" in rest  # dialled as "+1 415 555 0101"
    assert "name:         Dana Lee" in rest
    assert "search('does she have pets?') -> Has two cats" in rest
    assert "'caller_name': 'Dana Lee'" in rest
    assert "Welcome back, Dana! Last time you were looking at a one-bedroom at Hudson 360" in rest
    assert "status='booked'" in rest
    assert "memory now holds: Booked an in-person tour of Hudson 360" in rest
    assert not (tmp_path / "unused").exists()  # its own temp dir, not TOURLINE_DATA_DIR
