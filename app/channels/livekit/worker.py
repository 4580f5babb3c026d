"""The LiveKit worker: ``python -m agents.worker dev|start``.

Connects to the LiveKit server named by ``LIVEKIT_URL``, ``LIVEKIT_API_KEY`` and
``LIVEKIT_API_SECRET`` and takes a job per room: a WebRTC client or a phone call arriving
through LiveKit SIP. Each job identifies the caller, runs a ``TourAgent`` in an
``AgentSession`` and hangs up (deletes the room) once the session closes. Set
``LIVEKIT_AGENT_NAME`` for explicit dispatch (a SIP dispatch rule naming this agent).

With server backends (PostgreSQL through ``DATABASE_URL`` and a vector store on a server)
jobs run as processes, LiveKit's default, so one worker uses every core; each job process
opens its own memory and models. With the embedded store (one owner per data dir) they run
as threads of this one process, sharing one memory and one set of models (thread-safe; see
``app/audio``). ``executor.plan_jobs`` decides. Either way the stores are opened before the
worker registers: a locked data dir fails at start with one clear sentence, and an
unreachable database at start rather than in every job.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import warnings

from livekit.agents import (
    AgentServer,
    CloseEvent,
    JobContext,
    JobExecutorType,
    JobProcess,
    cli,
    room_io,
)

from app.channels.livekit.caller import caller_id_of
from app.channels.livekit.executor import apply_job_plan, plan_jobs
from app.channels.livekit.runtime import check_stores, close_shared_runtime, shared_runtime
from app.channels.livekit.session import new_session
from app.channels.livekit.tour_agent import TourAgent
from app.domain.identity import InvalidCallerId, masked
from app.memory.owner_lock import EmbeddedStoreLockedError
from app.settings import get_settings

__all__ = ["EXIT_STORE_LOCKED", "entrypoint", "main", "server"]

log = logging.getLogger("tourline.livekit")

EXIT_STORE_LOCKED = 3  # same code as `tourline chat` and `tourline serve`
_SERVING_COMMANDS = {"dev", "start", "console", "connect"}


def _prewarm(proc: JobProcess) -> None:
    """Every job finds memory and models loaded: a job process loads its own while it
    waits in LiveKit's idle pool; job threads share the worker's."""
    shared_runtime()


# Threads until ``main`` reads the settings: `apply_job_plan` switches to processes.
server = AgentServer(job_executor_type=JobExecutorType.THREAD, setup_fnc=_prewarm)


@server.rtc_session()
async def entrypoint(ctx: JobContext) -> None:
    """One room, one caller: remember them, talk, hang up when the planner is done."""
    runtime = shared_runtime()
    await ctx.connect()
    participant = await ctx.wait_for_participant()
    try:
        caller_id = caller_id_of(participant)
    except InvalidCallerId:
        caller_id = f"livekit-{participant.sid}"
    call_id = f"lk-{ctx.job.id}"
    ctx.log_context_fields = {"caller_id": caller_id, "call_id": call_id}
    log.info("call %s from %s", call_id, masked(caller_id))

    session = new_session(runtime.speech)
    agent = TourAgent(
        kit=runtime.kit,
        caller_id=caller_id,
        call_id=call_id,
        memory=runtime.memory,
        silence_timeout_s=runtime.settings.no_input_timeout_s,
    )

    def _on_close(ev: CloseEvent) -> None:
        ctx.shutdown(reason=f"session closed: {ev.reason.value}")

    session.on("close", _on_close)
    if plan_jobs(runtime.settings).processes:
        # This process hosts this one job: flush its memory work before LiveKit ends it.
        ctx.add_shutdown_callback(_close_process_runtime)
    await session.start(
        agent,
        room=ctx.room,
        room_options=room_io.RoomOptions(
            participant_identity=participant.identity,
            delete_room_on_close=True,  # ends a SIP call when the agent is done
        ),
    )


async def _close_process_runtime() -> None:
    await asyncio.to_thread(close_shared_runtime)


def main(argv: list[str] | None = None) -> None:
    """LiveKit's CLI (dev, start, console...), with threads or processes chosen from the
    settings and the stores checked first (with threads, memory and models opened)."""
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] in _SERVING_COMMANDS:
        settings = get_settings()
        plan = plan_jobs(settings)
        apply_job_plan(server, plan)
        try:
            if plan.processes:
                check_stores(settings)  # each job process opens its own
            else:
                shared_runtime()
        except EmbeddedStoreLockedError as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise SystemExit(EXIT_STORE_LOCKED) from None
    sys.argv = [sys.argv[0], *args]
    # `python -m agents.worker dev|start` is the entry the project documents; LiveKit now
    # prefers its `lk agent` CLI and warns about this one on every start.
    warnings.filterwarnings("ignore", "the built-in Python CLI is deprecated", DeprecationWarning)
    try:
        cli.run_app(server)
    finally:
        close_shared_runtime()


if __name__ == "__main__":
    main()
