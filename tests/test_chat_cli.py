"""`tourline chat` as a user runs it: a real process, piped input, a real data dir."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from sqlalchemy import text

from app.stores.database import create_db_engine
from tests.support.server import clean_env

REPO = Path(__file__).resolve().parent.parent

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


FIRST_CHAT = """\
hi, my name is Dana Lee
hudson three sixty
a one bedroom
two cats
bye for now
"""


def test_a_caller_who_chatted_is_remembered_next_time_in_any_format(tmp_path: Path) -> None:
    first = run_chat(tmp_path, FIRST_CHAT, caller="(415) 555-0101")
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("Thanks for calling")

    again = run_chat(tmp_path, "yes\n", caller="+1 415 555 0101")
    assert again.returncode == 0, again.stderr
    greeting = again.stdout.splitlines()[0]
    assert greeting.startswith(
        "Welcome back, Dana! Last time you were looking at a one-bedroom at Hudson 360."
    )

    engine = create_db_engine(f"sqlite:///{tmp_path / 'tourline.db'}")
    with engine.connect() as conn:
        chats = conn.execute(
            text("select caller_id, channel, outcome, consolidated from calls order by started_at")
        ).all()
        lines = conn.execute(
            text("select role, text from exchanges where role = 'user' order by id")
        ).all()
        unsynced = conn.execute(text("select count(*) from exchanges where not synced")).scalar()
    engine.dispose()
    assert [tuple(c) for c in chats] == [("+14155550101", "chat", "completed", 1)] * 2
    assert [t for _, t in lines] == [*FIRST_CHAT.splitlines(), "yes"]
    assert unsynced == 0


HOLDER = textwrap.dedent(
    """
    import sys
    from app.services.memory_service import MemoryService
    from app.settings import Settings

    memory = MemoryService.open(Settings())
    print("open", flush=True)
    sys.stdin.read()
    memory.close()
    """
)


def test_chat_refuses_a_data_dir_another_process_owns(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER],
        cwd=REPO,
        env=clean_env(tmp_path),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "open\n"
        result = run_chat(tmp_path, "hello\n")
    finally:
        holder.communicate("", timeout=60)
    assert result.returncode == 3
    assert f"is already open by pid {holder.pid}" in result.stdout
    assert "Use the running server's API instead" in result.stdout
    assert result.stdout.count("\n") == 1  # one clear sentence, no traceback
