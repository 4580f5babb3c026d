"""The self-play caller simulator (bench/caller_sim.py) works, by text, on a small crowd.

These tests check the simulator itself: personas, hearing the agent, metrics, transcripts.
The issue-10 goals for the planner (by text) are in ``test_text_success_goal``.
"""

from __future__ import annotations

import re
import statistics
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from app.domain.tour_rules import slot_problem
from bench.caller_sim import (
    BANK_PATH,
    CALLBACK_VARIANTS,
    ESPEAK_MISSING,
    NEW_STRATEGIES,
    NY,
    STRATEGIES,
    BookingSeen,
    Caller,
    Figures,
    Outcome,
    Persona,
    Phrasebook,
    Renderer,
    Stats,
    add_line_noise,
    buildings_in,
    check_patterns,
    check_summary,
    fold,
    groups,
    hear,
    load_bank,
    main,
    make_personas,
    number_words,
    reformat_number,
    repeat_honoured,
    run_text,
    run_voice,
    table,
    voice_style,
)

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=NY)  # a Monday
# 10 callers per strategy; the 10 who call back are 2 of each CALLBACK_VARIANTS.
CROWD = 10 * len(STRATEGIES)


@pytest.fixture(scope="module")
def outcomes() -> list[Outcome]:
    """One text run shared by the tests below (about 6 s)."""
    return run_text(CROWD, seed=11, now=sim_start())


def sim_start() -> datetime:
    """NOW, unless that is already past: memory judges "upcoming" by the real clock."""
    from bench.caller_sim import sim_now

    tomorrow = datetime.now(NY) + timedelta(days=1)
    return NOW if tomorrow < NOW else sim_now()


def test_personas_are_many_distinct_and_deterministic() -> None:
    personas = make_personas(300, seed=3, now=NOW)
    assert len({(p.first, p.last) for p in personas}) == 300
    assert len({p.first for p in personas}) >= 200
    assert len({p.last for p in personas}) >= 200
    assert len({p.locale for p in personas}) >= 15
    assert len({p.phone for p in personas}) == 300
    counts = Counter(p.strategy for p in personas)
    assert set(counts) == set(STRATEGIES)
    assert max(counts.values()) - min(counts.values()) <= 1
    assert make_personas(300, seed=3, now=NOW) == personas
    assert make_personas(300, seed=4, now=NOW) != personas


def test_persona_goals_are_bookable_within_two_weeks() -> None:
    for p in make_personas(300, seed=3, now=NOW):
        assert slot_problem(p.tour_type, p.start, NOW) is None, p  # type: ignore[arg-type]
        assert p.start - NOW < timedelta(days=14)
        if p.callback:
            assert p.start.date() > (NOW + timedelta(days=p.callback_days)).date()
            assert p.callback_number != p.phone


def test_callback_numbers_are_the_same_phone_written_differently() -> None:
    import random

    from app.domain.identity import normalize_caller_id

    rng = random.Random(1)
    for _ in range(20):
        other = reformat_number("+12125550199", rng)
        assert other != "+12125550199"
        assert normalize_caller_id(other) == "+12125550199"


def test_callback_variants_take_turns_and_new_times_are_bookable() -> None:
    personas = make_personas(300, seed=3, now=NOW)
    variants = Counter(p.callback for p in personas if p.callback)
    assert set(variants) == set(CALLBACK_VARIANTS)
    assert max(variants.values()) - min(variants.values()) <= 1
    moving = [p for p in personas if p.callback == "reschedules"]
    for p in moving:
        assert p.new_start is not None and p.goal.start == p.new_start, p
        assert p.new_start.date() != p.start.date(), p
        assert p.new_start.date() > (NOW + timedelta(days=p.callback_days)).date(), p
        assert slot_problem(p.tour_type, p.new_start, NOW) is None, p  # type: ignore[arg-type]
    assert all(p.new_start is None for p in personas if p.callback != "reschedules")
    others = {(q.building, q.tour_type, q.start) for q in personas if q.callback is None}
    wish_taken = [p for p in moving if (p.building, p.tour_type, p.new_start) in others]
    assert len(wish_taken) >= len(moving) // 4, "some wish for a time another caller booked"


def test_a_caller_who_changes_its_mind_asks_for_one_other_thing_first() -> None:
    personas = [p for p in make_personas(300, seed=3, now=NOW) if p.strategy == "changes_mind"]
    assert {p.wrong for p in personas} == {"building", "tour_type", "time"}
    for p in personas:
        first, goal = p.first_goal, p.goal
        differs = {
            f for f in ("building", "tour_type", "start") if getattr(first, f) != getattr(goal, f)
        }
        assert differs == {"start" if p.wrong == "time" else str(p.wrong)}, p
        assert slot_problem(first.tour_type, first.start, NOW) is None, p  # type: ignore[arg-type]
    others = make_personas(40, seed=3, now=NOW)
    assert all(p.first_goal == p.goal for p in others if p.group not in ("changes_mind",
               "callback/reschedules"))  # fmt: skip


