"""How late the event loop wakes up: the delay every call's audio shares.

Why: one event loop carries every call's 20 ms media frames, so anything that holds it (a
blocking call, a burst of call starts, the GIL held by a model thread) delays all calls at
once. A 20 ms tick that wakes late measures exactly that, from inside the server; a probe
from outside (``GET /healthz``) adds its own HTTP and scheduling time on top. The worst
lateness of each second is kept for a minute, for ``/healthz`` and the call-start bench.

A number says *that* the loop stalled, not *what* held it. While ``watch`` runs, a watchdog
thread looks at the loop every ``WATCH_S``; when it has not ticked for ``STALL_MS``, the
watchdog logs where the loop thread is (its Python stack) once per stall, and full garbage
collections slower than ``GC_SLOW_MS`` are logged too (they hold every thread). The
watchdog itself needs the GIL, so a stall inside C code that keeps the GIL is seen when it
lets go, still in the same call.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
import threading
import time
import traceback
from collections import deque
from typing import Any

TICK_S = 0.02
"""One media frame: the loop is checked as often as a call needs it."""
KEEP_S = 60
STALL_MS = 100.0
"""A loop that has not ticked for this long is stalled (the soak's goal: none)."""
WATCH_S = 0.05
GC_SLOW_MS = 50.0
STACK_LINES = 12
IN_THE_LOOP = frozenset({"run_until_complete", "run_forever", "_run_once", "select", "poll"})
"""The innermost Python frame when the loop is between callbacks (uvloop runs in C below
``run_until_complete``; the pure-Python loop waits in its selector)."""

log = logging.getLogger("tourline.loop")


class LoopLag:
    """The worst tick lateness per wall-clock second, over the last ``KEEP_S`` seconds."""

    def __init__(self) -> None:
        self._seconds: deque[tuple[int, float]] = deque(maxlen=KEEP_S)
        self._beat = time.monotonic()  # the loop's last tick (read by the watchdog)
        self.stalls = 0
        """Stalls the watchdog saw (each logged with the loop thread's stack)."""
        self.slow_gcs = 0

    def record(self, at: float, late_ms: float) -> None:
        second = int(at)
        if self._seconds and self._seconds[-1][0] == second:
            late_ms = max(late_ms, self._seconds[-1][1])
            self._seconds[-1] = (second, late_ms)
        else:
            self._seconds.append((second, late_ms))

    def worst_since(self, since: float) -> float:
        """The worst lateness (ms) in the seconds from ``since`` (wall clock) on."""
        return max((ms for second, ms in self._seconds if second >= int(since)), default=0.0)

    def by_second(self) -> list[tuple[int, float]]:
        return [(second, round(ms, 1)) for second, ms in self._seconds]

    async def watch(self) -> None:
        """Tick forever (cancel to stop), recording how late each tick woke."""
        loop = asyncio.get_running_loop()
        stop = threading.Event()
        watchdog = threading.Thread(
            target=self._watchdog,
            args=(threading.get_ident(), stop),
            name="tourline-loop-watch",
            daemon=True,
        )
        watchdog.start()
        gc.callbacks.append(self._gc_timer)
        try:
            while True:
                started = loop.time()
                self._beat = time.monotonic()
                await asyncio.sleep(TICK_S)
                late_s = loop.time() - started - TICK_S
                self.record(time.time(), max(0.0, late_s) * 1000)
        finally:
            stop.set()
            gc.callbacks.remove(self._gc_timer)

    def _watchdog(self, loop_thread: int, stop: threading.Event) -> None:
        """Log the loop thread's stack once per stall longer than ``STALL_MS``."""
        logged_beat = 0.0
        while not stop.wait(WATCH_S):
            beat = self._beat
            held_ms = (time.monotonic() - beat) * 1000
            if held_ms < STALL_MS + TICK_S * 1000 or beat == logged_beat:
                continue
            logged_beat = beat
            frame = sys._current_frames().get(loop_thread)
            if frame is None:
                return  # the loop's thread is gone
            self.stalls += 1
            if frame.f_code.co_name in IN_THE_LOOP:
                # No callback is running: the loop thread is in the loop's own code, waiting
                # for a core or for the GIL (other threads, other processes).
                log.warning(
                    "event loop held for %.0f ms so far, between callbacks (in %s): waiting "
                    "for a core or the GIL",
                    held_ms,
                    frame.f_code.co_name,
                )
                continue
            stack = "".join(traceback.format_stack(frame)[-STACK_LINES:])
            log.warning("event loop held for %.0f ms so far, in:\n%s", held_ms, stack)

    _gc_started = 0.0

    def _gc_timer(self, phase: str, info: dict[str, Any]) -> None:
        if info.get("generation") != 2:
            return
        if phase == "start":
            self._gc_started = time.perf_counter()
            return
        ms = (time.perf_counter() - self._gc_started) * 1000
        if ms >= GC_SLOW_MS:
            self.slow_gcs += 1
            log.warning(
                "a full garbage collection held every thread %.0f ms (%s objects collected)",
                ms,
                info.get("collected"),
            )
