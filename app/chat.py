"""``tourline chat``: the agent over plain text, for trying it out and for scripted tests.

At a terminal it is interactive; with piped input it reads one caller line per input
line, prints each agent reply on one line, and exits 0 at end of input or when the agent
ends the conversation.

A chat is a conversation like a phone call: the caller's memory is loaded before the first
word, every line and every PlannerState change is recorded, and the call is ended (and
consolidated) on exit. So someone who chatted by text is greeted by name on the phone.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import TextIO

from app.identity import InvalidCallerId, normalize_caller_id
from app.memory.owner_lock import EmbeddedStoreLockedError
from app.services.agent_planner import AgentPlanner, PlannerKit
from app.services.memory_service import MemoryService
from app.settings import Settings

CHANNEL = "chat"
EXIT_STORE_LOCKED = 3


class _Conversation:
    """One chat: the planner plus its memory bookkeeping."""

    def __init__(self, memory: MemoryService, planner: AgentPlanner, call_id: str) -> None:
        self.memory = memory
        self.planner = planner
        self.call_id = call_id
        self.caller_id = planner.caller_id

    async def say(self, stream: AsyncIterator[str], out: TextIO, prefix: str) -> None:
        sentences = [sentence async for sentence in stream]
        reply = " ".join(sentences)
        out.write(prefix + reply + "\n")
        out.flush()
        self.memory.record_exchange(self.caller_id, self.call_id, CHANNEL, "agent", reply)
        if self.planner.state.changed or self.planner.state.ended:
            self.memory.save_snapshot(self.caller_id, self.call_id, self.planner.state)

    def heard(self, text: str) -> None:
        self.memory.record_exchange(self.caller_id, self.call_id, CHANNEL, "user", text)


async def run_chat(settings: Settings, caller: str, inp: TextIO, out: TextIO) -> int:
    """Run one text conversation; returns the process exit code."""
    try:
        caller_id = normalize_caller_id(caller)
    except InvalidCallerId as exc:
        out.write(f"error: {exc}\n")
        return 2
    try:
        memory = MemoryService.open(settings)
    except EmbeddedStoreLockedError as exc:
        out.write(f"error: {exc}\n")
        out.flush()
        return EXIT_STORE_LOCKED
    try:
        kit = PlannerKit.build(settings, engine=memory.engine)
        context = memory.load_context(caller_id)
        planner = kit.conversation(caller_id, context)
        conversation = _Conversation(memory, planner, f"chat-{uuid.uuid4().hex[:16]}")
        memory.start_call(caller_id, conversation.call_id, CHANNEL)
        try:
            await _talk(conversation, inp, out)
        finally:
            memory.end_call(caller_id, conversation.call_id, planner.state)
    finally:
        memory.close()
    return 0


async def _talk(conversation: _Conversation, inp: TextIO, out: TextIO) -> None:
    planner = conversation.planner
    interactive = inp.isatty()
    prefix = "agent> " if interactive else ""
    await conversation.say(planner.greet(), out, prefix)
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
            await conversation.say(planner.on_silence(), out, prefix)
            continue
        conversation.heard(text)
        await conversation.say(planner.respond(text), out, prefix)
