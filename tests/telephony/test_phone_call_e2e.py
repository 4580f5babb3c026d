"""A whole phone call against the real server, with Twilio played by sim/twilio.

Signed webhook -> TwiML -> signed WebSocket upgrade -> caller speech synthesised by Piper and
streamed as 8 kHz μ-law at real time, and one keypad press (at "Shall I book it?", the
caller presses 1) -> the agent's audio played back and transcribed by Whisper, exactly what
a caller would hear. Assertions read those transcripts loosely (lower
case, key words) because that is the caller's experience; the database confirms the booking.
"""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from sim.server import RunningServer
from sim.twilio import (
    TEST_PUBLIC_URL,
    TEST_TOKEN,
    CallerScript,
    TwilioCall,
    fresh_number,
    new_sid,
    parse_twiml,
    post_voice_webhook,
    preload_models,
    question_kind,
    transcribe,
    twilio_form,
)

TOKEN = TEST_TOKEN
PUBLIC = TEST_PUBLIC_URL


def bookings(data_dir: Path) -> list[dict[str, object]]:
    """Rows of the bookings table in the server's SQLite file."""
    with sqlite3.connect(data_dir / "tourline.db") as db:
        db.row_factory = sqlite3.Row
        return [dict(row) for row in db.execute("SELECT * FROM bookings")]


async def test_webhook_answers_with_a_media_stream(server: RunningServer) -> None:
    call_sid = new_sid("CA")
    form = twilio_form(call_sid, "+14155550123", "+12125550100")
    stream = parse_twiml(await post_voice_webhook(server.base_url, PUBLIC, TOKEN, form))
    assert stream.url == "wss://tourline.example/twilio/media"
    assert "?" not in stream.url, "Twilio drops query strings from stream URLs"
    params = dict(stream.parameters)
    assert params.pop("Token")  # the call token its start must carry back
    assert params == {"From": "+14155550123", "To": "+12125550100", "CallSid": call_sid}


@pytest.mark.slow  # a whole booking at real time: about a minute and a half
async def test_booking_a_tour_by_voice(server: RunningServer) -> None:
    await preload_models()
    caller = fresh_number()
    script = CallerScript.booking()
    heard_log: list[str] = []
    async with TwilioCall.connect(
        server.base_url, public_url=PUBLIC, auth_token=TOKEN, from_number=caller
    ) as call:
        # The agent speaks first: the caller has said nothing yet (listen raises NoReply
        # otherwise; 15 s is only a bound for a hang). How soon is measured by
        # bench/call_starts.py, not here: tests do not time things.
        greeting = await call.listen(timeout_s=15)
        heard = (await transcribe(greeting)).lower()
        heard_log.append(f"agent: {heard}")
        assert "thanks for calling" in heard, heard_log

        code_heard, goodbye, pressed = "", None, False
        for _ in range(16):
            asked = await call.what_was_asked(heard)
            if question_kind(asked) == "confirm" and not pressed:
                # "Shall I book it?": this caller presses 1, as Twilio delivers a key (dtmf).
                kind, pressed = "confirm", True
                await call.press("1")
                heard_log.append("caller (confirm): [presses 1]")
            else:
                answer = script.answer(asked)
                assert answer is not None, f"no scripted answer for the agent: {heard_log}"
                kind, line = answer
                assert script.asked[-3:] != [kind] * 3, f"stuck on one question: {heard_log}"
                await call.say(line)
                heard_log.append(f"caller ({kind}): {line}")
            turn = await call.listen(timeout_s=20)
            heard = (await transcribe(turn)).lower()
            heard_log.append(f"agent: {heard}")
            # "You're all set! Your confirmation code is ...": Whisper tiny has heard "code"
            # as "quote"; the code itself is checked against the database below.
            if "all set" in heard and "confirmation" in heard:
                code_heard = heard
            if kind == "anything_else":
                goodbye = turn
                break
        assert pressed, f"never asked to confirm: {heard_log}"
        assert code_heard, f"never heard a confirmation code: {heard_log}"
        assert goodbye is not None, f"the call never got to goodbye: {heard_log}"
        assert "see you" in heard or "goodbye" in heard or "bye" in heard, heard_log
        # The planner ended the call: the server lets the sentence finish, then closes.
        async with asyncio.timeout(10):
            await call.closed.wait()
        assert call.close_code == 1000, (call.close_code, call.close_reason)
        assert not goodbye.cut_by_hangup, "the server closed the stream mid-sentence"
        assert call.violations == [], call.violations

    # This caller's: the server is shared with the other telephony modules (conftest.py).
    rows = [
        r for r in bookings(server.data_dir) if r["status"] == "booked" and r["caller_id"] == caller
    ]
    assert len(rows) == 1, rows
    booking = rows[0]
    assert booking["property_id"] == "hudson-360"
    assert booking["tour_type"] == "in_person"
    assert str(booking["caller_name"]).lower() == "dana lee"
    assert booking["caller_id"] == caller
    # "next tuesday at two in the afternoon" (or the first time offered instead, same day).
    start_utc = datetime.fromisoformat(str(booking["start"])).replace(tzinfo=UTC)
    local = start_utc.astimezone(ZoneInfo("America/New_York"))
    assert local.strftime("%A") == "Tuesday" and local > datetime.now(UTC), local
    events = await call.timeline()
    names = [e["event"] for e in events]
    for expected in ("start", "caller_said", "agent_said"):
        assert expected in names, names
    # The code the caller was told is the one in the database (Whisper tiny hears spelled-out
    # letters too poorly to check them from the audio: "N" comes out as "and").
    code = str(booking["confirmation_code"])
    assert any(e["event"] == "agent_said" and code in e["text"] for e in events), code
    dtmf = [e["digit"] for e in events if e["event"] == "dtmf"]
    assert dtmf == ["1"], dtmf  # the key press, and the booking it confirmed
    start = next(e for e in events if e["event"] == "start")
    assert start["stream_sid"] == call.stream_sid
    assert caller[-4:] in str(start["caller"])
