"""`tourline chat` as a user runs it: a real process, piped input, a real data dir.

Without a server it opens the data dir itself; beside a running `tourline serve` (one real
server on loopback for this module, with an API key and an avatar secret) it talks through
the server, proving its caller with a token it signs with the same secret.
"""

import io
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from app.channels.avatar.tokens import verify_token
from app.channels.chat import OWNER_LOCK
from app.channels.chat_remote import RemoteChat, ServerAddress
from app.cli import local_url
from app.memory.owner_lock import read_owner
from app.stores.database import create_db_engine
from sim.server import RunningServer, clean_env, free_port, running_server

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
    data_dir: Path,
    script: str,
    caller: str = "(415) 555-0101",
    *args: str,
    python: tuple[str, ...] = (),
    **env: str,
) -> subprocess.CompletedProcess:
    """`tourline chat` on ``data_dir`` (no cloud keys, no TOURLINE_* but ``env``)."""
    return subprocess.run(
        [sys.executable, *python, "-m", "app.cli", "chat", "--caller", caller, *args],
        input=script,
        capture_output=True,
        text=True,
        cwd=REPO,
        env=clean_env(data_dir, **env),
        timeout=120,
    )


def booked(data_dir: Path) -> list[tuple[str, str, str]]:
    engine = create_db_engine(f"sqlite:///{data_dir / 'tourline.db'}")
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("select caller_id, property_id, status from bookings")).all()
    finally:
        engine.dispose()
    return [tuple(r) for r in rows]


def test_piped_chat_books_a_tour_and_exits_when_the_agent_ends(tmp_path: Path) -> None:
    result = run_chat(tmp_path, BOOKING_SCRIPT)
    assert result.returncode == 0, result.stderr
    replies = result.stdout.strip().splitlines()
    assert replies[0].startswith("Thanks for calling")
    assert any("Tuesday" in r and "11 AM" in r and "Shall I book it?" in r for r in replies)
    assert any("confirmation code is" in r for r in replies)
    assert "Goodbye" in replies[-1] or "Have a great day" in replies[-1]
    assert len(replies) == 12  # greeting + 11 replies: the 12th line was never read
    assert booked(tmp_path) == [("+14155550101", "hudson-360", "booked")]


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
    from app.memory.service import MemoryService
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


# --------------------------------------------------------------------------- beside a server

API_KEY = "chat-test-key-5d21"
SECRET = "chat-test-avatar-secret-0b6e51d9c2f84a7e"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    data = tmp_path_factory.mktemp("chat_server")
    with running_server(data, TOURLINE_API_KEY=API_KEY, TOURLINE_AVATAR_SECRET=SECRET) as s:
        yield s


@pytest.mark.slow
def test_chat_books_through_the_server_that_owns_the_data_dir(server: RunningServer) -> None:
    """The README's order: `make serve`, then `tourline chat` on the same data dir."""
    result = run_chat(server.data_dir, BOOKING_SCRIPT, TOURLINE_AVATAR_SECRET=SECRET)
    assert result.returncode == 0, result.stdout + result.stderr
    replies = result.stdout.strip().splitlines()
    assert replies[0].startswith("Thanks for calling")
    assert any("Tuesday" in r and "11 AM" in r and "Shall I book it?" in r for r in replies)
    assert any("confirmation code is" in r for r in replies)
    assert "Goodbye" in replies[-1] or "Have a great day" in replies[-1]
    assert len(replies) == 12  # as a local chat: the goodbye ends it, the last line unread
    assert booked(server.data_dir) == [("+14155550101", "hudson-360", "booked")]


