"""What the caller makes of the agent: the question asked, a scripted answer, the words heard.

The caller hears through its own Whisper, never the server's transcript, so a test checks
what a person on the phone would have heard.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from typing import Final

from app.audio.codec import decode_from_phone, ulaw_decode
from sim.twilio.player import AgentTurn
from sim.twilio.voice import _dbfs, shared_stt

# What the agent asks, by the words a caller hears in its last question. Checked in order:
# the first that matches wins, so specific questions come before generic ones.
_QUESTIONS: Final[tuple[tuple[str, tuple[str, ...]], ...]] = (
    ("still_there", ("still there",)),
    ("resume", ("pick up there", "where we left off")),
    ("repeat", ("didn't catch", "did not catch", "missed that", "not sure i follow",
                "didn't quite get")),
    ("confirm", ("book it", "go ahead and book", "shall i book", "should i book",
                 "should i go ahead")),
    ("contact", ("text or", "by text", "by email", "send your confirmation", "how should we send")),
    ("email", ("email address", "spell out your email")),
    ("anything_else", ("anything else",)),
    ("pick_slot", ("which one works", "which of those", "works for you")),
    ("another_day", ("another day", "try another")),
    ("tour_time", ("day and time", "come by", "what day", "what time", "day and a time")),
    ("tour_type", ("in person", "in-person", "virtual")),
    ("budget", ("budget", "spend a month", "spend")),
    ("pet_details", ("kind of pet", "which pets")),
    ("pets", ("pets", "pet")),
    ("move_in", ("move in", "move-in", "moving in")),
    ("unit_size", ("what size", "how many bedrooms", "bedrooms do you need")),
    ("property", ("which building", "building")),
    ("name", ("your name", "name")),
)  # fmt: skip


def _question_of(heard: str) -> str:
    """The part of an agent turn that asks something: its last sentence ending in "?"."""
    sentences = re.findall(r"[^.!?]*[.!?]?", heard.lower())
    questions = [q for q in sentences if q.strip().endswith("?")]
    return questions[-1] if questions else heard.lower()


def question_kind(heard: str) -> str | None:
    """Which question the agent asked (``name``, ``budget``...), or None."""
    for text in (_question_of(heard), heard.lower()):
        for kind, cues in _QUESTIONS:
            if any(cue in text for cue in cues):
                return kind
    return None


@dataclass
class CallerScript:
    """A caller who answers whatever the agent asks, from a table of lines.

    Why adaptive: the agent's next question depends on what it understood, so a fixed list
    of lines would derail on one misheard word; answering the question actually asked keeps
    a test about the phone path rather than about one exact dialogue.
    """

    lines: dict[str, str]
    previous: str = ""
    asked: list[str] = field(default_factory=list)

    @classmethod
    def booking(cls, **overrides: str) -> CallerScript:
        """A caller who books an in-person tour of Hudson 360 (override any line)."""
        lines = {
            "name": "my name is dana lee",
            "property": "hudson three sixty",
            "unit_size": "a two bedroom",
            "move_in": "early january",
            "pets": "no pets",
            "pet_details": "one small dog",
            "budget": "five thousand dollars",
            "tour_type": "in person",
            "tour_time": "next tuesday at two in the afternoon",
            "another_day": "next wednesday at three in the afternoon",
            "pick_slot": "the first one",
            # Two words, not "yes"/"text": Whisper tiny with a 10 s window often returns
            # nothing for a lone short word (seen on the server as "turn_ignored").
            "confirm": "yes please",
            "contact": "by text please",
            "email": "dana dot lee at example dot com",
            "anything_else": "no that's all",
            "still_there": "yes i'm here",
            "resume": "yes please",
        }
        lines.update(overrides)
        return cls(lines)

    def answer(self, heard: str) -> tuple[str, str] | None:
        """(question kind, the caller's line) for what the agent just said, or None."""
        kind = question_kind(heard)
        if kind is None:
            return None
        line = self.previous if kind == "repeat" and self.previous else self.lines.get(kind)
        if line is None:
            return None
        self.asked.append(kind)
        self.previous = line
        return kind, line


async def transcribe(turn: AgentTurn | bytes, *, heard: bool = True) -> str:
    """What Whisper hears in the agent's audio (μ-law 8 kHz -> 16 kHz), off the event loop.

    A turn is transcribed segment by segment (split at the server's marks): on a whole
    8-10 s turn the 10 s encoder window sometimes drops the last sentence, which is usually
    the question the caller has to answer.
    """
    if isinstance(turn, AgentTurn):
        parts = list(turn.segments) if heard else [turn.received]
    else:
        parts = [turn]
    parts = [p for p in parts if p]
    if not parts:
        return ""

    def run() -> str:
        stt = shared_stt()
        texts = (str(stt.transcribe(decode_from_phone(p, 16000))).strip() for p in parts)
        return " ".join(t for t in texts if t)

    return await asyncio.to_thread(run)


def heard_level_dbfs(turn: AgentTurn) -> float:
    """RMS level of what was played (handy to tell silence-padding from speech)."""
    return _dbfs(ulaw_decode(turn.audio))
