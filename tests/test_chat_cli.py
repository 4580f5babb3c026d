"""`tourline chat` as a user runs it: a real process, piped input, a real data dir."""

import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import text

from app.stores.database import create_db_engine

BOOKING_SCRIPT = """\
hi, my name is Dana Lee
hudson three sixty
a one bedroom
not sure
no pets
twenty five hundred
in person
next tuesday at 11 am
yes
text me
no, that's all
this line is never read
"""


def run_chat(
    data_dir: Path, script: str, caller: str = "(415) 555-0101"
) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "DATABASE_URL"))}
    env["TOURLINE_DATA_DIR"] = str(data_dir)
    return subprocess.run(
        [sys.executable, "-m", "app.cli", "chat", "--caller", caller],
        input=script,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_piped_chat_books_a_tour_and_exits_when_the_agent_ends(tmp_path: Path) -> None:
    result = run_chat(tmp_path, BOOKING_SCRIPT)
    assert result.returncode == 0, result.stderr
    replies = result.stdout.strip().splitlines()
    assert replies[0].startswith("Thanks for calling")
    assert any("Tuesday" in r and "11 AM" in r and "Shall I book it?" in r for r in replies)
    assert any("confirmation code is" in r for r in replies)
    assert "Goodbye" in replies[-1] or "Have a great day" in replies[-1]
    assert len(replies) == 12  # greeting + 11 replies: the 12th line was never read

    engine = create_db_engine(f"sqlite:///{tmp_path / 'tourline.db'}")
    with engine.connect() as conn:
        rows = conn.execute(text("select caller_id, property_id, status from bookings")).all()
    assert rows == [("+14155550101", "hudson-360", "booked")]


def test_chat_exits_zero_at_end_of_input(tmp_path: Path) -> None:
    result = run_chat(tmp_path, "hello\n")
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.strip().splitlines()) == 2


def test_chat_refuses_an_empty_caller(tmp_path: Path) -> None:
    result = run_chat(tmp_path, "", caller="  ")
    assert result.returncode == 2
    assert "caller id is empty" in result.stdout
