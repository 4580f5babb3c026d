"""The simulators' phone-line noise: the SNR asked for, on the whole line, the same every run."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from app.audio.codec import PHONE_SAMPLE_RATE, ulaw_decode
from sim.line_noise import (
    LineNoise,
    active_level_dbfs,
    dbfs,
    noise_level_for,
    phone_line_noise,
)
from sim.twilio.voice import CallerVoice

RATE = PHONE_SAMPLE_RATE


def talk_spurts(seconds: float = 3.0, level: float = 6000.0) -> npt.NDArray[np.int16]:
    """Speech-like stand-in: 400 ms vowel-ish tone bursts with 300 ms pauses between."""
    t = np.arange(int(seconds * RATE)) / RATE
    voiced = (t % 0.7) < 0.4
    tone = np.sin(2 * np.pi * 180 * t) + 0.5 * np.sin(2 * np.pi * 720 * t)
    return np.rint(level * tone * voiced).astype(np.int16)


def test_measured_snr_is_within_a_decibel_of_the_one_asked_for() -> None:
    clean = talk_spurts()
    speech_level = active_level_dbfs(clean, RATE)
    for snr in (15.0, 20.0, 25.0):
        line = LineNoise(RATE, noise_level_for(speech_level, snr), seed=4)
        noisy = line.mix(clean)
        noise = noisy.astype(np.float64) - clean
        measured = speech_level - dbfs(noise)
        assert abs(measured - snr) <= 1.0, (snr, measured)


def test_the_noise_sounds_like_a_phone_line() -> None:
    """Most of its power is in the 300-3400 Hz band; little hiss above it."""
    noise = phone_line_noise(8 * RATE, RATE, -40.0, np.random.default_rng(1))
    power = np.abs(np.fft.rfft(noise)) ** 2
    f = np.fft.rfftfreq(noise.size, 1 / RATE)
    in_band = power[(f >= 300) & (f <= 3400)].sum()
    above = power[f > 3700].sum()
    assert in_band / power.sum() > 0.8
    assert above / in_band < 0.01
    assert abs(dbfs(noise) - -40.0) < 0.1


def test_the_line_is_noisy_between_utterances_at_the_same_level() -> None:
    voice = CallerVoice(tts=object(), snr_db=15.0, seed=3)
    quiet = CallerVoice(tts=object(), seed=3)
    silence = ulaw_decode(b"".join(voice.silence_frames(100)))
    expected = noise_level_for(-19.0, 15.0)
    assert abs(dbfs(silence) - expected) < 1.0, dbfs(silence)
    assert dbfs(ulaw_decode(b"".join(quiet.silence_frames(100)))) < -55
    cough = voice.from_pcm8k(talk_spurts(0.7), text="burst")
    # Voiced flags follow the clean sound, not the noise: the pause frames stay unvoiced.
    assert any(cough.voiced) and not all(cough.voiced)


def test_the_same_seed_gives_the_same_line() -> None:
    a = LineNoise(RATE, -35.0, seed=9)
    b = LineNoise(RATE, -35.0, seed=9)
    c = LineNoise(RATE, -35.0, seed=10)
    assert np.array_equal(a.take(4000), b.take(4000))
    assert np.array_equal(a.take(4000), b.take(4000))  # and it goes on the same way
    assert not np.array_equal(a.take(4000), c.take(4000))
