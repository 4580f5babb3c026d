"""A burst of call starts must not freeze the calls already running (issue 12, item 6).

Thirty calls ringing at once take the spare VADs in one go; building the rest on the event
loop (~50 ms each) held every other call's audio for over a second (bench/call_starts.py
saw /healthz wait 1.3-2.1 s). Now the loop only hands out VADs; the missing ones are built
off it and each call's first audio waits for its own.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from app.audio.vad import SileroVAD
from app.settings import Settings
from app.voice import voice_kit
from app.voice.compute_pool import ComputePool
from app.voice.voice_kit import SPARE_VADS, VoiceKit

BURST = 30


def _kit(tmp_path: Path) -> VoiceKit:
    none: Any = None  # no speech models are needed to hand out and run VADs
    return VoiceKit(Settings(data_dir=tmp_path), none, none, ComputePool(1), none)


async def test_thirty_call_starts_build_no_vad_on_the_event_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not timed (tests do not time things): every VAD the burst needed was built on a
    thread other than the loop's, so a build's ~50 ms of CPU is never the loop's;
    bench/call_starts.py measures what the running calls hear."""
    kit = _kit(tmp_path)
    built_on: list[int] = []  # the thread of every VAD built during the burst
    lock = threading.Lock()

    class RecordedVAD(SileroVAD):
        def __init__(self, sample_rate: int = 16000) -> None:
            with lock:
                built_on.append(threading.get_ident())
            super().__init__(sample_rate)

    try:
        kit.prepare_vads(8000)  # start-up, before any call
        monkeypatch.setattr(voice_kit, "SileroVAD", RecordedVAD)
        vads = [kit.new_vad(8000) for _ in range(BURST)]  # what 30 `start`s do on the loop

        # Every call still hears its caller: speech scores high, on its own VAD.
        tone = (8000 * np.sin(np.arange(8000) * 2 * np.pi * 220 / 8000)).astype(np.int16)
        for vad in vads:
            probabilities = await kit.score(vad, tone.tobytes())  # waits for its build
            assert len(probabilities) == 8000 // 256
            assert vad.window_ms == 32.0
        assert len({id(vad) for vad in vads}) == BURST

        with lock:
            builds = list(built_on)
        assert len(builds) >= BURST - SPARE_VADS  # the calls the spares did not cover
        loop_thread = threading.get_ident()
        assert loop_thread not in builds, (
            f"{builds.count(loop_thread)} of {len(builds)} VADs were built on the event loop"
        )
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
