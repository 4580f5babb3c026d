"""``GET /metrics`` and ``GET /readyz`` on a real server around a real phone call.

What an operator's Prometheus would scrape: the call counted while it ran and gone after the
hang-up, its voice-to-voice latency and STT time observed, in text the official parser
reads, and none of it without the API key. What a load balancer reads: with room for one
call, the server says it is full (503, "full") while that call is on the line, stays alive
(``/healthz`` 200), and takes calls again after the hang-up. What a caller hears past that
one call: "please hold" and a signed redirect, let in once the first call ends, or after a
few tries a polite goodbye; and what the dashboard reads (``/metrics/summary``, a call's
waterfall).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets
from prometheus_client.parser import text_string_to_metric_families
from twilio.request_validator import RequestValidator

from sim.avatar import avatar_url
from sim.server import RunningServer, running_server
from sim.twilio import (
    TEST_PUBLIC_URL,
    TEST_TOKEN,
    TwilioCall,
    fresh_number,
    new_sid,
    parse_twiml,
    post_voice_webhook,
    twilio_form,
)

KEY = "metrics-test-key"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A signed server with ``TOURLINE_API_KEY`` set."""
    data: Path = tmp_path_factory.mktemp("metrics")
    env = {
        "TWILIO_AUTH_TOKEN": TEST_TOKEN,
        "TOURLINE_PUBLIC_URL": TEST_PUBLIC_URL,
        "TOURLINE_API_KEY": KEY,
        "TOURLINE_MAX_CALLS": "1",
        # A loaded machine may take seconds between two lines of a test: no "are you still
        # there?" in their place.
        "TOURLINE_NO_INPUT_TIMEOUT_S": "60",
    }
    with running_server(data, **env) as running:
        yield running


def samples(text: str) -> dict[str, float]:
    """Samples by name, summed over their labels (a call on any channel counts in
    ``tourline_active_calls``), parsed as Prometheus would."""
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[sample.name] = found.get(sample.name, 0.0) + sample.value
    return found


async def test_metrics_need_the_api_key(server: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        assert (await http.get("/metrics")).status_code in (401, 403)
        wrong = await http.get("/metrics", headers={"X-API-Key": "guess"})
        assert wrong.status_code in (401, 403)
        ok = await http.get("/metrics", headers={"Authorization": f"Bearer {KEY}"})
        assert ok.status_code == 200
        assert ok.headers["content-type"].startswith("text/plain")


async def test_one_call_with_one_turn_shows_in_metrics(server: RunningServer) -> None:
    headers = {"X-API-Key": KEY}
    async with httpx.AsyncClient(base_url=server.base_url, headers=headers) as http:

        async def scrape() -> dict[str, float]:
            response = await http.get("/metrics")
            assert response.status_code == 200, response.text
            return samples(response.text)

        before = await scrape()
        assert before["tourline_active_calls"] == 0  # every channel's sample summed
        assert before["tourline_call_capacity"] == 1
        ready = await http.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["calls"] == {"active": 0, "capacity": 1}
        async with TwilioCall.connect(
            server.base_url,
            public_url=TEST_PUBLIC_URL,
            auth_token=TEST_TOKEN,
            from_number=fresh_number(),
        ) as call:
            await call.listen(timeout_s=20)  # the greeting: the call is live
            assert (await scrape())["tourline_active_calls"] == 1
            full = await http.get("/readyz")
            assert full.status_code == 503 and full.json()["reason"] == "full", full.text
            assert (await http.get("/healthz")).status_code == 200  # alive, just full
            await call.say("Hi, I'd like to book a tour of a studio.")
            await call.listen(timeout_s=30)  # the agent's answer to that turn
        await call.stream.wait_closed(timeout_s=10)
        await check_dashboard_figures(http, call.call_sid)

        after = await scrape()
        for _ in range(100):  # poll: the server ends the call on its own schedule
            if after["tourline_active_calls"] == 0:
                break
            await asyncio.sleep(0.05)  # the poll's pace, not a synchronization
            after = await scrape()
        assert after["tourline_active_calls"] == 0
        assert (await http.get("/readyz")).status_code == 200  # room again

    def grew(name: str) -> float:
        return after.get(name, 0.0) - before.get(name, 0.0)

    assert grew("tourline_voice_to_voice_seconds_count") >= 1
    assert grew("tourline_stt_seconds_count") >= 1
    assert grew("tourline_end_of_turn_wait_seconds_count") >= 1
    assert grew("tourline_tts_first_audio_seconds_count") >= 1
    assert grew("tourline_memory_context_load_seconds_count") == 1  # one caller, loaded once
    assert "tourline_memory_backlog" in after  # the real memory's job queue, read at scrape


async def check_dashboard_figures(http: httpx.AsyncClient, call_sid: str) -> None:
    """The dashboard's JSON: the same figures as ``/metrics``, and the call's one turn as a
    waterfall of stages in the order a reply is made."""
    summary = (await http.get("/metrics/summary")).json()
    assert summary["calls"]["capacity"] == 1
    assert summary["voice_to_voice"]["count"] >= 1, summary["voice_to_voice"]
    assert summary["voice_to_voice"]["p50_ms"] > 0
    assert summary["voice_to_voice"]["p95_ms"] >= summary["voice_to_voice"]["p50_ms"]
    assert summary["stages"]["stt"]["n"] >= 1
    assert call_sid in [c["call_id"] for c in summary["recent_calls"]]
    body = (await http.get(f"/calls/{call_sid}/waterfall")).json()
    answered = [t for t in body["turns"] if t["outcome"] == "answered"]
    assert answered, body
    turn = answered[0]
    assert turn["text"], turn
    stages = [s["stage"] for s in turn["stages"]]
    assert stages[0] == "end_of_turn_wait" and "stt" in stages and "planner" in stages
    assert stages[-1] == "send"  # the reply's first frame out ends the turn
    assert turn["voice_to_voice_ms"] > 0
    assert (await http.get("/calls/CAnone/waterfall")).status_code == 404
    async with httpx.AsyncClient(base_url=str(http.base_url)) as anonymous:
        assert (await anonymous.get("/metrics/summary")).status_code in (401, 403)
        assert (await anonymous.get(f"/calls/{call_sid}/waterfall")).status_code in (401, 403)


async def avatar_turned_away(server: RunningServer) -> tuple[int | None, str, str]:
    """Open ``WS /avatar`` on a full server: its close code and reason, and the error code."""
    async with websockets.connect(avatar_url(server.base_url)) as ws:
        error = json.loads(await asyncio.wait_for(ws.recv(), timeout=10))
        with contextlib.suppress(websockets.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), timeout=10)
    return ws.close_code, ws.close_reason or "", error.get("code", "")


