"""The worker process: CLI entry, and the embedded store's one-owner rule at start-up."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from app.channels.livekit import worker
from app.channels.livekit.runtime import WorkerRuntime
from app.memory.owner_lock import EmbeddedStoreLockedError
from app.memory.service import MemoryService
from app.settings import Settings

REPO = Path(__file__).resolve().parents[2]


def test_worker_server_starts_on_threads_with_our_entrypoint():
    """Before ``main`` reads the settings, the module's server runs jobs as threads (what the
    embedded store needs; ``apply_job_plan`` may switch it to processes) and dispatches
    every room to ``entrypoint``."""
    from livekit.agents import JobExecutorType

    assert worker.server._job_executor_type == JobExecutorType.THREAD
    assert worker.server._entrypoint_fnc is worker.entrypoint


def test_locked_data_dir_fails_at_start_with_one_clear_sentence(
    settings: Settings, memory: MemoryService, monkeypatch: pytest.MonkeyPatch, capsys
):
    """The Twilio server (here: ``memory``) owns the data dir; the worker must not start."""
    with pytest.raises(EmbeddedStoreLockedError):
        WorkerRuntime.open(settings)
    monkeypatch.setattr(worker, "shared_runtime", lambda: WorkerRuntime.open(settings))
    with pytest.raises(SystemExit) as exited:
        worker.main(["start"])
    assert exited.value.code == worker.EXIT_STORE_LOCKED
    err = capsys.readouterr().err
    assert "is already open" in err
    assert "TOURLINE_DATA_DIR" in err and "QDRANT_URL" in err


def test_cli_lists_livekit_commands():
    out = subprocess.run(
        [sys.executable, "-m", "agents.worker", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert "dev" in out and "start" in out
