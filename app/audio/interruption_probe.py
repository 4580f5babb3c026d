"""Is the caller taking the turn? A quick score on the first ~160 ms of talking over the agent.

Why: ``clear`` should come within 300 ms of a caller starting to talk over the agent, but a
Whisper decode needs ~250 ms of speech before its words mean anything (on less it reads
"uh-huh" as "Thank you." and "wait" as ""). Whisper's *encoder* already hears the
difference earlier: a logistic regression on its states, pooled over the talking run,
separates "wait, sorry, no, can I…" from "uh-huh, okay, right, mm-hmm" and coughs well
enough to act on when it is sure. It only ever says "clear now"; everything it is not sure
of is left to the glance (``WhisperSTT.glance``) at 250 ms, as before.

The weights are ours, trained by ``bench/train_barge_probe.py`` on synthetic phone-line
speech (Piper and espeak-ng voices, 15-25 dB lines, μ-law) and stored beside this module
(``interruption_probe.npz``, ~17 kB); the file also says how its input is cut.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import resources

import numpy as np
import numpy.typing as npt
import soxr

LINE_RATE = 8000
WHISPER_RATE = 16000
SAMPLES_PER_MEL_FRAME = 160  # Whisper: one log-mel frame per 10 ms at 16 kHz
PROBE_FILE = "interruption_probe.npz"
RECIPE_VERSION = 1

Encode = Callable[[npt.NDArray[np.float32]], npt.NDArray[np.float32]]
"""16 kHz audio in [-1, 1) -> the Whisper encoder's states for it, one row per 20 ms."""


@dataclass(frozen=True)
class InterruptionProbe:
    """The trained score and how to cut its input (see the npz's ``how``)."""

    mean: npt.NDArray[np.float64]
    scale: npt.NDArray[np.float64]
    weights: npt.NDArray[np.float64]
    bias: float
    threshold: float
    decide_ms: int  # the run of talking it was trained to judge
    pools: tuple[str, ...]  # "first3", "mean", "last3", in feature order
    encoder_frames: int
    preroll_s: float
    state_s: float

    @property
    def window_samples(self) -> int:
        """16 kHz samples the encoder is given (zero-padded or cut)."""
        return self.encoder_frames * SAMPLES_PER_MEL_FRAME

    def line_window(
        self, audio8k: npt.NDArray[np.int16], run_samples: int
    ) -> npt.NDArray[np.int16]:
        """The part of a call's buffer it judges: the run and up to ``preroll_s`` before it."""
        keep = run_samples + round(self.preroll_s * LINE_RATE)
        return audio8k[-keep:] if audio8k.size > keep else audio8k

    def score(self, audio8k: npt.NDArray[np.int16], run_samples: int, encode: Encode) -> float:
        """0-1: how sure it is that the talking in ``audio8k`` (ending now) is a turn.

        ``audio8k``: line audio at 8 kHz ending at the current window, ``run_samples`` of it
        the caller's current run of talking."""
        audio8k = self.line_window(audio8k, run_samples)
        x = soxr.resample(audio8k.astype(np.float32) / 32768.0, LINE_RATE, WHISPER_RATE)
        x = np.concatenate([x, np.zeros(max(0, self.window_samples - x.size), np.float32)])
        states = encode(np.ascontiguousarray(x[: self.window_samples], dtype=np.float32))
        features = self.features(states, audio8k.size, run_samples)
        z = float(((features - self.mean) / self.scale) @ self.weights + self.bias)
        return float(1.0 / (1.0 + np.exp(-z)))

    def is_interruption(
        self, audio8k: npt.NDArray[np.int16], run_samples: int, encode: Encode
    ) -> bool:
        """Sure it is a turn, judged from the first sound of it (see ``sound_onset``)."""
        run_samples = sound_onset(self.line_window(audio8k, run_samples), run_samples)
        return self.score(audio8k, run_samples, encode) >= self.threshold

    def features(
        self, states: npt.NDArray[np.float32], samples: int, run_samples: int
    ) -> npt.NDArray[np.float64]:
        """The encoder states over the run, pooled: its first 60 ms, mean, last 60 ms."""
        per_state = self.state_s * LINE_RATE
        last = min(states.shape[0], max(1, round(samples / per_state)))
        first = max(0, last - max(3, round(run_samples / per_state)))
        run = np.asarray(states[first:last], dtype=np.float64)
        pooled = {
            "mean": run.mean(axis=0),
            "first3": run[:3].mean(axis=0),
            "last3": run[-3:].mean(axis=0),
        }
        return np.concatenate([pooled[name] for name in self.pools])


@cache
def load_probe() -> InterruptionProbe:
    """The probe shipped with the package (read once)."""
    with resources.files(__package__).joinpath(PROBE_FILE).open("rb") as handle:
        saved = np.load(handle, allow_pickle=False)
        if int(saved["recipe_version"]) != RECIPE_VERSION or bool(saved["recipe_minus_pre"]):
            raise ValueError(f"{PROBE_FILE}: a recipe this code does not know")
        return InterruptionProbe(
            mean=saved["mean"].astype(np.float64),
            scale=saved["scale"].astype(np.float64),
            weights=saved["weights"].astype(np.float64),
            bias=float(saved["bias"]),
            threshold=float(saved["threshold"]),
            decide_ms=int(saved["decide_ms"]),
            pools=tuple(str(p) for p in saved["recipe_pools"]),
            encoder_frames=int(saved["encoder_frames"]),
            preroll_s=float(saved["preroll_s"]),
            state_s=float(saved["state_s"]),
        )


FRAME = 320  # 40 ms at 8 kHz
NEAR_THE_RUN_DB = 12.0


def sound_onset(audio8k: npt.NDArray[np.int16], run_samples: int) -> int:
    """The run, grown back to the first sound before it as loud as the run within 12 dB.

    The VAD can miss a soft start ("o-" of "okay" on a quiet line): the run then starts at
    "-kay", which the probe, trained on runs that start at the first sound, took for a turn
    (0.998; from "o-", 0.001). Line noise sits 15 dB or more under the caller's speech, so
    it never grows the run."""
    before, run = audio8k[:-run_samples], audio8k[-run_samples:]
    if before.size < FRAME or run.size < FRAME:
        return run_samples
    loud = _frame_levels(before[before.size % FRAME :]) > np.median(_frame_levels(run)) - (
        NEAR_THE_RUN_DB
    )
    if not loud.any():
        return run_samples
    first = int(np.argmax(loud))
    return run_samples + (loud.size - first) * FRAME


def _frame_levels(audio: npt.NDArray[np.int16]) -> npt.NDArray[np.float64]:
    frames = audio[: audio.size - audio.size % FRAME].astype(np.float64).reshape(-1, FRAME)
    levels: npt.NDArray[np.float64] = 10 * np.log10(np.mean(frames**2, axis=1) + 1.0)
    return levels
