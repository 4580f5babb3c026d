"""The LLM planner against a real HTTP server on loopback that speaks chat completions.

The official ``openai`` client runs unmodified: streaming SSE, tool-call deltas split across
chunks, tool results sent back, errors and timeouts. Nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import gc
import ipaddress
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from app.domain.context import CallerContext
from app.domain.state import PlannerState
from app.domain.text import SentenceSplitter
from app.planner.agent_planner import AgentPlanner, PlannerKit
from app.planner.llm import LLMBrain
from app.settings import Settings
from tests.fakes import FakeOpenAIServer, ToolCall

NY = ZoneInfo("America/New_York")
NOW = datetime(2031, 5, 6, 9, 0, tzinfo=NY)  # a Tuesday morning
CALLER = "+12125550199"


def fixed_clock() -> datetime:
    return NOW


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test here may reach the internet: refuse any connection off 127.0.0.1."""
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "TOURLINE_LLM_MODEL"):
        monkeypatch.delenv(name, raising=False)
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def check(address: object) -> None:
        if isinstance(address, tuple) and address:
            host = str(address[0])
            try:
                if ipaddress.ip_address(host).is_loopback:
                    return
            except ValueError:
                pass
            raise ConnectionRefusedError(f"tests may not connect to {host}")

    def connect(self: socket.socket, address: object) -> None:
        check(address)
        return real_connect(self, address)  # type: ignore[arg-type]

    def connect_ex(self: socket.socket, address: object) -> int:
        check(address)
        return real_connect_ex(self, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)


@pytest.fixture
def llm() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as server:
        yield server


def build_kit(tmp_path: Path, llm: FakeOpenAIServer | None, **overrides: object) -> PlannerKit:
    options: dict[str, object] = {"data_dir": tmp_path}
    if llm is not None:
        options |= {"openai_base_url": llm.url, "openai_api_key": "test"}
    return PlannerKit.build(Settings(**options | overrides), clock=fixed_clock)


@pytest.fixture
def kit(tmp_path: Path, llm: FakeOpenAIServer) -> PlannerKit:
    return build_kit(tmp_path / "llm", llm)


async def collect(stream) -> list[str]:
    return [sentence async for sentence in stream]


async def start(kit: PlannerKit, context: CallerContext | None = None) -> AgentPlanner:
    planner = kit.conversation(CALLER, context)
    await collect(planner.greet())
    return planner


# ---------------------------------------------------------------------- the main path


