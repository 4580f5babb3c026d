"""Turn-taking decisions: when the caller started, paused, resumed and finished."""

from __future__ import annotations

import pytest

from app.voice.turn_taking import (
    Cue,
    Thought,
    TurnDetector,
    is_backchannel,
    judge_thought,
)


def feed(detector: TurnDetector, probabilities: list[float]) -> list[Cue]:
    return [cue for p in probabilities if (cue := detector.push(p)) is not None]


def test_a_click_is_not_speech() -> None:
    detector = TurnDetector()
    assert feed(detector, [0.9, 0.1, 0.1]) == []
    assert not detector.in_speech


def test_speech_pause_resume_and_silence_are_tracked() -> None:
    detector = TurnDetector()
    assert feed(detector, [0.9] * 10) == [Cue.SPEECH_START]
    assert detector.voiced_ms == pytest.approx(320)
    assert feed(detector, [0.1] * 3) == [Cue.PAUSE]
    assert detector.silence_ms == pytest.approx(96)
    assert feed(detector, [0.8]) == [Cue.RESUME]
    assert detector.silence_ms == 0
    feed(detector, [0.05] * 20)
    assert detector.silence_ms == pytest.approx(640)
    detector.reset()
    assert not detector.in_speech and detector.voiced_ms == 0


def test_hysteresis_keeps_a_soft_syllable_inside_the_word() -> None:
    detector = TurnDetector()
    feed(detector, [0.9] * 5)
    assert feed(detector, [0.4, 0.45, 0.9]) == []  # between the thresholds while talking
    assert detector.talking


def test_one_window_dip_does_not_reset_the_talking_run() -> None:
    detector = TurnDetector()
    feed(detector, [0.9] * 5)
    feed(detector, [0.1, 0.9, 0.9])
    assert detector.run_ms == pytest.approx(5 * 32 + 2 * 32)
    feed(detector, [0.1, 0.1, 0.9])
    assert detector.run_ms == pytest.approx(32)


@pytest.mark.parametrize(
    ("text", "progressed", "complete"),
    [
        ("My name is Dana Lee.", None, True),
        ("My name is Dana Lee.", True, True),
        ("Is there parking?", False, True),
        ("Hudson 360", False, False),
        ("Hudson 360", True, True),  # a bare answer the planner can use
        ("I'd like to see the", True, False),
        ("Two cats and", True, False),
        ("Maybe next week...", True, False),
        ("Let me think,", True, False),
        ("", True, False),
    ],
)
def test_a_finished_thought_ends_at_the_short_pause(
    text: str, progressed: bool, complete: bool
) -> None:
    assert (judge_thought(text, progressed) is Thought.COMPLETE) is complete


@pytest.mark.parametrize(
    "text",
    [
        # Whisper puts a period after a pause for breath: the last word tells.
        "Thanks.",
        "Thanks,",
        "Thank you.",
        "Okay, thank you.",
        "Hi.",
        "Hi there.",
        "Well.",
        "Um.",
        "Uh,",
        "Hmm.",
        "Okay, so.",
        "Okay so",
        "Yeah, and.",
        "So.",
        "And.",
        "I'd like to.",
        "I'd like to book a tour at.",
        "I was hoping for.",
        "That's.",
        "Yes, that's",
        "I'm.",
        "It's.",
        "Because.",
        "Because the",
        "I'm looking at the.",
        "We have two cats and.",
        "Hudson 360 and.",
        "Hudson 360, but.",
        "My name is Dana, and my.",
        "Something around $2,000 a month, or.",
        "Actually.",
        "Wait.",
        "Sorry.",
        "Let me think...",
        "Tuesday at 2 p.m. um.",
        "Sometime next week like",
        "I’m",  # a typographic apostrophe
    ],
)
def test_an_unfinished_thought_waits_even_with_a_period(text: str) -> None:
    assert judge_thought(text) is Thought.INCOMPLETE
    assert (
        judge_thought(text, progressed=True) is Thought.INCOMPLETE
    )  # even if the planner could use it


@pytest.mark.parametrize(
    "text",
    [
        "yes.",
        "Yes.",
        "Okay.",
        "Yeah.",
        "Sure.",
        "Perfect.",
        "Hudson 360.",
        "Dana Lee.",
        "My name is Dana Lee.",
        "Tuesday at 2 p.m.",
        "In person.",
        "No, that's all, thanks.",
        "Yes, thank you.",
        "No thank you.",
        "That works for me.",
        "That's it.",
        "Is there parking?",
        "Which building is that in?",  # a question may end on a preposition
        "Who am I speaking with?",
        "Hello?",
        "D A N A.",  # spelled letters: the last "a" is not an article
        "M-A-R-I-A.",
        "Bye.",
    ],
)
def test_a_finished_short_answer_ends_at_the_short_pause(text: str) -> None:
    assert judge_thought(text) is Thought.COMPLETE


@pytest.mark.parametrize(
    "text",
    ["Sure, A L P X", "A, L, E, X, A,", "last name M-A-C", "It's spelled D A N"],
)
def test_spelled_letters_wait_for_the_rest_of_the_name(text: str) -> None:
    assert judge_thought(text) is Thought.INCOMPLETE


@pytest.mark.parametrize("text", ["Tuesday at 2 p.m.", "D A N A.", "Yes, 2 B."])
def test_one_letter_at_the_end_is_not_spelling(text: str) -> None:
    assert judge_thought(text) is not Thought.INCOMPLETE


@pytest.mark.parametrize(
    ("text", "progressed", "thought"),
    [
        ("Hudson 360", False, Thought.UNSURE),  # no period: wait the usual pause...
        ("Hudson 360", True, Thought.COMPLETE),  # ...unless the planner can use it
        ("Yes, it is.", False, Thought.UNSURE),  # can end an answer, often does not
        ("Maybe.", False, Thought.UNSURE),
        ("No.", None, Thought.UNSURE),  # as often "No. I said 4 PM." as a whole answer
        ("No, no.", True, Thought.UNSURE),
        # The planner would not move on: the first of two sentences, callers go on after it.
        ("Good morning.", False, Thought.UNSURE),
        ("I'm calling about an apartment tour.", False, Thought.UNSURE),
        ("Good morning.", None, Thought.COMPLETE),  # no prediction (LLM): the period decides
        ("Is there parking?", False, Thought.COMPLETE),  # a question always hands over
        ("Hudson 360.", True, Thought.COMPLETE),
        ("", False, Thought.UNSURE),  # nothing heard: no reason to wait longer
    ],
)
def test_neither_finished_nor_hanging_waits_the_usual_pause(
    text: str, progressed: bool | None, thought: Thought
) -> None:
    assert judge_thought(text, progressed=progressed) is thought


@pytest.mark.parametrize(
    ("text", "backchannel"),
    [
        ("Uh-huh.", True),
        ("Mm-hmm", True),
        ("Okay.", True),
        ("Yeah, right.", True),
        ("out.", True),  # Whisper's reading of "uh-huh" on a noisy line
        ("Aha.", True),
        ("Wow.", True),
        ("Perfect.", True),  # reactions heard right are still no turn
        ("All right.", True),
        ("Sounds good.", True),
        ("That's great.", True),
        ("", True),
        ("Actually, I want Hudson 360.", False),
        ("No, wait.", False),
        ("Stop.", False),
        ("Out of curiosity, is parking free?", False),
        ("Okay but what about parking?", False),
        ("Perfect, but not Friday.", False),
        ("That's wrong.", False),
    ],
)
def test_is_backchannel(text: str, backchannel: bool) -> None:
    assert is_backchannel(text) is backchannel
