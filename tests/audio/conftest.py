"""Speech models loaded once per test session and shared by every audio test.

Loading costs ~0.3 s (Whisper) and ~1.5-2.5 s (Piper) on 2 cores; synthesising the same
sentence again costs ~0.2 s, so synthesised clips are cached too.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pytest

from app.audio.codec import decode_from_phone, encode_for_phone, pcm16_to_array
from app.audio.stt import WhisperSTT
from app.audio.tts import PiperTTS
from app.audio.vad import SileroVAD

Int16 = npt.NDArray[np.int16]


@pytest.fixture(scope="session")
def whisper_stt() -> WhisperSTT:
    return WhisperSTT()


@pytest.fixture(scope="session")
def piper_tts() -> PiperTTS:
    return PiperTTS()


@pytest.fixture
def silero_16k() -> SileroVAD:
    """Fresh per test: a VAD instance is one stream with recurrent state."""
    return SileroVAD(16000)


@pytest.fixture(scope="session")
def steady_tts(piper_tts: PiperTTS) -> PiperTTS:
    """Same loaded voice with Piper's sampling noise off: identical audio on every run.

    Piper (VITS) draws random noise for each synthesis, so the same text never sounds
    exactly the same; tests that assert on what Whisper hears use this for repeatability.
    """
    tts = PiperTTS(noise_scale=0.0, noise_w_scale=0.0)
    assert tts.voice is piper_tts.voice
    return tts


@pytest.fixture(scope="session")
def speak(steady_tts: PiperTTS) -> Callable[[str], Int16]:
    """Text -> int16 samples at the Piper rate (22.05 kHz), deterministic, cached."""
    cache: dict[str, Int16] = {}

    def _speak(text: str) -> Int16:
        if text not in cache:
            cache[text] = pcm16_to_array(b"".join(steady_tts.synthesize(text))).copy()
        return cache[text]

    return _speak


@pytest.fixture(scope="session")
def phone_path(piper_tts: PiperTTS) -> Callable[[Int16], Int16]:
    """What a caller's voice goes through: TTS rate -> 8 kHz μ-law -> 16 kHz PCM16."""

    def _through_phone(samples: Int16) -> Int16:
        return decode_from_phone(encode_for_phone(samples, piper_tts.sample_rate), 16000)

    return _through_phone
