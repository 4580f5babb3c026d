"""A burst of call starts must not freeze the calls already running (issue 12, item 6).

Thirty calls ringing at once take the spare VADs in one go; building the rest on the event
loop (~50 ms each) held every other call's audio for over a second (bench/call_starts.py
saw /healthz wait 1.3-2.1 s). Now the loop only hands out VADs; the missing ones are built
off it and each call's first audio waits for its own.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from app.settings import Settings
from app.voice.compute_pool import ComputePool
from app.voice.voice_kit import SPARE_VADS, VoiceKit

BURST = 30


def _kit(tmp_path: Path) -> VoiceKit:
    none: Any = None  # no speech models are needed to hand out and run VADs
    return VoiceKit(Settings(data_dir=tmp_path), none, none, ComputePool(1), none)


async def test_thirty_call_starts_hold_the_event_loop_under_100_ms(tmp_path: Path) -> None:
    kit = _kit(tmp_path)
    try:
        kit.prepare_vads(8000)
        started = time.perf_counter()
        vads = [kit.new_vad(8000) for _ in range(BURST)]  # what 30 `start`s do on the loop
        held_ms = (time.perf_counter() - started) * 1000
        assert held_ms < 100, f"{BURST} call starts held the event loop for {held_ms:.0f} ms"

        # Every call still hears its caller: speech scores high, on its own VAD.
        tone = (8000 * np.sin(np.arange(8000) * 2 * np.pi * 220 / 8000)).astype(np.int16)
        for vad in vads:
            probabilities = await kit.score(vad, tone.tobytes())
            assert len(probabilities) == 8000 // 256
            assert vad.window_ms == 32.0
        assert len({id(vad) for vad in vads}) == BURST
    finally:
        kit.close()


async def test_vads_built_for_a_burst_become_spares_when_the_calls_end(tmp_path: Path) -> None:
    kit = _kit(tmp_path)
    try:
        vads = [kit.new_vad(8000) for _ in range(SPARE_VADS + 2)]  # no spares were built
        for vad in vads:
            await kit.score(vad, np.zeros(512, dtype=np.int16).tobytes())  # built by now
            kit.release_vad(vad)
        assert len(kit._spare_vads[8000]) == SPARE_VADS
        again = kit.new_vad(8000)
        assert again.window_ms == 32.0 and again.process(np.zeros(256, np.int16).tobytes())
    finally:
        kit.close()