async def test_tools_turn_books_a_tour_and_streams_sentences_in_order(
    kit: PlannerKit, llm: FakeOpenAIServer
) -> None:
    assert isinstance(kit.brain, LLMBrain)
    planner = await start(kit)
    llm.reply_tools(
        ToolCall(
            "update_preferences",
            {
                "caller_name": "Dana Lee",
                "property_id": "hudson-360",
                "unit_size": "1br",
                "pets": [{"kind": "cat", "count": 1}],
                "tour_type": "in_person",
            },
        ),
        content="Thanks, Dana! Let me check tomorrow at 11.",
    )
    llm.reply_tools(
        ToolCall(
            "check_availability",
            {
                "property_id": "hudson-360",
                "tour_type": "in_person",
                "date": "2031-05-07",
                "time": "11:00",
            },
        )
    )
    llm.reply_tools(ToolCall("book_tour", {}))
    llm.reply_text(
        "You're all set for an in-person tour of Hudson 360 on Wednesday, May 7 at 11 AM. "
        "Your confirmation code is on its way by text. Is there anything else?"
    )

    said = await collect(
        planner.respond(
            "This is Dana Lee, I'd like to see a one bedroom at Hudson 360 "
            "in person tomorrow at 11, I have a cat, book it"
        )
    )

    assert said == [
        "Thanks, Dana!",
        "Let me check tomorrow at 11.",
        "You're all set for an in-person tour of Hudson 360 on Wednesday, May 7 at 11 AM.",
        "Your confirmation code is on its way by text.",
        "Is there anything else?",
    ]
    state = planner.state
    assert state.caller_name == "Dana Lee"
    assert state.property_id == "hudson-360"
    assert state.unit_size == "1br"
    assert state.pets is not None and state.pets[0].kind == "cat"
    assert state.tour_time == datetime(2031, 5, 7, 11, tzinfo=NY)
    assert state.booking is not None and state.booking.status == "booked"
    assert {"caller_name", "property_id", "unit_size", "pets", "tour_type", "booking"} <= set(
        state.changed
    )
    assert state.last_question == "Is there anything else?"
    stored = kit.bookings.get(state.booking.confirmation_code)
    assert stored == state.booking
    assert stored.start == datetime(2031, 5, 7, 11, tzinfo=NY)
    assert kit.bookings.upcoming_for_caller(CALLER, NOW) == stored
    PlannerState.from_json(state.to_json())  # the state is still plain JSON

    # Each tool's result went back to the model, answering its own call id.
    assert len(llm.requests) == 4
    updated = llm.requests[1].tool_results
    assert updated[0]["content"]["updated"] == [
        "caller_name",
        "property_id",
        "unit_size",
        "pets",
        "tour_type",
    ]
    assistant = [m for m in llm.requests[1].messages if m["role"] == "assistant"][-1]
    assert assistant["tool_calls"][0]["function"]["name"] == "update_preferences"
    assert assistant["tool_calls"][0]["id"] == updated[0]["tool_call_id"]
    checked = llm.requests[2].tool_results[-1]["content"]
    assert checked["available"] is True
    assert checked["spoken"] == "Wednesday, May 7 at 11 AM"
    booked = llm.requests[3].tool_results[-1]["content"]
    assert booked["booked"] is True
    assert booked["confirmation_code"] == stored.confirmation_code
    assert booked["code_spelled"] == ", ".join(stored.confirmation_code)
    assert all(r.body["stream"] is True for r in llm.requests)
    assert llm.requests[0].headers["authorization"] == "Bearer test"
    assert set(llm.requests[0].tool_names) == {
        "check_availability",
        "book_tour",
        "update_preferences",
        "reschedule_tour",
        "cancel_tour",
        "end_call",
    }

    # The next turn carries the whole exchange, and the system prompt the new state.
    llm.reply_text("Great. Talk soon!")
    await collect(planner.respond("no that's it"))
    follow_up = llm.requests[4]
    roles = [m["role"] for m in follow_up.messages]
    assert roles == [
        "system",
        "assistant",
        "user",
        "assistant",
        "tool",
        "assistant",
        "tool",
        "assistant",
        "tool",
        "assistant",
        "user",
    ]
    assert stored.confirmation_code in follow_up.system_prompt
    assert follow_up.messages[-1] == {"role": "user", "content": "no that's it"}


async def test_system_prompt_has_state_memory_buildings_and_time(
    kit: PlannerKit, llm: FakeOpenAIServer
) -> None:
    context = CallerContext(
        caller_id=CALLER,
        name="Dana Lee",
        state=PlannerState(caller_name="Dana Lee", property_id="riverview-lofts", unit_size="2br"),
        memories=["Has a cat named Miso", "Works from home on Fridays"],
        last_summary="Asked about two-bedrooms at Riverview Lofts and parking.",
    )
    planner = kit.conversation(CALLER, context)
    greeting = await collect(planner.greet())
    assert greeting[0] == "Welcome back, Dana!"  # the rule planner's greeting, no LLM call
    assert llm.requests == []

    llm.reply_text("Great, let's pick a time. Would you like in person or virtual?")
    said = await collect(planner.respond("yes please"))
    assert said == ["Great, let's pick a time.", "Would you like in person or virtual?"]

    request = llm.requests[0]
    prompt = request.system_prompt
    assert request.messages[0]["role"] == "system"
    assert request.messages[1] == {"role": "assistant", "content": " ".join(greeting)}
    state = json.loads(
        prompt.split("(JSON; null means not known yet; tour times are local time):")[1]
    )
    assert state["caller_name"] == "Dana Lee"
    assert state["property_id"] == "riverview-lofts"
    assert state["unit_size"] == "2br"
    assert state["phone"] == CALLER
    for remembered in (
        "Name: Dana Lee",
        "Has a cat named Miso",
        "Works from home on Fridays",
        "Last call: Asked about two-bedrooms at Riverview Lofts and parking.",
    ):
        assert remembered in prompt
    assert "Tuesday, May 6, 2031, 9 AM (America/New_York)" in prompt
    assert "Wednesday, May 7: 2031-05-07 (tomorrow)" in prompt
    assert 'Hudson 360 (property_id "hudson-360")' in prompt
    assert "heated indoor pool" in prompt
    assert (
        "Monday to Saturday, starting every 60 minutes from 10 AM; the last start is 5 PM" in prompt
    )
    assert "{" + "state}" not in prompt and "{memory}" not in prompt
    assert "You are the phone assistant for the leasing office." in prompt
    assert not prompt.startswith("#")  # the template's comment header is not sent


