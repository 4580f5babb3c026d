"""What the realtime loop needs from the world: voice models and a clock, as small protocols.

``VoiceKit`` (real models on the compute pool) and ``time``/``asyncio`` satisfy them in
production; the loop's fast tests pass fakes and a virtual clock, so turn-taking, barge-in,
keypad, silence and goodbye are tested in milliseconds, faster than real time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Protocol

from app.audio.stt import Transcript
from app.settings import Settings


class VoiceActivity(Protocol):
    """One call's voice-activity detector (it keeps per-stream state)."""

    @property
    def window_ms(self) -> float: ...

    def process(self, pcm16: bytes) -> list[float]:
        """Speech probability of every complete window in ``pcm16`` (a tail waits)."""
        ...


class Voice(Protocol):
    """Speech in and out for every call of a process: VAD, STT and rendered speech."""

    @property
    def settings(self) -> Settings: ...

    def new_vad(self, sample_rate: int) -> VoiceActivity: ...

    def release_vad(self, vad: VoiceActivity) -> None:
        """The call is over: the VAD may serve another (after a reset)."""
        ...

    async def score(self, vad: VoiceActivity, pcm16: bytes) -> list[float]:
        """``vad.process`` off the event loop."""
        ...

    async def hear(
        self, owner: str, pcm16: bytes, sample_rate: int, *, priority: int, hints: Sequence[str]
    ) -> Transcript: ...

    async def transcribe(
        self, owner: str, pcm16: bytes, sample_rate: int, *, priority: int
    ) -> str: ...

    async def surely_interrupts(
        self, owner: str, pcm16: bytes, sample_rate: int, run_ms: float, *, priority: int
    ) -> bool:
        """Is the caller's talking (its last ``run_ms`` of ``pcm16``) surely taking the turn?
        False when unsure, or when there is no way to tell this early."""
        ...

    def is_cached(self, text: str, rate: int) -> bool:
        """Is ``text`` already rendered (it can start at once)?"""
        ...

    async def render(
        self, owner: str, text: str, rate: int, *, priority: int
    ) -> tuple[bytes, bool]:
        """PCM16 of ``text`` at ``rate``, and whether it came from the cache."""
        ...

    def forget(self, owner: str) -> None:
        """The call is over: drop its queued work."""
        ...


class Clock(Protocol):
    """Seconds on a monotonic clock, and waiting on it."""

    def now(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock: ``time.perf_counter`` and ``asyncio.sleep``."""

    def now(self) -> float:
        return time.perf_counter()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


SYSTEM_CLOCK = SystemClock()
