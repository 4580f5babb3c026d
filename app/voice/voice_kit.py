"""The speech models every call shares, loaded once at start-up and timed."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
import soxr

from app.audio.codec import array_to_pcm16, pcm16_to_array
from app.audio.stt import (
    STT_SAMPLE_RATE,
    SpeechToText,
    Transcript,
    load_stt,
    transcribe_detailed,
)
from app.audio.tts import TextToSpeech, load_tts
from app.audio.vad import SileroVAD
from app.settings import Settings
from app.voice.compute_pool import URGENT, ComputePool
from app.voice.ports import VoiceActivity
from app.voice.speech_renderer import PhraseCache, SpeechRenderer

SPARE_VADS = 8
"""VADs kept built for calls about to start (phone rate); refilled when half are taken."""

log = logging.getLogger("tourline.models")
T = TypeVar("T")


@dataclass
class VoiceKit:
    """STT, TTS, VAD factory and the compute pool they run on."""

    settings: Settings
    stt: SpeechToText
    tts: TextToSpeech
    pool: ComputePool
    renderer: SpeechRenderer
    load_ms: dict[str, float] = field(default_factory=dict)
    _spare_vads: dict[int, list[SileroVAD]] = field(default_factory=dict, repr=False)
    _vad_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _refilling: set[int] = field(default_factory=set, repr=False)

    @classmethod
    def load(cls, settings: Settings) -> VoiceKit:
        """Load and warm every model; logs how long each took (start-up, not the first call)."""
        load_ms: dict[str, float] = {}

        def timed(name: str, make: Callable[[], T]) -> T:
            started = time.perf_counter()
            value = make()
            load_ms[name] = round((time.perf_counter() - started) * 1000, 1)
            log.info("%s ready in %.0f ms", name, load_ms[name])
            return value

        stt = timed("stt", lambda: load_stt(settings))
        tts = timed("tts", lambda: load_tts(settings))
        timed("vad", lambda: SileroVAD(8000).process(np.zeros(512, dtype=np.int16)))
        if hasattr(stt, "warmup"):
            timed("stt warm-up", stt.warmup)
        if hasattr(tts, "warmup"):
            timed("tts warm-up", tts.warmup)
        pool = ComputePool(settings.compute_workers)
        renderer = SpeechRenderer(tts, pool, PhraseCache())
        kit = cls(settings, stt, tts, pool, renderer, load_ms)
        timed("spare vads", kit.prepare_vads)
        return kit

    def new_vad(self, sample_rate: int) -> SileroVAD:
        """A VAD for one call (it keeps per-stream state); 8 kHz needs no resampling.

        Building one takes ~100 ms of CPU, on the event loop that carries every call's audio:
        so a call's VAD comes from spares built ahead (``prepare_vads``, at start-up) and goes
        back with ``release_vad``; when spares run low, more are built off the loop."""
        rate = 8000 if sample_rate == 8000 else 16000
        with self._vad_lock:
            spares = self._spare_vads.setdefault(rate, [])
            vad = spares.pop() if spares else None
            refill = len(spares) < SPARE_VADS // 2 and rate not in self._refilling
            if refill:
                self._refilling.add(rate)
        if refill:  # its own thread: the VAD thread scores every call's audio
            threading.Thread(target=self._refill, args=(rate,), daemon=True).start()
        return vad if vad is not None else SileroVAD(rate)

    def _refill(self, rate: int) -> None:
        try:
            self.prepare_vads(rate)
        finally:
            with self._vad_lock:
                self._refilling.discard(rate)

    def release_vad(self, vad: VoiceActivity) -> None:
        """A call is over: its VAD, reset, is a spare for the next call."""
        if not isinstance(vad, SileroVAD):
            return
        vad.reset()
        with self._vad_lock:
            spares = self._spare_vads.setdefault(vad.sample_rate, [])
            if len(spares) < SPARE_VADS and all(s is not vad for s in spares):
                spares.append(vad)

    def prepare_vads(self, rate: int = 8000, count: int | None = None) -> None:
        """Build spare VADs up to ``SPARE_VADS`` (or ``count`` more), off the event loop."""
        with self._vad_lock:
            have = len(self._spare_vads.get(rate, []))
        wanted = (SPARE_VADS - have) if count is None else count
        built = [SileroVAD(rate) for _ in range(max(0, wanted))]
        with self._vad_lock:
            self._spare_vads.setdefault(rate, []).extend(built)

    async def transcribe(
        self, owner: str, pcm16: bytes, sample_rate: int, *, priority: int = URGENT
    ) -> str:
        """Text of one stretch of caller audio, on the pool (resampled for the recognizer)."""
        return await self.pool.run(
            owner, self._transcribe_now, pcm16, sample_rate, priority=priority
        )

    async def hear(
        self,
        owner: str,
        pcm16: bytes,
        sample_rate: int,
        *,
        priority: int = URGENT,
        hints: Sequence[str] = (),
    ) -> Transcript:
        """Like ``transcribe``, biased toward ``hints``, with the words it was unsure of."""
        return await self.pool.run(
            owner, self._hear_now, pcm16, sample_rate, tuple(hints), priority=priority
        )

    async def score(self, vad: VoiceActivity, pcm16: bytes) -> list[float]:
        """Speech probabilities of ``pcm16``'s windows, on the pool's light thread."""
        return await self.pool.run_light(vad.process, pcm16)

    def is_cached(self, text: str, rate: int) -> bool:
        return self.renderer.is_cached(text, rate=rate)

    async def render(
        self, owner: str, text: str, rate: int, *, priority: int = URGENT
    ) -> tuple[bytes, bool]:
        """Speech for ``text`` (from the phrase cache when it is there)."""
        return await self.renderer.render(owner, text, rate, priority=priority)

    def forget(self, owner: str) -> None:
        self.pool.forget(owner)

    def _transcribe_now(self, pcm16: bytes, sample_rate: int) -> str:
        return self.stt.transcribe(_for_stt(pcm16, sample_rate))

    def _hear_now(self, pcm16: bytes, sample_rate: int, hints: Sequence[str]) -> Transcript:
        return transcribe_detailed(self.stt, _for_stt(pcm16, sample_rate), hints)

    def close(self) -> None:
        self.pool.shutdown()


def _for_stt(pcm16: bytes, sample_rate: int) -> bytes:
    """Caller audio at the recognizer's rate."""
    if sample_rate == STT_SAMPLE_RATE:
        return pcm16
    samples = soxr.resample(pcm16_to_array(pcm16), sample_rate, STT_SAMPLE_RATE, "HQ")
    return array_to_pcm16(np.asarray(samples, dtype=np.int16))
