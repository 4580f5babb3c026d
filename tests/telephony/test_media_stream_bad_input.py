"""Bad input on one media socket closes that socket (with a code that says why), nothing else.

A call is in progress on one socket the whole time. The bad inputs arrive together, each on
another socket opened with a correctly signed upgrade exactly as Twilio would, while that
call's caller speaks; the call still gets its reply and its timeline keeps everything.
"""

from __future__ import annotations

import asyncio
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
    preload_models,
    ring_and_open,
    transcribe,
)

TOKEN = TEST_TOKEN
PUBLIC = TEST_PUBLIC_URL


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
    socket, params = await ring_and_open(server.base_url)
    try:
        await socket.send_raw(json.dumps({"event": "bogus"}))
        await socket.send_start(params)
        greeting = await socket.next_event("media", timeout_s=10)
        assert greeting["streamSid"] == socket.stream_sid
        await socket.send_stop()
    finally:
        await socket.close()


async def refused_with(server: RunningServer, bad: BadInput) -> tuple[int | None, str]:
    """Open a socket, send ``bad`` on it, and return how the server closed it."""
    socket, params = await ring_and_open(server.base_url)
    try:
        await bad.send(socket, params)
        return await socket.wait_closed(timeout_s=10)
    finally:
        await socket.close()


async def test_bad_input_closes_only_that_socket(server: RunningServer) -> None:
    """Every bad input arrives at once, each on its own socket, while the caller of the call
    in progress is speaking; that call is answered as if nothing happened."""
    await preload_models()
    script = CallerScript.booking()
    async with TwilioCall.connect(
        server.base_url, public_url=PUBLIC, auth_token=TOKEN, from_number=fresh_number()
    ) as call:
        heard = (await transcribe(await call.listen(timeout_s=15))).lower()
        answer = script.answer(await call.what_was_asked(heard))
        assert answer is not None, f"no scripted answer for {heard!r}"
        before = await call.timeline()
        assert before, "the call in progress has no timeline"

        closes, *_ = await asyncio.gather(
            asyncio.gather(*(refused_with(server, bad) for bad in BAD_INPUTS)),
            check_unknown_event_is_ignored(server),
            call.say(answer[1]),
        )
        for bad, (code, reason) in zip(BAD_INPUTS, closes, strict=True):
            assert code == bad.close_code, f"{bad.name}: closed with {code} {reason!r}"

        reply = await call.listen(timeout_s=20)
        assert reply.duration_s > 0.5, "the call in progress got no real reply"
        text = (await transcribe(reply)).lower()
        assert "dana" in text, f"the reply to the call in progress: {text!r}"
        after = await call.timeline()
        assert after[: len(before)] == before, "earlier events were lost"
        assert "caller_said" in [e["event"] for e in after[len(before) :]], "stopped recording"
        async with httpx.AsyncClient(timeout=5) as client:
            health = await client.get(f"{server.base_url}/healthz")
        assert health.status_code == 200, "server unhealthy"
        assert call.violations == [], call.violations
