"""demo_memory.py is what developers run first: it must work offline on a fresh install."""

import subprocess
import sys
from pathlib import Path

from tests.support.server import clean_env

REPO = Path(__file__).resolve().parent.parent


def test_demo_greets_the_returning_caller_by_name_and_books(tmp_path) -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "demo_memory.py")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=clean_env(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    assert "Welcome back, Dana! Last time you were looking at a one-bedroom at Hudson 360" in (
        result.stdout
    )
    assert "status='booked'" in result.stdout
