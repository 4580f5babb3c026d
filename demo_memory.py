"""Tourline memory demo: a caller talks once, calls back, and is greeted by name.

Runs offline against its own temporary data dir. Today it shows the planner half of
memory: the first conversation's PlannerState snapshot is handed to the second
conversation as a CallerContext, exactly what MemoryService.load_context() will return
once the memory engine (issue 4: durable exchanges, mem0 + embedded Qdrant) lands.

    python demo_memory.py
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from app.planner.context import CallerContext
from app.planner.state import PlannerState
from app.services.agent_planner import AgentPlanner, PlannerKit
from app.settings import Settings

CALLER = "+14155550101"
FIRST_CALL = [
    "hi, this is Dana Lee",
    "hudson three sixty",
    "a one bedroom",
    "early january",
    "two cats",
    "twenty five hundred",
    "i need to check my calendar, bye",
]


async def talk(planner: AgentPlanner, lines: list[str]) -> None:
    print("  agent:", " ".join([s async for s in planner.greet()]))
    for line in lines:
        print("  caller:", line)
        print("  agent:", " ".join([s async for s in planner.respond(line)]))
        if planner.ended:
            break


async def main() -> None:
    with tempfile.TemporaryDirectory() as data_dir:
        kit = PlannerKit.build(Settings(data_dir=Path(data_dir)))

        print("1. First call: Dana shares her preferences, then hangs up before booking.")
        first = kit.conversation(CALLER)
        await talk(first, FIRST_CALL)

        print("\n2. The conversation's PlannerState is snapshotted as JSON:")
        snapshot = first.state.to_json()
        print("  ", first.state.caller_facts())

        print("\n3. Dana calls back. Her context is loaded before the first word:")
        context = CallerContext(
            caller_id=CALLER,
            name=first.state.caller_name,
            state=PlannerState.from_json(snapshot),
        )
        second = kit.conversation(CALLER, context)
        await talk(
            second, ["yes please", "in person", "next tuesday at 11 am", "yes", "text", "no"]
        )

        print("\n4. Booked on the second call, without repeating herself:")
        print("  ", second.state.booking)


if __name__ == "__main__":
    asyncio.run(main())
