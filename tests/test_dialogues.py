"""Scripted phone conversations, run through the real planner and a real booking store.

Each dialogue in ``fixtures/dialogues.yaml`` gives a fixed "now", who is calling (and what
memory remembers about them), slots other callers already hold, the caller's lines, and
what must be true at the end: the PlannerState fields, the booking outcome, whether the
call ended. Lines come in both recognizer styles: lowercase number words ("hudson three
sixty") and punctuated digits ("a 2-bedroom, around $3,200.").
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from sqlalchemy import Engine

from app.domain.context import CallerContext
from app.domain.state import Booking, PlannerState
from app.planner.agent_planner import AgentPlanner, PlannerKit
from app.settings import Settings
from app.stores.database import create_db_engine, init_schema

NY = ZoneInfo("America/New_York")
FIXTURE = Path(__file__).parent / "fixtures" / "dialogues.yaml"
DEFAULT_NOW = "2026-11-23T09:00"  # a Monday
OTHER_CALLER = "+12125550000"
# Dialogues that touch the booking store in every way: run on PostgreSQL too.
POSTGRES_TAGS = {"booking", "taken", "reschedule", "cancel"}
OUTCOMES = {"none", "booked", "kept", "rescheduled", "cancelled"}


def _load() -> list[dict[str, Any]]:
    return yaml.safe_load(FIXTURE.read_text())["dialogues"]


DIALOGUES = _load()


def local(value: Any) -> datetime:
    """A fixture timestamp ("2026-11-28T11:00") in the buildings' timezone."""
    parsed = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return parsed.replace(tzinfo=NY) if parsed.tzinfo is None else parsed.astimezone(NY)


# ---------------------------------------------------------------- running one dialogue


@dataclass
class Run:
    """One played-out dialogue: the planner at the end and what was said."""

    planner: AgentPlanner
    kit: PlannerKit
    transcript: list[str] = field(default_factory=list)
    replies: list[str] = field(default_factory=list)  # replies[0] is the greeting
    prebooked: Booking | None = None  # the returning caller's upcoming tour, if any
    turns_played: int = 0

    def show(self) -> str:
        return "\n".join(self.transcript)


async def _collect(stream: AsyncIterator[str]) -> str:
    return " ".join([sentence async for sentence in stream])


def _context(
    kit: PlannerKit, spec: dict[str, Any], caller: str
) -> tuple[CallerContext, Booking | None]:
    """A returning caller's memory; an upcoming booking is really booked in the store."""
    state = PlannerState.model_validate(spec["state"]) if "state" in spec else None
    booking: Booking | None = None
    if "booking" in spec:
        b = spec["booking"]
        booking = kit.bookings.book(
            b["property_id"], b["tour_type"], local(b["start"]), caller, spec.get("name")
        )
    context = CallerContext(
        caller_id=caller,
        name=spec.get("name"),
        state=state,
        memories=list(spec.get("memories", [])),
        upcoming_booking=booking,
    )
    return context, booking


async def play(dialogue: dict[str, Any], kit: PlannerKit) -> Run:
    caller = str(dialogue.get("caller", "+14155550101"))
    for slot in dialogue.get("prebooked", []):
        kit.bookings.book(
            slot["property_id"],
            slot.get("tour_type", "in_person"),
            local(slot["start"]),
            OTHER_CALLER,
            "Someone Else",
        )
    context, booking = (None, None)
    if "context" in dialogue:
        context, booking = _context(kit, dialogue["context"], caller)
    planner = kit.conversation(caller, context)
    run = Run(planner, kit, prebooked=booking)
    greeting = await _collect(planner.greet())
    run.transcript.append(f"AGENT: {greeting}")
    run.replies.append(greeting)
    for turn in dialogue["turns"]:
        turn = {"say": turn} if isinstance(turn, str) else turn
        if "silence" in turn:
            run.transcript.append("CALLER: (silence)")
            reply = await _collect(planner.on_silence())
        elif "dtmf" in turn:
            run.transcript.append(f"CALLER: (keypad {turn['dtmf']})")
            reply = await _collect(planner.respond_dtmf(str(turn["dtmf"])))
        else:
            run.transcript.append(f"CALLER: {turn['say']}")
            reply = await _collect(planner.respond(turn["say"]))
        run.transcript.append(f"AGENT: {reply}   [awaiting {planner.state.awaiting}]")
        run.replies.append(reply)
        run.turns_played += 1
        _check_reply(run, turn, reply)
        if planner.ended:
            break
    return run


