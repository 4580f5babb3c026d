"""Keypad input on a call: at "Shall I book it?", pressing 1 books the tour.

The caller is a returning one (their preferences were remembered from an earlier call), so
the call reaches the confirmation question in a couple of turns; then they press 1 instead
of saying yes, as Twilio delivers it: one ``dtmf`` message on the media socket.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest

from app.domain.state import PlannerState
from app.memory.service import MemoryService
from app.settings import Settings
from sim.server import RunningServer, running_server
from sim.twilio import (
    TEST_PUBLIC_URL,
    TEST_TOKEN,
    CallerScript,
    TwilioCall,
    preload_models,
    question_kind,
    transcribe,
)

TOKEN = TEST_TOKEN
PUBLIC = TEST_PUBLIC_URL

pytestmark = pytest.mark.slow


CALLER = "+14155550142"


def remember_earlier_call(data_dir: Path) -> None:
    """An earlier call in which Dana told us everything but the tour time."""
    state = PlannerState()
    state.update(
        caller_name="Dana Lee",
        property_id="hudson-360",
        unit_size="2br",
        move_in=date.today() + timedelta(days=60),
        pets=[],
        budget=5000,
        tour_type="in_person",
    )
    memory = MemoryService.open(Settings(data_dir=data_dir))
    try:
        memory.start_call(CALLER, "CA-earlier", "phone")
        memory.save_snapshot(CALLER, "CA-earlier", state)
        memory.end_call(CALLER, "CA-earlier", state)
        memory.flush()
    finally:
        memory.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    data = tmp_path_factory.mktemp("dtmf")
    remember_earlier_call(data)
    with running_server(data, TWILIO_AUTH_TOKEN=TOKEN, TOURLINE_PUBLIC_URL=PUBLIC) as running:
        yield running


async def test_pressing_1_confirms_the_booking(server: RunningServer) -> None:
    await preload_models()
    script = CallerScript.booking()
    transcript: list[str] = []
    async with TwilioCall.connect(
        server.base_url, public_url=PUBLIC, auth_token=TOKEN, from_number=CALLER
    ) as call:
        heard = (await transcribe(await call.listen(timeout_s=15))).lower()
        transcript.append(f"agent: {heard}")
        assert "welcome back" in heard, transcript
        for _ in range(10):
            asked = await call.what_was_asked(heard)
            if question_kind(asked) == "confirm":
                break
            answer = script.answer(asked)
            assert answer is not None, f"no scripted answer: {transcript}"
            await call.say(answer[1])
            transcript.append(f"caller: {answer[1]}")
            heard = (await transcribe(await call.listen(timeout_s=20))).lower()
            transcript.append(f"agent: {heard}")
        asked = await call.what_was_asked(heard)
        assert question_kind(asked) == "confirm", f"never asked to confirm: {transcript}"

        await call.press("1")
        booked = (await transcribe(await call.listen(timeout_s=20))).lower()
        assert "confirmation code" in booked, [*transcript, f"after pressing 1: {booked}"]
        events = await call.wait_for_timeline(
            lambda ev: any(e["event"] == "dtmf" for e in ev), timeout_s=5
        )
        assert call.violations == [], call.violations

    dtmf = [e for e in events if e["event"] == "dtmf"]
    assert [e["digit"] for e in dtmf] == ["1"], dtmf
    with sqlite3.connect(server.data_dir / "tourline.db") as db:
        rows = db.execute("SELECT property_id, status FROM bookings").fetchall()
    assert rows == [("hudson-360", "booked")], rows
