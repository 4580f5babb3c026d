"""A stop in the middle of the agent's sentence: the sentence is cut (and kept as far as it was
heard), the goodbye is said whole, and the caller can't start a new turn over it.

Virtual time (``tests/voice/virtual.py``): a call of several seconds runs in milliseconds.
The real-socket version, with the real server and SIGTERM, is ``test_sigterm_goodbye.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from app.planner.agent_planner import PlannerKit
from app.settings import Settings
from app.web.server import SHUTDOWN_GOODBYE
from tests.voice.virtual import VirtualCall, virtual_call

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("America/New_York"))


@pytest.fixture
async def call(tmp_path: Path) -> AsyncIterator[VirtualCall]:
    planners = PlannerKit.build(Settings(data_dir=tmp_path), clock=lambda: NOW)
    async with virtual_call(tmp_path, planners, "CAstopping") as started:
        yield started


async def test_a_stop_mid_sentence_cuts_it_and_says_goodbye_whole(call: VirtualCall) -> None:
    await call.caller.wait(2.2)  # the greeting's first sentence has played; more is coming
    assert call.loop._speaking
    leaving = asyncio.create_task(call.loop.leave(SHUTDOWN_GOODBYE, within_s=30))
    await call.caller.say("Wait, what about parking?")  # over the goodbye: not a turn
    await call.caller.wait(8.0)

    assert leaving.done() and call.loop.finished.is_set(), "the goodbye never finished"
    assert len(call.phone.kinds("clear")) == 1, "only the greeting is cut, not the goodbye"
    assert call.phone.replies()[-1] == SHUTDOWN_GOODBYE
    greeting, goodbye = call.memory.exchanges
    assert greeting.interrupted and greeting.heard, "the cut greeting was not kept as heard"
    assert greeting.heard != greeting.text
    assert (goodbye.text, goodbye.interrupted) == (SHUTDOWN_GOODBYE, False)
    assert call.memory.said("user") == [], "words said over the goodbye became a turn"
