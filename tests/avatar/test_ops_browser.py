"""The dashboard's operations panel in Debian's headless Chromium: the ``/metrics`` figures
as tiles, and a call's turns drawn as a waterfall (SVG bars, one lane per stage).

The call is a timeline file in the server's data dir, written as the flight recorder writes
one (a real call's waterfall JSON is checked in ``tests/telephony/test_metrics_call.py``):
three turns, answered, taken back and without words, so the drawing is known in advance.
Needs ``/usr/bin/chromium`` (``make browser``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from playwright.async_api import expect

from sim.server import RunningServer
from sim.twilio import new_sid
from tests.avatar.conftest import API_KEY
from tests.avatar.test_browser import WAIT_MS, console_of, launch
from tests.telephony.test_admission import TIMELINE

pytestmark = pytest.mark.slow


async def test_the_dashboard_draws_a_call_s_turns_as_a_waterfall(
    keyed_server: RunningServer, screenshots: Path
) -> None:
    call_sid = new_sid("CA")
    calls = keyed_server.data_dir / "calls"
    calls.mkdir(exist_ok=True)
    lines = "".join(json.dumps(event) + "\n" for event in TIMELINE)
    (calls / f"{call_sid}.jsonl").write_text(lines, encoding="utf-8")

    async with launch() as browser:
        page = await browser.new_page(viewport={"width": 1280, "height": 900})
        console = console_of(page)
        await page.goto(f"{keyed_server.base_url}/dashboard")
        await expect(page.locator("#ops")).to_contain_text("need the API key", timeout=WAIT_MS)
        await page.locator("#api-key").fill(API_KEY)
        await page.locator("#use-key").click()

        capacity = page.locator('#ops [data-figure="calls"] .tile-value')
        await expect(capacity).to_have_text("0 / 1000", timeout=WAIT_MS)  # the harness's cap
        await expect(page.locator('#ops [data-figure="voice-to-voice p50"]')).to_be_visible()

        await page.locator(f'#ops button[data-waterfall="{call_sid}"]').click()
        chart = page.locator("#ops-waterfall svg.waterfall")
        await expect(chart).to_be_visible(timeout=WAIT_MS)
        turns = chart.locator("g.turn")
        await expect(turns).to_have_count(3)
        first = turns.nth(0)
        stages = first.locator("rect.bar")
        await expect(stages).to_have_count(5)
        names = [await stages.nth(i).get_attribute("data-stage") for i in range(5)]
        assert names == ["end_of_turn_wait", "stt", "planner", "tts", "send"]
        await expect(first).to_contain_text("v2v 710 ms")
        await expect(turns.nth(1)).to_have_class("turn taken-back")
        # Bars are drawn to scale: the 600 ms wait is wider than the 4 ms plan.
        wait = await stages.nth(0).bounding_box()
        plan = await stages.nth(2).bounding_box()
        assert wait is not None and plan is not None and wait["width"] > 20 * plan["width"]
        await page.screenshot(path=screenshots / "6-dashboard-operations.png", full_page=True)
        assert not [line for line in console if line.startswith("pageerror")], console
