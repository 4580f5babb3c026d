"""What every call in a worker process shares: memory, the planner kit and the speech models.

Built once per process: the worker's, when jobs run as threads (the embedded memory store
has one owner per data dir: one process, one ``MemoryService``, models loaded once), or each
job process's own, when the stores are servers (see ``executor.plan_jobs``). A worker
pointed at the same ``DATABASE_URL`` and ``QDRANT_URL`` as the Twilio server shares caller
memory with it; with the embedded store it needs a data dir of its own
(``TOURLINE_DATA_DIR``), else opening fails with ``EmbeddedStoreLockedError`` and its one
sentence on what to do.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from app.channels.livekit.speech import Speech, select_speech
from app.memory.service import MemoryService
from app.planner.agent_planner import PlannerKit
from app.runtime import Runtime
from app.settings import Settings, get_settings

__all__ = ["WorkerRuntime", "check_stores", "close_shared_runtime", "shared_runtime"]

log = logging.getLogger("tourline.livekit")


@dataclass
class WorkerRuntime:
    """The process's Runtime (memory may be None: calls go on, unremembered) and LiveKit's
    speech plugins."""

    runtime: Runtime
    speech: Speech

    @classmethod
    def open(cls, settings: Settings) -> WorkerRuntime:
        """Open memory and load every model; raises ``EmbeddedStoreLockedError`` as is."""
        started = time.perf_counter()
        runtime = Runtime.open(settings, voice=False)  # LiveKit's plugins do the audio
        try:
            speech = select_speech(settings)
        except BaseException:
            runtime.close()
            raise
        log.info("worker ready in %.0f ms", (time.perf_counter() - started) * 1000)
        return cls(runtime, speech)

    @property
    def settings(self) -> Settings:
        return self.runtime.settings

    @property
    def memory(self) -> MemoryService | None:
        return self.runtime.memory

    @property
    def kit(self) -> PlannerKit:
        return self.runtime.planners

    def close(self) -> None:
        self.runtime.close()


_SHARED: WorkerRuntime | None = None
_SHARED_LOCK = threading.Lock()


def shared_runtime(settings: Settings | None = None) -> WorkerRuntime:
    """This process's runtime, opened on first use (job threads race for it)."""
    global _SHARED
    with _SHARED_LOCK:
        if _SHARED is None:
            _SHARED = WorkerRuntime.open(settings or get_settings())
        return _SHARED


def close_shared_runtime() -> None:
    """Release memory's stores and owner lock (at worker exit)."""
    global _SHARED
    with _SHARED_LOCK:
        runtime, _SHARED = _SHARED, None
    if runtime is not None:
        runtime.close()


def check_stores(settings: Settings) -> None:
    """Open memory's stores and close them again: a worker whose job processes open their
    own fails at start, not in every job, when the database can't be reached."""
    Runtime.open_memory(settings).close()