def _check_reply(run: Run, turn: dict[str, Any], reply: str) -> None:
    for wanted in _as_list(turn.get("expect")):
        assert wanted in reply, f"expected {wanted!r} in the reply\n\n{run.show()}"
    for unwanted in _as_list(turn.get("not_expect")):
        assert unwanted not in reply, f"did not expect {unwanted!r} in the reply\n\n{run.show()}"


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


# ---------------------------------------------------------------- checking the end state


def _normalize(name: str, value: Any) -> Any:
    if value is None:
        return None
    if name == "move_in":
        return value if isinstance(value, date) else date.fromisoformat(str(value))
    if name == "tour_time":
        return local(value)
    if name == "pets":
        return [p if isinstance(p, dict) else p.model_dump() for p in value]
    return value


def check_state(run: Run, expected: dict[str, Any]) -> None:
    state = run.planner.state
    for name, wanted in expected.items():
        actual = getattr(state, name)
        if name == "pets" and actual is not None:
            actual = [p.model_dump() for p in actual]
            wanted = [{"count": 1, **p} for p in wanted] if wanted else wanted
        assert _normalize(name, actual) == _normalize(name, wanted), (
            f"state.{name} is {actual!r}, expected {wanted!r}\n\n{run.show()}"
        )


def check_outcome(run: Run, outcome: dict[str, Any]) -> None:
    state = run.planner.state
    booking = state.booking
    status = outcome["status"]
    if status == "none":
        assert booking is None, f"expected no booking, got {booking}\n\n{run.show()}"
        upcoming = run.kit.bookings.upcoming_for_caller(run.planner.caller_id, run.kit.desk.now())
        assert upcoming is None, f"the store holds {upcoming}\n\n{run.show()}"
        return
    assert booking is not None, f"expected a {status} booking, got none\n\n{run.show()}"
    stored = run.kit.bookings.get(booking.confirmation_code)
    assert stored == booking, f"state booking {booking} != stored {stored}\n\n{run.show()}"
    wanted_status = "cancelled" if status == "cancelled" else "booked"
    assert booking.status == wanted_status, f"booking is {booking.status}\n\n{run.show()}"
    _check_which_booking(run, booking, status)
    for name in ("property_id", "tour_type"):
        if name in outcome:
            assert getattr(booking, name) == outcome[name], (
                f"booking.{name} is {getattr(booking, name)!r}, expected {outcome[name]!r}"
                f"\n\n{run.show()}"
            )
    if "start" in outcome:
        assert booking.start == local(outcome["start"]), (
            f"booking starts {booking.start}, expected {outcome['start']}\n\n{run.show()}"
        )


def check_messages(run: Run, expected: list[str]) -> None:
    """The outbox rows the call queued: what the agent promised is what will be sent."""
    outbox = run.kit.desk.outbox
    assert outbox is not None
    found = [f"{m.kind} {m.channel} {m.address} {m.status}" for m in outbox.all()]
    assert found == expected, f"outbox holds {found}\n\n{run.show()}"


def _check_which_booking(run: Run, booking: Booking, status: str) -> None:
    """Kept, moved and cancelled tours are the caller's earlier one; a new one is new."""
    earlier = run.prebooked
    if status == "booked":
        assert earlier is None or booking.confirmation_code != earlier.confirmation_code
        return
    assert earlier is not None, "kept / rescheduled / cancelled need a context booking"
    assert booking.confirmation_code == earlier.confirmation_code, (
        f"expected the caller's earlier booking {earlier.confirmation_code}\n\n{run.show()}"
    )
    if status == "rescheduled":
        assert booking.start != earlier.start
        assert run.kit.bookings.is_free(earlier.property_id, earlier.start), "old slot not freed"
    if status == "kept":
        assert booking == earlier, f"the tour changed: {booking}\n\n{run.show()}"


def check(run: Run, dialogue: dict[str, Any]) -> None:
    expect = dialogue["expect"]
    unplayed = dialogue["turns"][run.turns_played :]
    assert not any(isinstance(t, dict) and "expect" in t for t in unplayed), (
        f"the call ended before turns with expectations\n\n{run.show()}"
    )
    for index, wanted in (expect.get("replies") or {}).items():
        reply = run.replies[int(index)] if int(index) < len(run.replies) else ""
        for text in _as_list(wanted):
            assert text in reply, f"expected {text!r} in reply {index}\n\n{run.show()}"
    check_state(run, expect.get("state", {}))
    check_outcome(run, expect.get("outcome", {"status": "none"}))
    if "messages" in expect:
        check_messages(run, expect["messages"])
    assert run.planner.ended == expect.get("ended", False), (
        f"ended is {run.planner.ended}, expected {expect.get('ended', False)}\n\n{run.show()}"
    )


# ---------------------------------------------------------------- the tests