@pytest.mark.parametrize(
    ("agent", "kind"),
    [
        ("May I have your name?", "name"),
        ("Thanks! And what name should I put the booking under?", "name"),
        ("Could you spell it for me, letter by letter?", "spell"),
        ("Was that Priya?", "readback"),
        ("Which building would you like to see: 21 West End, Hudson 360 or Riverview Lofts?",
         "building"),
        ("Press 1 for 21 West End, 2 for Hudson 360, or 3 for Riverview Lofts.", "choices"),
        ("Would you like an in-person tour, or a virtual one?", "tour_type"),
        ("What day and time work for your tour?", "tour_time"),
        ("So that's a virtual tour of Hudson 360 on Friday, December 4 at 2 PM. Shall I book it?",
         "confirm"),
        ("Do you have any pets?", "pets"),
        ("When are you hoping to move in?", "move_in"),
        ("What's your monthly budget?", "budget"),
        ("How should we send your confirmation: by text or by email?", "contact"),
        ("Is there anything else I can help with?", "anything_else"),
        ("Welcome back, Ana! You have an in-person tour of Hudson 360 booked for Friday, "
         "December 4 at 2 PM. Would you like to keep it, reschedule, or cancel?", "manage"),
        ("Sure. What day and time would work better?", "tour_time"),
        ("What new day and time would you like?", "tour_time"),
        ("Should I move your tour to Saturday, December 5 at 11 AM?", "confirm"),
        ("Shall I move it to Saturday, December 5 at 11 AM?", "confirm"),
        ("Just to confirm, should I cancel an in-person tour of Hudson 360 on Friday, "
         "December 4 at 2 PM?", "cancel_confirm"),
        ("The weather is lovely.", "other"),
    ],
)  # fmt: skip
def test_caller_hears_what_the_agent_asks(agent: str, kind: str) -> None:
    assert hear(agent, NOW).kind == kind


def test_caller_hears_offered_slots_but_not_the_taken_one() -> None:
    heard = hear(
        "Friday, December 4 at 3 PM is already taken. The closest times I have are "
        "Friday, December 4 at 2 PM and 4 PM. Which one works for you?",
        NOW,
    )
    friday = datetime(2026, 12, 4, tzinfo=NY)
    assert heard.slots == [friday.replace(hour=14), friday.replace(hour=16)]
    assert friday.date() in heard.refused_days
    assert hear("Press 1 for 21 West End, 2 for Hudson 360.", NOW).choices == {
        "21-west-end": "1",
        "hudson-360": "2",
    }


def test_caller_tells_a_menu_from_a_building_it_remembers() -> None:
    menu = "I can help you book a tour of 21 West End, Hudson 360 or Riverview Lofts."
    assert hear(menu, NOW).buildings == []
    recalled = "Welcome back! Last time you were looking at a two-bedroom at Riverview Lofts."
    assert hear(recalled, NOW).buildings == ["riverview-lofts"]
    misheard = "Say or press 1 for 21 West End, 2 for Hobson 360, or 3 for Riverview Law."
    assert hear(misheard, NOW).choices == {
        "21-west-end": "1",
        "hudson-360": "2",
        "riverview-lofts": "3",
    }


def test_caller_hears_a_tour_moved_or_cancelled() -> None:
    moved = hear(
        "Done! Your tour is now on Saturday, December 5 at 11 AM, and your code is still WR3Q. "
        "Is there anything else I can help with?",
        NOW,
    )
    assert moved.moved and not moved.cancelled and moved.kind == "anything_else"
    gone = hear(
        "Your tour on Saturday, December 5 at 11 AM is cancelled. Anything else today?", NOW
    )
    assert gone.cancelled and not gone.moved
    asked = hear("Just to confirm, should I cancel a virtual tour on Saturday, December 5?", NOW)
    kept = hear("Great, your tour stays as it is. Is there anything else I can help with?", NOW)
    assert not (asked.cancelled or asked.moved or kept.cancelled or kept.moved)


# ------------------------------------------------------------ the caller, against a scripted agent

NAMES = {
    "21-west-end": "21 West End",
    "hudson-360": "Hudson 360",
    "riverview-lofts": "Riverview Lofts",
}
TOURS = {"in_person": "an in-person tour", "virtual": "a virtual tour"}


def said(t: datetime) -> str:
    """A time as the agent says it: "Friday, December 4 at 2:30 PM"."""
    minutes = f":{t.minute:02d}" if t.minute else ""
    clock = f"{t.hour % 12 or 12}{minutes} {'PM' if t.hour >= 12 else 'AM'}"
    return f"{t:%A, %B} {t.day} at {clock}"


def scripted(group: str, **wanted: Any) -> tuple[Caller, Persona, list[str]]:
    """A caller of ``group`` and the bank keys of everything it says, in order."""
    persona = next(
        p
        for p in make_personas(200, seed=3, now=NOW)
        if p.group == group and all(getattr(p, k) == v for k, v in wanted.items())
    )
    caller = Caller(persona, NOW, 1, load_bank())
    keys: list[str] = []
    say = caller.book.say

    def recorded(key: str, **values: str) -> str:
        keys.append(key)
        return say(key, **values)

    caller.book.say = recorded  # type: ignore[method-assign]
    return caller, persona, keys


def _welcome_back(p: Persona) -> str:
    return (
        f"Welcome back, {p.first}! You have {TOURS[p.tour_type]} of {NAMES[p.building]} booked "
        f"for {said(p.start)}. Would you like to keep it, reschedule, or cancel?"
    )