async def test_upcoming_booking_is_in_the_memory_context(
    kit: PlannerKit, llm: FakeOpenAIServer
) -> None:
    booking = kit.desk.book(
        "21-west-end", "virtual", datetime(2031, 5, 8, 14, 30, tzinfo=NY), CALLER, "Sam"
    )
    context = CallerContext(caller_id=CALLER, name="Sam", upcoming_booking=booking)
    planner = kit.conversation(CALLER, context)
    await collect(planner.greet())
    llm.reply_text("Sure.")
    await collect(planner.respond("keep it"))
    prompt = llm.requests[0].system_prompt
    assert (
        "Upcoming tour: a virtual tour of 21 West End on Thursday, May 8 at 2:30 PM, "
        f"confirmation code {booking.confirmation_code}"
    ) in prompt


# ---------------------------------------------------------------------- streaming


async def test_first_sentence_is_yielded_while_the_stream_is_still_open(
    kit: PlannerKit, llm: FakeOpenAIServer
) -> None:
    planner = await start(kit)
    gate = threading.Event()
    llm.reply_text(
        "Hudson 360 is a great pick. It has a heated pool and a sundeck.",
        gate=gate,
        gate_after="pick. I",
    )
    stream = planner.respond("tell me about hudson")
    try:
        first = await asyncio.wait_for(anext(stream), timeout=5)
        assert first == "Hudson 360 is a great pick."
        assert not gate.is_set()  # the server is still holding the rest of the reply
        gate.set()
        rest = await collect(stream)
    finally:
        gate.set()
    assert rest == ["It has a heated pool and a sundeck."]


async def test_barge_in_stops_the_turn_and_keeps_only_what_was_said(
    kit: PlannerKit, llm: FakeOpenAIServer
) -> None:
    planner = await start(kit)
    gate = threading.Event()
    llm.reply_text(
        "Hudson 360 is a great pick. It has a heated pool and a sundeck.",
        gate=gate,
        gate_after="pick. I",
    )
    stream = planner.respond("tell me about hudson")
    try:
        assert await asyncio.wait_for(anext(stream), timeout=5) == "Hudson 360 is a great pick."
        await stream.aclose()  # the caller started talking
    finally:
        gate.set()
    llm.reply_text("Sure.")
    await collect(planner.respond("wait, what about pets"))
    assert llm.requests[1].messages[-3:] == [
        {"role": "user", "content": "tell me about hudson"},
        {"role": "assistant", "content": "Hudson 360 is a great pick."},
        {"role": "user", "content": "wait, what about pets"},
    ]


async def test_parallel_tool_calls_and_unavailable_time(
    kit: PlannerKit, llm: FakeOpenAIServer
) -> None:
    planner = await start(kit)
    llm.reply_tools(
        ToolCall("update_preferences", {"tour_type": "in_person", "property_id": "hudson-360"}),
        ToolCall(
            "check_availability",
            {
                "property_id": "hudson-360",
                "tour_type": "in_person",
                "date": "2031-05-11",
                "time": "11:00",
            },
        ),
        argument_chars=3,
    )
    llm.reply_text("Sunday is closed for in-person tours. I have Saturday at 5 PM. Does that work?")
    said = await collect(planner.respond("in person at hudson on sunday at 11"))
    assert said[0] == "Sunday is closed for in-person tours."
    results = llm.requests[1].tool_results
    assert [r["tool_call_id"] for r in results] == [
        call["id"] for call in llm.requests[1].messages[-3]["tool_calls"]
    ]
    check = results[1]["content"]
    assert check["available"] is False
    assert (
        check["problem"]
        == "In-person tours run Monday through Saturday, but I could do a virtual tour then."
    )
    assert len(check["alternatives"]) == 2
    assert planner.state.offered_slots == [
        datetime.fromisoformat(a["start"]) for a in check["alternatives"]
    ]
    assert planner.state.tour_time is None
    assert kit.bookings.upcoming_for_caller(CALLER, NOW) is None


