"""Calls ending at once do not hold the event loop freeing their VADs (issue 12, item 6).

Past the spares kept for the next calls, an ended call's VAD is freed: its ONNX session's
teardown is ~2 ms of CPU, and it ran on the event loop wherever the last reference went
(py-spy showed ``SileroVAD.__del__`` on the loop's thread). 30 calls hanging up at once
held every other call's audio for ~50 ms (more on a loaded machine). The sessions are now
freed on the VAD thread.
"""

from __future__ import annotations

import asyncio
import gc
import os
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from app.audio.vad import SileroVAD
from app.settings import Settings
from app.voice.compute_pool import ComputePool
from app.voice.voice_kit import SPARE_VADS, VoiceKit

ENDING = 30
FRAME_MS = 20.0
"""One phone audio frame: the loop may not be held longer than that by calls ending."""


async def test_thirty_calls_ending_free_their_vads_off_the_loop(tmp_path: Path) -> None:
    none: Any = None  # no speech models are needed to hand out, run and free VADs
    kit = VoiceKit(Settings(data_dir=tmp_path), none, none, ComputePool(1), none)
    try:
        vads = [SileroVAD(8000) for _ in range(ENDING)]  # what 30 calls were using
        for vad in vads:
            await kit.score(vad, np.zeros(512, dtype=np.int16).tobytes())
        gc.collect()
        gc.disable()  # the measure is where the last reference goes, not the collector
        try:
            started = time.perf_counter()
            for vad in vads:  # what 30 hang-ups do on the loop
                kit.release_vad(vad)
            del vads, vad
            held_ms = (time.perf_counter() - started) * 1000
        finally:
            gc.enable()
        assert held_ms < FRAME_MS, f"{ENDING} calls ending held the event loop {held_ms:.1f} ms"

        await asyncio.gather(*list(kit._retiring))
        spares = kit._spare_vads[8000]
        assert len(spares) == SPARE_VADS  # the next calls still find theirs, working
        assert len(spares[0].process(np.zeros(256, dtype=np.int16).tobytes())) == 1
    finally:
        kit.close()


async def test_vads_for_a_burst_are_built_behind_the_event_loop(tmp_path: Path) -> None:
    """A burst's VAD builds (~2.4 s of CPU for 30 calls) starved the event loop on two
    cores; they now run at a lower CPU priority than the loop's thread."""
    none: Any = None
    kit = VoiceKit(Settings(data_dir=tmp_path), none, none, ComputePool(1), none)
    loop_niceness = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    seen: list[int] = []
    refilled = threading.Event()

    def spares_built_at(rate: int = 8000, count: int | None = None) -> None:
        seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        refilled.set()

    try:
        built = kit._builder.submit(
            lambda: os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        )
        assert await asyncio.wrap_future(built) > loop_niceness  # a call's missing VAD

        kit.prepare_vads = spares_built_at  # type: ignore[method-assign]
        kit.new_vad(8000)  # no spares left: a refill starts on its own thread
        assert await asyncio.to_thread(refilled.wait, 30)
        assert seen[0] > loop_niceness
    finally:
        kit.close()
