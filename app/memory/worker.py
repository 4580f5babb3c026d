"""One background thread for memory work, so none of it runs on a caller's path.

Embedding and vector writes cost tens of milliseconds; a call records an exchange in a
fraction of one. Everything slow (indexing facts into mem0, consolidation, forgetting)
is queued here and runs in order on a single thread, which also means mem0 never sees two
writers at once. ``flush`` waits until the queue is drained (tests, shutdown, the demo);
``call`` runs a job and waits for its result (on-demand consolidation, "forget me").

The thread runs at a lower CPU priority (``NICENESS``): its embedding work (tens of ms per
fact, a burst after every hang-up) shares the cores with every call's speech models, and
nobody is waiting on it. Linux sets niceness per thread, and threads it starts (mem0's
own pools) inherit it; elsewhere this does nothing.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")
_STOP = object()

NICENESS = 10
"""How much lower than the rest of the server memory work runs (added to the nice value).
At +10 a busy speech thread gets ~9x its CPU share; memory work still runs whenever a core
is idle, which on a server below capacity is most of the time."""


class WorkerClosedError(RuntimeError):
    """The memory worker was closed; no more background work is accepted."""


class BackgroundWorker:
    """A FIFO job queue drained by one daemon thread.

    ``on_idle`` runs on the worker thread after ``idle_s`` seconds without jobs (used to
    retry work that failed while a backend was down).
    """

    def __init__(
        self,
        name: str = "tourline-memory",
        *,
        on_idle: Callable[[], None] | None = None,
        idle_s: float = 30.0,
        niceness: int = NICENESS,
    ) -> None:
        self._queue: queue.Queue[Any] = queue.Queue()
        self._cond = threading.Condition()
        self._unfinished = 0
        self._closed = False
        self._on_idle = on_idle
        self._idle_s = idle_s
        self._niceness = niceness
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    @property
    def pending(self) -> int:
        """Jobs queued or running."""
        with self._cond:
            return self._unfinished

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def submit(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> Future[T]:
        """Queue ``fn(*args, **kwargs)``; its result or exception lands in the future."""
        future: Future[T] = Future()
        with self._cond:
            if self._closed:
                raise WorkerClosedError("the memory worker is closed")
            self._unfinished += 1
        self._queue.put((future, fn, args, kwargs))
        return future

    def call(self, fn: Callable[..., T], *args: Any, timeout: float | None = None) -> T:
        """Run ``fn`` on the worker and wait for it (inline if already on the worker)."""
        if threading.current_thread() is self._thread or not self.alive:
            return fn(*args)
        return self.submit(fn, *args).result(timeout=timeout)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued job has run; False if ``timeout`` came first."""
        if threading.current_thread() is self._thread:
            return self._unfinished <= 1
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._unfinished:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True

    def close(self, timeout: float | None = 10.0) -> bool:
        """Run what is queued (up to ``timeout``), then stop; True if the queue drained."""
        with self._cond:
            if self._closed:
                return True
            self._closed = True
        drained = self.flush(timeout)
        self._queue.put(_STOP)
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=5.0)
        return drained

    def _run(self) -> None:
        _lower_priority(self._niceness)
        while True:
            try:
                item = self._queue.get(timeout=self._idle_s if self._on_idle else None)
            except queue.Empty:
                self._idle()
                continue
            if item is _STOP:
                return
            future, fn, args, kwargs = item
            try:
                if future.set_running_or_notify_cancel():
                    try:
                        future.set_result(fn(*args, **kwargs))
                    except BaseException as exc:
                        # Logged before the waiter hears of it, so a command that reports the
                        # failure itself (``tourline forget``) has the last word.
                        logger.warning("Background memory job %s failed: %s", _name(fn), brief(exc))
                        future.set_exception(exc)
            finally:
                with self._cond:
                    self._unfinished -= 1
                    self._cond.notify_all()

    def _idle(self) -> None:
        if self._on_idle is None or self._closed:
            return
        try:
            self._on_idle()
        except Exception:
            logger.exception("Background memory retry failed")


def _lower_priority(niceness: int) -> None:
    """Lower this thread's CPU priority by ``niceness`` (Linux: per thread; else a no-op)."""
    if niceness <= 0:
        return
    with contextlib.suppress(AttributeError, OSError):  # not Linux, or not allowed
        thread = threading.get_native_id()
        os.setpriority(
            os.PRIO_PROCESS, thread, min(os.getpriority(os.PRIO_PROCESS, thread) + niceness, 19)
        )


def brief(exc: BaseException) -> str:
    """The first line of an error, for a log line or a CLI message.

    A database error's full text goes on with the SQL and its parameters, which hold
    caller ids and what callers said: fine in a traceback on a developer's screen, not in
    a log line that must only carry masked ids.
    """
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _name(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__qualname__", repr(fn))
