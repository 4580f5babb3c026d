"""The caller's voice: lines rendered as 20 ms μ-law frames with line noise mixed in.

The line is quiet (-60 dBFS white noise) unless the voice is given an ``snr_db``: then it
carries phone-line noise (sim/line_noise.py) at the caller's speech level minus that SNR,
under speech and between utterances alike (``silence_frames``). ``on_line`` makes one such
voice per call, sharing Piper and the clean renders.

Each frame is flagged voiced or not, so latency can start at the last voiced frame rather
than at trailing silence. Piper and Whisper take seconds to load, so one of each is shared
by every call in a process (``shared_voice``, ``shared_stt``, ``preload_models``).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from app.audio.codec import (
    PHONE_SAMPLE_RATE,
    ULAW_FRAME_BYTES,
    Resampler,
    pcm16_to_array,
    ulaw_encode,
)
from sim.line_noise import LineNoise, noise_level_for
from sim.twilio.clock import FRAME_S

LINE_NOISE_DBFS: Final = -60.0
"""A quiet phone line: low-level noise, never digital zero (VADs treat the two differently)."""
VOICED_DBFS: Final = -40.0
"""A frame of caller audio is "voiced" above this RMS level (Piper speech sits near -20)."""
SPEECH_LEVEL_DBFS: Final = -19.0
"""The caller's active speech level an SNR is quoted against: the median of Piper's lines
after resampling to 8 kHz (each line measures -22 to -16 dBFS, so a line's own SNR is
within about 3 dB of the call's)."""


def _dbfs(samples: npt.NDArray[np.int16]) -> float:
    if samples.size == 0:
        return -120.0
    rms = float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))
    return 20 * np.log10(max(rms, 1e-3) / 32768.0)


@dataclass(frozen=True)
class Speech:
    """Caller audio ready to stream: 160-byte μ-law frames and which of them carry voice."""

    text: str
    frames: tuple[bytes, ...]
    voiced: tuple[bool, ...]

    @property
    def duration_s(self) -> float:
        return len(self.frames) * FRAME_S


class CallerVoice:
    """Turns caller lines into phone frames, the way a handset and Twilio would carry them.

    Text goes through Piper (22.05 kHz) -> ``Resampler`` -> 8 kHz, then line noise is mixed
    in and the result is μ-law coded. Renders are cached by text: a benchmark pre-renders
    its script so synthesis never competes with the server while calls run.

    Piper's sampling noise is off by default so a test hears the same audio every run.
    """

    def __init__(
        self,
        tts: Any = None,
        *,
        seed: int = 7,
        steady: bool = True,
        snr_db: float | None = None,
        speech_level_dbfs: float = SPEECH_LEVEL_DBFS,
        clean_cache: dict[str, npt.NDArray[np.int16]] | None = None,
    ) -> None:
        self._tts = tts
        self._steady = steady
        self._cache: dict[str, Speech] = {}
        self._clean: dict[str, npt.NDArray[np.int16]] = {} if clean_cache is None else clean_cache
        self._lock = threading.Lock()
        self._rng = np.random.default_rng(seed)
        self.snr_db = snr_db
        self._line: LineNoise | None = None
        if snr_db is not None:
            level = noise_level_for(speech_level_dbfs, snr_db)
            self._line = LineNoise(PHONE_SAMPLE_RATE, level, seed=seed)

    def on_line(self, snr_db: float | None, *, seed: int) -> CallerVoice:
        """The same caller on another line: its own noise (``snr_db``; None = quiet), sharing
        Piper and the clean renders, so per-call noise costs no synthesis."""
        return CallerVoice(
            self.tts, seed=seed, steady=self._steady, snr_db=snr_db, clean_cache=self._clean
        )

    @property
    def tts(self) -> Any:
        """The PiperTTS instance, loaded on first use (run that off the event loop)."""
        with self._lock:
            if self._tts is None:
                from app.audio.tts import PiperTTS

                noise = {"noise_scale": 0.0, "noise_w_scale": 0.0} if self._steady else {}
                # One intra-op thread: the server under test needs the cores more than we do.
                self._tts = PiperTTS(threads=1, **noise)
            return self._tts

    def render(self, text: str) -> Speech:
        """Text as caller speech. Synchronous and CPU-bound: call it via ``asyncio.to_thread``."""
        with self._lock:
            cached = self._cache.get(text)
        if cached is not None:
            return cached
        speech = self.from_pcm8k(self.clean_pcm8k(text), text=text)
        with self._lock:
            self._cache[text] = speech
        return speech

    def clean_pcm8k(self, text: str) -> npt.NDArray[np.int16]:
        """Piper's speech for ``text`` at 8 kHz without any line noise (cached)."""
        pcm8k = self._clean.get(text)
        if pcm8k is None:
            tts = self.tts
            pcm = pcm16_to_array(b"".join(tts.synthesize(text)))
            resampler = Resampler(tts.sample_rate, PHONE_SAMPLE_RATE)
            pcm8k = np.concatenate([resampler.process(pcm), resampler.flush()]).astype(np.int16)
            self._clean[text] = pcm8k
        return pcm8k

    def prerender(self, texts: Sequence[str]) -> None:
        """Render (and cache) a script up front."""
        for text in texts:
            self.render(text)

    def from_pcm8k(self, pcm8k: npt.NDArray[np.int16] | bytes, *, text: str = "") -> Speech:
        """Raw 8 kHz PCM16 (a cough, a noise burst) as caller frames with line noise mixed in."""
        clean = pcm16_to_array(pcm8k) if isinstance(pcm8k, bytes | bytearray) else pcm8k
        clean = np.asarray(clean, dtype=np.int16)
        pad = (-clean.size) % ULAW_FRAME_BYTES
        clean = np.concatenate([clean, np.zeros(pad, dtype=np.int16)])
        with self._lock:
            noise = self._noise(clean.size)
        mixed = np.clip(clean.astype(np.int32) + noise, -32768, 32767).astype(np.int16)
        codes = ulaw_encode(mixed).tobytes()
        frames, voiced = [], []
        for i in range(0, clean.size, ULAW_FRAME_BYTES):
            frames.append(codes[i : i + ULAW_FRAME_BYTES])
            voiced.append(_dbfs(clean[i : i + ULAW_FRAME_BYTES]) > VOICED_DBFS)
        return Speech(text, tuple(frames), tuple(voiced))

    def _noise(self, n: int) -> npt.NDArray[np.int32]:
        if self._line is not None:
            return np.rint(self._line.take(n)).astype(np.int32)
        sigma = 32768.0 * 10 ** (LINE_NOISE_DBFS / 20)
        return np.rint(self._rng.normal(0.0, sigma, n)).astype(np.int32)

    def silence_frames(self, count: int) -> list[bytes]:
        """``count`` frames of line noise (what an idle phone line sounds like)."""
        with self._lock:
            noise = self._noise(count * ULAW_FRAME_BYTES)
        codes = ulaw_encode(np.clip(noise, -32768, 32767).astype(np.int16)).tobytes()
        return [codes[i : i + ULAW_FRAME_BYTES] for i in range(0, len(codes), ULAW_FRAME_BYTES)]


