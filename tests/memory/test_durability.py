"""An acknowledged exchange survives ``kill -9``: a real process, killed mid-write."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from sqlalchemy import select

from app.stores.conversations import exchanges
from sim.server import clean_env
from tests.memory.conftest import OpenService

REPO = Path(__file__).resolve().parents[2]
ACKED_BEFORE_KILL = 40

WRITER = textwrap.dedent(
    """
    from app.domain.state import Pet, PlannerState
    from app.memory.service import MemoryService
    from app.settings import Settings

    memory = MemoryService.open(Settings())
    caller, call_id = "(415) 555-0101", "call-killed"
    memory.start_call(caller, call_id, "phone")
    state = PlannerState()
    state.update(caller_name="Dana Zyxwarble", pets=[Pet(kind="cat", count=2)])
    memory.save_snapshot(caller, call_id, state)
    i = 0
    while True:  # write until killed; an id printed is an acknowledged exchange
        role = "user" if i % 2 else "agent"
        print(memory.record_exchange(caller, call_id, "phone", role, f"line {i}"), flush=True)
        i += 1
    """
)


def test_acknowledged_exchanges_survive_sigkill(
    open_service: OpenService, data_dir: Path, db_url: str
) -> None:
    extra = {} if db_url.startswith("sqlite") else {"DATABASE_URL": db_url}
    child = subprocess.Popen(
        [sys.executable, "-c", WRITER],
        cwd=REPO,
        env=clean_env(data_dir, **extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    acked: list[int] = []
    try:
        assert child.stdout is not None
        while len(acked) < ACKED_BEFORE_KILL:
            line = child.stdout.readline()
            assert line, f"writer died: {child.stderr.read() if child.stderr else ''}"
            acked.append(int(line))
        os.kill(child.pid, signal.SIGKILL)
        # Through the same reader: communicate() reads the pipe underneath it and would skip
        # lines the reader had already buffered. A line cut by the kill was never acknowledged.
        rest = child.stdout.read()
        child.wait(timeout=30)
        acked.extend(int(line) for line in rest.splitlines(keepends=True) if line.endswith("\n"))
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -signal.SIGKILL

    service = open_service()  # the owner lock died with the process
    with service.engine.connect() as conn:
        stored = dict(conn.execute(select(exchanges.c.id, exchanges.c.text)).all())
    assert set(acked) <= set(stored)
    assert [stored[i] for i in acked] == [f"line {n}" for n in range(len(acked))]

    assert service.flush(60)
    context = service.load_context("+1 415 555 0101")
    assert context.name == "Dana Zyxwarble"
    assert "Has two cats" in context.memories
    call = service.store.get_call("call-killed")
    assert call is not None and call.outcome == "abandoned" and call.consolidated
