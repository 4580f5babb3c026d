"""Which words the recognizer was unsure of: the planner reads them back instead of trusting."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import soxr

from app.audio.stt import (
    DetailedSpeechToText,
    SpeechToText,
    Transcript,
    WhisperSTT,
    max_tokens_for,
    transcribe_detailed,
)

pytestmark = pytest.mark.slow

Speak = Callable[[str], np.ndarray]
Phone = Callable[[np.ndarray], np.ndarray]


@pytest.fixture(scope="module")
def phone_stt(whisper_stt: WhisperSTT) -> WhisperSTT:
    """The recognizer as calls use it: the shared model with the 10 s encoder window."""
    return WhisperSTT(encoder_window_s=10)


def test_an_unusual_name_is_flagged_and_plain_words_are_not(
    phone_stt: WhisperSTT, speak: Speak, phone_path: Phone
) -> None:
    heard = phone_stt.transcribe_detailed(phone_path(speak("My name is Priya Raghunathan.")))
    assert isinstance(heard, Transcript)
    assert heard.unsure_words, heard  # tiny.en guesses at this name ("Raghannathan")
    assert not {"my", "name", "is"} & set(heard.unsure_words), heard


def test_a_clear_sentence_has_the_same_text_and_few_doubts(
    phone_stt: WhisperSTT, speak: Speak, phone_path: Phone
) -> None:
    audio = phone_path(speak("Do you have any two bedroom apartments available next month?"))
    heard = phone_stt.transcribe_detailed(audio)
    assert heard.text == phone_stt.transcribe(audio)  # same decode, only scored
    assert len(heard.unsure_words) <= 1, heard
    for word in heard.unsure_words:  # lowercase words, no punctuation: what the planner expects
        assert word == word.lower() and word.strip(".,?!") == word


def test_silence_has_no_words_to_doubt(phone_stt: WhisperSTT) -> None:
    assert phone_stt.transcribe_detailed(np.zeros(16000, dtype=np.int16)) == Transcript("")
    assert phone_stt.transcribe_detailed(b"") == Transcript("")


class TextOnlySTT:
    """Any recognizer without word confidence (OpenAI, LiveKit adapters, test fakes)."""

    def transcribe(self, pcm16_16k: object) -> str:
        return "Hudson 360."


def test_recognizers_without_confidence_still_give_a_transcript(phone_stt: WhisperSTT) -> None:
    assert isinstance(phone_stt, DetailedSpeechToText)
    plain = TextOnlySTT()
    assert isinstance(plain, SpeechToText) and not isinstance(plain, DetailedSpeechToText)
    assert transcribe_detailed(plain, b"\0\0" * 1600) == Transcript("Hudson 360.")


BUILDINGS = ("21 West End", "Hudson 360", "Riverview Lofts")


RIVERVIEW_LINES = (
    "I'd like to see Riverview Lofts.",
    "Can I tour Riverview Lofts on Friday?",
    "Riverview Lofts, please.",
    "Is Riverview Lofts pet friendly?",
    "The Riverview Lofts one.",
)


def test_hints_bring_a_building_name_through_the_phone(
    phone_stt: WhisperSTT, speak: Speak, phone_path: Phone
) -> None:
    """Counted over several lines: one line's audio shifts with each onnxruntime release."""
    hints = (*BUILDINGS, "Dana Lee")  # what recognition_hints() gives for a returning caller
    plain, hinted = 0, 0
    for line in RIVERVIEW_LINES:
        audio = phone_path(speak(line))
        plain += "riverview lofts" in phone_stt.transcribe(audio).lower()  # "Riverview off"
        hinted += "riverview lofts" in phone_stt.transcribe_detailed(audio, hints).text.lower()
    assert plain <= 1, plain  # tiny.en alone: "Riverview off", "lots", "Loughs", "Loss"
    assert hinted >= 3 and hinted > plain + 1, (plain, hinted)


def test_hints_invent_nothing_on_silence_or_line_noise(phone_stt: WhisperSTT) -> None:
    """Whisper prompts are known to make it transcribe its prompt into quiet audio."""
    hints = (*BUILDINGS, "Priya Raghunathan", "2 PM")
    hiss = np.random.default_rng(3).normal(0, 300, 32000)
    for quiet in (np.zeros(32000, dtype=np.int16), hiss.astype(np.int16)):
        assert phone_stt.transcribe_detailed(quiet, hints) == Transcript("")


def test_a_word_that_sends_hinted_whisper_into_a_loop_comes_back_as_said(
    phone_stt: WhisperSTT,
) -> None:
    """A lone "Virtual" on a noisy line decoded as "virtual virtual ..." with hints (and
    often with the short window alone): 448 tokens of CPU under load, then the wrong text."""
    from app.audio.codec import array_to_pcm16, ulaw_decode
    from sim.twilio import CallerVoice

    hints = (*BUILDINGS, "Dana Lee")
    for seed in (1, 3):
        speech = CallerVoice(seed=seed).render("virtual")
        pcm8k = np.concatenate([ulaw_decode(frame) for frame in speech.frames])
        audio = soxr.resample(np.concatenate([pcm8k, np.zeros(2400, np.int16)]), 8000, 16000)
        heard = phone_stt.transcribe_detailed(array_to_pcm16(audio.astype(np.int16)), hints)
        assert heard.text.lower().strip(".") == "virtual", (seed, heard)


def test_a_decode_stops_long_before_whisper_s_own_limit_on_short_audio() -> None:
    assert max_tokens_for(0.8) < 24 < max_tokens_for(2.0) < 448
    assert max_tokens_for(10.0) >= 10 * 6  # fast speech still fits
