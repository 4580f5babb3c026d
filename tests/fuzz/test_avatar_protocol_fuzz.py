"""The avatar protocol, fuzzed: any message is an event or a ``ProtocolError`` with an
error code and a reason fit for the ``error`` event and the close frame, never another
exception (which would drop the session with 1011 instead of telling the client why)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from app.channels.avatar import protocol as avatar
from tests.fuzz.conftest import assert_clear_reason, dumps, json_values, key_paths

CLOSE_CODES = {
    None,
    avatar.CLOSE_UNSUPPORTED,
    avatar.CLOSE_INVALID,
    avatar.CLOSE_POLICY,
    avatar.CLOSE_TOO_BIG,
}
TYPES = ["hello", "text", "played", "ping", "pong", "bye", "other"]
DEVICE_IDS = st.text("abcdefghijklmnopqrstuvwxyz0123456789-_.", min_size=1, max_size=64)


def parse_or_error(data: str | bytes) -> avatar.ClientEvent | avatar.ProtocolError:
    """The event, or the protocol error; any other exception fails the test."""
    try:
        return avatar.parse(data)
    except avatar.ProtocolError as err:
        assert err.close_code in CLOSE_CODES
        assert err.code and err.code.isidentifier(), err.code
        assert_clear_reason(err.reason)
        return err


def valid(kind: str) -> dict[str, Any]:
    """A message of this type as a well-behaved client sends it."""
    bodies: dict[str, dict[str, Any]] = {
        "hello": {
            "user": {"device_id": "dev-1"},
            "audio": {"format": "pcm16", "sample_rate": 16000, "channels": 1},
            "output_audio": {"format": "pcm16", "sample_rate": 24000, "channels": 1},
            "playback_marks": True,
            "client": "fuzz",
        },
        "text": {"text": "a two bedroom please"},
        "played": {"mark": "r1.0"},
    }
    return {"type": kind, **bodies.get(kind, {})}


@given(json_values)
def test_any_json_value_is_an_event_or_a_protocol_error(value: Any) -> None:
    parse_or_error(dumps(value))


@given(st.text(max_size=300))
@example("[" * 10_000)  # nests deeper than the JSON parser's recursion limit
@example('{"type": "text", "text": ' + "9" * 5000 + "}")  # an int too long to convert
@example('{"type": "\u00e9' + "\u00e9" * 2000 + '"}')  # a long, non-ASCII unknown type
def test_any_text_is_an_event_or_a_protocol_error(text: str) -> None:
    parse_or_error(text)


@given(st.binary(max_size=4 * avatar.MAX_AUDIO_BYTES // 3))
def test_any_binary_message_is_audio_or_a_protocol_error(data: bytes) -> None:
    result = parse_or_error(data)
    if len(data) > avatar.MAX_AUDIO_BYTES:
        assert isinstance(result, avatar.ProtocolError)
        assert result.close_code == avatar.CLOSE_TOO_BIG
    elif len(data) % 2:
        assert isinstance(result, avatar.ProtocolError)
        assert result.close_code == avatar.CLOSE_INVALID
    else:
        assert result == avatar.Audio(data)


@given(st.sampled_from(TYPES), st.data(), json_values)
def test_valid_shapes_with_a_wrong_field_are_refused_cleanly(
    kind: str, data: st.DataObject, replacement: Any
) -> None:
    message = valid(kind)
    path = data.draw(st.sampled_from(key_paths(message)), label="field")
    target = message
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = replacement
    parse_or_error(json.dumps(message))


@given(st.text(max_size=400))
@example("\u00e9" * 300)  # ~600 bytes of UTF-8 echoed in "is not an email address"
def test_a_bad_email_is_refused_with_a_close_frame_that_fits(email: str) -> None:
    message = valid("hello")
    message["user"] = {"email": email}
    parse_or_error(json.dumps(message))


@given(
    DEVICE_IDS,
    st.sampled_from(avatar.SUPPORTED_RATES),
    st.sampled_from(avatar.SUPPORTED_RATES),
    st.booleans(),
)
def test_a_valid_hello_reads_back_with_its_formats(
    device: str, rate: int, output_rate: int, marks: bool
) -> None:
    message = valid("hello")
    message["user"] = {"device_id": device}
    message["audio"]["sample_rate"] = rate
    message["output_audio"]["sample_rate"] = output_rate
    message["playback_marks"] = marks
    hello = avatar.parse(json.dumps(message))
    assert isinstance(hello, avatar.Hello)
    assert hello.user_id is not None and hello.user_id.endswith(device.strip())
    assert (hello.sample_rate, hello.output_rate, hello.playback_marks) == (
        rate,
        output_rate,
        marks,
    )


@given(st.text(max_size=avatar.MAX_TYPED_CHARS).filter(str.strip))
def test_typed_text_reads_back_trimmed(text: str) -> None:
    assert avatar.parse(json.dumps({"type": "text", "text": text})) == avatar.Text(text.strip())


@given(st.text(min_size=1, max_size=avatar.MAX_MARK_CHARS))
def test_played_marks_read_back(mark: str) -> None:
    assert avatar.parse(json.dumps({"type": "played", "mark": mark})) == avatar.Played(mark)


@given(st.binary(max_size=20_000), st.sampled_from(avatar.SUPPORTED_RATES))
def test_agent_audio_chunks_are_whole_samples_and_add_up(pcm: bytes, rate: int) -> None:
    chunks = avatar.audio_chunks(pcm, rate)
    assert b"".join(chunks) == pcm[: len(pcm) - len(pcm) % 2]
    limit = rate * avatar.OUTPUT_CHUNK_MS // 1000 * 2
    assert all(len(c) % 2 == 0 and 0 < len(c) <= max(2, limit) for c in chunks)
