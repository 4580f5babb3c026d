"""The shipped early barge-in probe: its file matches the code that reads it and the setting
that decides when it is asked."""

from __future__ import annotations

import numpy as np

from app.audio.interruption_probe import InterruptionProbe, load_probe, sound_onset
from app.settings import Settings

WHISPER_TINY_WIDTH = 384  # encoder state size of tiny.en


def test_the_probe_judges_at_the_moment_the_loop_asks() -> None:
    """A retrained probe with another D must come with the setting's default changed."""
    assert load_probe().decide_ms == Settings().barge_in_early_ms


def test_the_probe_file_fits_its_recipe() -> None:
    probe = load_probe()
    width = len(probe.pools) * WHISPER_TINY_WIDTH
    assert probe.weights.shape == probe.mean.shape == probe.scale.shape == (width,)
    assert 0.5 < probe.threshold < 1.0  # only ever sure: it clears, it never keeps talking


def test_a_run_is_pooled_from_its_own_states_not_the_line_before() -> None:
    """States before the run (the pre-roll) never enter the features."""
    probe = load_probe()
    states = np.zeros((50, WHISPER_TINY_WIDTH), dtype=np.float32)
    states[:16] = 100.0  # the 320 ms of line before the talking
    run = round(0.16 * 8000)
    total = run + round(0.32 * 8000)
    features = InterruptionProbe.features(probe, states, total, run)
    assert not features.any()


def _tone(seconds: float, level: float, rng: np.random.Generator) -> np.ndarray:
    return (rng.normal(0, level, round(seconds * 8000))).astype(np.int16)


def test_line_noise_before_the_run_does_not_move_its_start() -> None:
    rng = np.random.default_rng(1)
    audio = np.concatenate([_tone(0.32, 300, rng), _tone(0.16, 6000, rng)])  # ~26 dB under
    assert sound_onset(audio, 1280) == 1280


def test_a_soft_start_the_vad_missed_joins_the_run() -> None:
    """ "o-" then "-kay": judged from "o", where "okay" is plainly a backchannel."""
    rng = np.random.default_rng(2)
    quiet, syllable, gap = _tone(0.12, 20, rng), _tone(0.12, 2500, rng), _tone(0.08, 20, rng)
    audio = np.concatenate([quiet, syllable, gap, _tone(0.16, 6000, rng)])
    assert sound_onset(audio, 1280) == 1280 + (960 + 640)
