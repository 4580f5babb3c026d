"""Turn-taking for a phone call: when the caller started, paused and finished speaking.

Pure logic over Silero's per-window speech probabilities (32 ms windows), so it can be
tested without audio. The realtime loop adds what only it knows (the partial transcript)
to decide when a pause is the end of the turn.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

VOICED = 0.5
"""Probability at or above which a window is speech."""
UNVOICED = 0.35
"""Probability below which a window is silence (hysteresis between the two)."""
MIN_SPEECH_MS = 64
"""Voiced time before we believe someone is talking (a click is one window)."""


class Cue(Enum):
    SPEECH_START = "speech_start"
    PAUSE = "pause"  # first silent window after speech: transcribe speculatively now
    RESUME = "resume"  # speech again after a pause: the turn goes on


@dataclass
class TurnDetector:
    """Tracks one speaker's speech segments from VAD windows."""

    window_ms: float = 32.0
    in_speech: bool = False  # inside a turn (talking, or pausing within it)
    talking: bool = False  # the latest windows are voiced
    voiced_ms: float = 0.0  # voiced time in this turn
    run_ms: float = 0.0  # current stretch of talking, forgiving a one-window dip
    silence_ms: float = 0.0  # silence since the caller last talked
    _dip: int = 0
    _pending_ms: float = 0.0  # voiced time not yet enough to call it speech

    def push(self, probability: float) -> Cue | None:
        """One window's probability in; a cue when something changed."""
        voiced = probability >= VOICED or (self.talking and probability >= UNVOICED)
        if voiced:
            return self._on_voiced()
        return self._on_silent()

    def _on_voiced(self) -> Cue | None:
        self._dip = 0
        if not self.in_speech:
            self._pending_ms += self.window_ms
            if self._pending_ms < MIN_SPEECH_MS:
                return None
            self.in_speech = self.talking = True
            self.voiced_ms = self.run_ms = self._pending_ms
            self.silence_ms = 0.0
            self._pending_ms = 0.0
            return Cue.SPEECH_START
        self.voiced_ms += self.window_ms
        self.run_ms += self.window_ms
        self.silence_ms = 0.0
        if not self.talking:
            self.talking = True
            return Cue.RESUME
        return None

    def _on_silent(self) -> Cue | None:
        if not self.in_speech:
            self._pending_ms = 0.0
            return None
        self.silence_ms += self.window_ms
        self._dip += 1
        if self._dip >= 2:
            self.run_ms = 0.0
        if self.talking:
            self.talking = False
            return Cue.PAUSE
        return None

    def reset(self) -> None:
        """The turn was taken (or dismissed): wait for the next one."""
        self.in_speech = self.talking = False
        self.voiced_ms = self.run_ms = self.silence_ms = self._pending_ms = 0.0
        self._dip = 0


_CONTINUATION_WORDS = frozenset(
    {"a", "an", "the", "and", "or", "but", "so", "because", "to", "at", "on", "in", "of"}
    | {"for", "with", "from", "my", "our", "your", "is", "are", "was", "i'm", "it's"}
    | {"um", "uh", "er", "like", "about", "around", "than", "maybe"}
)
_BACKCHANNELS = frozenset(
    {"uh", "huh", "mm", "hmm", "mhm", "yeah", "yep", "ok", "okay", "right", "sure", "yes"}
    | {"alright", "got", "it", "i", "see", "oh", "ah"}
)
_WORD = re.compile(r"[a-z0-9'$-]+")


def looks_complete(transcript: str, progressed: bool = False) -> bool:
    """Whether a partial transcript reads like a finished thought, so we may answer sooner.

    Whisper ends finished sentences with punctuation, but often not a bare answer ("Hudson
    360"); ``progressed`` (the planner would move on with these words) covers those. A
    trailing "and", "at" or "um", a comma or an ellipsis means the caller is still going.
    """
    text = transcript.strip()
    if not text or text.endswith(("...", "…", ",", "-", ":")):
        return False
    words = _WORD.findall(text.lower())
    if not words or words[-1] in _CONTINUATION_WORDS:
        return False
    return text[-1] in ".?!" or progressed


def is_backchannel(transcript: str) -> bool:
    """ "Uh-huh", "okay", "mm-hmm": the caller is listening, not taking the turn."""
    words = _WORD.findall(transcript.lower().replace("-", " "))
    return not words or (len(words) <= 3 and all(w in _BACKCHANNELS for w in words))
