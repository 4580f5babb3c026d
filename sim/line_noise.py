"""Phone-line noise at a chosen SNR, for the caller simulators (phone and avatar).

Why: a real line is never quiet. Callers reach us at roughly 15-25 dB SNR, and end-of-turn
detection, barge-in and transcription all behave differently on such a line than on clean
speech. The noise here is shaped like a line's: band-limited to about 300-3400 Hz, tilted
towards the low end (pink-ish rather than white hiss), with a little mains hum under it.

The noise is one seamless loop per line (it is filtered in the frequency domain, which is
circular), handed out in consecutive slices, so the same noise runs under speech and
between utterances. Its level is the caller's active speech level minus the SNR.
"""

from __future__ import annotations

import random
from typing import Final

import numpy as np
import numpy.typing as npt

BAND_HZ: Final = (300.0, 3400.0)
"""The telephone passband the noise is shaped to."""
HUM_HZ: Final = 60.0
HUM_SHARE_DB: Final = -12.0
"""Mains hum (60 Hz and two harmonics) relative to the band noise's power."""
LOOP_S: Final = 8.0
FRAME_S: Final = 0.02
ACTIVE_RANGE_DB: Final = 30.0
"""A 20 ms frame counts towards the active level if within this many dB of the loudest."""


def dbfs(samples: npt.NDArray[np.number]) -> float:
    """RMS level of PCM16-scaled samples in dB relative to full scale."""
    if samples.size == 0:
        return -120.0
    rms = float(np.sqrt(np.mean(np.asarray(samples, dtype=np.float64) ** 2)))
    return 20 * float(np.log10(max(rms, 1e-3) / 32768.0))


def active_level_dbfs(samples: npt.NDArray[np.number], rate: int) -> float:
    """The level of the speech itself, ignoring pauses (a simple take on ITU-T P.56).

    Frames within ``ACTIVE_RANGE_DB`` of the loudest 20 ms frame are active; the result is
    their power average. This is the reference an SNR is quoted against.
    """
    x = np.asarray(samples, dtype=np.float64)
    frame = max(int(rate * FRAME_S), 1)
    usable = x[: x.size - x.size % frame]
    if usable.size == 0:
        return dbfs(x)
    powers = np.mean(usable.reshape(-1, frame) ** 2, axis=1)
    loudest = float(powers.max())
    if loudest <= 0:
        return -120.0
    active = powers[powers >= loudest * 10 ** (-ACTIVE_RANGE_DB / 10)]
    return 10 * float(np.log10(float(active.mean()) / 32768.0**2))


def noise_level_for(speech_level_dbfs: float, snr_db: float) -> float:
    """The noise RMS level that puts speech at ``speech_level_dbfs`` at ``snr_db``."""
    return speech_level_dbfs - snr_db


def phone_line_noise(
    n: int, rate: int, level_dbfs: float, rng: np.random.Generator
) -> npt.NDArray[np.float64]:
    """``n`` samples of line noise at RMS ``level_dbfs`` (PCM16 scale), periodic in ``n``."""
    if n <= 0:
        return np.zeros(0)
    spectrum = np.fft.rfft(rng.normal(0.0, 1.0, n))
    f = np.fft.rfftfreq(n, 1.0 / rate)
    low, high = BAND_HZ
    safe = np.maximum(f, 1.0)
    # Fourth-order high- and low-pass magnitudes, then a -3 dB/octave (pink) tilt.
    shape = 1.0 / np.sqrt(1.0 + (low / safe) ** 8) / np.sqrt(1.0 + (f / high) ** 8)
    shape *= np.sqrt(1000.0 / np.maximum(f, low))
    shape[0] = 0.0
    band = np.fft.irfft(spectrum * shape, n)
    band /= float(np.sqrt(np.mean(band**2))) or 1.0
    t = np.arange(n) / rate
    phase = rng.uniform(0, 2 * np.pi, 3)
    hum = np.zeros(n)
    for k in (1, 2, 3):
        hum += np.sin(2 * np.pi * HUM_HZ * k * t + phase[k - 1]) / k
    hum /= float(np.sqrt(np.mean(hum**2))) or 1.0
    mixed = band + hum * 10 ** (HUM_SHARE_DB / 20)
    target = 32768.0 * 10 ** (level_dbfs / 20)
    return mixed * (target / float(np.sqrt(np.mean(mixed**2))))


class LineNoise:
    """One line's noise: a seamless loop handed out in consecutive slices.

    Deterministic for a given ``seed``; ``take`` continues where the last call stopped, so
    speech rendered after silence still sits on the same, continuous noise.
    """

    def __init__(self, rate: int, level_dbfs: float, *, seed: int, loop_s: float = LOOP_S):
        self.rate = rate
        self.level_dbfs = level_dbfs
        n = round(loop_s) * rate  # whole seconds: the hum is periodic in the loop too
        self._loop = phone_line_noise(n, rate, level_dbfs, np.random.default_rng(seed))
        self._pos = 0

    def take(self, n: int) -> npt.NDArray[np.float64]:
        """The next ``n`` samples of this line's noise (wrapping round the loop)."""
        idx = (self._pos + np.arange(n)) % self._loop.size
        self._pos = (self._pos + n) % self._loop.size
        return self._loop[idx]

    def mix(self, clean: npt.NDArray[np.int16]) -> npt.NDArray[np.int16]:
        """``clean`` PCM16 with the next stretch of line noise added (clipped to PCM16)."""
        noisy = clean.astype(np.float64) + self.take(clean.size)
        return np.clip(np.rint(noisy), -32768, 32767).astype(np.int16)


def draw_snr(
    rng: random.Random,
    low: float,
    high: float,
    *,
    low_share: float = 1 / 3,
    low_band_db: float = 2.0,
) -> float:
    """One call's SNR in [low, high]: ``low_share`` of calls fall in the bottom
    ``low_band_db`` (the bad lines), the rest spread evenly over the range."""
    if high <= low:
        return low
    if rng.random() < low_share:
        return rng.uniform(low, min(low + low_band_db, high))
    return rng.uniform(low, high)
