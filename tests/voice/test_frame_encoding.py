"""Building a reply's Twilio media messages costs the event loop little (issue 12, item 6).

Every 20 ms frame of agent speech becomes a JSON message on the event loop; one JSON object
built per frame was most of that cost (~4 µs a frame, ~0.6 ms per 3 s sentence), paid for
every call speaking at once. The messages must stay exactly what Twilio was sent before.
"""

from __future__ import annotations

import json
from base64 import b64decode
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.audio.codec import iter_frames, pcm16_to_ulaw
from app.channels.twilio import media_protocol as twilio
from app.channels.twilio.media_socket import TwilioTransport

GREETINGS = 60
GREETING_S = 10


def transport(stream_sid: str) -> TwilioTransport:
    socket: Any = None  # building messages needs no socket
    return TwilioTransport(socket, stream_sid)


@settings(max_examples=200, deadline=None)
@given(
    stream_sid=st.text(min_size=0, max_size=40),
    pcm=st.binary(min_size=0, max_size=2000).map(lambda b: b[: len(b) // 2 * 2]),
)
def test_media_messages_are_what_twilio_was_sent_before(stream_sid: str, pcm: bytes) -> None:
    built = transport(stream_sid).media_messages(pcm)
    expected = [twilio.media_message(stream_sid, f) for f in iter_frames(pcm16_to_ulaw(pcm))]
    assert built == expected
    for message in built:  # and Twilio can read them
        parsed = json.loads(message)
        assert (
            parsed["streamSid"] == stream_sid and len(b64decode(parsed["media"]["payload"])) == 160
        )


def test_a_greetings_frames_build_no_json_object_each(monkeypatch: pytest.MonkeyPatch) -> None:
    """Not timed (tests do not time things): the loop's per-frame work is a base64 payload
    in a prefix built once per stream; no JSON object is built per frame (that was 90% of
    the cost). bench/call_starts.py measures what the calls hear."""
    rng = np.random.default_rng(7)
    speech = (rng.standard_normal(8000 * GREETING_S) * 3000).astype(np.int16).tobytes()
    transports = [transport(f"MZ{n:032x}") for n in range(GREETINGS)]  # when each call starts
    dumps = json.dumps
    built: list[object] = []

    def counted_dumps(obj: object, *args: Any, **kwargs: Any) -> str:
        built.append(obj)
        return dumps(obj, *args, **kwargs)

    monkeypatch.setattr(json, "dumps", counted_dumps)  # media_message's too
    sent = [t.media_messages(speech) for t in transports]
    monkeypatch.undo()
    assert all(len(messages) == GREETING_S * 50 for messages in sent)
    assert built == [], f"{len(built)} JSON objects built for {GREETINGS} greetings' frames"
    assert sent[0][0] == twilio.media_message("MZ" + "0" * 32, pcm16_to_ulaw(speech)[:160])
