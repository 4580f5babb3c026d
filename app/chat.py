"""``tourline chat``: the agent over plain text, for trying it out and for scripted tests.

At a terminal it is interactive; with piped input it reads one caller line per input
line, prints each agent reply on one line, and exits 0 at end of input or when the agent
ends the conversation.
"""

from __future__ import annotations

from typing import TextIO

from app.identity import InvalidCallerId, normalize_caller_id
from app.services.agent_planner import AgentPlanner, PlannerKit
from app.settings import Settings


async def _say(stream, out: TextIO, prefix: str) -> None:
    sentences = [sentence async for sentence in stream]
    out.write(prefix + " ".join(sentences) + "\n")
    out.flush()


async def run_chat(settings: Settings, caller: str, inp: TextIO, out: TextIO) -> int:
    """Run one text conversation; returns the process exit code."""
    try:
        caller_id = normalize_caller_id(caller)
    except InvalidCallerId as exc:
        out.write(f"error: {exc}\n")
        return 2
    interactive = inp.isatty()
    kit = PlannerKit.build(settings)
    planner: AgentPlanner = kit.conversation(caller_id)
    prefix = "agent> " if interactive else ""
    await _say(planner.greet(), out, prefix)
    while not planner.ended:
        if interactive:
            out.write("you> ")
            out.flush()
        line = inp.readline()
        if not line:
            break
        text = line.strip()
        if not text:
            if interactive:
                continue
            await _say(planner.on_silence(), out, prefix)
            continue
        await _say(planner.respond(text), out, prefix)
    return 0
