"""Callers' names heard on a phone line: read back when unsure, spelled, never asked forever.

The recognizer reports the words it was unsure of (``unsure``); these conversations run the
real planner with such turns, as a call does, and check what the caller hears.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from app.planner.agent_planner import AgentPlanner, PlannerKit
from app.settings import Settings

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=ZoneInfo("America/New_York"))  # a Monday
TOUR = "An in-person tour of Hudson 360 on Wednesday at 11 AM."


@pytest.fixture
def planner(tmp_path: Path) -> AgentPlanner:
    settings = Settings(
        data_dir=tmp_path, openai_api_key=None, openai_base_url=None, database_url=None
    )
    kit = PlannerKit.build(settings, clock=lambda: NOW)
    planner = kit.conversation("+14155550101", None)
    assert "May I have your name?" in say(planner.greet())
    return planner


def say(stream: AsyncIterator[str]) -> str:
    async def collect() -> str:
        return " ".join([sentence async for sentence in stream])

    return asyncio.run(collect())


def turn(planner: AgentPlanner, text: str, unsure: Sequence[str] = ()) -> str:
    return say(planner.respond(text, unsure))


def name_questions(replies: Sequence[str]) -> int:
    cues = ("name", "spell", "Was that", "Just to check", "I have", "So that's ")
    return sum(1 for r in replies if any(c in r for c in cues) and "Shall I book" not in r)


def test_a_name_heard_surely_is_taken_without_a_read_back(planner: AgentPlanner) -> None:
    reply = turn(planner, "My name is Dana Lee.")
    assert "Nice to meet you, Dana." in reply
    assert "Was that" not in reply
    assert planner.state.caller_name == "Dana Lee"


def test_an_unsure_name_is_read_back_and_a_yes_keeps_it(planner: AgentPlanner) -> None:
    reply = turn(planner, "My name is Priya Raman.", unsure=["raman"])
    assert reply == "Was that Priya Raman?"  # only the read-back: no "didn't catch that"
    assert planner.state.caller_name is None
    reply = turn(planner, "Yes, that's right.")
    assert "Nice to meet you, Priya." in reply
    assert planner.state.caller_name == "Priya Raman"


def test_thats_it_to_a_read_back_is_a_yes_not_a_goodbye(planner: AgentPlanner) -> None:
    turn(planner, "My name is Cheryl Ahmed.", unsure=["ahmed"])
    reply = turn(planner, "that is it.", unsure=["that"])
    assert not planner.ended, reply
    assert planner.state.caller_name == "Cheryl Ahmed"


def test_a_hyphenated_mishearing_is_unsure_too(planner: AgentPlanner) -> None:
    reply = turn(planner, "No, it's fandium-ashino.", unsure=["fandium", "ashino"])
    assert "Was that Fandium-Ashino?" in reply
    assert planner.state.caller_name is None


def test_a_correction_heard_surely_replaces_the_read_back(planner: AgentPlanner) -> None:
    turn(planner, "This is Ping Jao.", unsure=["jao"])
    reply = turn(planner, "No, it's Ping Zhao.")
    assert "Nice to meet you, Ping." in reply
    assert planner.state.caller_name == "Ping Zhao"


def test_misheard_twice_then_spelled_and_read_back_as_letters(planner: AgentPlanner) -> None:
    replies = [turn(planner, "My name is Germán Alzate.", unsure=["alzate"])]
    assert replies[-1] == "Was that Germán Alzate?"  # "German" is a name here, not a word
    replies.append(turn(planner, "No, it's Herman Alsate.", unsure=["herman", "alsate"]))
    replies.append(turn(planner, TOUR))
    assert "spell it" in replies[-1]
    replies.append(turn(planner, "G, E, R, M, A, N, last name A, L, Z, A, T, E."))
    assert "I have G, E, R, M, A, N, then A, L, Z, A, T, E." in replies[-1]
    assert "Shall I book it?" in replies[-1]  # no third question about the name
    assert planner.state.caller_name == "German Alzate"
    assert name_questions(replies) == 2  # read-back, spell; the letters ride with the summary


def test_a_spelling_to_a_read_back_is_read_back_as_letters(planner: AgentPlanner) -> None:
    turn(planner, "It's Dina.", unsure=["dina"])
    reply = turn(planner, "No, D A N A.")
    assert reply in ("I have D, A, N, A. Is that right?", "So that's D, A, N, A?")
    reply = turn(planner, "Yes.")
    assert "Nice to meet you, Dana." in reply
    assert planner.state.caller_name == "Dana"


def test_the_best_heard_is_kept_when_asks_run_out(planner: AgentPlanner) -> None:
    """Read back, misheard again, spelling unusable: the call goes on with the best heard."""
    replies = [turn(planner, "My name is Kalevi.", unsure=["kalevi"])]
    replies.append(turn(planner, "No, it's Kaleby.", unsure=["kaleby"]))
    replies.append(turn(planner, TOUR))
    replies.append(turn(planner, "the ring they turn even on those wires", unsure=["ring"]))
    assert "Shall I book it?" in replies[-1]
    assert planner.state.caller_name == "Kaleby"
    assert name_questions(replies) == 2


def test_a_no_and_nothing_usable_books_under_the_caller_id(planner: AgentPlanner) -> None:
    replies = [turn(planner, "My name is Farad Ranth.", unsure=["farad", "ranth"])]
    replies.append(turn(planner, "No."))
    replies.append(turn(planner, TOUR))
    assert "spell it" in replies[-1]
    replies.append(turn(planner, "show the ring they turn", unsure=["show"]))
    assert "the number you're calling from" in replies[-1]
    assert "Shall I book it?" in replies[-1]
    assert planner.state.caller_name is None
    assert name_questions(replies) == 2


def test_text_callers_are_never_read_back(planner: AgentPlanner) -> None:
    """Typed names carry no doubt: a rare name is taken as typed, at once."""
    reply = turn(planner, "I'm Bernadine Ó Faircheallaigh.")
    assert "Was that" not in reply
    assert planner.state.caller_name == "Bernadine Ó Faircheallaigh"


def test_a_no_heard_with_the_same_name_never_keeps_the_refused_name(
    planner: AgentPlanner,
) -> None:
    """ "Was that Christian Abor?" "No, it's Krishna Borah." heard as "No, it's Christian
    Abor.": the caller said no, so the agent asks to spell instead of greeting a stranger."""
    turn(planner, "This is Christian Abor.", unsure=["abor"])
    reply = turn(planner, "No, it's Christian Abor.", unsure=["abor"])
    assert "Christian" not in reply
    assert planner.state.caller_name is None
    reply = turn(planner, TOUR)
    assert "spell" in reply


def test_a_yes_with_my_name_is_is_a_name_attempt_not_sure_book_it(planner: AgentPlanner) -> None:
    """ "Yes, my name is Owe." (a name that is also a word): not "Happy to." and the same
    question; asked twice and answered twice, the agent asks to spell it."""
    turn(planner, "Can I come Saturday at 11 to Hudson 360?")
    reply = turn(planner, "Yes, my name is owe.")
    assert "Happy to" not in reply
    assert "spell" in reply
