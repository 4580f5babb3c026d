"""Fixtures for the LiveKit worker tests: real memory in a temp dir, a real planner kit.

Sessions run in LiveKit's own in-process test mode (an ``AgentSession`` with no room: text
in, text out), so no LiveKit server is needed. The planner's clock is pinned to 9 AM on
the next Monday, always a few days ahead of the real clock, so "this Saturday at 11" is a
free in-person slot and memory (which reads the real clock) sees the booking as upcoming.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from app.memory.service import MemoryService
from app.planner.agent_planner import PlannerKit
from app.settings import Settings

NY = ZoneInfo("America/New_York")


def next_monday_9am() -> datetime:
    today = datetime.now(NY)
    monday = today + timedelta(days=7 - today.weekday())
    return monday.replace(hour=9, minute=0, second=0, microsecond=0)


def offline_settings(data_dir: Path) -> Settings:
    """Settings that ignore the developer's environment (no cloud, no DATABASE_URL)."""
    return Settings(
        data_dir=data_dir,
        memory_mode="persistent",
        database_url=None,
        qdrant_url=None,
        openai_api_key=None,
        openai_base_url=None,
        stt_backend="local",
        tts_backend="local",
    )


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return offline_settings(tmp_path / "data")


@pytest.fixture
def memory(settings: Settings) -> Iterator[MemoryService]:
    service = MemoryService.open(settings)
    try:
        yield service
    finally:
        service.close()


@pytest.fixture
def now() -> datetime:
    return next_monday_9am()


@pytest.fixture
def kit(settings: Settings, memory: MemoryService, now: datetime) -> PlannerKit:
    return PlannerKit.build(settings, engine=memory.engine, clock=lambda: now)
