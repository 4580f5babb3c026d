"""What the recognizer gets of a turn does not depend on how the caller's audio arrived.

Why: Whisper tiny reads a soft first word by what precedes it ("in person" behind ~290 ms of
line noise comes out "and person"). A loop that falls behind (a loaded box) catches up on
its queued audio in one batch; it used to trim the pre-roll once per batch, so under load a
turn began with up to a whole batch more noise, and the avatar voice booking lost "in
person". Now every turn keeps ``ONSET_LEAD_MS`` before its first voiced window.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from app.audio.stt import Transcript
from app.voice.realtime_loop import ONSET_LEAD_MS
from tests.voice.virtual import RATE, WINDOW_S, VirtualCall, settle

WINDOW = int(RATE * WINDOW_S)


def spy_on_turns(call: VirtualCall) -> list[bytes]:
    """Every audio the loop hands the recognizer for a turn (the fake's ``hear``)."""
    heard: list[bytes] = []
    voice = call.loop.voice
    real = voice.hear

    async def hear(
        owner: str, pcm16: bytes, sample_rate: int, *, priority: int, hints: Sequence[str]
    ) -> Transcript:
        heard.append(pcm16)
        return await real(owner, pcm16, sample_rate, priority=priority, hints=hints)

    voice.hear = hear  # type: ignore[method-assign]
    return heard


def lead_ms(pcm16: bytes) -> float:
    """Silence before the first speech sample (the fake VAD hears any non-zero sample)."""
    samples = np.frombuffer(pcm16, dtype="<i2")
    return float(np.flatnonzero(samples)[0]) / RATE * 1000


async def speak_late(call: VirtualCall, text: str, seconds: float) -> None:
    """Quiet, then ``text``, all queued while the loop is busy: it catches up in one go."""
    value = call.caller.voice.line(text)
    quiet = np.zeros(WINDOW * 40, dtype="<i2").tobytes()  # 1.28 s the loop missed
    words = np.full(int(RATE * seconds), value, dtype="<i2").tobytes()
    call.loop.feed_audio(quiet + words)
    await call.clock.advance(seconds)
    await settle()


async def test_a_turn_keeps_the_same_lead_in_whether_or_not_the_loop_fell_behind(
    call: VirtualCall,
) -> None:
    await call.after_greeting()
    heard = spy_on_turns(call)
    # On time: the audio comes 32 ms at a time, as it is spoken.
    await call.caller.wait(1.0)
    await call.caller.say("my name is dana lee")
    await call.caller.wait(1.5)
    on_time = list(heard)
    assert on_time, "the turn reached the recognizer"
    heard.clear()
    while call.loop._speaking:  # the agent's answer plays out
        await call.caller.wait(0.5)
    # Late: the loop was stalled; the same quiet and words arrive as one batch.
    await speak_late(call, "hudson three sixty", 1.0)
    await call.caller.wait(1.5)
    late = list(heard)
    assert late, "the turn reached the recognizer"

    for pcm16 in on_time + late:
        assert lead_ms(pcm16) == ONSET_LEAD_MS, [lead_ms(p) for p in on_time + late]
    assert call.memory.said("user") == ["my name is dana lee", "hudson three sixty"]
