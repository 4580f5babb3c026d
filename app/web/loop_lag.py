"""How late the event loop wakes up: the delay every call's audio shares.

Why: one event loop carries every call's 20 ms media frames, so anything that holds it (a
blocking call, a burst of call starts, the GIL held by a model thread) delays all calls at
once. A 20 ms tick that wakes late measures exactly that, from inside the server; a probe
from outside (``GET /healthz``) adds its own HTTP and scheduling time on top. The worst
lateness of each second is kept for a minute, for ``/healthz`` and the call-start bench.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque

TICK_S = 0.02
"""One media frame: the loop is checked as often as a call needs it."""
KEEP_S = 60


class LoopLag:
    """The worst tick lateness per wall-clock second, over the last ``KEEP_S`` seconds."""

    def __init__(self) -> None:
        self._seconds: deque[tuple[int, float]] = deque(maxlen=KEEP_S)

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
        while True:
            started = loop.time()
            await asyncio.sleep(TICK_S)
            late_s = loop.time() - started - TICK_S
            self.record(time.time(), max(0.0, late_s) * 1000)