def test_a_rescheduling_caller_asks_to_move_and_takes_a_time_near_its_wish() -> None:
    caller, p, keys = scripted("callback/reschedules")
    assert p.new_start is not None
    caller.new_call(2, now=NOW + timedelta(days=p.callback_days, hours=1))
    assert caller.goal == p.goal
    assert caller.opening(_welcome_back(p)) and "reschedule" in keys and caller.stats.recall
    caller.next_line("Sure. What day and time would work better?")
    assert keys[-1] == "time"
    near, far = p.new_start - timedelta(hours=1), p.new_start + timedelta(hours=2)
    caller.next_line(
        f"{said(p.new_start)} is already taken. The closest times I have are {said(near)} and "
        f"{said(far)}. Which one works for you?"
    )
    assert caller.accepted == [near]
    caller.next_line(f"Should I move your tour to {said(near)}?")
    assert keys[-1] == "yes"
    caller.next_line(
        f"Done! Your tour is now on {said(near)}, and your code is still WR3Q. "
        "Is there anything else I can help with?"
    )
    assert caller.finished and caller.stats.end_reason == "moved" and keys[-1] == "goodbye"


def test_a_cancelling_caller_keeps_asking_to_cancel_and_confirms() -> None:
    caller, p, keys = scripted("callback/cancels")
    caller.new_call(2, now=NOW + timedelta(days=p.callback_days, hours=1))
    assert caller.opening(_welcome_back(p)) and keys == ["cancel"]
    caller.next_line("Sure. What day and time would work better?")  # not what it asked for
    assert keys[-1] == "cancel"
    caller.next_line(
        f"Just to confirm, should I cancel {TOURS[p.tour_type]} of {NAMES[p.building]} on "
        f"{said(p.start)}?"
    )
    assert keys[-1] == "cancel_yes"
    caller.next_line(f"Your tour on {said(p.start)} is cancelled. Anything else today?")
    assert caller.finished and caller.stats.end_reason == "cancelled" and keys[-1] == "goodbye"


@pytest.mark.parametrize("wrong", ["building", "tour_type", "time"])
def test_a_caller_changes_its_mind_when_the_booking_is_read_back(wrong: str) -> None:
    caller, p, keys = scripted("changes_mind", wrong=wrong, questions=())
    first = p.first_goal
    assert caller.goal == first != p.goal

    def summary(building: str, tour_type: str, start: datetime) -> str:
        return (
            f"So that's {TOURS[tour_type]} of {NAMES[building]}, on {said(start)}, for "
            f"{p.name}. Shall I book it?"
        )

    line = caller.next_line(summary(first.building, first.tour_type, first.start))
    assert line and keys[-1] in ("change_mind", "correction") and caller.stats.changed_mind
    assert caller.goal == p.goal
    if wrong == "building":
        assert buildings_in(line) == [p.building]
    caller.next_line(summary(p.building, p.tour_type, p.start))
    assert keys[-1] == "yes"


def test_outcomes_of_moving_and_cancelling_callers() -> None:
    """Moved: exactly one booked tour, at the new time. Cancelled: none booked, one cancelled."""
    personas = make_personas(100, seed=3, now=NOW)
    mover = next(p for p in personas if p.callback == "reschedules")
    canceller = next(p for p in personas if p.callback == "cancels")
    assert mover.new_start is not None

    def seen(p: Persona, start: datetime) -> BookingSeen:
        return BookingSeen(p.building, p.tour_type, start, p.name)

    def outcome(p: Persona, booked: list[BookingSeen], cancelled: list[BookingSeen]) -> Outcome:
        from bench.caller_sim import Stats

        return Outcome(p, [], Stats(), booked, p.name, [], cancelled=cancelled)

    moved, old = seen(mover, mover.new_start), seen(mover, mover.start)
    assert outcome(mover, [moved], []).success
    assert not outcome(mover, [old], []).success
    assert not outcome(mover, [old, moved], []).success, "a second tour is not a moved one"
    assert not outcome(mover, [], [old]).success
    gone = seen(canceller, canceller.start)
    assert outcome(canceller, [], [gone]).success
    assert not outcome(canceller, [gone], []).success
    assert not outcome(canceller, [], []).success, "never booked: nothing was cancelled"


# ------------------------------------------------------------ asks_repeat, gives_contact, cut off


def test_new_strategy_personas_carry_what_their_strategy_needs() -> None:
    personas = make_personas(300, seed=3, now=NOW)
    for p in personas:
        if p.strategy == "asks_repeat":
            assert 1 <= len(p.repeat_points) <= 2 and list(p.repeat_points) == sorted(
                set(p.repeat_points)
            ), p
        else:
            assert p.repeat_points == (), p
        if p.strategy == "gives_contact":
            assert p.contact_email or p.contact_phone, p
            if p.contact_phone:
                assert re.fullmatch(r"\+1\d{10}", p.contact_phone) and p.contact_phone != p.phone
            if p.contact_email:
                assert re.fullmatch(r"[a-z0-9._]+@[a-z]+\.[a-z]+", p.contact_email), p
            if bool(p.contact_email) != bool(p.contact_phone):
                assert p.contact == ("email" if p.contact_email else "text"), p
        else:
            assert p.contact_email is None and p.contact_phone is None, p
        assert p.calls_back == (p.callback is not None or p.strategy == "hangs_up_mid_confirm")
        assert (p.callback_minutes > 0) == (p.strategy == "hangs_up_mid_confirm"), p
    giving = [p for p in personas if p.strategy == "gives_contact"]
    assert {p.contact_at >= 0 for p in giving} == {True, False}, "before and after the booking"
    assert any(p.contact_email and p.contact_phone for p in giving)


