"""``tourline chat`` bookings are really sent: alone (the runtime sends what is due as the
chat exits) and through a running server (its background sender). Real processes, the
loopback Twilio fake."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sim.server import RunningServer, clean_env, running_server
from tests.fakes.twilio_rest import FakeTwilioRest
from tests.messaging.conftest import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER

REPO = Path(__file__).resolve().parents[2]
SCRIPT = """\
hi, my name is Dana Lee
hudson three sixty, in person, next tuesday at 11 am
yes
no, that's all
"""
SECRET = "outbox-chat-test-avatar-secret-7f3a9c1e5b2d4a60"


def twilio_env(twilio: FakeTwilioRest) -> dict[str, str]:
    return {
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_FROM_NUMBER": FROM_NUMBER,
        "TWILIO_API_BASE_URL": twilio.url,
        "TOURLINE_AVATAR_SECRET": SECRET,
    }


def chat(data_dir: Path, env: dict[str, str]) -> tuple[str, str]:
    """Runs the chat; returns its output and the confirmation code it read out."""
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "chat", "--caller", "(415) 555-0101"],
        input=SCRIPT,
        capture_output=True,
        text=True,
        cwd=REPO,
        env=clean_env(data_dir, **env),
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "I'll text your confirmation to this number." in result.stdout, result.stdout
    found = re.search(r"confirmation code is (\w{4})", result.stdout)
    assert found, result.stdout
    return result.stdout, found.group(1)


def test_chat_alone_sends_the_confirmation_as_it_exits(
    tmp_path: Path, twilio: FakeTwilioRest
) -> None:
    _, code = chat(tmp_path, twilio_env(twilio))
    assert len(twilio.messages) == 1  # sent before the process exited
    sms = twilio.messages[0]
    assert sms.to == "+14155550101" and sms.from_ == FROM_NUMBER
    assert f"Code {code}" in sms.body and "Hudson 360" in sms.body and "11 AM" in sms.body


@pytest.fixture
def server(tmp_path: Path, twilio: FakeTwilioRest) -> Iterator[RunningServer]:
    with running_server(tmp_path / "server", **twilio_env(twilio)) as running:
        yield running


@pytest.mark.slow
def test_chat_through_the_server_is_texted_by_the_servers_sender(
    server: RunningServer, twilio: FakeTwilioRest
) -> None:
    _, code = chat(server.data_dir, twilio_env(twilio))
    assert twilio.wait_for(1, timeout_s=30), server.log()
    assert len(twilio.messages) == 1
    assert f"Code {code}" in twilio.messages[0].body
