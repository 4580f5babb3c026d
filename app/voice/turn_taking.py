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


class Thought(Enum):
    """How finished the caller's words so far sound: it sets how long a pause ends the turn."""

    COMPLETE = "complete"  # a finished answer or question: reply after the short pause
    UNSURE = "unsure"  # nothing either way: the usual pause
    INCOMPLETE = "incomplete"  # mid-sentence ("...and", "Thanks,"): wait longer


_OPEN_ENDINGS = frozenset(
    {"a", "an", "the", "my", "our", "your", "their", "his", "its"}  # articles, possessives
    | {"and", "or", "but", "so", "because", "cause", "if", "than", "plus", "nor"}  # conjunctions
    | {"um", "uh", "uhm", "er", "erm", "hmm"}  # fillers
    | {"i'm", "it's", "that's", "there's", "what's", "here's", "let's", "i'd", "i'll", "i've"}
    | {"we're", "we'll", "we'd", "they're", "you're", "he's", "she's"}  # clitics never end one
)
"""Last words that leave a sentence hanging, whatever punctuation Whisper put after them."""
_PREPOSITIONS = frozenset(
    {"to", "at", "on", "in", "of", "for", "with", "from", "about", "around", "into", "like"}
)
"""Hanging too, except at the end of a question ("Which one is it in?")."""
_UNSURE_ENDINGS = frozenset({"is", "are", "was", "maybe"})
"""Last words that can end an answer ("yes, it is") but often do not."""
_OPENERS = frozenset(
    {"thanks", "thank", "hi", "hey", "hello", "well", "actually", "wait", "oh", "so", "and"}
    | {"but", "um", "uh", "hmm", "sorry"}
)
"""Words a caller starts with before saying what they want."""
_NEGATIONS = frozenset({"no", "nope", "nah", "not"})
"""A bare "No." is as often the start of a correction ("No. I said 4 PM.") as an answer."""
_COURTESY = _OPENERS | {"you", "very", "much", "okay", "ok", "alright", "great", "perfect"}
_COURTESY |= {"there", "yeah"}
_WORD = re.compile(r"[a-z0-9'$-]+")


def judge_thought(transcript: str, progressed: bool | None = None) -> Thought:
    """Whether a partial transcript is a finished thought, so we may answer sooner.

    Whisper ends almost everything with a period, so punctuation alone cannot tell "Thanks."
    (about to go on) from "Yes." (done). Words decide first: a trailing "and", "the", "um",
    "that's" or a lone "Thanks" / "Hi" means the caller is mid-sentence. A question is
    complete. ``progressed`` says whether the planner would move on with these words (a bare
    "Hudson 360" does); when it is known to be False, a period alone is not enough: "Good
    morning." or "I'm calling about a tour." is usually the first of two sentences, and
    callers pause ~350 ms between them. A bare "No." is the start of a correction as often
    as an answer. When ``progressed`` is None (no prediction, e.g. an LLM brain), the final
    period decides.
    """
    text = transcript.strip().replace("\u2019", "'")
    words = _WORD.findall(text.lower())
    if not words:
        return Thought.UNSURE
    question = text.endswith("?")
    if text.endswith(("...", "\u2026", ",", "-", ":", ";")) or _trails_off(words, question):
        return Thought.INCOMPLETE
    if _lone_opener(words) and not question:
        return Thought.INCOMPLETE
    if _spelling(words) and text[-1] not in ".?!":
        return Thought.INCOMPLETE  # "A L E X": callers pause between letter groups
    if words[-1] in _UNSURE_ENDINGS or all(w in _NEGATIONS for w in words):
        return Thought.UNSURE
    if question or progressed:
        return Thought.COMPLETE
    return Thought.COMPLETE if text[-1] in ".!" and progressed is None else Thought.UNSURE


def _trails_off(words: list[str], question: bool) -> bool:
    """The last word needs a next one; a spelled letter ("D A N A") is not an article."""
    last = words[-1].strip("-")
    if last == "a" and len(words) > 1 and len(words[-2].strip("-")) == 1:
        return False
    return last in _OPEN_ENDINGS or (last in _PREPOSITIONS and not question)


def _spelling(words: list[str]) -> bool:
    """Ends on spelled letters: two single letters in a row, or "m-a-c". Whisper leaves the
    period off while the spelling goes on ("Sure, A L P X") and puts it on a finished one."""
    last = words[-1].strip("-")
    if re.fullmatch(r"(?:[a-z]-)+[a-z]", last):
        return True
    return len(words) >= 2 and all(len(w.strip("-")) == 1 and w.isalpha() for w in words[-2:])


def _lone_opener(words: list[str]) -> bool:
    """Only courtesy and openers ("Thanks.", "Okay, thank you.", "Hi there."): more is coming."""
    return all(w in _COURTESY for w in words) and any(w in _OPENERS for w in words)


_BACKCHANNELS = frozenset(
    {"uh", "huh", "mm", "hmm", "mhm", "yeah", "yep", "ok", "okay", "right", "sure", "yes"}
    | {"alright", "got", "it", "i", "see", "oh", "ah"}
    | {"aha", "ha", "hm", "mhmm", "um", "out", "wow", "whoa", "nice", "cool"}
    | {"thank", "thanks", "you", "bye", "so", "m", "m8", "emmett", "of"}
    | {"perfect", "great", "good", "fine", "all", "exactly", "gotcha", "cheers", "awesome"}
    | {"lovely", "excellent", "brilliant", "wonderful", "sounds", "true", "indeed", "totally"}
    | {"definitely", "understood", "noted", "super", "fantastic", "that's", "correct"}
    | {"absolutely"}
)
"""Listening noises and reactions, and what a phone-line recognizer makes of them: Whisper
tiny.en hears a noisy "uh-huh" as "Oh.", "Aha.", "out." or "Wow."; on 250 ms of a
"mm-hmm", "okay" or "sure" at 15-25 dB SNR it said "Emmett.", "M8.", "Thank you.", "Bye."
or "So," (Piper and four espeak-ng voices, 2026-11-24); on a loaded box it made "of." of the
test suite's "Uh-huh." (CI, twice, same audio). Reactions heard right ("Perfect.", "All
right.", "Sounds good.") were turns until 2026-11-25 (bench/barge_glance_study.py). None of
these alone over the agent is a turn; a caller who goes on is heard again on longer audio."""


def is_backchannel(transcript: str) -> bool:
    """ "Uh-huh", "okay", "mm-hmm": the caller is listening, not taking the turn."""
    words = _WORD.findall(transcript.lower().replace("-", " "))
    return not words or (len(words) <= 3 and all(w in _BACKCHANNELS for w in words))
