"""A media socket may not flood the server: Twilio sends 50 media messages a second, so a
socket sending far more gets the excess dropped and is then closed with 1008 (issue 12,
item 7). Twilio's own stream, with its marks and a stall's backlog, never trips the limit.
"""

from __future__ import annotations

import base64
import contextlib
import json

from websockets.exceptions import ConnectionClosed

from app.channels.twilio.media_socket import MESSAGE_BURST
from sim.server import RunningServer
from sim.twilio import (
    TEST_PUBLIC_URL,
    TEST_TOKEN,
    TwilioCall,
    fresh_number,
    preload_models,
    ring_and_open,
)

SILENCE = b"\xff" * 160  # 20 ms of μ-law silence, as Twilio frames it
FLOOD = 3000  # a minute of audio, sent at once


async def test_a_flood_of_media_closes_the_socket_with_1008(server: RunningServer) -> None:
    socket, params = await ring_and_open(server.base_url)
    try:
        await socket.send_start(params)
        with contextlib.suppress(ConnectionClosed):  # it may be closed while we still send
            for _ in range(FLOOD):
                await socket.send_media(SILENCE)
        code, reason = await socket.wait_closed(timeout_s=10)
    finally:
        await socket.close()
    assert code == 1008, f"a flood of {FLOOD} media messages closed with {code} {reason!r}"
    assert "messages a second" in reason, reason


async def test_twilios_pace_and_a_stalls_backlog_are_not_limited(server: RunningServer) -> None:
    """A real-time call (50 media/s, marks echoed) that also gets 5 s of audio at once, as
    Twilio delivers after a network stall, keeps going and is never refused."""
    await preload_models()
    async with TwilioCall.connect(
        server.base_url,
        public_url=TEST_PUBLIC_URL,
        auth_token=TEST_TOKEN,
        from_number=fresh_number(),
    ) as call:
        await call.listen(timeout_s=15)  # the greeting, while line audio streams at 50/s
        frame = base64.b64encode(SILENCE).decode()
        message = json.dumps(
            {
                "event": "media",
                "sequenceNumber": "1",
                "media": {"track": "inbound", "chunk": "1", "timestamp": "0", "payload": frame},
                "streamSid": call.stream_sid,
            }
        )
        for _ in range(MESSAGE_BURST - 10):  # the backlog, on top of the live stream
            await call.stream.send_raw(message)
        await call.say("My name is Dana Lee.")
        reply = await call.listen(timeout_s=20)
        assert reply.duration_s > 0.5, "the call got no reply after the backlog"
        assert not call.closed.is_set(), f"closed with {call.close_code} {call.close_reason!r}"
        events = await call.timeline()
    refused = [e for e in events if e["event"] == "bad_message"]
    assert refused == [], refused
