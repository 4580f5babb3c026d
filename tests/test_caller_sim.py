"""The self-play caller simulator (bench/caller_sim.py) works, by text, on a small crowd.

These tests check the simulator itself: personas, hearing the agent, metrics, transcripts.
The issue-10 goals for the planner (by text) are in ``test_text_success_goal``.
"""

from __future__ import annotations

import statistics
from collections import Counter
from datetime import datetime, timedelta

import numpy as np
import pytest

from app.domain.tour_rules import slot_problem
from bench.caller_sim import (
    ESPEAK_MISSING,
    NY,
    STRATEGIES,
    Figures,
    Outcome,
    add_line_noise,
    hear,
    make_personas,
    reformat_number,
    run_text,
    run_voice,
    table,
    voice_style,
)

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=NY)  # a Monday
CROWD = 8 * len(STRATEGIES)  # 8 callers per strategy, 3 of them call back


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
        assert len(o.calls) == (2 if o.persona.callback else 1), text
        if o.persona.callback:
            assert o.stats.recall is not None, text
            assert o.calls[1].number == o.persona.callback_number
    asked = sum(o.stats.questions_asked for o in outcomes)
    assert asked >= len(STRATEGIES), "questions_first callers ask two questions each"
    figures = Figures.of(outcomes)
    assert figures.callers == CROWD
    assert figures.recall_tries == sum(o.persona.callback is not None for o in outcomes)
    rendered = "\n".join(table(outcomes))
    for strategy in STRATEGIES:
        assert strategy in rendered


def test_text_success_goal(outcomes: list[Outcome]) -> None:
    """Issue 10's text goals, on the shared crowd (the bench runs 300)."""
    failed = [o for o in outcomes if not o.success]
    assert len(failed) <= 0.01 * len(outcomes), "\n\n".join(o.transcript() for o in failed[:3])
    callbacks = [o for o in outcomes if o.persona.callback]
    missed = [o for o in callbacks if not o.stats.recall]
    assert not missed, "\n\n".join(o.transcript() for o in missed[:3])
    looping = [o for o in outcomes if o.stats.longest_repeat > 2]
    assert not looping, "\n\n".join(o.transcript() for o in looping[:3])
    turns = [o.stats.turns_to_book for o in outcomes if o.stats.turns_to_book is not None]
    assert statistics.median(turns) <= 6
