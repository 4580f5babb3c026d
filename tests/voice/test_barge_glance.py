"""The barge-in glance never waits for another call's transcription.

CTranslate2 runs one job at a time per model replica: on the replica every call's
whole-turn transcription uses, the check "is the caller talking over the agent?" waited
for whichever decode was running (100-300 ms at ten calls) while the agent talked on.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest

from app.audio.stt import WhisperSTT

pytestmark = pytest.mark.slow


class HeldModel:
    """The turn model, busy with another call's decode until the test lets it go."""

    def __init__(self) -> None:
        self.busy = threading.Event()
        self.release = threading.Event()

    def transcribe(self, *args: Any, **kwargs: Any) -> Any:
        self.busy.set()
        assert self.release.wait(30), "the held decode was never released"
        return iter(()), None


def test_a_glance_answers_while_the_turn_model_is_busy() -> None:
    stt = WhisperSTT(encoder_window_s=10)
    held = HeldModel()
    stt.model = held  # a stand-in that holds the turn replica
    turn = threading.Thread(target=stt.transcribe, args=(np.ones(16000, dtype=np.int16),))
    turn.start()
    try:
        assert held.busy.wait(30)
        noise = np.random.default_rng(5).normal(0, 300, 8000).astype(np.int16)
        heard = stt.glance(noise)  # would block here if it shared the held replica
        assert isinstance(heard, str)
        assert not held.release.is_set() and turn.is_alive()  # the turn decode still holds
    finally:
        held.release.set()
        turn.join(30)
