"""Which words the recognizer is told to expect, question by question."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from app.planner.agent_planner import AgentPlanner, PlannerKit
from app.settings import Settings

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=ZoneInfo("America/New_York"))
BUILDINGS = {"21 West End", "Hudson 360", "Riverview Lofts"}


def _say(planner: AgentPlanner, text: str) -> str:
    async def reply() -> str:
        return " ".join([s async for s in planner.respond(text)])

    return asyncio.run(reply())


def _planner(tmp_path: Path) -> AgentPlanner:
    settings = Settings(data_dir=tmp_path, openai_api_key=None, database_url=None)
    planner = PlannerKit.build(settings, clock=lambda: NOW).conversation("+16465550142")

    async def greet() -> None:
        [s async for s in planner.greet()]

    asyncio.run(greet())
    return planner


def test_open_questions_lean_toward_buildings_and_the_name(tmp_path: Path) -> None:
    planner = _planner(tmp_path)
    assert set(planner.recognition_hints()) >= BUILDINGS  # the greeting asks an open question
    _say(planner, "This is Dana Lee")
    assert planner.state.awaiting == "property"
    assert BUILDINGS | {"Dana Lee"} <= set(planner.recognition_hints())


def test_closed_questions_get_no_hints(tmp_path: Path) -> None:
    """Whisper loops on hints when the answer is one short word ("Yes. Yes. Yes.")."""
    planner = _planner(tmp_path)
    _say(planner, "This is Dana Lee and I'd like to see Hudson 360")
    assert planner.state.awaiting == "tour_type"
    assert planner.recognition_hints() == []
    _say(planner, "in person, next Tuesday at 2 pm")
    assert planner.state.awaiting == "confirm", planner.state.awaiting
    assert planner.recognition_hints() == []
