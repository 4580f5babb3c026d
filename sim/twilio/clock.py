"""Twilio's media pace: 20 ms ticks on absolute deadlines.

Why its own module: the phone call and the avatar client (``sim.avatar``) both stream on it.
"""

from __future__ import annotations

import asyncio
import time
from typing import Final

from app.audio.codec import FRAME_MS

FRAME_S: Final = FRAME_MS / 1000


class MediaClock:
    """20 ms ticks scheduled on absolute deadlines from one origin.

    Why: ``sleep(0.02)`` in a loop drifts by the loop's own overhead every tick; after a
    minute of call the caller would be audibly slow. With absolute deadlines a late tick is
    followed by an early one, as with Twilio's real-time media. ``max_late_s`` tells a
    benchmark whether the harness itself kept up.
    """

    def __init__(self, period_s: float = FRAME_S) -> None:
        self.period_s = period_s
        self.origin: float | None = None
        self.ticks = 0
        self.max_late_s = 0.0

    def start(self, origin: float | None = None) -> None:
        self.origin = time.monotonic() if origin is None else origin
        self.ticks = 0

    async def tick(self) -> int:
        """Wait for the next deadline; returns the tick index (0, 1, 2...)."""
        if self.origin is None:
            self.start()
        assert self.origin is not None
        index = self.ticks
        deadline = self.origin + index * self.period_s
        self.ticks += 1
        delay = deadline - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            self.max_late_s = max(self.max_late_s, -delay)
        return index
