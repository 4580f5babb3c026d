"""The agent's voice: clause-first chunks, the phrase cache, shared in-flight renders."""

from __future__ import annotations

import asyncio

import pytest

from app.audio.tts import PiperTTS
from app.domain.text import speakable_chunks
from app.voice.compute_pool import NORMAL, URGENT, ComputePool
from app.voice.speech_renderer import PhraseCache, SpeechRenderer, render_priorities


def test_a_cached_opening_clause_is_spoken_first() -> None:
    ready = {"Got it:"}.__contains__
    chunks = speakable_chunks(["Got it: Hudson 360.", "What size?"], True, ready)
    assert chunks == ["Got it:", "Hudson 360.", "What size?"]


def test_short_uncached_clauses_stay_together() -> None:
    assert speakable_chunks(["Sure, Dana.", "Next?"], True) == ["Sure, Dana.", "Next?"]


def test_long_first_sentence_splits_at_its_first_clause() -> None:
    sentence = "I have Tuesday at 2 PM, or Wednesday at 11 in the morning."
    assert speakable_chunks([sentence], True) == [
        "I have Tuesday at 2 PM,",
        "or Wednesday at 11 in the morning.",
    ]
    assert speakable_chunks([sentence], False) == [sentence]


def test_phrase_cache_evicts_least_recently_used() -> None:
    cache = PhraseCache(capacity=2)
    cache.put("a", 8000, b"1")
    cache.put("b", 8000, b"2")
    assert cache.get("a", 8000) == b"1"
    cache.put("c", 8000, b"3")
    assert cache.get("b", 8000) is None
    assert cache.get("a", 8000) == b"1" and cache.get("c", 8000) == b"3"
    assert cache.get("a", 16000) is None  # the rate is part of the key


def test_phrase_cache_holds_a_byte_budget_of_one_off_sentences() -> None:
    """A day of calls says thousands of sentences once ("Your code is 7KQ2"): the cache
    keeps the latest that fit its bytes, so the server does not grow with them."""
    cache = PhraseCache(capacity=1024, max_bytes=3000)
    for n in range(10):
        cache.put(f"Your confirmation code is {n}.", 8000, bytes(1000))
    assert cache.nbytes <= 3000
    assert cache.get("Your confirmation code is 9.", 8000) is not None
    assert cache.get("Your confirmation code is 0.", 8000) is None


def test_fixed_phrases_stay_cached_whatever_else_is_said() -> None:
    cache = PhraseCache(capacity=2, max_bytes=2000)
    cache.put("May I have your name?", 8000, bytes(1500), pinned=True)
    for n in range(5):
        cache.put(f"Nice to meet you, caller {n}.", 8000, bytes(1000))
    assert cache.get("May I have your name?", 8000) == bytes(1500)
    cache.put("May I have your name?", 8000, bytes(10))  # a later unpinned render of it
    assert cache.get("May I have your name?", 8000) == bytes(1500)


class CountingTTS:
    """The real Piper voice, counting how often it is asked to render."""

    def __init__(self, voice: PiperTTS) -> None:
        self.voice = voice
        self.sample_rate = voice.sample_rate
        self.calls = 0

    def synthesize(self, text: str):
        self.calls += 1
        yield from self.voice.synthesize(text)


@pytest.fixture(scope="module")
def piper() -> PiperTTS:
    return PiperTTS()


async def test_concurrent_requests_for_one_sentence_render_it_once(piper: PiperTTS) -> None:
    tts = CountingTTS(piper)
    pool = ComputePool(workers=2)
    renderer = SpeechRenderer(tts, pool, PhraseCache())
    try:
        first, second = await asyncio.gather(
            renderer.render("call-a", "Nice to meet you, Dana.", 8000),
            renderer.render("call-a", "Nice to meet you, Dana.", 8000),
        )
        again, cached = await renderer.render("call-b", "Nice to meet you, Dana.", 8000)
        wideband, _ = await renderer.render("call-c", "Nice to meet you, Dana.", 16000)
    finally:
        pool.shutdown()
    assert tts.calls == 1  # once for two waiters, the cache, and another rate
    assert first[0] == second[0] == again and cached
    assert abs(len(wideband) - 2 * len(again)) < 64
    seconds = len(again) / 2 / 8000
    assert 0.8 < seconds < 3.0  # real speech, resampled to the phone's 8 kHz


def test_the_chunk_after_a_cached_opening_is_what_the_caller_waits_for() -> None:
    """ "Got it:" plays at once; "a virtual tour." must not queue behind other calls."""
    cached = {"Got it:"}
    chunks = ["Got it:", "a virtual tour.", "What day and time work for your tour?"]
    assert render_priorities(chunks, cached.__contains__) == [URGENT, URGENT, NORMAL]


def test_only_the_first_chunk_is_urgent_when_nothing_is_cached() -> None:
    chunks = ["So that's a virtual tour of Hudson 360,", "on Friday at 2 PM.", "Shall I book it?"]
    assert render_priorities(chunks, lambda _text: False) == [URGENT, NORMAL, NORMAL]
    assert render_priorities(chunks, lambda _text: True) == [URGENT, NORMAL, NORMAL]


class ToneTTS:
    """A stand-in voice: 0.5 s of audio per sentence, counting renders (no model needed)."""

    sample_rate = 22050

    def __init__(self) -> None:
        self.calls = 0

    def synthesize(self, text: str):
        self.calls += 1
        yield bytes(2 * self.sample_rate // 2)


async def test_a_prewarmed_phrase_survives_a_flood_of_one_off_sentences() -> None:
    tts = ToneTTS()
    pool = ComputePool(workers=1)
    renderer = SpeechRenderer(tts, pool, PhraseCache(max_bytes=200_000))
    try:
        await renderer.prewarm(["Which building would you like to see?"], rate=8000)
        for n in range(20):
            await renderer.render("call", f"Your confirmation code is {n:04d}.", 8000)
        rendered = tts.calls
        _, cached = await renderer.render("call", "Which building would you like to see?", 8000)
    finally:
        pool.shutdown()
    assert cached and tts.calls == rendered
    assert renderer.cache.nbytes < 200_000 + 2 * 22050 + 8000