def _verbs(twiml: str) -> list[str]:
    return [child.tag for child in ET.fromstring(twiml)]


async def _ring(server: RunningServer, form: dict[str, str], path: str = "/twilio/voice") -> str:
    return await post_voice_webhook(server.base_url, TEST_PUBLIC_URL, TEST_TOKEN, form, path=path)


async def test_past_capacity_callers_hold_and_get_in_once_there_is_room(
    server: RunningServer,
) -> None:
    """Room for one call: of a burst of webhooks exactly one is let in; while its call runs a
    new caller is asked to hold (Say, Pause, signed Redirect back to the webhook), and is let
    in by that redirect once the call has ended. Each turn-away is counted."""
    headers = {"X-API-Key": KEY}
    async with httpx.AsyncClient(base_url=server.base_url, headers=headers) as http:
        before = samples((await http.get("/metrics")).text)
        burst = [twilio_form(new_sid("CA"), fresh_number()) for _ in range(5)]
        answers = await asyncio.gather(*(_ring(server, form) for form in burst))
        admitted = [
            form for form, twiml in zip(burst, answers, strict=True) if "<Connect>" in twiml
        ]
        assert len(admitted) == 1, answers  # its stream is on its way: the slot is taken
        held = [twiml for twiml in answers if "<Connect>" not in twiml]
        assert all(_verbs(twiml) == ["Say", "Pause", "Redirect"] for twiml in held), held
        redirect = ET.fromstring(held[0]).findtext("Redirect") or ""
        assert redirect == f"{TEST_PUBLIC_URL}/twilio/voice?attempt=2"

        waiting = twilio_form(new_sid("CA"), fresh_number())
        async with TwilioCall.connect(
            server.base_url,
            public_url=TEST_PUBLIC_URL,
            auth_token=TEST_TOKEN,
            from_number=admitted[0]["From"],
            call_sid=admitted[0]["CallSid"],  # Twilio opening the admitted call's stream
        ) as call:
            await call.wait_for_playback(0.5, timeout_s=20)  # the greeting plays: it is live
            hold = await _ring(server, waiting)
            assert _verbs(hold) == ["Say", "Pause", "Redirect"], hold
            assert "hold" in (ET.fromstring(hold).findtext("Say") or "")
            again = await _ring(server, waiting, "/twilio/voice?attempt=2")
            assert _verbs(again) == ["Say", "Pause", "Redirect"]
            assert ET.fromstring(again).findtext("Redirect", "").endswith("attempt=3")
            last = await _ring(server, waiting, "/twilio/voice?attempt=4")
            assert _verbs(last) == ["Say", "Hangup"]  # still full after the last try
            assert "call back" in (ET.fromstring(last).findtext("Say") or "")
            # The redirect is signed over its own URL, query included: the first webhook's
            # signature does not pass for it.
            first = RequestValidator(TEST_TOKEN).compute_signature(
                f"{TEST_PUBLIC_URL}/twilio/voice", waiting
            )
            replayed = await http.post(
                "/twilio/voice?attempt=2", data=waiting, headers={"X-Twilio-Signature": first}
            )
            assert replayed.status_code == 403
            assert await avatar_turned_away(server) == (1013, "full", "busy")
        await call.stream.wait_closed(timeout_s=10)

        for _ in range(200):  # poll: the server ends the call on its own schedule
            if (await http.get("/readyz")).status_code == 200:
                break
            await asyncio.sleep(0.05)  # the poll's pace, not a synchronization
        let_in = parse_twiml(await _ring(server, waiting, "/twilio/voice?attempt=3"))
        assert let_in.parameters["CallSid"] == waiting["CallSid"] and "Token" in let_in.parameters
        after = samples((await http.get("/metrics")).text)
        summary = (await http.get("/metrics/summary")).json()

    def grew(name: str) -> float:
        return after.get(name, 0.0) - before.get(name, 0.0)

    assert grew("tourline_calls_held_total") == len(held) + 2
    assert grew("tourline_calls_rejected_total") == 2  # asked to call back; the avatar
    assert summary["rejected"]["full"] >= 1 and summary["held"] >= len(held) + 2
