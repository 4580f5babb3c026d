"""Threads or processes for LiveKit jobs, chosen from where memory lives.

LiveKit runs each job (one room, one call) in a process of its own by default, so one worker
uses every core. Tourline can do that only when every process may open the stores at once:
the database is PostgreSQL and the vectors live on a server (Qdrant through ``QDRANT_URL``,
or PostgreSQL itself). The embedded vector store has one owner per data dir, and
``TOURLINE_MEMORY_MODE=in_memory`` keeps each process's memory to itself, so with either of
those the worker keeps its jobs as threads of one process, sharing one memory and one set
of models.

A job process loads its own models (Whisper, Piper, the embedder: RSS 659 MB, of which
315 MB its own, the rest shared with the forkserver), so it gets more time to initialise
than LiveKit's 10 s, and the heavy imports happen once, in LiveKit's forkserver, and are
shared copy-on-write.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from livekit.agents import AgentServer, JobExecutorType

from app.memory.mem0_engine import choose_vector_store
from app.settings import Settings

__all__ = [
    "PROCESS_INIT_TIMEOUT_S",
    "PROCESS_PRELOAD",
    "JobPlan",
    "apply_job_plan",
    "plan_jobs",
    "vector_store_of",
]

log = logging.getLogger("tourline.livekit")

PROCESS_INIT_TIMEOUT_S = 120.0
"""Time a job process gets to open memory and load its models: measured 22 s in one process
at load average 3, and 44 s for a real LiveKit job process (forkserver, preload) at load
average 26, on 2 cores. LiveKit's default of 10 s would kill it."""

PROCESS_PRELOAD = ("app.channels.livekit.worker",)
"""Imported once in the forkserver (about 10 s of imports on a busy 2-core machine)."""


@dataclass(frozen=True)
class JobPlan:
    """How this worker runs its jobs, and why (logged at start)."""

    executor: JobExecutorType
    reason: str

    @property
    def processes(self) -> bool:
        return self.executor == JobExecutorType.PROCESS


def vector_store_of(settings: Settings) -> str:
    """Where caller memories' vectors live: ``embedded``, ``qdrant`` or ``postgres``
    (``TOURLINE_VECTOR_STORE``; ``auto`` is Qdrant when ``QDRANT_URL`` is set). A choice the
    settings cannot serve is a ``ValueError`` saying what is missing, as memory would raise."""
    return choose_vector_store(
        settings.vector_store,
        qdrant_url=settings.qdrant_url,
        database_url=settings.resolved_database_url,
    )


def plan_jobs(settings: Settings) -> JobPlan:
    """Processes (LiveKit's default) with server backends, threads otherwise."""
    if settings.memory_mode == "in_memory":
        return JobPlan(
            JobExecutorType.THREAD,
            "memory is in-process (TOURLINE_MEMORY_MODE=in_memory): jobs share it as threads",
        )
    store = vector_store_of(settings)
    if not settings.resolved_database_url.startswith("postgresql"):
        return JobPlan(
            JobExecutorType.THREAD,
            "the database is SQLite in the data dir (no DATABASE_URL): jobs run as threads",
        )
    if store == "embedded":
        return JobPlan(
            JobExecutorType.THREAD,
            "the embedded vector store has one owner per data dir: jobs run as threads "
            "(set QDRANT_URL or TOURLINE_VECTOR_STORE=postgres for one process per job)",
        )
    return JobPlan(
        JobExecutorType.PROCESS,
        f"PostgreSQL and the {store} vector store are shared: one process per job",
    )


def apply_job_plan(server: AgentServer, plan: JobPlan) -> None:
    """Set ``server`` up for ``plan``; call before it starts."""
    if plan.processes:
        server.update_options(
            job_executor_type=JobExecutorType.PROCESS,
            initialize_process_timeout=PROCESS_INIT_TIMEOUT_S,
        )
        # Not in update_options (livekit-agents 1.8); read when the worker starts.
        server._preload_modules = list(PROCESS_PRELOAD)
    else:
        server.update_options(job_executor_type=JobExecutorType.THREAD)
        server._preload_modules = []
    log.info("LiveKit jobs: %s", plan.reason)
