"""Fixed phrases rendered once survive a restart; a caller's words never reach the disk."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from app.voice.compute_pool import ComputePool
from app.voice.phrase_store import PhraseStore
from app.voice.speech_renderer import PhraseCache, SpeechRenderer, render_key

RATE = 16000


class CountingVoice:
    """A voice that says each text as a tone whose pitch depends on the text."""

    sample_rate = RATE
    cache_key = "counting-voice:v1"

    def __init__(self) -> None:
        self.spoken: list[str] = []

    def synthesize(self, text: str) -> Iterator[bytes]:
        self.spoken.append(text)
        t = np.arange(RATE // 4) / RATE
        yield (4000 * np.sin(2 * np.pi * (200 + len(text)) * t)).astype(np.int16).tobytes()


def start_server(voice: CountingVoice, root: Path) -> SpeechRenderer:
    """What a server start builds: a fresh in-memory cache over the same store folder."""
    store = PhraseStore.for_voice(root, voice.cache_key, render_key())
    return SpeechRenderer(voice, ComputePool(1), PhraseCache(), store)


async def test_a_restart_plays_the_stored_phrases_without_synthesizing(tmp_path: Path) -> None:
    phrases = ["Thanks for calling the leasing office!", "May I have your name?"]
    voice = CountingVoice()
    first = start_server(voice, tmp_path)
    assert await first.prewarm(phrases, rate=8000) == 2
    before = {p: first.cache.get(p, 8000) for p in phrases}
    first.pool.shutdown()
    assert voice.spoken == phrases

    second = start_server(voice, tmp_path)
    await second.prewarm(phrases, rate=8000)
    second.pool.shutdown()
    assert voice.spoken == phrases, "the second start synthesized again"
    assert {p: second.cache.get(p, 8000) for p in phrases} == before


async def test_a_callers_words_are_never_stored(tmp_path: Path) -> None:
    voice = CountingVoice()
    renderer = start_server(voice, tmp_path)
    audio, cached = await renderer.render("CA1", "Nice to meet you, Dana.", 8000)
    renderer.pool.shutdown()
    assert audio and not cached
    assert not any(tmp_path.rglob("*.pcm")), "a sentence with a caller's name went to disk"


async def test_another_voice_never_plays_this_voices_audio(tmp_path: Path) -> None:
    joe, other = CountingVoice(), CountingVoice()
    other.cache_key = "counting-voice:v2"
    first = start_server(joe, tmp_path)
    await first.prewarm(["Hello."], rate=8000)
    first.pool.shutdown()
    second = start_server(other, tmp_path)
    await second.prewarm(["Hello."], rate=8000)
    second.pool.shutdown()
    assert other.spoken == ["Hello."]


def test_a_voice_without_a_key_is_not_stored(tmp_path: Path) -> None:
    assert PhraseStore.for_voice(tmp_path, None, render_key()) is None


def test_an_unwritable_store_only_costs_a_render(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    store = PhraseStore(blocker / "phrases")
    store.save("Hello.", b"\x00\x01")  # logged, not raised
    assert store.load("Hello.") is None