async def test_bad_tool_arguments_go_back_to_the_model(
    kit: PlannerKit, llm: FakeOpenAIServer
) -> None:
    planner = await start(kit)
    llm.reply_tools(
        ToolCall("update_preferences", {"unit_size": "penthouse", "budget": 3000}),
        ToolCall("book_tour", {"property_id": "hudson-360"}),
        ToolCall("check_availability", '{"property_id": "hudson-360", '),
    )
    llm.reply_text("Sorry, what size are you looking for?")
    said = await collect(planner.respond("a penthouse for 3000"))
    assert said == ["Sorry, what size are you looking for?"]
    errors = [r["content"]["error"] for r in llm.requests[1].tool_results]
    assert "unit_size" in errors[0]
    assert "tour_type" in errors[1]
    assert errors[2] == "arguments are not valid JSON"
    assert planner.state.unit_size is None
    assert planner.state.budget is None  # all or nothing


# ---------------------------------------------------------------------- falling back


async def rule_reply(tmp_path: Path, text: str) -> list[str]:
    """What the deterministic planner says to ``text`` right after its greeting."""
    rules = build_kit(tmp_path / "rules", None)
    planner = await start(rules)
    return await collect(planner.respond(text))


async def test_server_error_falls_back_to_the_rule_planner(
    tmp_path: Path, kit: PlannerKit, llm: FakeOpenAIServer, caplog: pytest.LogCaptureFixture
) -> None:
    planner = await start(kit)
    llm.reply_error(500)
    with caplog.at_level(logging.WARNING, logger="app.planner.llm"):
        said = await collect(planner.respond("My name is Dana"))
    expected = await rule_reply(tmp_path, "My name is Dana")
    assert said == expected
    assert said[0] == "Nice to meet you, Dana."
    assert planner.state.caller_name == "Dana"
    assert planner.state.turns == 1
    assert "caller_name" in planner.state.changed
    assert any("rule planner answers" in r.getMessage() for r in caplog.records)
    assert len(llm.requests) == 1

    # The LLM is tried again next turn, and sees what the rule planner said.
    llm.reply_text("Which building would you like to see?")
    assert await collect(planner.respond("not sure")) == ["Which building would you like to see?"]
    assert llm.requests[1].messages[-2] == {"role": "assistant", "content": " ".join(said)}


async def test_timeout_falls_back_quickly(tmp_path: Path, llm: FakeOpenAIServer) -> None:
    kit = build_kit(tmp_path / "llm", llm, llm_timeout_s=0.3)
    planner = await start(kit)
    llm.reply_text("Far too late.", delay_s=60)  # never, in this test (ends at teardown)
    began = time.monotonic()
    said = await collect(planner.respond("My name is Dana"))
    # The caller is not left waiting for the LLM: a bound 10x the 0.3 s timeout, which a
    # loaded machine does not reach, and far below the reply's 60 s.
    assert time.monotonic() - began < 3.0
    assert said == await rule_reply(tmp_path, "My name is Dana")


async def test_broken_stream_keeps_what_was_said_and_falls_back(
    tmp_path: Path, kit: PlannerKit, llm: FakeOpenAIServer
) -> None:
    planner = await start(kit)
    llm.reply_text("Okay. Let me think about", stream_error="upstream overloaded")
    said = await collect(planner.respond("My name is Dana"))
    assert said[0] == "Okay."
    assert said[1:] == await rule_reply(tmp_path, "My name is Dana")


async def test_no_reply_left_and_empty_reply_fall_back(
    tmp_path: Path, kit: PlannerKit, llm: FakeOpenAIServer
) -> None:
    planner = await start(kit)
    llm.reply_text("")  # neither text nor tool calls
    said = await collect(planner.respond("My name is Dana"))
    assert said == await rule_reply(tmp_path, "My name is Dana")


# ---------------------------------------------------------------------- ending and silence


