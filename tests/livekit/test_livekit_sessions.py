"""The Tourline agent in LiveKit's in-process test mode: greeting, booking, correction, memory.

Each test runs a real ``AgentSession`` (no room, no server: ``session.run(user_input=...)``
and LiveKit's ``RunResult`` assertions) with the real planner and a real MemoryService in
a temp data dir. Replies are checked by their words; LiveKit's ``judge`` needs an LLM.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from types import SimpleNamespace

from livekit import rtc
from livekit.agents import AgentSession, RunResult, llm
from livekit.agents.voice.events import ConversationItemAddedEvent

from app.channels.livekit.call_record import CHANNEL, CallRecord
from app.channels.livekit.caller import caller_id_of
from app.channels.livekit.session import turn_handling
from app.channels.livekit.tour_agent import TourAgent
from app.conversation import Conversation
from app.domain.state import PlannerState
from app.memory.service import MemoryService
from app.planner.agent_planner import PlannerKit

CALLER = "+14155550101"


def reply(result: RunResult) -> str:
    """The one assistant message of a turn (asserted as LiveKit's testing API does)."""
    message = result.expect.next_event().is_message(role="assistant").event().item
    return message.text_content or ""


def new_session() -> AgentSession:
    return AgentSession(turn_handling=turn_handling())


def agent_for(
    kit: PlannerKit, memory: MemoryService | None, call_id: str, caller: str = CALLER
) -> TourAgent:
    return TourAgent(kit=kit, caller_id=caller, call_id=call_id, memory=memory)


async def greet(session: AgentSession, agent: TourAgent) -> str:
    result = await session.start(agent, capture_run=True)
    result.expect.skip_next_event_if(type="agent_handoff")
    return reply(result)


async def say(session: AgentSession, text: str) -> str:
    result = await session.run(user_input=text)
    text_reply = reply(result)
    result.expect.no_more_events()
    return text_reply


async def wait_closed(closed: asyncio.Event) -> None:
    await asyncio.wait_for(closed.wait(), timeout=10)


def when(now: datetime, days: int, hour: int) -> str:
    """How the planner says a time: "Saturday, November 28 at 11 AM"."""
    day = now + timedelta(days=days)
    return f"{day:%A, %B} {day.day} at {hour % 12 or 12} {'AM' if hour < 12 else 'PM'}"


async def test_new_caller_is_greeted_by_the_planner(kit: PlannerKit, memory: MemoryService):
    async with new_session() as session:
        greeting = await greet(session, agent_for(kit, memory, "lk-greet"))
    assert "Thanks for calling the leasing office!" in greeting
    assert "May I have your name?" in greeting


async def test_books_a_tour_and_hangs_up_after_goodbye(
    kit: PlannerKit, memory: MemoryService, now: datetime
):
    saturday_11 = when(now, 5, 11)  # the planner's "now" is a Monday
    closed = asyncio.Event()
    agent = agent_for(kit, memory, "lk-book")
    async with new_session() as session:
        session.on("close", lambda ev: closed.set())
        await greet(session, agent)
        assert "Nice to meet you, Dana." in await say(session, "hi my name is dana lee")
        reply = await say(session, "hudson three sixty, a two bedroom, budget twenty five hundred")
        assert "Hudson 360" in reply and "a budget of $2,500 a month" in reply
        await say(session, "in person")
        confirm = await say(session, "this saturday at eleven in the morning")
        assert f"an in-person tour of Hudson 360, on {saturday_11}" in confirm
        assert "Your confirmation code is" in await say(session, "yes")
        await say(session, "text")
        goodbye = await say(session, "no that's all")
        assert "See you on" in goodbye
        await wait_closed(closed)  # the planner ended the call: LiveKit closes

    assert agent.planner is not None and agent.planner.ended
    booking = memory.bookings.upcoming_for_caller(CALLER, datetime.now(now.tzinfo))
    assert booking is not None
    assert booking.property_id == "hudson-360"
    assert booking.tour_type == "in_person"
    assert booking.start.astimezone(now.tzinfo) == (now + timedelta(days=5)).replace(hour=11)

    exchanges = memory.store.exchanges_of_call("lk-book")
    assert {e.channel for e in exchanges} == {"livekit"}
    assert [e.role for e in exchanges[:3]] == ["agent", "user", "agent"]
    assert exchanges[1].text == "hi my name is dana lee"
    assert exchanges[-1].role == "agent" and "See you on" in exchanges[-1].text
    call = memory.store.get_call("lk-book")
    assert call is not None and call.ended_at is not None
    snapshot = memory.store.latest_snapshot(CALLER)
    assert snapshot is not None
    assert PlannerState.from_json(snapshot.state_json).caller_name == "Dana Lee"


async def test_correction_changes_the_building(kit: PlannerKit, memory: MemoryService):
    agent = agent_for(kit, memory, "lk-fix")
    async with new_session() as session:
        await greet(session, agent)
        await say(session, "my name is kim")
        assert "Hudson 360" in await say(session, "hudson three sixty")
        fixed = await say(session, "actually, make that Riverview Lofts")
        assert "I've changed that to Riverview Lofts" in fixed
        assert agent.planner is not None
        assert agent.planner.state.property_id == "riverview-lofts"


async def test_returning_caller_is_greeted_by_name(kit: PlannerKit, memory: MemoryService):
    async with new_session() as session:
        await greet(session, agent_for(kit, memory, "lk-first"))
        await say(session, "hi my name is dana lee")
        await say(session, "hudson three sixty")
    assert memory.store.get_call("lk-first").ended_at is not None  # closed with the session

    # The same person calls back through LiveKit SIP, the number formatted differently.
    sip = SimpleNamespace(
        identity="sip_caller",
        kind=rtc.ParticipantKind.PARTICIPANT_KIND_SIP,
        attributes={"sip.phoneNumber": "(415) 555-0101"},
        metadata="",
    )
    caller = caller_id_of(sip)
    assert caller == CALLER
    async with new_session() as session:
        greeting = await greet(session, agent_for(kit, memory, "lk-second", caller))
    assert "Welcome back, Dana!" in greeting
    assert "Hudson 360" in greeting


async def test_silence_gets_check_ins_then_a_goodbye_that_ends_the_session(kit: PlannerKit):
    agent = TourAgent(kit=kit, caller_id=CALLER, call_id="lk-quiet", silence_timeout_s=0.2)
    said: list[str] = []
    closed = asyncio.Event()

    def added(ev: ConversationItemAddedEvent) -> None:
        if isinstance(ev.item, llm.ChatMessage) and ev.item.role == "assistant":
            said.append(ev.item.text_content or "")

    async with new_session() as session:
        session.on("conversation_item_added", added)
        session.on("close", lambda ev: closed.set())
        await greet(session, agent)
        await wait_closed(closed)
    assert "still there" in said[1] and "still there" in said[2], said
    assert said[-1].endswith("Goodbye!")
    assert len(said) == 4  # greeting, two check-ins, goodbye: then nothing more


def test_interrupted_reply_keeps_what_was_heard(kit: PlannerKit, memory: MemoryService):
    full = "Got it: Hudson 360. What size are you looking for?"
    conversation = Conversation(kit.conversation(CALLER), memory, call_id="lk-cut", channel=CHANNEL)
    memory.start_call(CALLER, "lk-cut", CHANNEL)
    record = CallRecord(conversation, full_reply=lambda: full)
    cut = llm.ChatMessage(role="assistant", content=["Got it: Hudson 360."], interrupted=True)
    record._on_item(ConversationItemAddedEvent(item=cut))
    record.end()

    (exchange,) = memory.store.exchanges_of_call("lk-cut")
    assert exchange.interrupted
    assert exchange.text == full
    assert exchange.heard == "Got it: Hudson 360."
    assert memory.store.get_call("lk-cut").ended_at is not None


async def test_without_memory_the_call_still_works(kit: PlannerKit):
    async with new_session() as session:
        greeting = await greet(session, agent_for(kit, None, "lk-nomem"))
        assert "May I have your name?" in greeting
        assert "Nice to meet you, Sam." in await say(session, "i'm sam")