OFFER = (
    "Friday, December 4 at 3 PM is already taken. The closest times I have are Friday, "
    "December 4 at 2 PM and 4 PM. Which one works for you?"
)
MENU = "Which building would you like to see: 21 West End, Hudson 360 or Riverview Lofts?"
SUMMARY = (
    "So that's a virtual tour of Hudson 360, on Friday, December 4 at 2 PM, for Ana. "
    "Shall I book it?"
)


@pytest.mark.parametrize(
    ("before", "reply", "honoured"),
    [
        (OFFER, "Sure: Friday, December 4 at 2 PM or 4 PM. Which would you like?", True),
        (OFFER, "I have 2:00 p.m. and 4:00 p.m. on Friday.", True),
        (OFFER, "I have 2 PM on Friday. Does that work?", False),
        (OFFER, "Sorry, I didn't catch that. Which one works for you?", False),
        (MENU, "We have 21 West End, Hudson 360 and Riverview Lofts. Which one?", True),
        (MENU, "Which building would you like to see?", False),
        (MENU, "Sorry, I didn't catch that. How can I help?", False),
        (SUMMARY, "Of course: a virtual tour of Hudson 360 on Friday, December 4 at 2 PM. "
         "Shall I book it?", True),
        (SUMMARY, "Shall I book it?", False),
        (SUMMARY, "It's at 2 PM. Shall I book it?", False),
        ("What day and time work for your tour?", "Sure, what day and time would you like?", True),
        ("What day and time work for your tour?", "Sorry, I didn't catch that. How can I help?",
         False),
        ("And what name should I put the booking under?", "Sorry! May I have your name?", True),
        ("Was that Priya?", "I asked: was that Priya?", True),
        ("Was that Priya?", "Sorry, could you say that again?", False),
        ("Say or press 1 for an in-person tour, or 2 for a virtual tour.",
         "Press 1 for in person, or 2 for virtual.", True),
        ("Say or press 1 for an in-person tour, or 2 for a virtual tour.",
         "Sorry, I didn't get that.", False),
    ],
)  # fmt: skip
def test_a_repeat_request_is_honoured_only_by_what_was_asked_or_offered(
    before: str, reply: str, honoured: bool
) -> None:
    assert repeat_honoured(hear(before, NOW), hear(reply, NOW)) is honoured


def _caller(persona: Persona) -> Caller:
    return Caller(persona, NOW, 1, load_bank())


def _persona(group: str) -> Persona:
    return next(p for p in make_personas(200, seed=3, now=NOW) if p.group == group)


@pytest.mark.parametrize("honoured", [True, False])
def test_an_asks_repeat_caller_asks_again_then_answers(honoured: bool) -> None:
    from dataclasses import replace

    caller = _caller(replace(_persona("asks_repeat"), repeat_points=(0,), questions=()))
    said = caller.book.said
    asked = caller.next_line(MENU)
    assert said[-1] in ("repeat_buildings", "repeat_generic"), asked
    assert asked and not buildings_in(asked), "a request, not an answer"
    again = MENU if honoured else "Sorry, I didn't catch that. How can I help?"
    caller.next_line(again)
    assert said[-1] in ("building", "building_with_size"), "then it answers, either way"
    assert caller.stats.repeat_requests == 1
    assert bool(caller.stats.repeat_misses) is not honoured
    if not honoured:
        assert caller.stats.repeat_misses[0][0] == "buildings"
    assert caller.stats.longest_repeat == 1, "a question said again when asked is no loop"
    caller.next_line("What day and time work for your tour?")  # chance 1: not taken
    assert said[-1] == "time" and caller.stats.repeat_requests == 1


def test_an_asks_repeat_caller_fails_on_a_request_not_honoured() -> None:
    p = _persona("asks_repeat")
    booked = [BookingSeen(p.building, p.tour_type, p.start, p.name)]
    stats = Stats(repeat_requests=2, repeat_misses=[("times", 'repeat_times: "x" -> "y"')])
    missed = Outcome(p, [], stats, booked, p.name, [])
    assert missed.store_ok and not missed.success
    assert check_patterns([missed]) == [
        (1, 'repeat request not honoured (times) (e.g. repeat_times: "x" -> "y")')
    ]
    assert Outcome(p, [], Stats(repeat_requests=2), booked, p.name, []).success
    assert check_summary([missed])[0].startswith("asks_repeat: 1/2 repeat requests honoured")


_SAID_NUMBERS = {number_words(n): str(n) for n in range(100)} | {"oh": "0"}


def _heard_phone(said: str) -> str:
    """Digits of a number as a recognizer wrote it, in figures or words ("thirty four")."""
    if re.search(r"\d", said):
        return re.sub(r"\D", "", said)
    out, words, i = "", said.split(), 0
    while i < len(words):
        pair = " ".join(words[i : i + 2])
        if i + 1 < len(words) and pair in _SAID_NUMBERS:
            out, i = out + _SAID_NUMBERS[pair], i + 2
        else:
            out, i = out + _SAID_NUMBERS[words[i]], i + 1
    return out


def _heard_email(said: str) -> str:
    """An address as a recognizer wrote it: typed, or with "at" / "dot", maybe spelled."""
    if "@" in said:
        return said.lower()
    marks = {"at": "@", "dot": ".", "underscore": "_"}
    words = re.split(r"[\s-]+", said.lower())
    return "".join(marks.get(w) or _SAID_NUMBERS.get(w, w) for w in words)


