"""Tourline memory demo: a caller talks once, calls back, and is greeted by name.

Runs offline on a fresh install, without the server, against its own temporary data dir,
and narrates the five things memory does:

1. storing exchanges (durably, before the agent moves on),
2. saving planner state (snapshots, and the facts they turn into),
3. retrieving and searching context,
4. loading it into the planner,
5. a second session that greets the caller by name and carries on.

    python demo_memory.py
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from app.domain.context import CallerContext
from app.memory.service import MemoryService
from app.planner.agent_planner import AgentPlanner, PlannerKit
from app.settings import Settings

FIRST_NUMBER = "(415) 555-0101"
SECOND_NUMBER = "+1 415 555 0101"  # the same phone, dialled in another format
FIRST_CALL = [
    "hi, this is Dana Lee",
    "hudson three sixty, a one bedroom, budget about twenty five hundred",
    "not sure yet, we're moving early january, with two cats",
    "i need to check my calendar, bye",
]
SECOND_CALL = ["yes please, in person next tuesday at 11 am", "yes", "text", "no"]


class Session:
    """One conversation wired to memory the way every channel does it."""

    def __init__(self, memory: MemoryService, planner: AgentPlanner, call_id: str) -> None:
        self.memory = memory
        self.planner = planner
        self.call_id = call_id
        self.write_ms: list[float] = []
        memory.start_call(planner.caller_id, call_id, "phone")

    def record(self, role: str, text: str) -> None:
        started = time.perf_counter()
        self.memory.record_exchange(self.planner.caller_id, self.call_id, "phone", role, text)
        self.write_ms.append((time.perf_counter() - started) * 1000)

    async def talk(self, lines: list[str]) -> None:
        await self._agent(self.planner.greet())
        for line in lines:
            print("  caller:", line)
            self.record("user", line)
            await self._agent(self.planner.respond(line))
            if self.planner.ended:
                break

    async def _agent(self, stream) -> None:
        reply = " ".join([s async for s in stream])
        print("  agent:", reply)
        self.record("agent", reply)
        if self.planner.state.changed:
            self.memory.save_snapshot(self.planner.caller_id, self.call_id, self.planner.state)

    def hang_up(self) -> None:
        self.memory.end_call(self.planner.caller_id, self.call_id, self.planner.state)


def show_context(context: CallerContext, took_ms: float) -> None:
    print(f"  load_context({SECOND_NUMBER!r}) took {took_ms:.1f} ms and returned:")
    print(f"    caller id:    {context.caller_id}")
    print(f"    name:         {context.name}")
    print("    memories:")
    for memory in context.memories:
        print(f"      - {memory}")
    print(f"    last summary: {context.last_summary}")
    print(f"    upcoming:     {context.upcoming_booking}")


async def main() -> None:
    with tempfile.TemporaryDirectory(prefix="tourline-demo-") as tmp:
        settings = Settings(
            data_dir=Path(tmp),
            memory_mode="persistent",
            database_url=None,
            qdrant_url=None,
            openai_api_key=None,
            openai_base_url=None,
        )
        print(f"Tourline memory demo (offline, data in {tmp}, deleted at the end)\n")

        memory = MemoryService.open(settings)
        kit = PlannerKit.build(settings, engine=memory.engine)
        print(f"1. Storing exchanges: Dana calls from {FIRST_NUMBER}, shares her wishes, hangs up.")
        context = memory.load_context(FIRST_NUMBER)
        print(f"  (a new caller: {context.caller_id}, nothing remembered yet)")
        first = Session(memory, kit.conversation(context.caller_id, context), "demo-1")
        await first.talk(FIRST_CALL)
        print(
            f"  -> {len(first.write_ms)} exchanges written durably, "
            f"median {statistics.median(first.write_ms):.2f} ms each"
        )

        print("\n2. Saving planner state: a snapshot on every change, facts from what changed.")
        first.hang_up()
        memory.flush()
        profile = memory.caller_profile(FIRST_NUMBER) or {}
        for fact in profile.get("facts", []):
            print(f"  {fact['slot']:<18} {fact['text']}")
        print(f"  call summary: {memory.get_user_summary(FIRST_NUMBER)}")

        print("\n3. Retrieving and searching context (the memory service is reopened first,")
        print("   as after a restart; the caller dials in another format):")
        memory.close()
        memory = MemoryService.open(settings)
        started = time.perf_counter()
        context = memory.load_context(SECOND_NUMBER)
        show_context(context, (time.perf_counter() - started) * 1000)
        for question in ("does she have pets?", "when does she want to move in?"):
            best = memory.search(SECOND_NUMBER, question, limit=1)
            answer = best[0]["memory"] if best else "(nothing)"
            print(f"  search({question!r}) -> {answer}")

        print("\n4. Loading it into the planner: the new conversation starts prefilled.")
        kit = PlannerKit.build(settings, engine=memory.engine)
        planner = kit.conversation(context.caller_id, context)
        print(f"  {planner.state.caller_facts()}")

        print("\n5. A second session: greeted by name, carries on where she left off.")
        second = Session(memory, planner, "demo-2")
        await second.talk(SECOND_CALL)
        second.hang_up()
        memory.flush()
        print(f"  booking: {planner.state.booking}")
        booked = [m for m in memory.load_context(SECOND_NUMBER).memories if "code" in m]
        print(f"  memory now holds: {booked[0] if booked else '(no booking)'}")
        memory.close()


if __name__ == "__main__":
    asyncio.run(main())
