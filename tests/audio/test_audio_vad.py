"""Silero VAD on real synthesised speech, silence and low noise."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from app.audio.codec import Resampler, array_to_pcm16
from app.audio.vad import SileroVAD, VoiceActivityDetector, silero_model_path

pytestmark = pytest.mark.slow

SENTENCE = "Hi, I would like to see the two bedroom apartment on Saturday morning."


def _feed(vad: SileroVAD, samples: np.ndarray, chunk: int) -> list[float]:
    probs: list[float] = []
    for i in range(0, len(samples), chunk):
        probs += vad.process(array_to_pcm16(samples[i : i + chunk]))
    return probs


def test_model_ships_in_the_package() -> None:
    path = silero_model_path()
    assert path.name == "silero_vad.onnx" and path.stat().st_size > 100_000


def test_protocol_and_window_size(silero_16k: SileroVAD) -> None:
    assert isinstance(silero_16k, VoiceActivityDetector)
    assert silero_16k.window_samples == 512 and silero_16k.window_ms == 32.0
    assert SileroVAD(8000).window_samples == 256
    with pytest.raises(ValueError):
        SileroVAD(22050)


def test_speech_is_detected_through_the_phone_path(
    silero_16k: SileroVAD,
    speak: Callable[[str], np.ndarray],
    phone_path: Callable[[np.ndarray], np.ndarray],
) -> None:
    audio = phone_path(speak(SENTENCE))
    probs = np.array(_feed(silero_16k, audio, 320))  # 20 ms chunks at 16 kHz
    assert len(probs) == len(audio) // 512
    assert probs.max() > 0.9
    # Piper leaves little silence around a sentence: most windows are speech.
    assert (probs > 0.5).mean() > 0.6


def test_speech_at_8k_without_resampling(speak: Callable[[str], np.ndarray]) -> None:
    vad = SileroVAD(8000)
    resampler = Resampler(22050, 8000)
    audio = np.concatenate([resampler.process(speak(SENTENCE)), resampler.flush()])
    probs = np.array(_feed(vad, audio, 160))
    assert probs.max() > 0.9 and (probs > 0.5).mean() > 0.6


def test_silence_and_low_noise_are_not_speech(silero_16k: SileroVAD) -> None:
    silence = np.zeros(16000 * 2, dtype=np.int16)
    assert max(_feed(silero_16k, silence, 320)) < 0.1
    silero_16k.reset()
    rng = np.random.default_rng(7)
    hiss = np.clip(rng.normal(0, 100, 16000 * 3), -32768, 32767).astype(np.int16)  # ~ -50 dBFS
    assert max(_feed(silero_16k, hiss, 320)) < 0.3


def test_chunking_does_not_change_the_result(
    speak: Callable[[str], np.ndarray], phone_path: Callable[[np.ndarray], np.ndarray]
) -> None:
    audio = phone_path(speak(SENTENCE))
    whole = _feed(SileroVAD(), audio, len(audio))
    odd = _feed(SileroVAD(), audio, 333)
    assert len(whole) == len(odd)
    assert np.allclose(whole, odd, atol=1e-5)


def test_reset_restarts_the_stream(speak: Callable[[str], np.ndarray]) -> None:
    vad = SileroVAD()
    audio = Resampler(22050, 16000).process(speak(SENTENCE))
    first = vad.process(audio[:16384])  # exactly 32 windows
    assert len(first) == 32 and vad.pending_samples == 0
    vad.process(audio[16384:16484])  # leave a partial window pending
    assert vad.pending_samples == 100
    vad.reset()
    assert vad.pending_samples == 0
    assert np.allclose(vad.process(audio[:16384]), first, atol=1e-5)
