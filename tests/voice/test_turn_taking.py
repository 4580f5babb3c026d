"""Turn-taking decisions: when the caller started, paused, resumed and finished."""

from __future__ import annotations

import pytest

from app.services.turn_taking import Cue, TurnDetector, is_backchannel, looks_complete


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
        ("My name is Dana Lee.", False, True),
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
def test_looks_complete(text: str, progressed: bool, complete: bool) -> None:
    assert looks_complete(text, progressed=progressed) is complete


@pytest.mark.parametrize(
    ("text", "backchannel"),
    [
        ("Uh-huh.", True),
        ("Mm-hmm", True),
        ("Okay.", True),
        ("Yeah, right.", True),
        ("", True),
        ("Actually, I want Hudson 360.", False),
        ("No, wait.", False),
        ("Okay but what about parking?", False),
    ],
)
def test_is_backchannel(text: str, backchannel: bool) -> None:
    assert is_backchannel(text) is backchannel