@pytest.mark.parametrize("style", ["words", "digits"])
def test_contact_details_are_said_as_a_recognizer_writes_them(style: str) -> None:
    import random

    from bench.caller_sim import make_email

    renderer = Renderer(style, random.Random(1), NOW, load_bank())
    rng = random.Random(2)
    for first, last in [("María", "López"), ("Jean-Luc", "O'Brien"), ("Ade", "Okafor")]:
        for _ in range(10):
            address = make_email(first, last, rng)
            for form in renderer.address_forms(address):
                assert _heard_email(form) == address, (form, address)
                assert style == "digits" or not re.search(r"\d|@", form), form
    for number in ["+19175550123", "+12125551200", "+13475550009", "+16465553481"]:
        for form in renderer.phone_forms(number):
            assert _heard_phone(form) == number[2:], (form, number)
            assert style == "digits" or not re.search(r"\d", form), form


@pytest.mark.parametrize("style", ["words", "digits"])
def test_contact_lines_render_the_email_and_number_given(style: str) -> None:
    import random
    from dataclasses import replace

    p = replace(_persona("gives_contact"), style=style, contact_email="ana.ruiz7@gmail.com",
                contact_phone="+19175550123")  # fmt: skip
    bank = load_bank()
    book = Phrasebook(p, random.Random(3), NOW, bank)
    emails = {f.lower() for f in book.render.address_forms("ana.ruiz7@gmail.com")}
    phones = {f.lower() for f in book.render.phone_forms("+19175550123")}
    for key, forms in (("volunteer_email", emails), ("volunteer_phone", phones)):
        for entry in bank[key]:
            book.template = lambda _key, entry=entry: entry  # type: ignore[method-assign]
            for _ in range(8):
                line = book.say(key).lower()
                assert any(form in line for form in forms), (key, line)


def test_a_gives_contact_caller_volunteers_on_its_turn_or_after_the_booking() -> None:
    from dataclasses import replace

    base = replace(_persona("gives_contact"), contact_email="ana.ruiz@gmail.com",
                   contact_phone="+19175550123", questions=())  # fmt: skip
    early = _caller(replace(base, contact_at=0))
    early.opening("Thanks for calling the leasing office! May I have your name?")
    assert early.stats.contact_given
    assert {"volunteer_email", "volunteer_phone"} <= set(early.book.said)
    late = _caller(replace(base, contact_at=-1))
    late.opening("Thanks for calling the leasing office! May I have your name?")
    assert not late.stats.contact_given
    late.next_line("You're all set! Your confirmation code is 4RZ8. Anything else I can help with?")
    assert late.stats.contact_given and not late.finished
    assert late.book.said[-2:] in (
        ["volunteer_email", "volunteer_phone"], ["volunteer_phone", "volunteer_email"]
    )  # fmt: skip
    late.next_line("Got it. Anything else I can help with?")
    assert late.finished and late.book.said[-1] == "goodbye"


def test_the_contact_kept_is_checked_against_the_one_given() -> None:
    from dataclasses import replace

    p = replace(_persona("gives_contact"), contact_email="ana.ruiz@gmail.com",
                contact_phone="+19175550123")  # fmt: skip
    booked = [BookingSeen(p.building, p.tour_type, p.start, p.name)]

    def kept(email: str | None, phone: str | None) -> Outcome:
        stats = Stats(contact_given=True)
        return Outcome(p, [], stats, booked, p.name, [], final_email=email, final_phone=phone)

    assert kept("Ana.Ruiz@gmail.com", "(917) 555-0123").success
    wrong = kept("anaruiz@gmail.com", p.phone)
    assert not wrong.success and [c for c, _ in wrong.checks] == [
        "contact kept differs: email kept wrong",
        "contact kept differs: caller ID kept, not the number given",
    ]
    assert [c for c, _ in kept(None, None).checks] == [
        "contact kept differs: email not kept",
        "contact kept differs: phone not kept",
    ]


def _said_back(p: Persona) -> str:
    return (
        f"So that's {TOURS[p.tour_type]} of {NAMES[p.building]}, on {said(p.start)}, for "
        f"{p.name}. Shall I book it?"
    )


def _cut_off_first_call(p: Persona) -> Caller:
    caller = _caller(p)
    caller.opening("Thanks for calling the leasing office! May I have your name?")
    assert caller.next_line(_said_back(p)) is None, "no answer: the line dropped"
    assert caller.finished and caller.stats.cut_off
    caller.new_call(2, now=NOW + timedelta(minutes=p.callback_minutes))
    assert not caller.finished
    return caller


def test_a_cut_off_caller_rings_back_and_books_what_the_agent_kept() -> None:
    p = _persona("hangs_up_mid_confirm")
    caller = _cut_off_first_call(p)
    line = caller.opening(f"Welcome back, {p.first}! {_said_back(p)}")
    assert line and caller.book.said[-2:] == ["cut_off", "yes"]
    assert caller.stats.recall
    caller.next_line("You're all set! Your confirmation code is 4RZ8. Anything else?")
    assert caller.finished and caller.stats.facts_repeated == []
    booked = [BookingSeen(p.building, p.tour_type, p.start, p.name)]
    assert Outcome(p, [], caller.stats, booked, p.name, []).success


