"""How a Tourline ``AgentSession`` takes turns: LiveKit's machinery, pinned to run offline.

* End of turn: LiveKit's own turn-detector model, the ``v1-mini`` build that runs in
  process (``livekit-local-inference``); ``v1`` would call LiveKit Cloud in dev mode.
* Interruptions: VAD based; the "adaptive" detector is a LiveKit Cloud model.
* No preemptive generation: LiveKit would start replies on half-final transcripts and
  throw some away, but each planner turn changes the conversation (and may book a tour),
  so a reply is computed once, for the caller's final words.
"""

from __future__ import annotations

from livekit.agents import AgentSession, TurnHandlingOptions, inference

from app.channels.livekit.speech import Speech

__all__ = ["new_session", "turn_handling"]


def turn_handling() -> TurnHandlingOptions:
    return TurnHandlingOptions(
        turn_detection=inference.TurnDetector(version="v1-mini"),
        interruption={"mode": "vad"},
        preemptive_generation={"enabled": False},
    )


def new_session(speech: Speech) -> AgentSession:
    """A session for one call on the process's shared speech stack."""
    return AgentSession(
        stt=speech.stt,
        tts=speech.tts,
        vad=speech.vad,
        turn_handling=turn_handling(),
    )
