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
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from app.conversation import Conversation
from app.domain.context import CallerContext
from app.domain.identity import normalize_caller_id
from app.runtime import Runtime
from app.settings import Settings

FIRST_NUMBER = "(415) 555-0101"
SECOND_NUMBER = "+1 415 555 0101"  # the same phone, dialled in another format
FIRST_CALL = [
    "hi, this is Dana Lee",
    "hudson three sixty, a one bedroom, budget about twenty five hundred",
    "not sure yet, we're moving early january, with two cats",
    "i need to check my calendar, bye",
]
SECOND_CALL = ["yes please, in person next tuesday at 11 am", "yes", "no"]


async def talk(conversation: Conversation, lines: list[str]) -> list[float]:
    """A call by text; returns how long each durable write of an exchange took (ms)."""
    write_ms: list[float] = []

    def kept(write: Callable[[], None]) -> None:
        started = time.perf_counter()
        write()
        write_ms.append((time.perf_counter() - started) * 1000)

    async def agent(stream: AsyncIterator[str]) -> None:
        reply = " ".join([s async for s in stream])
        print("  agent:", reply)
        kept(lambda: conversation.agent_said(reply))
        conversation.snapshot()  # what the reply changed

    await agent(conversation.greet())
    for line in lines:
        print("  caller:", line)
        kept(lambda line=line: conversation.caller_said(line))
        await agent(conversation.respond(line))
        if conversation.ended:
            break
    return write_ms


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

        runtime = Runtime.open(settings, voice=False)
        memory = runtime.memory
        assert memory is not None
        print(f"1. Storing exchanges: Dana calls from {FIRST_NUMBER}, shares her wishes, hangs up.")
        print(f"  (a new caller: {normalize_caller_id(FIRST_NUMBER)}, nothing remembered yet)")
        first = await Conversation.open(
            runtime.planners, memory, caller_id=FIRST_NUMBER, call_id="demo-1", channel="phone"
        )
        write_ms = await talk(first, FIRST_CALL)
        print(
            f"  -> {len(write_ms)} exchanges written durably, "
            f"median {statistics.median(write_ms):.2f} ms each"
        )

        print("\n2. Saving planner state: a snapshot on every change, facts from what changed.")
        first.end()
        memory.flush()
        profile = memory.caller_profile(FIRST_NUMBER) or {}
        for fact in profile.get("facts", []):
            print(f"  {fact['slot']:<18} {fact['text']}")
        print(f"  call summary: {memory.get_user_summary(FIRST_NUMBER)}")

        print("\n3. Retrieving and searching context (everything is reopened first,")
        print("   as after a restart; the caller dials in another format):")
        runtime.close()
        runtime = Runtime.open(settings, voice=False)
        memory = runtime.memory
        assert memory is not None
        started = time.perf_counter()
        context = memory.load_context(SECOND_NUMBER)
        show_context(context, (time.perf_counter() - started) * 1000)
        for question in ("does she have pets?", "when does she want to move in?"):
            best = memory.search(SECOND_NUMBER, question, limit=1)
            answer = best[0]["memory"] if best else "(nothing)"
            print(f"  search({question!r}) -> {answer}")

        print("\n4. Loading it into the planner: the new conversation starts prefilled.")
        second = await Conversation.open(
            runtime.planners, memory, caller_id=SECOND_NUMBER, call_id="demo-2", channel="phone"
        )
        print(f"  {second.state.caller_facts()}")

        print("\n5. A second session: greeted by name, carries on where she left off.")
        await talk(second, SECOND_CALL)
        second.end()
        memory.flush()
        print(f"  booking: {second.state.booking}")
        booked = [m for m in memory.load_context(SECOND_NUMBER).memories if "code" in m]
        print(f"  memory now holds: {booked[0] if booked else '(no booking)'}")
        runtime.close()


if __name__ == "__main__":
    asyncio.run(main())
