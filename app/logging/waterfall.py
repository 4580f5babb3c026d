"""A call's turns as a waterfall: for each caller turn, when each stage ran, from the call's
timeline events (what the dashboard draws; no other source, so it matches the timeline).

Times are milliseconds from the caller's end of speech (the start of the turn's silence).
Stages, in the order a reply is made:

- ``end_of_turn_wait``: the silence waited before the turn was judged over (``turn_end``);
- ``stt``: transcription (``stt_done``), which often starts during that wait, at the pause;
- ``planner``: planning the reply (``planner_done``);
- ``tts``: rendering its first audio (``planner_done`` → ``tts_first_audio``);
- ``send``: holding for a caller who may go on, then the first frame out
  (``tts_first_audio`` → ``first_frame_out``).

A turn that got no reply says why (``outcome``): no words, taken back (the caller went on),
or none (the call ended first).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["STAGES", "Stage", "Turn", "waterfall"]

STAGES = ("end_of_turn_wait", "stt", "planner", "tts", "send")


@dataclass
class Stage:
    name: str
    start_ms: float
    ms: float

    def as_json(self) -> dict[str, Any]:
        return {"stage": self.name, "start_ms": round(self.start_ms, 1), "ms": round(self.ms, 1)}


@dataclass
class Turn:
    """One caller turn; ``at_ms`` is its end of speech on the call's clock (``t_ms``)."""

    at_ms: float
    stages: dict[str, Stage] = field(default_factory=dict)
    text: str | None = None
    voice_to_voice_ms: float | None = None
    outcome: str = "no reply"
    _planned_at: float | None = None
    _rendered_at: float | None = None

    def add(self, name: str, start_t: float, end_t: float) -> None:
        """A stage from ``start_t`` to ``end_t`` (call clock, ms), kept relative to the turn."""
        start = start_t - self.at_ms
        self.stages[name] = Stage(name, start, max(0.0, end_t - start_t))

    def as_json(self, number: int) -> dict[str, Any]:
        return {
            "turn": number,
            "at_ms": round(self.at_ms, 1),
            "text": self.text,
            "outcome": self.outcome,
            "voice_to_voice_ms": self.voice_to_voice_ms,
            "stages": [self.stages[n].as_json() for n in STAGES if n in self.stages],
        }


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def waterfall(events: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The turns of one call's timeline, in order, shaped for drawing."""
    turns: list[Turn] = []
    turn: Turn | None = None  # the turn whose reply is being made
    early_stt: Mapping[str, Any] | None = None  # an stt_done that came before its turn_end
    for event in events:
        name, t = event.get("event"), _number(event.get("t_ms"))
        if t is None:
            continue
        if name == "turn_end":
            silence = _number(event.get("silence_ms")) or 0.0
            turn = Turn(at_ms=t - silence)
            turn.add("end_of_turn_wait", turn.at_ms, t)
            turns.append(turn)
            stt_ms = _number(early_stt.get("ms")) if early_stt else None
            stt_t = _number(early_stt.get("t_ms")) if early_stt else None
            if stt_ms is not None and stt_t is not None and stt_t >= turn.at_ms:
                turn.add("stt", stt_t - stt_ms, stt_t)  # transcribed during the wait
            early_stt = None
        elif name == "stt_done":
            ms = _number(event.get("ms"))
            if turn is None or "stt" in turn.stages:
                early_stt = event  # for the next turn_end (a pause's speculative transcript)
            elif ms is not None:
                turn.add("stt", t - ms, t)
        elif name == "stt_dropped":
            early_stt = None
        elif name == "turn_taken_back" and turns:
            turns[-1].outcome, turn = "taken back", None  # its reply, if any, was unheard
        elif turn is None:
            continue
        elif name == "caller_said" and not event.get("typed"):
            turn.text = str(event.get("text") or "") or None
        elif name == "turn_ignored":
            turn.outcome, turn = "no words", None
        elif name == "planner_done" and event.get("trigger") == "turn":
            ms = _number(event.get("ms")) or 0.0
            turn.add("planner", t - ms, t)
            turn._planned_at = t
        elif name == "tts_first_audio" and turn._planned_at is not None:
            turn.add("tts", turn._planned_at, t)
            turn._rendered_at = t
        elif name == "first_frame_out" and event.get("trigger") == "turn":
            turn.add("send", turn._rendered_at or turn._planned_at or t, t)
            turn.voice_to_voice_ms = _number(event.get("ms_since_speech_end"))
            turn.outcome, turn = "answered", None
    return [t.as_json(i) for i, t in enumerate(turns, start=1)]