def test_a_cut_off_caller_counts_what_a_forgetful_agent_made_it_repeat() -> None:
    from dataclasses import replace

    p = replace(_persona("hangs_up_mid_confirm"), questions=())
    caller = _cut_off_first_call(p)
    caller.opening("Thanks for calling the leasing office! How can I help?")
    assert caller.book.said[-1] == "cut_off" and not caller.stats.recall
    caller.next_line("No problem. Which building would you like to see?")
    caller.next_line(f"Got it: {NAMES[p.building]}. What day and time work for your tour?")
    assert caller.stats.facts_repeated == ["building", "time"]
    assert not caller.stats.recall, "neither the greeting nor the next reply named the tour"
    booked = [BookingSeen(p.building, p.tour_type, p.start, p.name)]
    outcome = Outcome(p, [], caller.stats, booked, p.name, [])
    assert outcome.store_ok and not outcome.success
    assert outcome.checks == [("cut-off caller had to repeat 2 facts on call 2", "building, time")]


def test_cut_off_callers_make_two_calls_from_the_same_phone(outcomes: list[Outcome]) -> None:
    """In the shared run: hung up at the read-back (the agent's question is the first call's
    last line), then a second call from the same phone, written another way."""
    from app.domain.identity import normalize_caller_id

    cut = [o for o in outcomes if o.persona.strategy == "hangs_up_mid_confirm"]
    assert cut and all(o.stats.cut_off for o in cut), "\n\n".join(o.transcript() for o in cut)
    for o in cut:
        first, second = o.calls
        assert first.lines[-1].startswith("AGENT:") and "book" in first.lines[-1].lower()
        assert normalize_caller_id(second.number) == normalize_caller_id(first.number)
        assert o.stats.end_reason and o.stats.recall is not None, o.transcript()


def test_line_noise_is_mixed_at_the_snr_asked() -> None:
    rng = np.random.default_rng(0)
    tone = (8000 * np.sin(np.arange(8000) * 2 * np.pi * 440 / 8000)).astype(np.float32)
    noisy = add_line_noise(tone, 20.0, rng).astype(np.float64)
    hiss = noisy - tone
    snr = 10 * np.log10(np.mean(tone.astype(np.float64) ** 2) / np.mean(hiss**2))
    assert 18.5 < snr < 21.5


def test_voices_differ_from_the_agent_and_are_seeded() -> None:
    personas = make_personas(16, seed=3, now=NOW)
    styles = [voice_style(p, 3) for p in personas]
    assert {s.engine for s in styles} == {"espeak", "piper"}
    assert all(s.pitch != 1.0 for s in styles if s.engine == "piper"), "re-pitched, not joe's"
    assert all(15 <= s.snr_db <= 25 for s in styles)
    assert styles == [voice_style(p, 3) for p in personas]


