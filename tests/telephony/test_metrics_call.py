"""``GET /metrics`` and ``GET /readyz`` on a real server around a real phone call.

What an operator's Prometheus would scrape: the call counted while it ran and gone after the
hang-up, its voice-to-voice latency and STT time observed, in text the official parser
reads, and none of it without the API key. What a load balancer reads: with room for one
call, the server says it is full (503, "full") while that call is on the line, stays alive
(``/healthz`` 200), and takes calls again after the hang-up.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from sim.server import RunningServer, running_server
from sim.twilio import TEST_PUBLIC_URL, TEST_TOKEN, TwilioCall, fresh_number

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
    }
    with running_server(data, **env) as running:
        yield running


def samples(text: str) -> dict[str, float]:
    """Unlabelled samples by name (what these assertions read), parsed as Prometheus would."""
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if not sample.labels
    }


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
        assert before["tourline_active_calls"] == 0
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