def cough_pcm8k(
    duration_s: float = 0.15, level_dbfs: float = -14.0, seed: int = 3
) -> npt.NDArray[np.int16]:
    """A cough-like burst: loud broadband noise with a sharp attack and a fast decay."""
    rng = np.random.default_rng(seed)
    n = int(duration_s * PHONE_SAMPLE_RATE)
    t = np.arange(n) / PHONE_SAMPLE_RATE
    envelope = np.minimum(1.0, t / 0.01) * np.exp(-t / (duration_s / 3))
    noise = rng.normal(0.0, 1.0, n)
    # A little low-pass (a moving average) so it sounds like breath, not hiss.
    noise = np.convolve(noise, np.ones(3) / 3, mode="same")
    burst = noise * envelope
    rms = float(np.sqrt(np.mean(burst**2))) or 1.0
    scale = 32768.0 * 10 ** (level_dbfs / 20) / rms
    return np.clip(np.rint(burst * scale), -32768, 32767).astype(np.int16)


_SHARED_LOCK = threading.Lock()
_SHARED: dict[str, Any] = {}


def shared_voice() -> CallerVoice:
    """One caller voice per process (Piper takes ~2 s to load)."""
    with _SHARED_LOCK:
        if "voice" not in _SHARED:
            _SHARED["voice"] = CallerVoice()
        return _SHARED["voice"]


def shared_stt() -> Any:
    """One ``WhisperSTT(encoder_window_s=10)`` per process, to hear the agent as a caller does.

    One CPU thread: the server under test is on the same two cores.
    """
    with _SHARED_LOCK:
        if "stt" not in _SHARED:
            from app.audio.stt import WhisperSTT

            _SHARED["stt"] = WhisperSTT(encoder_window_s=10, cpu_threads=1)
        return _SHARED["stt"]


async def preload_models(*, stt: bool = True, voice: bool = True) -> None:
    """Load Piper and Whisper in a worker thread before any call's media clock starts."""

    def load() -> None:
        if voice:
            _ = shared_voice().tts
        if stt:
            shared_stt()

    await asyncio.to_thread(load)