def test_voice_mode_says_how_to_get_espeak(monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    monkeypatch.setattr(shutil, "which", lambda _: None)
    with pytest.raises(SystemExit, match="apt-get install -y espeak-ng"):
        run_voice(1, seed=1, concurrency=1)
    assert "espeak-ng" in ESPEAK_MISSING


def test_text_run_measures_every_caller(outcomes: list[Outcome]) -> None:
    assert len(outcomes) == CROWD
    assert {o.persona.strategy for o in outcomes} == set(STRATEGIES)
    for o in outcomes:
        text = o.transcript()
        assert "AGENT:" in text and "CALLER:" in text, text
        assert o.stats.end_reason, text
        assert o.stats.longest_repeat >= 1, text
        assert len(o.calls) == (2 if o.persona.callback or o.stats.cut_off else 1), text
        if len(o.calls) == 2:
            assert o.stats.recall is not None, text
            assert o.calls[1].number == o.persona.callback_number
    asked = sum(o.stats.questions_asked for o in outcomes)
    assert asked >= len(STRATEGIES), "questions_first callers ask two questions each"
    figures = Figures.of(outcomes)
    assert figures.callers == CROWD
    assert figures.recall_tries == sum(len(o.calls) == 2 for o in outcomes)
    rendered = "\n".join(table(outcomes))
    for group in groups():
        assert f"| {group} | 2 |" in rendered if "/" in group else f"| {group} | 10 |" in rendered


def test_callers_who_move_cancel_or_change_their_mind_get_there(outcomes: list[Outcome]) -> None:
    """Each caller of these kinds ends where it wanted in the shared run: its tour moved,
    cancelled, or booked as changed (which also shows the caller reads the agent's side of
    these paths: "keep it, reschedule, or cancel?", "should I cancel ...?", "Done! ...")."""
    groups_seen = {
        g: [o for o in outcomes if o.persona.group == g]
        for g in ("callback/reschedules", "callback/cancels", "changes_mind")
    }
    for group in groups_seen.values():
        assert len(group) >= 2
        assert all(o.success for o in group), "\n\n".join(o.transcript() for o in group)
    for o in groups_seen["callback/reschedules"]:
        assert o.stats.end_reason == "moved" and len(o.bookings) == 1, o.transcript()
        assert o.bookings[0].start.date() != o.persona.start.date(), o.transcript()
    for o in groups_seen["callback/cancels"]:
        assert o.stats.end_reason == "cancelled", o.transcript()
        assert not o.bookings and o.cancelled, o.transcript()
    for o in groups_seen["changes_mind"]:
        assert o.stats.changed_mind, o.transcript()


def test_text_success_goal(outcomes: list[Outcome]) -> None:
    """Issue 10's text goals, on the shared crowd (the bench runs 300), for its strategies:
    the asks_repeat, gives_contact and hangs_up_mid_confirm callers are measured, not held
    to a goal (they were written to find what the planner was never tuned for)."""
    outcomes = [o for o in outcomes if o.persona.strategy not in NEW_STRATEGIES]
    failed = [o for o in outcomes if not o.success]
    assert len(failed) <= 0.01 * len(outcomes), "\n\n".join(o.transcript() for o in failed[:3])
    callbacks = [o for o in outcomes if o.persona.callback]
    missed = [o for o in callbacks if not o.stats.recall]
    assert not missed, "\n\n".join(o.transcript() for o in missed[:3])
    looping = [o for o in outcomes if o.stats.longest_repeat > 2]
    assert not looping, "\n\n".join(o.transcript() for o in looping[:3])
    turns = [o.stats.turns_to_book for o in outcomes if o.stats.turns_to_book is not None]
    assert statistics.median(turns) <= 6


# ------------------------------------------------------------ the held-out phrasing bank

HELD_OUT = BANK_PATH.parent / "held_out.yaml"
HELD_OUT_2 = BANK_PATH.parent / "held_out_2.yaml"
HELD_OUT_3 = BANK_PATH.parent / "held_out_3.yaml"
HELD_OUT_4 = BANK_PATH.parent / "held_out_4.yaml"
HELD_OUT_5 = BANK_PATH.parent / "held_out_5.yaml"
HELD_OUT_6 = BANK_PATH.parent / "held_out_6.yaml"
# Each held-out bank, and the banks written before it: it must have every key with at least
# as many entries as they do, and share no line with them (nor with the dialogue tests).
HELD_OUT_BANKS = [
    pytest.param(HELD_OUT, [BANK_PATH], id="held_out"),
    pytest.param(HELD_OUT_2, [BANK_PATH, HELD_OUT], id="held_out_2"),
    pytest.param(HELD_OUT_3, [BANK_PATH, HELD_OUT, HELD_OUT_2], id="held_out_3"),
    pytest.param(HELD_OUT_4, [BANK_PATH, HELD_OUT, HELD_OUT_2, HELD_OUT_3], id="held_out_4"),
    pytest.param(
        HELD_OUT_5, [BANK_PATH, HELD_OUT, HELD_OUT_2, HELD_OUT_3, HELD_OUT_4], id="held_out_5"
    ),
    pytest.param(
        HELD_OUT_6,
        [BANK_PATH, HELD_OUT, HELD_OUT_2, HELD_OUT_3, HELD_OUT_4, HELD_OUT_5],
        id="held_out_6",
    ),
]
# Values the simulator passes in itself (not from the persona), per recognizer style.
GIVEN = {
    "digits": {"slot": "Friday at 2 PM", "number": "2", "value": "Hudson 360"},
    "words": {"slot": "friday at two pm", "number": "two", "value": "hudson three sixty"},
}


def _entries(bank: dict[str, Any]) -> dict[str, list[str]]:
    """Every phrasing key ("questions.price" for the nested ones) -> its entries."""
    out = {k: v for k, v in bank.items() if k not in ("questions", "building_names")}
    out |= {f"questions.{t}": v for t, v in bank["questions"].items()}
    return out


def _placeholders(entry: str) -> set[str]:
    return set(re.findall(r"{(\w+)}", entry))


@pytest.mark.parametrize(("held_out", "earlier"), HELD_OUT_BANKS)
def test_held_out_bank_has_every_key_with_the_same_meaning(
    held_out: Path, earlier: list[Path]
) -> None:
    """Same keys, at least as many entries as every earlier bank, and each entry carries what
    its key must say (every placeholder all main entries share) and nothing the key never
    says (no placeholder the main bank's entries for it, thus the caller code, never fill)."""
    main, held = load_bank(BANK_PATH), load_bank(held_out)
    ours, theirs = _entries(main), _entries(held)
    assert set(theirs) == set(ours)
    for key, entries in ours.items():
        required = set.intersection(*map(_placeholders, entries))
        allowed = set.union(*map(_placeholders, entries))
        for before in earlier:
            assert len(theirs[key]) >= len(_entries(load_bank(before))[key]), (key, before.name)
        for entry in theirs[key]:
            assert required <= _placeholders(entry) <= allowed, (key, entry)
    for pid, styles in main["building_names"].items():
        assert set(held["building_names"][pid]) == set(styles), pid
        for style in styles:
            names = held["building_names"][pid][style]
            assert names and all(isinstance(n, str) and n.strip() for n in names), (pid, style)


@pytest.mark.parametrize(("held_out", "earlier"), HELD_OUT_BANKS)
def test_held_out_bank_is_new_to_the_planner(held_out: Path, earlier: list[Path]) -> None:
    """No held-out line is one the planner was tuned on (the main bank, the dialogue tests)
    or one an earlier held-out bank has (the planner may since have been tuned on that)."""
    root = Path(__file__).resolve().parent
    seen = {
        fold(e)
        for before in earlier
        for entries in _entries(load_bank(before)).values()
        for e in entries
    }

    def says(node: Any) -> list[str]:
        """Every caller line (a ``say:``) anywhere in the dialogue fixtures."""
        if isinstance(node, dict):
            own = [node["say"]] if "say" in node else []
            return own + [s for v in node.values() for s in says(v)]
        return [s for v in node for s in says(v)] if isinstance(node, list) else []

    seen |= {fold(s) for s in says(yaml.safe_load((root / "fixtures/dialogues.yaml").read_text()))}
    reused = [e for v in _entries(load_bank(held_out)).values() for e in v if fold(e) in seen]
    assert not reused


@pytest.mark.parametrize(
    "bank_path",
    [BANK_PATH, HELD_OUT, HELD_OUT_2, HELD_OUT_3, HELD_OUT_4, HELD_OUT_5, HELD_OUT_6],
    ids=["main", "held_out", "held_out_2", "held_out_3", "held_out_4", "held_out_5", "held_out_6"],
)
def test_every_bank_line_renders_in_every_persona_style(bank_path: Path) -> None:
    """Each entry, said by personas of both recognizer styles (full and first names, with
    and without pets): every placeholder filled, and no figures in the "words" style."""
    import random

    bank = load_bank(bank_path)
    personas = make_personas(24, seed=5, now=NOW)
    assert {(p.style, p.full_name) for p in personas} == {
        (s, f) for s in ("words", "digits") for f in (True, False)
    }
    for persona in personas:
        book = Phrasebook(persona, random.Random(persona.index), NOW, bank)
        for key, entries in _entries(bank).items():
            for entry in entries:
                book.template = lambda _key, entry=entry: entry  # type: ignore[method-assign]
                line = book.say(key, **GIVEN[persona.style], size=book.render.size("1br"))
                assert line and not re.search(r"[{}]", line), (key, entry, line)
                if persona.style == "words":
                    assert not re.search(r"\d", line) and line == line.lower(), (key, line)


# The phrasing keys of asks_repeat, gives_contact and hangs_up_mid_confirm.
NEW_KEYS = ("repeat_generic", "repeat_times", "repeat_buildings", "repeat_summary",
            "volunteer_email", "volunteer_phone", "cut_off")  # fmt: skip
EVERY_BANK = sorted(BANK_PATH.parent.glob("*.yaml"))


@pytest.mark.parametrize("bank_path", EVERY_BANK, ids=[b.stem for b in EVERY_BANK])
def test_every_bank_has_the_new_strategies_lines(bank_path: Path) -> None:
    """Every bank (held_out_7 too, whose other lines these tests leave alone) has the keys
    of asks_repeat, gives_contact and hangs_up_mid_confirm: as many lines as the main bank,
    each with its key's placeholders, rendering in both styles, none in another bank."""
    import random

    main, bank = load_bank(BANK_PATH), load_bank(bank_path)
    assert set(bank) == set(main)
    placeholders = {"volunteer_email": {"email"}, "volunteer_phone": {"phone"}}
    others = {
        fold(e) for b in EVERY_BANK if b != bank_path for k in NEW_KEYS for e in load_bank(b)[k]
    }
    personas = make_personas(24, seed=5, now=NOW)
    for key in NEW_KEYS:
        assert len(bank[key]) >= len(main[key]), key
        for entry in bank[key]:
            assert _placeholders(entry) == placeholders.get(key, set()), (key, entry)
            assert fold(entry) not in others, (key, entry)
            for persona in personas[:4]:
                book = Phrasebook(persona, random.Random(persona.index), NOW, bank)
                book.template = lambda _key, entry=entry: entry  # type: ignore[method-assign]
                line = book.say(key)
                assert line and not re.search(r"[{}]", line), (key, entry, line)
                if persona.style == "words":
                    assert not re.search(r"\d", line) and line == line.lower(), (key, line)


def test_bank_option_runs_the_simulator_on_another_bank(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """--bank says which bank it used and leaves docs/benchmarks.md (about the main bank) alone."""
    import bench.report

    written: list[str] = []
    monkeypatch.setattr(bench.report, "write_section", lambda name, *_: written.append(name))
    main(["--text", "--callers", "8", "--seed", "3", "--show-failures", "0",
          "--bank", str(HELD_OUT)])  # fmt: skip
    out = capsys.readouterr().out
    assert out.startswith("phrasing bank: bench/caller_sim/held_out.yaml\n"), out[:200]
    assert "| **all** | 8 |" in out
    assert written == []


def test_a_numbered_tour_type_question_is_answered_with_the_callers_type() -> None:
    heard = hear("Say or press 1 for an in-person tour, or 2 for a virtual tour by video.", NOW)
    assert heard.kind == "choices" and heard.choices == {"in_person": "1", "virtual": "2"}


@pytest.mark.parametrize("ahead", range(1, 14))
def test_every_way_a_caller_says_a_day_means_that_day_to_the_agent(ahead: int) -> None:
    """The simulated callers also say "the day after tomorrow", "next Friday" and "a week from
    today"; each form, said in either style, must name the day the caller means."""
    import random

    from app.domain.catalog import Catalog
    from app.planner.understanding import understand

    catalog = Catalog.load(Path(__file__).resolve().parent.parent / "prompts" / "properties.yaml")
    day = NOW.date() + timedelta(days=ahead)
    said: set[str] = set()
    for style in ("words", "digits"):
        renderer = Renderer(style, random.Random(ahead), NOW, load_bank())
        said |= {renderer.day(day) for _ in range(60)}
    for phrase in said:
        heard = understand(f"{phrase} at 2 pm", NOW, catalog, "tour_time")
        assert heard.tour_day == day, phrase
