"""The LiveKit worker: ``python -m agents.worker dev|start``.

Connects to the LiveKit server named by ``LIVEKIT_URL``, ``LIVEKIT_API_KEY`` and
``LIVEKIT_API_SECRET`` and takes a job per room: a WebRTC client or a phone call arriving
through LiveKit SIP. Each job identifies the caller, runs a ``TourAgent`` in an
``AgentSession`` and hangs up (deletes the room) once the session closes. Set
``LIVEKIT_AGENT_NAME`` for explicit dispatch (a SIP dispatch rule naming this agent).

Jobs run as threads of this one process, not LiveKit's default process pool: the
embedded memory store allows one owner per data dir, and the speech models are loaded
once and shared (both are thread-safe; see ``app/audio``). Memory and models are opened
before the worker registers, so a locked data dir fails at start with one clear sentence.
"""

from __future__ import annotations

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
from app.channels.livekit.runtime import close_shared_runtime, shared_runtime
from app.channels.livekit.session import new_session
from app.channels.livekit.tour_agent import TourAgent
from app.domain.identity import InvalidCallerId, masked
from app.memory.owner_lock import EmbeddedStoreLockedError

__all__ = ["EXIT_STORE_LOCKED", "entrypoint", "main", "server"]

log = logging.getLogger("tourline.livekit")

EXIT_STORE_LOCKED = 3  # same code as `tourline chat` and `tourline serve`
_SERVING_COMMANDS = {"dev", "start", "console", "connect"}


def _prewarm(proc: JobProcess) -> None:
    """Every job thread finds memory and models already loaded."""
    shared_runtime()


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
    await session.start(
        agent,
        room=ctx.room,
        room_options=room_io.RoomOptions(
            participant_identity=participant.identity,
            delete_room_on_close=True,  # ends a SIP call when the agent is done
        ),
    )


def main(argv: list[str] | None = None) -> None:
    """LiveKit's CLI (dev, start, console...), with memory and models opened first."""
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] in _SERVING_COMMANDS:
        try:
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