# What a dialogue's line can send (``messaging:`` in the fixture; default both). Nothing is
# sent here (no sender runs): the agent only offers what is configured.
TEXT = {
    "twilio_account_sid": "AC" + "0" * 32,
    "twilio_auth_token": "t",
    "twilio_from_number": "+12125550100",
}
EMAIL = {"smtp_url": "smtp://127.0.0.1:2525", "smtp_from": "tours@example.com"}
NO_MESSAGING: dict[str, Any] = dict.fromkeys(
    ("twilio_account_sid", "twilio_auth_token", "twilio_from_number", "smtp_url", "smtp_from")
)
MESSAGING = {"both": {**TEXT, **EMAIL}, "text": TEXT, "email": EMAIL, "none": {}}


def _kit(
    tmp_path: Path, now: datetime, engine: Engine | None = None, messaging: str = "both"
) -> PlannerKit:
    settings = Settings(
        data_dir=tmp_path,
        openai_api_key=None,
        openai_base_url=None,
        database_url=None,
        **{**NO_MESSAGING, **MESSAGING[messaging]},
    )
    return PlannerKit.build(settings, engine=engine, clock=lambda: now)


def _messaging(dialogue: dict[str, Any]) -> str:
    return str(dialogue.get("messaging", "both"))


def _now(dialogue: dict[str, Any]) -> datetime:
    return local(dialogue.get("now", DEFAULT_NOW))


def run_dialogue(dialogue: dict[str, Any], kit: PlannerKit) -> Run:
    run = asyncio.run(play(dialogue, kit))
    check(run, dialogue)
    return run


@pytest.mark.parametrize("dialogue", DIALOGUES, ids=[d["name"] for d in DIALOGUES])
def test_dialogue_sqlite(dialogue: dict[str, Any], tmp_path: Path) -> None:
    run_dialogue(dialogue, _kit(tmp_path, _now(dialogue), messaging=_messaging(dialogue)))


POSTGRES_DIALOGUES = [d for d in DIALOGUES if POSTGRES_TAGS & set(d.get("tags", []))]


@pytest.fixture
def postgres_engine(postgres_url: str) -> Iterator[Engine]:
    engine = create_db_engine(postgres_url)
    init_schema(engine)
    yield engine
    engine.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize(
    "dialogue", POSTGRES_DIALOGUES, ids=[d["name"] for d in POSTGRES_DIALOGUES]
)
def test_dialogue_postgres(
    dialogue: dict[str, Any], tmp_path: Path, postgres_engine: Engine
) -> None:
    kit = _kit(tmp_path, _now(dialogue), engine=postgres_engine, messaging=_messaging(dialogue))
    run_dialogue(dialogue, kit)


# ---------------------------------------------------------------- the fixture itself

_DIGIT = re.compile(r"\d")


def _caller_lines(dialogue: dict[str, Any]) -> list[str]:
    return [
        t if isinstance(t, str) else t["say"]
        for t in dialogue["turns"]
        if isinstance(t, str) or "say" in t
    ]


def test_fixture_has_enough_dialogues_in_both_styles() -> None:
    names = [d["name"] for d in DIALOGUES]
    assert len(names) == len(set(names)), "dialogue names must be unique"
    styles = [d["style"] for d in DIALOGUES]
    assert len(DIALOGUES) >= 40
    assert set(styles) == {"words", "digits"}
    assert abs(styles.count("words") - styles.count("digits")) <= 2, "keep the styles balanced"
    assert len(POSTGRES_DIALOGUES) >= 5


@pytest.mark.parametrize("dialogue", DIALOGUES, ids=[d["name"] for d in DIALOGUES])
def test_fixture_dialogue_is_complete(dialogue: dict[str, Any]) -> None:
    assert {"name", "style", "turns", "expect"} <= set(dialogue)
    assert {"state", "outcome", "ended"} <= set(dialogue["expect"]), "assert the whole ending"
    assert dialogue["expect"]["outcome"]["status"] in OUTCOMES
    for turn in dialogue["turns"]:
        spoken = turn if isinstance(turn, str) else turn.get("say", "")
        assert isinstance(spoken, str), f"quote YAML booleans like yes/no: {turn!r}"


@pytest.mark.parametrize("dialogue", DIALOGUES, ids=[d["name"] for d in DIALOGUES])
def test_fixture_lines_match_their_style(dialogue: dict[str, Any]) -> None:
    lines = _caller_lines(dialogue)
    if dialogue["style"] == "words":
        for line in lines:
            assert not _DIGIT.search(line), f"words-style line has digits: {line!r}"
            assert line == line.lower(), f"words-style line is not lowercase: {line!r}"
    else:
        assert any(_DIGIT.search(line) or line[:1].isupper() for line in lines)
