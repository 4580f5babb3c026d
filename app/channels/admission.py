"""Admission: how many calls this process has taken on, so call N+1 waits instead of
slowing every call.

A call counts from the moment a channel says yes to it, not only once its realtime loop
runs: Twilio opens the media stream a moment after the webhook's answer, and an avatar
loads its caller's memory after ``hello``. Counting only live loops, a burst of ten webhooks
at capacity - 1 would admit all ten. So each yes holds a slot (``pending``) until the call's
loop is seen live or ``PENDING_TTL_S`` passes (a stream that never came).

A pending slot is released when a check sees the call live; a call that starts and ends
between two checks keeps its slot until the TTL. That errs on the safe side (one caller
holds one more round) and checks are frequent: every webhook, avatar socket, ``/readyz``
and ``/metrics`` scrape makes one.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable

from app.voice.realtime_loop import RealtimeLoop

__all__ = ["ADMISSIONS", "CHANNELS", "PENDING_TTL_S", "Admissions"]

PENDING_TTL_S = 15.0
"""How long a yes holds a slot before its call is live. Twilio opens the stream within a
second or two of the webhook's answer; an avatar's hello and memory load take less."""
CHANNELS = ("phone", "avatar", "livekit")
"""Every channel a call can come in on (LiveKit calls run in the worker's process)."""

LiveCalls = Callable[[], list[tuple[str, str]]]


class Admissions:
    """The calls this process has said yes to: live ones plus those on their way."""

    def __init__(
        self,
        live_calls: LiveCalls = RealtimeLoop.live_calls,
        ttl_s: float = PENDING_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._live_calls = live_calls
        self._ttl_s = ttl_s
        self._clock = clock
        self._pending: dict[str, tuple[float, str]] = {}  # call id -> (deadline, channel)
        self._lock = threading.Lock()

    def try_admit(self, call_id: str, capacity: int, channel: str = "phone") -> bool:
        """Take this call if there is room; the same call asking again is still taken (a
        webhook Twilio retried, or a caller's redirect that was already let in)."""
        with self._lock:
            live = self._prune()
            if call_id in self._pending or call_id in live:
                return True
            if len(live) + len(self._pending) >= capacity:
                return False
            self._pending[call_id] = (self._clock() + self._ttl_s, channel)
            return True

    def occupied(self) -> int:
        """Calls in progress plus calls admitted and on their way: the load against capacity."""
        with self._lock:
            return len(self._prune()) + len(self._pending)

    def by_channel(self) -> dict[str, int]:
        """Calls in progress per channel (every known channel, zeros included)."""
        counts = Counter(channel for _, channel in self._live_calls())
        return {channel: counts.get(channel, 0) for channel in (*CHANNELS, *counts)}

    def pending(self) -> int:
        """Calls admitted whose loop is not live yet."""
        with self._lock:
            self._prune()
            return len(self._pending)

    def _prune(self) -> set[str]:
        """Drop pending calls that went live or expired; the live call ids."""
        live = {call_id for call_id, _ in self._live_calls()}
        now = self._clock()
        self._pending = {
            call_id: entry
            for call_id, entry in self._pending.items()
            if call_id not in live and entry[0] > now
        }
        return live


ADMISSIONS = Admissions()
"""This process's admissions (calls are per process, like ``RealtimeLoop``'s live set)."""
