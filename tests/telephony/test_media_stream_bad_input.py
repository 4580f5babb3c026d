"""Bad input on one media socket closes that socket (with a code that says why), nothing else.

A call is in progress on one socket the whole time. Each bad input arrives on another
socket, opened with a correctly signed upgrade exactly as Twilio would; after each, the call
in progress still gets its next reply and its timeline still holds everything recorded.
"""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx
from websockets.exceptions import ConnectionClosed

from sim.server import RunningServer
from sim.twilio import (
    TEST_PUBLIC_URL,
    TEST_TOKEN,
    CallerScript,
    MediaStream,
    TwilioCall,
    fresh_number,
    local_socket_url,
    new_sid,
    parse_twiml,
    post_voice_webhook,
    preload_models,
    transcribe,
    twilio_form,
    upgrade_signature,
)

TOKEN = TEST_TOKEN
PUBLIC = TEST_PUBLIC_URL


async def open_other_socket(server: RunningServer) -> tuple[MediaStream, dict[str, str]]:
    """A second call's media socket, rung and upgraded exactly as Twilio does."""
    call_sid = new_sid("CA")
    form = twilio_form(call_sid, fresh_number())
    stream = parse_twiml(await post_voice_webhook(server.base_url, PUBLIC, TOKEN, form))
    socket = await MediaStream.open(
        local_socket_url(server.base_url, stream.url),
        signature=upgrade_signature(TOKEN, stream.url),
        call_sid=call_sid,
    )
    await socket.send_connected()
    return socket, stream.parameters


def media_json(socket: MediaStream, payload: str) -> str:
    return json.dumps(
        {
            "event": "media",
            "sequenceNumber": "2",
            "media": {"track": "inbound", "chunk": "1", "timestamp": "0", "payload": payload},
            "streamSid": socket.stream_sid,
        }
    )


async def send_not_json(socket: MediaStream, params: dict[str, str]) -> None:
    await socket.send_start(params)
    await socket.send_raw('{"event": "media", "media": {"payload": "/38="')  # cut short


async def send_bad_base64(socket: MediaStream, params: dict[str, str]) -> None:
    await socket.send_start(params)
    await socket.send_raw(media_json(socket, "***this is not base64***"))


async def send_two_megabytes(socket: MediaStream, params: dict[str, str]) -> None:
    await socket.send_start(params)
    huge = base64.b64encode(b"\xff" * (3 * 2**20 // 2)).decode()  # 2 MiB of base64
    with contextlib.suppress(ConnectionClosed):  # the server may close while we still send
        await socket.send_raw(media_json(socket, huge))


async def send_media_before_start(socket: MediaStream, params: dict[str, str]) -> None:
    await socket.send_raw(media_json(socket, base64.b64encode(b"\xff" * 160).decode()))


async def send_second_start(socket: MediaStream, params: dict[str, str]) -> None:
    await socket.send_start(params)
    await socket.send_start(params)


@dataclass(frozen=True)
class BadInput:
    name: str
    send: Callable[[MediaStream, dict[str, str]], Awaitable[None]]
    close_code: int


BAD_INPUTS = [
    BadInput("a frame that is not JSON", send_not_json, 1007),
    BadInput("media whose payload is not base64", send_bad_base64, 1007),
    BadInput("a 2 MB message", send_two_megabytes, 1009),
    BadInput("media before start", send_media_before_start, 1008),
    BadInput("a second start", send_second_start, 1008),
]


async def check_unknown_event_is_ignored(server: RunningServer) -> None:
    """``{"event": "bogus"}`` is dropped; the socket stays usable for a normal call."""
    socket, params = await open_other_socket(server)
    try:
        await socket.send_raw(json.dumps({"event": "bogus"}))
        await socket.send_start(params)
        greeting = await socket.next_event("media", timeout_s=10)
        assert greeting["streamSid"] == socket.stream_sid
        await socket.send_stop()
    finally:
        await socket.close()


async def next_reply(call: TwilioCall, script: CallerScript, heard: str) -> str:
    """The call in progress answers the agent's last question and hears the reply."""
    answer = script.answer(await call.what_was_asked(heard))
    assert answer is not None, f"no scripted answer for {heard!r}"
    await call.say(answer[1])
    reply = await call.listen(timeout_s=20)
    assert reply.duration_s > 0.5, "the call in progress got no real reply"
    text = (await transcribe(reply)).lower()
    assert text, "the reply to the call in progress was silent"
    return text


async def test_bad_input_closes_only_that_socket(server: RunningServer) -> None:
    await preload_models()
    script = CallerScript.booking()
    async with TwilioCall.connect(
        server.base_url, public_url=PUBLIC, auth_token=TOKEN, from_number=fresh_number()
    ) as call:
        heard = (await transcribe(await call.listen(timeout_s=15))).lower()

        await check_unknown_event_is_ignored(server)
        heard = await next_reply(call, script, heard)

        for bad in BAD_INPUTS:
            before = await call.timeline()
            assert before, "the call in progress has no timeline"
            socket, params = await open_other_socket(server)
            try:
                await bad.send(socket, params)
                code, reason = await socket.wait_closed(timeout_s=10)
            finally:
                await socket.close()
            assert code == bad.close_code, f"{bad.name}: closed with {code} {reason!r}"

            heard = await next_reply(call, script, heard)
            after = await call.timeline()
            assert after[: len(before)] == before, f"{bad.name}: earlier events were lost"
            assert len(after) > len(before), f"{bad.name}: the call in progress stopped recording"
            async with httpx.AsyncClient(timeout=5) as client:
                health = await client.get(f"{server.base_url}/healthz")
            assert health.status_code == 200, f"{bad.name}: server unhealthy"

        assert call.violations == [], call.violations
        names = [e["event"] for e in await call.timeline()]
        assert "start" in names, names
