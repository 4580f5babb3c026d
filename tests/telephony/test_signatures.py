"""The media WebSocket upgrade is checked like Twilio signs it: over the public wss:// URL.

The webhook's own signature checks live in test_twilio_webhook.py. Here: an upgrade with a
missing or wrong ``X-Twilio-Signature`` gets HTTP 403 before any call exists (so no timeline
is written), and a correctly signed one streams a call.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest
from twilio.request_validator import RequestValidator
from websockets.exceptions import InvalidStatus

from sim.server import RunningServer
from sim.twilio import (
    TEST_PUBLIC_URL,
    TEST_TOKEN,
    MediaStream,
    StreamInstruction,
    fresh_number,
    local_socket_url,
    new_sid,
    parse_twiml,
    post_voice_webhook,
    twilio_form,
    upgrade_signature,
)

TOKEN = TEST_TOKEN
PUBLIC = TEST_PUBLIC_URL


def timelines(data_dir: Path) -> set[str]:
    calls = data_dir / "calls"
    return {p.name for p in calls.iterdir()} if calls.exists() else set()


async def ring(server: RunningServer) -> tuple[str, StreamInstruction]:
    call_sid = new_sid("CA")
    twiml = await post_voice_webhook(
        server.base_url, PUBLIC, TOKEN, twilio_form(call_sid, fresh_number())
    )
    return call_sid, parse_twiml(twiml)


BAD_SIGNATURES: dict[str, Callable[[str, str], str | None]] = {
    "missing": lambda url, call_sid: None,
    "wrong token": lambda url, call_sid: upgrade_signature("not-the-token", url),
    # What a server checking its own Host header would accept: not what Twilio signs.
    "signed over the loopback URL": lambda url, call_sid: upgrade_signature(
        TOKEN, "ws://127.0.0.1/twilio/media"
    ),
    # Twilio signs the upgrade with no params; a signature with params must not pass.
    "signed with params": lambda url, call_sid: RequestValidator(TOKEN).compute_signature(
        url, {"CallSid": call_sid}
    ),
    "garbage": lambda url, call_sid: "bm90IGEgc2lnbmF0dXJl",
}


@pytest.mark.parametrize("case", list(BAD_SIGNATURES))
async def test_bad_upgrade_signature_is_refused_with_403(server: RunningServer, case: str) -> None:
    call_sid, stream = await ring(server)
    before = timelines(server.data_dir)
    signature = BAD_SIGNATURES[case](stream.url, call_sid)
    with pytest.raises(InvalidStatus) as refused:
        socket = await MediaStream.open(
            local_socket_url(server.base_url, stream.url), signature=signature, call_sid=call_sid
        )
        # Only reached if the upgrade was (wrongly) accepted: show what the server then does.
        await socket.send_connected()
        await socket.send_start(stream.parameters)
        await socket.close()
    assert refused.value.response.status_code == 403
    assert timelines(server.data_dir) == before, "a refused upgrade must not create a call"


async def test_correctly_signed_upgrade_streams_a_call(server: RunningServer) -> None:
    call_sid, stream = await ring(server)
    socket = await MediaStream.open(
        local_socket_url(server.base_url, stream.url),
        signature=upgrade_signature(TOKEN, stream.url),
        call_sid=call_sid,
    )
    try:
        await socket.send_connected()
        await socket.send_start(stream.parameters)
        first = await socket.next_event("media", timeout_s=10)
        assert first["streamSid"] == socket.stream_sid
        await socket.send_stop()
    finally:
        await socket.close()
    assert any(call_sid in name for name in timelines(server.data_dir))


async def _open_signed(server: RunningServer, stream: StreamInstruction, call_sid: str):
    return await MediaStream.open(
        local_socket_url(server.base_url, stream.url),
        signature=upgrade_signature(TOKEN, stream.url),
        call_sid=call_sid,
    )


FORGED_STARTS: dict[str, Callable[[dict[str, str]], dict[str, str]]] = {
    # A captured upgrade header is valid for every call: the start must prove the number.
    "another caller's number": lambda params: params | {"From": fresh_number()},
    "no call token": lambda params: {k: v for k, v in params.items() if k != "Token"},
    "a made-up token": lambda params: params | {"Token": "9999999999.deadbeef"},
}


@pytest.mark.parametrize("case", list(FORGED_STARTS))
async def test_a_start_must_carry_the_call_token_for_its_number(
    server: RunningServer, case: str
) -> None:
    call_sid, stream = await ring(server)
    socket = await _open_signed(server, stream, call_sid)
    try:
        await socket.send_connected()
        await socket.send_start(FORGED_STARTS[case](dict(stream.parameters)))
        code, _ = await socket.wait_closed(timeout_s=10)
    finally:
        await socket.close()
    assert code == 1008  # policy: refused before the agent says a word or loads a memory


async def test_a_start_cannot_be_replayed_on_a_second_socket(server: RunningServer) -> None:
    call_sid, stream = await ring(server)
    first = await _open_signed(server, stream, call_sid)
    try:
        await first.send_connected()
        await first.send_start(stream.parameters)
        await first.next_event("media", timeout_s=10)  # the real call is answered
        replay = await _open_signed(server, stream, call_sid)
        try:
            await replay.send_connected()
            await replay.send_start(stream.parameters)
            code, _ = await replay.wait_closed(timeout_s=10)
        finally:
            await replay.close()
        assert code == 1008
        await first.send_stop()
    finally:
        await first.close()


async def _never_start(server: RunningServer, opened: threading.Event) -> tuple[int | None, str]:
    try:
        call_sid, stream = await ring(server)
        socket = await _open_signed(server, stream, call_sid)
        await socket.send_connected()
    finally:
        opened.set()
    try:
        return await socket.wait_closed(timeout_s=20)
    finally:
        await socket.close()


@pytest.fixture(scope="module", autouse=True)
def idle_socket(server: RunningServer) -> Iterator[Future[tuple[int | None, str]]]:
    """A signed socket that never starts a call, opened before the module's first test: the
    server's 10 s wait passes beside the other tests instead of alone."""
    opened = threading.Event()
    with ThreadPoolExecutor(1) as pool:
        idle = pool.submit(asyncio.run, _never_start(server, opened))
        opened.wait(timeout=60)  # rung and open before any test looks at the server
        yield idle


async def test_a_socket_that_never_starts_a_call_is_closed(
    idle_socket: Future[tuple[int | None, str]],
) -> None:
    """An open socket with no call holds a connection slot: 10 s, then 1008."""
    code, reason = await asyncio.wrap_future(idle_socket)
    assert code == 1008, reason
