"""SIGTERM during a call: the server drains, then says goodbye, and exits 0.

While draining, ``/readyz`` says so and a new caller hears that the line is busy; the call in
progress goes on, and one still on the line at the deadline (``TOURLINE_DRAIN_S``) hears a
short goodbye before the line closes; the call is kept in memory. A call that ends by itself
during the drain lets the server exit at once, with no goodbye (issues 12 item 10, 14 item 3).

Before, the media socket was dropped with close code 1012 in mid-silence and the process
died by the signal.
"""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import httpx

from app.memory.service import MemoryService
from app.settings import Settings
from sim.server import running_server
from sim.twilio import (
    TEST_PUBLIC_URL,
    TEST_TOKEN,
    TwilioCall,
    fresh_number,
    new_sid,
    post_voice_webhook,
    preload_models,
    transcribe,
    twilio_form,
)

STOP_WITHIN_S = 60.0
"""The server exits this soon after SIGTERM or the test fails: 3x what it allows itself
(goodbye ≤ 5 s + closing requests ≤ 5 s + memory flush ≤ 10 s), so only a server that
hangs fails, not a loaded machine. Counted from the signal, with this test's own listening
and transcribing in it."""
GOODBYE_WITHIN_S = 20.0  # 4x the server's 5 s to say goodbye: a bound, not a measure


async def test_sigterm_says_goodbye_keeps_the_call_and_exits_0(tmp_path: Path) -> None:
    await preload_models()
    data = tmp_path / "data"
    env = {"TWILIO_AUTH_TOKEN": TEST_TOKEN, "TOURLINE_PUBLIC_URL": TEST_PUBLIC_URL}
    with running_server(data, TOURLINE_DRAIN_S="2", **env) as server:
        async with TwilioCall.connect(
            server.base_url,
            public_url=TEST_PUBLIC_URL,
            auth_token=TEST_TOKEN,
            from_number=fresh_number(),
        ) as call:
            await call.listen(timeout_s=15)  # the greeting
            server.process.send_signal(signal.SIGTERM)
            stopped_at = time.monotonic()
            await refuses_new_calls(server.base_url)  # within the 2 s drain

            goodbye = await call.listen(timeout_s=GOODBYE_WITHIN_S)
            heard = (await transcribe(goodbye)).lower()
            assert "call back" in heard, f"the caller heard {heard!r}, not a goodbye"
            async with asyncio.timeout(GOODBYE_WITHIN_S):
                await call.closed.wait()
            assert call.close_code == 1000, f"closed with {call.close_code} {call.close_reason!r}"
            assert goodbye.marks_heard, "the line closed before the goodbye was played"
            call_sid = call.call_sid

        code = await asyncio.to_thread(server.process.wait, STOP_WITHIN_S)
        took = time.monotonic() - stopped_at
        assert code == 0, f"exit status {code} after SIGTERM:\n{server.log()[-3000:]}"
        assert took < STOP_WITHIN_S, f"the server took {took:.0f} s to exit after SIGTERM"
        assert "said goodbye on 1 call" in server.log()

    memory = MemoryService.open(Settings(data_dir=data))
    try:
        record = memory.store.get_call(call_sid)
        assert record is not None and record.ended_at is not None, "the call was not kept"
        said = [e.said for e in memory.store.exchanges_of_call(call_sid) if e.role == "agent"]
        assert any("call back" in s for s in said), said
    finally:
        memory.close()


async def refuses_new_calls(base_url: str) -> None:
    """Draining: a load balancer reads 503 "draining", and a call that still arrives hears
    that the line is busy (TwiML <Say> and <Hangup>, no media stream)."""
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
        for _ in range(50):  # poll: the drain starts on the server's next loop turn
            ready = await http.get("/readyz")
            if ready.status_code == 503:
                break
            await asyncio.sleep(0.02)  # the poll's pace, not a synchronization
    assert ready.status_code == 503 and ready.json()["reason"] == "draining", ready.text
    twiml = await post_voice_webhook(
        base_url, TEST_PUBLIC_URL, TEST_TOKEN, twilio_form(new_sid("CA"), fresh_number())
    )
    assert "busy" in twiml and "<Hangup" in twiml and "<Stream" not in twiml, twiml


async def test_a_call_that_ends_during_the_drain_lets_the_server_exit_without_a_goodbye(
    tmp_path: Path,
) -> None:
    env = {"TWILIO_AUTH_TOKEN": TEST_TOKEN, "TOURLINE_PUBLIC_URL": TEST_PUBLIC_URL}
    with running_server(tmp_path / "data", TOURLINE_DRAIN_S="120", **env) as server:
        async with TwilioCall.connect(
            server.base_url,
            public_url=TEST_PUBLIC_URL,
            auth_token=TEST_TOKEN,
            from_number=fresh_number(),
        ) as call:
            await call.wait_for_playback(0.5, timeout_s=15)  # on the line: the greeting plays
            server.process.send_signal(signal.SIGTERM)
            await refuses_new_calls(server.base_url)
            assert not call.closed.is_set(), "the call in progress was cut by the drain"
        # The caller hung up: nothing is left to wait for, long before the 120 s deadline.
        code = await asyncio.to_thread(server.process.wait, STOP_WITHIN_S)
        assert code == 0, server.log()[-3000:]
    assert "said goodbye" not in server.log()