@pytest.mark.slow
def test_chat_with_a_server_url_uses_that_server_and_not_its_own_data_dir(
    server: RunningServer, tmp_path: Path
) -> None:
    result = run_chat(
        tmp_path,
        "hi, my name is Ana Ruiz\n",
        "ana@example.com",
        "--server",
        server.base_url,
        TOURLINE_AVATAR_SECRET=SECRET,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    greeting, reply = result.stdout.splitlines()
    assert greeting.startswith("Thanks for calling")
    assert reply.startswith("Nice to meet you, Ana.")
    assert list(tmp_path.iterdir()) == []  # its stores were never opened


@pytest.mark.slow
def test_chat_without_the_servers_secret_is_refused_and_told_why(
    server: RunningServer,
) -> None:
    """The server has TOURLINE_AVATAR_SECRET; this chat's environment doesn't (the key won't
    do): its token, signed with the data dir's own secret, is refused, and it says how."""
    result = run_chat(server.data_dir, "hello\n", TOURLINE_API_KEY=API_KEY)
    assert result.returncode == 5, result.stdout + result.stderr
    assert "refused this chat's token" in result.stdout
    assert "set TOURLINE_AVATAR_SECRET to the server's" in result.stdout


@pytest.mark.slow
def test_chat_with_the_wrong_secret_says_so(server: RunningServer) -> None:
    result = run_chat(server.data_dir, "hello\n", TOURLINE_AVATAR_SECRET="x" * 40)
    assert result.returncode == 5, result.stdout + result.stderr
    assert result.stdout == (
        f"error: the server at {server.base_url} refused this chat's token (the token's "
        "signature is wrong: it was not signed with this server's secret): set "
        "TOURLINE_AVATAR_SECRET to the server's\n"
    )


def test_chat_signs_its_caller_or_falls_back_to_a_device() -> None:
    address = ServerAddress.parse("127.0.0.1:8000")
    err = io.StringIO()

    def chat(caller: str, secret: str | None) -> RemoteChat:
        return RemoteChat(
            address, caller, secret=secret, out=io.StringIO(), err=err, interactive=False
        )

    signed = chat("+14155550101", SECRET)._hello()
    assert "user" not in signed and verify_token(SECRET, signed["token"]) == "+14155550101"
    assert err.getvalue() == ""
    device = chat("device:web-1f2e", SECRET)._hello()
    assert device["user"] == {"device_id": "web-1f2e"} and "token" not in device
    anonymous = chat("+14155550101", None)._hello()
    assert anonymous["user"]["device_id"].startswith("chat-") and "token" not in anonymous
    assert err.getvalue().count("no TOURLINE_AVATAR_SECRET here") == 1


@pytest.mark.slow
def test_chat_started_right_after_the_server_waits_for_it_to_load(tmp_path: Path) -> None:
    """`make serve`, and at once `tourline chat` in another terminal."""
    port = free_port()
    with open(tmp_path / "server.log", "wb") as log:
        serve = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            env=clean_env(tmp_path),
        )
    try:
        deadline = time.monotonic() + 60
        while read_owner(tmp_path / OWNER_LOCK) is None:  # the server holds the data dir
            assert serve.poll() is None and time.monotonic() < deadline, "server did not start"
            time.sleep(0.02)  # polling for the lock, not guessing how long it takes
        result = run_chat(tmp_path, "hi, my name is Dana Lee\n")
        # No TOURLINE_AVATAR_SECRET anywhere, as in the README: the chat still speaks as its
        # caller (signed with the data dir's own secret), so calling back is remembered.
        again = run_chat(tmp_path, "")
    finally:
        serve.terminate()
        serve.wait(timeout=15)
    assert result.returncode == 0, result.stdout + result.stderr
    greeting, reply = result.stdout.splitlines()
    assert greeting.startswith("Thanks for calling")
    assert reply.startswith("Nice to meet you, Dana.")
    assert "anonymous device" not in result.stderr
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.startswith("Welcome back, Dana"), again.stdout


def test_chat_says_when_the_server_cannot_be_reached(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = run_chat(tmp_path, "hello\n", "+14155550101", "--server", url)
    assert result.returncode == 4
    assert result.stdout.startswith(f"error: cannot reach the server at {url} (connection refused)")
    assert result.stdout.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_a_chat_through_a_server_imports_neither_mem0_nor_qdrant(tmp_path: Path) -> None:
    """What keeps its first line fast: the memory engine loads only for a local chat."""
    url = f"http://127.0.0.1:{free_port()}"
    result = run_chat(tmp_path, "", "+14155550101", "--server", url, python=("-X", "importtime"))
    assert result.returncode == 4
    imported = {line.rpartition("|")[2].strip() for line in result.stderr.splitlines()}
    assert "app.channels.chat_remote" in imported
    assert not {"mem0", "qdrant_client", "app.memory.service"} & imported


def test_chat_names_the_lock_and_close_codes_as_the_modules_that_own_them() -> None:
    """Copied so a chat through a server imports neither memory nor the avatar package."""
    from app.channels import chat_remote
    from app.channels.avatar import protocol
    from app.memory.mem0_engine import LOCK_FILE
    from app.memory.service import MEMORY_SUBDIR

    assert Path(MEMORY_SUBDIR) / LOCK_FILE == OWNER_LOCK
    assert (chat_remote.CLOSE_POLICY, chat_remote.CLOSE_TRY_AGAIN) == (
        protocol.CLOSE_POLICY,
        protocol.CLOSE_TRY_AGAIN,
    )
    assert chat_remote.DEVICE_PREFIX == protocol.DEVICE_PREFIX


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("0.0.0.0", "http://127.0.0.1:8000"),
        ("127.0.0.1", "http://127.0.0.1:8000"),
        ("::", "http://[::1]:8000"),
        ("::1", "http://[::1]:8000"),
        ("tourline.lan", "http://tourline.lan:8000"),
    ],
)
def test_serve_advertises_a_url_this_machine_can_reach(host: str, url: str) -> None:
    assert local_url(host, 8000) == url