async def test_end_call_with_goodbye_ends_without_another_round_trip(
    kit: PlannerKit, llm: FakeOpenAIServer
) -> None:
    planner = await start(kit)
    llm.reply_tools(ToolCall("end_call"), content="Thanks for calling, goodbye!")
    said = await collect(planner.respond("that's all, bye"))
    assert said == ["Thanks for calling, goodbye!"]
    assert planner.ended
    assert len(llm.requests) == 1


async def test_end_call_alone_gets_the_goodbye_from_the_model(
    kit: PlannerKit, llm: FakeOpenAIServer
) -> None:
    planner = await start(kit)
    llm.reply_tools(ToolCall("end_call"))
    llm.reply_text("Bye now!")
    said = await collect(planner.respond("bye"))
    assert said == ["Bye now!"]
    assert planner.ended
    assert llm.requests[1].tool_results[0]["content"]["ok"] is True


async def test_end_call_then_failure_still_says_goodbye(
    kit: PlannerKit, llm: FakeOpenAIServer
) -> None:
    planner = await start(kit)
    llm.reply_tools(ToolCall("end_call"))
    llm.reply_error(503)
    said = await collect(planner.respond("bye"))
    assert said == ["Thanks for calling! Have a great day."]
    assert planner.ended


async def test_silence_uses_the_rule_planner_without_calling_the_model(
    tmp_path: Path, kit: PlannerKit, llm: FakeOpenAIServer
) -> None:
    planner = await start(kit)
    said = await collect(planner.on_silence())
    rules = await start(build_kit(tmp_path / "rules", None))
    assert said == await collect(rules.on_silence())
    assert said[0] == "Are you still there?"
    assert llm.requests == []


async def test_reschedule_and_cancel(kit: PlannerKit, llm: FakeOpenAIServer) -> None:
    booking = kit.desk.book(
        "hudson-360", "in_person", datetime(2031, 5, 7, 11, tzinfo=NY), CALLER, "Dana"
    )
    context = CallerContext(caller_id=CALLER, name="Dana", upcoming_booking=booking)
    planner = await start(kit, context)
    llm.reply_tools(ToolCall("reschedule_tour", {"date": "2031-05-08", "time": "3 PM"}))
    llm.reply_text("Done, Thursday at 3 PM.")
    await collect(planner.respond("move it to thursday at 3"))
    moved = planner.state.booking
    assert moved is not None and moved.start == datetime(2031, 5, 8, 15, tzinfo=NY)
    assert moved.confirmation_code == booking.confirmation_code
    assert kit.bookings.get(booking.confirmation_code) == moved

    llm.reply_tools(ToolCall("cancel_tour", {}))
    llm.reply_text("It's cancelled.")
    await collect(planner.respond("actually cancel it"))
    assert planner.state.booking is not None and planner.state.booking.status == "cancelled"
    assert kit.bookings.upcoming_for_caller(CALLER, NOW) is None


async def test_conversation_history_is_dropped_with_its_state(kit: PlannerKit) -> None:
    brain = kit.brain
    assert isinstance(brain, LLMBrain)
    planner = await start(kit)
    assert id(planner.state) in brain._conversations
    key = id(planner.state)
    del planner
    gc.collect()
    assert key not in brain._conversations


# ---------------------------------------------------------------------- sentence splitting


@pytest.mark.parametrize("step", [1, 3, 1000])
def test_sentence_splitter(step: int) -> None:
    text = (
        "Dr. Lee meets you at 11 a.m. Saturday at 21 West End Ave. on the corner. "
        'It\'s $2,950.50 a month! Is "Hudson 360" better? **Yes.** J. Smith agrees...\n'
        "- New line item"
    )
    splitter = SentenceSplitter()
    sentences = []
    for i in range(0, len(text), step):
        sentences += splitter.feed(text[i : i + step])
    sentences += splitter.flush()
    assert sentences == [
        "Dr. Lee meets you at 11 a.m. Saturday at 21 West End Ave. on the corner.",
        "It's $2,950.50 a month!",
        'Is "Hudson 360" better?',
        "Yes.",
        "J. Smith agrees...",
        "New line item",
    ]


def test_sentence_waits_for_the_next_word() -> None:
    splitter = SentenceSplitter()
    assert splitter.feed("See you at 11 a.m. ") == []
    assert splitter.feed("tomorrow. ") == []
    assert splitter.feed("Bye") == ["See you at 11 a.m. tomorrow."]
    assert splitter.flush() == ["Bye"]
