"""The virtual call every loop test starts from: the rule planner on a fixed morning."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from app.planner.agent_planner import PlannerKit
from app.settings import Settings
from tests.voice.virtual import VirtualCall, virtual_call

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("America/New_York"))
"""A Monday morning: "tomorrow at 2 PM" is a bookable Tuesday slot."""


@pytest.fixture(scope="module")
def planners(tmp_path_factory: pytest.TempPathFactory) -> PlannerKit:
    data_dir = tmp_path_factory.mktemp("planner")
    return PlannerKit.build(Settings(data_dir=data_dir), clock=lambda: NOW)


@pytest.fixture
async def call(tmp_path: Path, planners: PlannerKit) -> AsyncIterator[VirtualCall]:
    async with virtual_call(tmp_path, planners) as started:
        yield started
