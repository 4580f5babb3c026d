"""Twilio's media messages, fuzzed: whatever arrives on the socket is an event or a
``ProtocolError`` with a close code and a clear reason, never another exception (which
would end the call with a traceback and an abnormal close instead of a code saying why)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from app.channels.twilio import media_protocol as twilio
from tests.fuzz.conftest import assert_clear_reason, dumps, json_values, key_paths

CLOSE_CODES = {
    None,
    twilio.CLOSE_UNSUPPORTED,
    twilio.CLOSE_INVALID,
    twilio.CLOSE_POLICY,
    twilio.CLOSE_TOO_BIG,
}
EVENTS = ["connected", "start", "media", "mark", "dtmf", "stop", "clear", "other"]


def parse_or_error(data: str | bytes) -> twilio.TwilioEvent | twilio.ProtocolError:
    """The event, or the protocol error; any other exception fails the test."""
    try:
        return twilio.parse(data)
    except twilio.ProtocolError as err:
        assert err.close_code in CLOSE_CODES
        assert_clear_reason(err.reason)
        return err


def valid(event: str, sid: str = "MZ1", call: str = "CA1") -> dict[str, Any]:
    """A message of this kind exactly as Twilio sends it."""
    bodies: dict[str, dict[str, Any]] = {
        "connected": {"protocol": "Call", "version": "1.0.0"},
        "start": {
            "start": {
                "accountSid": "AC1",
                "streamSid": sid,
                "callSid": call,
                "tracks": ["inbound"],
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                "customParameters": {"From": "+14155550123"},
            }
        },
        "media": {
            "media": {"track": "inbound", "chunk": "2", "timestamp": "20", "payload": "AAA="}
        },
        "mark": {"mark": {"name": "r1.0"}},
        "dtmf": {"dtmf": {"track": "inbound_track", "digit": "5"}},
        "stop": {"stop": {"accountSid": "AC1", "callSid": call}},
    }
    return {"event": event, "streamSid": sid, "sequenceNumber": "1", **bodies.get(event, {})}


@given(json_values)
def test_any_json_value_is_an_event_or_a_protocol_error(value: Any) -> None:
    parse_or_error(dumps(value))


@given(st.text(max_size=300) | st.binary(max_size=300))
@example("[" * 60_000)  # nests deeper than the JSON parser's recursion limit
@example('{"event": "media", "media": {"payload": "", "timestamp": ' + "9" * 5000 + "}}")
@example(b"\xff\xfe\x00{")  # not UTF-8
@example("\ud800")  # a lone surrogate, as a str
def test_any_text_or_bytes_is_an_event_or_a_protocol_error(data: str | bytes) -> None:
    parse_or_error(data)


@given(st.sampled_from(EVENTS), st.data(), json_values)
@example("media", None, float("inf"))  # caught by a test: int(inf) raised OverflowError
def test_valid_shapes_with_a_wrong_field_are_refused_cleanly(
    event: str, data: st.DataObject | None, replacement: Any
) -> None:
    message = valid(event)
    paths = key_paths(message)
    path = (
        data.draw(st.sampled_from(paths), label="field")
        if data is not None
        else ("media", "timestamp")
    )
    target = message
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = replacement
    parse_or_error(json.dumps(message))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("timestamp", float("inf")),
        ("chunk", float("-inf")),
        ("timestamp", float("nan")),
        ("timestamp", "soon"),
        ("payload", 42),
        ("payload", None),
    ],
)
def test_wrong_field_types_close_with_invalid_payload(field: str, value: Any) -> None:
    message = valid("media")
    message["media"][field] = value
    err = parse_or_error(json.dumps(message))
    assert isinstance(err, twilio.ProtocolError)
    assert err.close_code == twilio.CLOSE_INVALID
    assert "media" in err.reason


@given(st.text(min_size=1, max_size=200).filter(lambda s: not _is_base64(s)))
@example("AAA")  # missing padding
@example("AA==AA==")
@example("ÿÿÿÿ")
def test_bad_base64_closes_with_invalid_payload(payload: str) -> None:
    message = valid("media")
    message["media"]["payload"] = payload
    err = parse_or_error(json.dumps(message))
    assert isinstance(err, twilio.ProtocolError)
    assert err.close_code == twilio.CLOSE_INVALID
    assert "base64" in err.reason


def _is_base64(text: str) -> bool:
    try:
        base64.b64decode(text, validate=True)
    except ValueError:
        return False
    return True


@given(st.integers(min_value=twilio.MAX_MESSAGE_BYTES + 1, max_value=4 * twilio.MAX_MESSAGE_BYTES))
def test_huge_messages_close_with_too_big(size: int) -> None:
    payload = base64.b64encode(b"\xff" * size).decode()
    err = parse_or_error(twilio.media_message("MZ1", b"\xff" * size))
    assert isinstance(err, twilio.ProtocolError)
    assert err.close_code == twilio.CLOSE_TOO_BIG
    assert len(payload) > twilio.MAX_MESSAGE_BYTES


@given(st.text(min_size=1, max_size=40), st.binary(max_size=2000))
def test_outbound_media_reads_back_as_the_same_audio(stream_sid: str, mulaw: bytes) -> None:
    event = twilio.parse(twilio.media_message(stream_sid, mulaw))
    assert event == twilio.Media(mulaw, 0, 0)


@given(st.text(min_size=1, max_size=40), st.text(max_size=64))
def test_marks_read_back_with_their_names(stream_sid: str, name: str) -> None:
    assert twilio.parse(twilio.mark_message(stream_sid, name)) == twilio.Mark(name)


@given(
    st.text(min_size=1, max_size=40),
    st.text(min_size=1, max_size=40),
    st.dictionaries(st.text(max_size=20), st.text(max_size=80), max_size=5),
    st.sampled_from([8000, 16000]),
)
def test_a_twilio_start_reads_back_with_its_fields(
    stream_sid: str, call_sid: str, params: dict[str, str], rate: int
) -> None:
    message = valid("start", sid=stream_sid, call=call_sid)
    message["start"]["customParameters"] = params
    message["start"]["mediaFormat"]["sampleRate"] = rate
    event = twilio.parse(json.dumps(message))
    assert isinstance(event, twilio.Start)
    assert (event.stream_sid, event.call_sid, event.sample_rate) == (stream_sid, call_sid, rate)
    assert event.custom_parameters == params
