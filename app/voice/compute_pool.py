"""One bounded pool for model work (VAD, STT, TTS), shared fairly between calls.

Why not ``asyncio.to_thread``: its default executor is wide and FIFO, so ten calls' jobs
oversubscribe two cores and one chatty call can queue ahead of everyone else. Here:

- *heavy* jobs (STT, TTS) run on ``workers`` threads. When a thread frees up, the next job is
  the most urgent one (lowest ``priority``), and among equals the one whose call has the
  fewest jobs running and was served longest ago, so no call gets a second worker while
  another call waits. Work nobody is waiting on yet (a reply's later sentences) never takes
  the last free worker, so a caller's end-of-turn transcription starts at once;
- *light* jobs (a 32 ms VAD window costs ~0.1 ms) have their own thread, so turn-taking never
  waits behind a 300 ms transcription.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")

BARGE = -1
"""Is the caller talking over the agent? Served before everything else, on a thread of its
own when every worker is busy: the agent keeps talking over the caller until it is answered."""
URGENT = 0
"""What the caller is waiting for right now: end-of-turn STT, a reply's first audio."""
NORMAL = 1
"""Later sentences of a reply (they have the earlier sentence's playback as slack)."""
BACKGROUND = 2
"""Cache warming and anything else nobody is waiting for: runs only when the pool is idle."""


@dataclass
class _Job(Generic[T]):
    owner: str
    priority: int
    seq: int
    fn: Callable[[], T]
    future: asyncio.Future[T] = field(repr=False)


class ComputePool:
    """Runs blocking model calls off the event loop, bounded and fair across owners."""

    def __init__(self, workers: int = 2) -> None:
        if workers < 1:
            raise ValueError("the compute pool needs at least one worker")
        self.workers = workers
        # One thread more than ``workers``: only a BARGE job may use it.
        self._heavy = ThreadPoolExecutor(workers + 1, thread_name_prefix="tourline-model")
        self._light = ThreadPoolExecutor(1, thread_name_prefix="tourline-vad")
        self._pending: list[_Job[Any]] = []
        self._running: dict[str, int] = defaultdict(int)
        self._last_served: dict[str, float] = {}
        self._active = 0
        self._active_later = 0  # running jobs that are not URGENT
        self._seq = itertools.count()

    async def run(self, owner: str, fn: Callable[..., T], *args: Any, priority: int = NORMAL) -> T:
        """Run ``fn(*args)`` on a model thread when it is this job's fair turn."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        job = _Job(owner, priority, next(self._seq), lambda: fn(*args), future)
        self._pending.append(job)
        self._dispatch(loop)
        return await job.future

    async def run_light(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a tiny job (VAD) on the dedicated light thread."""
        return await asyncio.get_running_loop().run_in_executor(self._light, fn, *args)

    @property
    def queued(self) -> int:
        return len(self._pending)

    def _dispatch(self, loop: asyncio.AbstractEventLoop) -> None:
        while self._pending:
            job = min(
                self._pending,
                key=lambda j: (
                    j.priority,
                    self._running[j.owner],
                    self._last_served.get(j.owner, 0.0),
                    j.seq,
                ),
            )
            if self._active >= self.workers + (job.priority <= BARGE):
                return
            if job.priority >= BACKGROUND and self._active:
                return  # background work only on an idle pool: it must never slow a call
            if job.priority > URGENT and self._active_later >= max(1, self.workers - 1):
                return  # keep a worker free for whatever a caller is waiting on right now
            self._pending.remove(job)
            if job.future.cancelled():
                continue  # its caller gave up (barge-in, hang-up): skip the work
            self._active += 1
            self._active_later += job.priority > URGENT
            self._running[job.owner] += 1
            self._last_served[job.owner] = time.monotonic()
            inner = loop.run_in_executor(self._heavy, job.fn)
            inner.add_done_callback(functools.partial(self._finished, loop, job))

    def _finished(
        self, loop: asyncio.AbstractEventLoop, job: _Job[Any], done: asyncio.Future[Any]
    ) -> None:
        self._active -= 1
        self._active_later -= job.priority > URGENT
        self._running[job.owner] -= 1
        if not self._running[job.owner]:
            del self._running[job.owner]
        if not job.future.done():
            if done.cancelled():
                job.future.cancel()
            elif (exc := done.exception()) is not None:
                job.future.set_exception(exc)
            else:
                job.future.set_result(done.result())
        self._dispatch(loop)

    def forget(self, owner: str) -> None:
        """Drop an owner's bookkeeping once its call is over."""
        self._last_served.pop(owner, None)
        for job in [j for j in self._pending if j.owner == owner]:
            self._pending.remove(job)
            job.future.cancel()

    def shutdown(self) -> None:
        for job in self._pending:
            job.future.cancel()
        self._pending.clear()
        self._heavy.shutdown(wait=False, cancel_futures=True)
        self._light.shutdown(wait=False, cancel_futures=True)
