"""Twilio Media Streams messages exactly as Twilio sends them, and what we send back."""

import base64
import json

import pytest

from app.channels.twilio import media_protocol as mp
from app.channels.twilio.media_socket import caller_of

STREAM = "MZ18ad3ab5a668481ce02b83e7395059f0"
CALL = "CA5bd2bd8ba0c3d3ab8b9d2ad4c1c1f0a7"

CONNECTED = {"event": "connected", "protocol": "Call", "version": "1.0.0"}
START = {
    "event": "start",
    "sequenceNumber": "1",
    "start": {
        "accountSid": "AC00000000000000000000000000000000",
        "streamSid": STREAM,
        "callSid": CALL,
        "tracks": ["inbound"],
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        "customParameters": {"From": "+14155550101", "To": "+12125550100", "CallSid": CALL},
    },
    "streamSid": STREAM,
}


def media(payload: bytes, chunk: int = 2) -> dict:
    return {
        "event": "media",
        "sequenceNumber": str(chunk + 1),
        "media": {
            "track": "inbound",
            "chunk": str(chunk),
            "timestamp": str(20 * chunk),
            "payload": base64.b64encode(payload).decode(),
        },
        "streamSid": STREAM,
    }


def test_start_carries_the_callers_parameters() -> None:
    event = mp.parse(json.dumps(START))
    assert isinstance(event, mp.Start)
    assert (event.stream_sid, event.call_sid) == (STREAM, CALL)
    assert event.custom_parameters["From"] == "+14155550101"
    assert (event.encoding, event.sample_rate, event.channels) == ("audio/x-mulaw", 8000, 1)


def test_media_payload_is_decoded() -> None:
    frame = bytes(range(160))
    event = mp.parse(json.dumps(media(frame, chunk=7)))
    assert event == mp.Media(frame, 140, 7)


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (CONNECTED, mp.Connected("Call")),
        (
            {"event": "mark", "sequenceNumber": "4", "streamSid": STREAM, "mark": {"name": "s1"}},
            mp.Mark("s1"),
        ),
        (
            {
                "event": "dtmf",
                "streamSid": STREAM,
                "sequenceNumber": "5",
                "dtmf": {"track": "inbound_track", "digit": "1"},
            },
            mp.Dtmf("1"),
        ),
        (
            {
                "event": "stop",
                "sequenceNumber": "5",
                "streamSid": STREAM,
                "stop": {"accountSid": "AC0", "callSid": CALL},
            },
            mp.Stop(CALL),
        ),
    ],
)
def test_other_events(message: dict, expected) -> None:
    assert mp.parse(json.dumps(message)) == expected


@pytest.mark.parametrize(
    ("raw", "close_code"),
    [
        ("not json at all", mp.CLOSE_INVALID),
        ("[1, 2, 3]", mp.CLOSE_INVALID),
        (
            json.dumps({"event": "media", "media": {"payload": "***not base64***"}}),
            mp.CLOSE_INVALID,
        ),
        (json.dumps({"event": "start", "start": {}}), mp.CLOSE_INVALID),
        (json.dumps({"event": "start", "start": "not an object"}), mp.CLOSE_INVALID),
        (json.dumps({"event": "stop", "stop": 5}), mp.CLOSE_INVALID),
        (
            json.dumps({"event": "start", "start": {"callSid": "CA1", "mediaFormat": 7}}),
            mp.CLOSE_INVALID,
        ),
        ("x" * (mp.MAX_MESSAGE_BYTES + 1), mp.CLOSE_TOO_BIG),
        (json.dumps({"event": "surprise"}), None),
    ],
)
def test_bad_messages_are_classified(raw: str, close_code: int | None) -> None:
    with pytest.raises(mp.ProtocolError) as caught:
        mp.parse(raw)
    assert caught.value.close_code == close_code
    assert caught.value.reason


def test_outbound_messages_have_twilios_exact_shape() -> None:
    assert json.loads(mp.media_message(STREAM, b"\xff\x7f")) == {
        "event": "media",
        "streamSid": STREAM,
        "media": {"payload": "/38="},
    }
    assert json.loads(mp.mark_message(STREAM, "s1")) == {
        "event": "mark",
        "streamSid": STREAM,
        "mark": {"name": "s1"},
    }
    assert json.loads(mp.clear_message(STREAM)) == {"event": "clear", "streamSid": STREAM}


@pytest.mark.parametrize("withheld", ["+266696687", "Anonymous", "RESTRICTED", "+86282452253"])
def test_a_withheld_number_is_nobody_in_particular(withheld: str) -> None:
    """Callers who hide their number must not share one memory ("Welcome back, Robin!")."""
    message = json.loads(json.dumps(START))
    message["start"]["customParameters"]["From"] = withheld
    start = mp.parse(json.dumps(message))
    assert isinstance(start, mp.Start)
    assert caller_of(start) is None


def test_a_real_number_is_the_callers_key() -> None:
    start = mp.parse(json.dumps(START))
    assert isinstance(start, mp.Start)
    assert caller_of(start) == "+14155550101"


def test_a_from_too_long_to_keep_is_a_call_without_memory() -> None:
    message = json.loads(json.dumps(START))
    message["start"]["customParameters"]["From"] = "9" * 10_000
    start = mp.parse(json.dumps(message))
    assert isinstance(start, mp.Start)
    assert caller_of(start) is None
