"""The speech models every call shares, loaded once at start-up and timed."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
import numpy.typing as npt
import soxr

from app.audio.codec import array_to_pcm16, pcm16_to_array
from app.audio.interruption_probe import LINE_RATE, load_probe
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
from app.voice.phrase_store import PhraseStore
from app.voice.ports import VoiceActivity
from app.voice.speech_renderer import PhraseCache, SpeechRenderer, render_key

SPARE_VADS = 8
"""VADs kept built for calls about to start (phone rate); refilled when half are taken."""

BUILD_NICENESS = 10
"""How much lower than the rest of the server VAD builds run (added to the nice value)."""

SILERO_WINDOW_MS = 32.0
"""Silero's window at both rates (256 samples at 8 kHz, 512 at 16 kHz): what a VAD still
being built tells the turn detector."""

log = logging.getLogger("tourline.models")
T = TypeVar("T")


class PendingVAD:
    """A call's VAD while it is still being built off the event loop (the spares ran out).

    Why: a burst of call starts takes the spares in one go; building the rest on the loop
    (~50 ms each) stalled every other call's audio for over a second at 30 starts. Until it
    is ready the call's audio waits in ``VoiceKit.score``, not the loop.
    """

    def __init__(self, sample_rate: int, built: Future[SileroVAD]) -> None:
        self.sample_rate = sample_rate
        self.built = built

    @property
    def window_ms(self) -> float:
        return SILERO_WINDOW_MS

    async def ready(self) -> SileroVAD:
        return await asyncio.wrap_future(self.built)

    def process(self, pcm16: bytes | npt.NDArray[np.int16]) -> list[float]:
        """Off the loop only: waits for the build."""
        return self.built.result().process(pcm16)


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
    _retiring: set[asyncio.Task[None]] = field(default_factory=set, repr=False)
    _builder: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(
            1, thread_name_prefix="vad-build", initializer=_build_in_the_background
        ),
        repr=False,
    )

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
        store = PhraseStore.for_voice(
            settings.resolved_phrase_cache_dir, getattr(tts, "cache_key", None), render_key()
        )
        renderer = SpeechRenderer(tts, pool, PhraseCache(), store)
        kit = cls(settings, stt, tts, pool, renderer, load_ms)
        timed("spare vads", kit.prepare_vads)
        return kit

    def new_vad(self, sample_rate: int) -> SileroVAD | PendingVAD:
        """A VAD for one call (it keeps per-stream state); 8 kHz needs no resampling.

        Building one takes ~50-100 ms of CPU, and this runs on the event loop that carries
        every call's audio: so a call's VAD comes from spares built ahead (``prepare_vads``,
        at start-up) and goes back with ``release_vad``; when spares run low, more are built
        off the loop, and a call that finds none gets one still being built (``PendingVAD``).
        """
        rate = 8000 if sample_rate == 8000 else 16000
        with self._vad_lock:
            spares = self._spare_vads.setdefault(rate, [])
            vad = spares.pop() if spares else None
            refill = len(spares) < SPARE_VADS // 2 and rate not in self._refilling
            if refill:
                self._refilling.add(rate)
        if refill:  # its own thread: the VAD thread scores every call's audio
            threading.Thread(target=self._refill, args=(rate,), daemon=True).start()
        if vad is not None:
            return vad
        return PendingVAD(rate, self._builder.submit(SileroVAD, rate))

    def _refill(self, rate: int) -> None:
        _build_in_the_background()  # this thread is ours alone, and ends after the refill
        try:
            self.prepare_vads(rate)
        finally:
            with self._vad_lock:
                self._refilling.discard(rate)

    def release_vad(self, vad: VoiceActivity) -> None:
        """A call is over: its VAD, reset, is a spare for the next call; past
        ``SPARE_VADS`` spares it is freed, off the event loop (``_retire``)."""
        if isinstance(vad, PendingVAD):
            if not vad.built.done() or vad.built.exception() is not None:
                return
            vad = vad.built.result()
        if not isinstance(vad, SileroVAD):
            return
        vad.reset()
        with self._vad_lock:
            spares = self._spare_vads.setdefault(vad.sample_rate, [])
            if any(s is vad for s in spares):
                return  # released twice
            kept = len(spares) < SPARE_VADS
            if kept:
                spares.append(vad)
        if not kept:
            self._retire(vad)

    def _retire(self, vad: SileroVAD) -> None:
        """Free a VAD no call will use again. Its ONNX session's teardown takes ~2 ms of
        CPU; on the event loop, 30 calls ending at once held the other calls ~50 ms. It
        runs on the light thread, after any window of the call still being scored there."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not on an event loop: nobody waits for this thread
            _free(vad)
            return
        task = loop.create_task(self.pool.run_light(_free, vad))
        self._retiring.add(task)
        task.add_done_callback(self._retired)

    def _retired(self, task: asyncio.Task[None]) -> None:
        self._retiring.discard(task)
        if not task.cancelled() and task.exception() is not None:  # the pool was shut down
            log.debug("a VAD was left to the garbage collector: %r", task.exception())

    def prepare_vads(self, rate: int = 8000, count: int | None = None) -> None:
        """Build spare VADs up to ``SPARE_VADS`` (or ``count`` more), off the event loop."""
        with self._vad_lock:
            have = len(self._spare_vads.get(rate, []))
        wanted = (SPARE_VADS - have) if count is None else count
        built = [SileroVAD(rate) for _ in range(max(0, wanted))]
        with self._vad_lock:
            spares = self._spare_vads.setdefault(rate, [])
            # Calls may have ended meanwhile and given theirs back: keep no more than asked.
            room = len(built) if count is not None else max(0, SPARE_VADS - len(spares))
            spares.extend(built[:room])

    async def transcribe(
        self, owner: str, pcm16: bytes, sample_rate: int, *, priority: int = URGENT
    ) -> str:
        """A quick look at a short stretch of caller audio (the barge-in check), on the pool
        (resampled for the recognizer): never redone with a longer window."""
        return await self.pool.run(
            owner, self._transcribe_now, pcm16, sample_rate, priority=priority
        )

    async def surely_interrupts(
        self, owner: str, pcm16: bytes, sample_rate: int, run_ms: float, *, priority: int = URGENT
    ) -> bool:
        """The early barge-in judgement (``interruption_probe``), on the pool: True only when
        it is sure; False too when the recognizer has no encoder to judge with (a fake)."""
        if getattr(self.stt, "encoder_states", None) is None:
            return False
        return await self.pool.run(
            owner, self._surely_interrupts_now, pcm16, sample_rate, run_ms, priority=priority
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
        if isinstance(vad, PendingVAD):
            vad = await vad.ready()  # its audio waits here, not the light thread or the loop
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
        audio = _for_stt(pcm16, sample_rate)
        glance = getattr(self.stt, "glance", None)  # Whisper's quick look, when it has one
        return str(glance(audio)) if glance is not None else self.stt.transcribe(audio)

    def _surely_interrupts_now(self, pcm16: bytes, sample_rate: int, run_ms: float) -> bool:
        probe = load_probe()
        audio = pcm16_to_array(pcm16)
        if sample_rate != LINE_RATE:  # trained on phone lines: judge what a line would carry
            audio = np.asarray(soxr.resample(audio, sample_rate, LINE_RATE, "HQ"), np.int16)
        run_samples = round(run_ms * LINE_RATE / 1000)
        encode = self.stt.encoder_states  # type: ignore[attr-defined]  # checked by the caller
        return probe.is_interruption(audio, run_samples, lambda x: encode(x, probe.encoder_frames))

    def _hear_now(self, pcm16: bytes, sample_rate: int, hints: Sequence[str]) -> Transcript:
        return transcribe_detailed(self.stt, _for_stt(pcm16, sample_rate), hints)

    def close(self) -> None:
        self.pool.shutdown()
        self._builder.shutdown(wait=False, cancel_futures=True)


def _build_in_the_background() -> None:
    """Give this thread's VAD builds the CPU only after the event loop and speech threads.

    Why: a burst of 30 starts builds ~30 VADs (50-100 ms of CPU each, ~2.4 s in all); on a
    2-core machine that starved the event loop, and every call's audio stalled with it
    (py-spy: the loop mostly runnable in uvloop, the builders busy). A call waits for its
    own VAD only to hear its caller, whose audio is kept meanwhile. Linux sets the nice
    value per thread; elsewhere this does nothing.
    """
    with contextlib.suppress(AttributeError, OSError):  # not Linux, or not allowed
        thread = threading.get_native_id()
        niceness = os.getpriority(os.PRIO_PROCESS, thread) + BUILD_NICENESS
        os.setpriority(os.PRIO_PROCESS, thread, min(niceness, 19))


def _free(vad: SileroVAD) -> None:
    """Drop the VAD's native session here (this thread pays for its teardown); the VAD
    object left behind is an empty shell."""
    with contextlib.suppress(AttributeError):  # freed already
        del vad._native


def _for_stt(pcm16: bytes, sample_rate: int) -> bytes:
    """Caller audio at the recognizer's rate."""
    if sample_rate == STT_SAMPLE_RATE:
        return pcm16
    samples = soxr.resample(pcm16_to_array(pcm16), sample_rate, STT_SAMPLE_RATE, "HQ")
    return array_to_pcm16(np.asarray(samples, dtype=np.int16))
