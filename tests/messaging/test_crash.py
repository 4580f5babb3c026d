"""``kill -9`` between a booking and its send: after restart the confirmation goes out
exactly once. A real process books (the planner, its SQLite file, no sender running) and is
killed; a sender started afterwards on the same data dir sends what the booking queued."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from app.messaging.sender import OutboxSender
from tests.fakes.twilio_rest import FakeTwilioRest
from tests.messaging.conftest import NOW, messaging_settings, planner_kit
from tests.messaging.test_confirmations import BOOK_HUDSON

REPO = Path(__file__).resolve().parents[2]
BOOKER = r"""
import asyncio, sys
from pathlib import Path
sys.path.insert(0, {repo!r})
from tests.messaging.conftest import messaging_settings, planner_kit
from tests.fakes.twilio_rest import FakeTwilioRest

class Stub:  # only its URL: this process never sends
    url = {url!r}

kit = planner_kit(messaging_settings(Path({data!r}), Stub()))  # type: ignore[arg-type]
planner = kit.conversation("+14155550101")

async def talk() -> None:
    [s async for s in planner.greet()]
    for line in {lines!r}:
        [s async for s in planner.respond(line)]

asyncio.run(talk())
print("BOOKED", planner.state.booking.confirmation_code, flush=True)
sys.stdin.readline()  # wait here until killed
"""


def test_kill_9_after_booking_then_the_confirmation_goes_out_once(
    tmp_path: Path, twilio: FakeTwilioRest
) -> None:
    script = BOOKER.format(repo=str(REPO), url=twilio.url, data=str(tmp_path), lines=BOOK_HUDSON)
    booker = subprocess.Popen(
        [sys.executable, "-c", script],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        assert booker.stdout is not None
        line = booker.stdout.readline()
        assert line.startswith("BOOKED "), line
        code = line.split()[1]
        os.kill(booker.pid, signal.SIGKILL)
        assert booker.wait(30) == -signal.SIGKILL
    finally:
        if booker.poll() is None:
            booker.kill()
            booker.wait()
    assert twilio.requests == []  # nothing was sent before the kill

    kit = planner_kit(messaging_settings(tmp_path, twilio))  # "after restart"
    assert kit.desk.outbox is not None
    sender = OutboxSender.build(kit.settings, kit.desk.outbox, kit.catalog)
    soon = NOW + timedelta(minutes=1)
    assert sender.run_once(now=soon) == 1
    assert sender.run_once(now=soon + timedelta(minutes=15)) == 0
    assert len(twilio.messages) == 1
    assert f"Code {code}" in twilio.messages[0].body
    assert twilio.messages[0].to == "+14155550101"
