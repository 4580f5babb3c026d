"""Threads or processes for LiveKit jobs: chosen from where memory lives, applied at start.

No LiveKit server runs here: ``cli.run_app`` is replaced by a recorder, so these tests
check what the worker would start with, against the real PostgreSQL for the process case.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from livekit.agents import AgentServer, JobExecutorType
from sqlalchemy import create_engine, inspect

from app.channels.livekit import worker
from app.channels.livekit.executor import (
    PROCESS_INIT_TIMEOUT_S,
    PROCESS_PRELOAD,
    JobPlan,
    apply_job_plan,
    plan_jobs,
)
from app.settings import Settings, get_settings

PG = "postgresql://tourline@db.example:5432/tourline"
QDRANT = "http://qdrant.example:6333"


def _settings(tmp_path: Path, **overrides: object) -> Settings:
    base: dict[str, object] = {
        "data_dir": tmp_path / "data",
        "memory_mode": "persistent",
        "database_url": None,
        "qdrant_url": None,
    }
    base.update(overrides)
    return Settings(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        pytest.param({}, JobExecutorType.THREAD, id="defaults: sqlite + embedded"),
        pytest.param(
            {"database_url": PG, "qdrant_url": QDRANT},
            JobExecutorType.PROCESS,
            id="postgres + qdrant server",
        ),
        pytest.param(
            {"database_url": "postgres://u@h/db", "qdrant_url": QDRANT},
            JobExecutorType.PROCESS,
            id="heroku-style postgres url + qdrant",
        ),
        pytest.param({"database_url": PG}, JobExecutorType.THREAD, id="postgres + embedded"),
        pytest.param({"qdrant_url": QDRANT}, JobExecutorType.THREAD, id="sqlite + qdrant"),
        pytest.param(
            {"database_url": PG, "qdrant_url": QDRANT, "memory_mode": "in_memory"},
            JobExecutorType.THREAD,
            id="in-memory memory",
        ),
    ],
)
def test_plan_follows_where_memory_lives(
    tmp_path: Path, overrides: dict[str, object], expected: JobExecutorType
) -> None:
    plan = plan_jobs(_settings(tmp_path, **overrides))
    assert plan.executor == expected
    assert plan.reason


@pytest.mark.parametrize(
    ("store", "qdrant_url", "expected"),
    [
        ("postgres", None, JobExecutorType.PROCESS),
        ("qdrant", QDRANT, JobExecutorType.PROCESS),
        ("embedded", QDRANT, JobExecutorType.THREAD),
        ("auto", QDRANT, JobExecutorType.PROCESS),
        ("auto", None, JobExecutorType.THREAD),
    ],
)
def test_vector_store_setting_decides(
    tmp_path: Path, store: str, qdrant_url: str | None, expected: JobExecutorType
) -> None:
    settings = _settings(tmp_path, database_url=PG, qdrant_url=qdrant_url, vector_store=store)
    assert plan_jobs(settings).executor == expected


def test_vectors_in_postgres_need_postgres(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="PostgreSQL DATABASE_URL"):
        plan_jobs(_settings(tmp_path, vector_store="postgres"))


def test_embedded_reason_says_how_to_get_processes(tmp_path: Path) -> None:
    reason = plan_jobs(_settings(tmp_path, database_url=PG)).reason
    assert "one owner per data dir" in reason and "QDRANT_URL" in reason


def test_applying_a_plan_configures_the_agent_server() -> None:
    server = AgentServer()
    apply_job_plan(server, JobPlan(JobExecutorType.PROCESS, "test"))
    assert server._job_executor_type == JobExecutorType.PROCESS
    # Loading the models takes longer than LiveKit's 10 s default.
    assert server._initialize_process_timeout == PROCESS_INIT_TIMEOUT_S > 10
    assert server._preload_modules == list(PROCESS_PRELOAD)
    apply_job_plan(server, JobPlan(JobExecutorType.THREAD, "test"))
    assert server._job_executor_type == JobExecutorType.THREAD
    assert server._preload_modules == []


class _RunApp:
    """Stands in for LiveKit's CLI: records how the server would have started."""

    def __init__(self) -> None:
        self.executor: JobExecutorType | None = None

    def __call__(self, server: AgentServer) -> None:
        self.executor = server._job_executor_type


@pytest.fixture
def run_app(monkeypatch: pytest.MonkeyPatch) -> Iterator[_RunApp]:
    fake = _RunApp()
    monkeypatch.setattr(worker.cli, "run_app", fake)
    unset = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "TOURLINE_MEMORY_MODE", "QDRANT_URL")
    for name in (*unset, "TOURLINE_VECTOR_STORE"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    yield fake
    get_settings.cache_clear()
    apply_job_plan(worker.server, JobPlan(JobExecutorType.THREAD, "reset after test"))


@pytest.mark.postgres
def test_worker_on_postgres_and_qdrant_starts_job_processes_after_checking_the_database(
    run_app: _RunApp,
    postgres_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The parent opens the stores once (the schema appears in the real database) and
    loads no models; LiveKit then gets a process executor."""
    monkeypatch.setenv("DATABASE_URL", postgres_url)
    monkeypatch.setenv("QDRANT_URL", "http://127.0.0.1:9")  # no Qdrant here: memory is optional
    monkeypatch.setenv("TOURLINE_DATA_DIR", str(tmp_path / "data"))
    opened: list[str] = []
    monkeypatch.setattr(worker, "shared_runtime", lambda: opened.append("models"))

    worker.main(["start"])

    assert run_app.executor == JobExecutorType.PROCESS
    assert opened == []  # the parent process never loads the speech models
    engine = create_engine(postgres_url)
    try:
        assert inspect(engine).get_table_names()  # the stores were opened before start
    finally:
        engine.dispose()


def test_worker_on_the_embedded_store_keeps_threads_and_loads_first(
    run_app: _RunApp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("TOURLINE_DATA_DIR", str(tmp_path / "data"))
    opened: list[str] = []
    monkeypatch.setattr(worker, "shared_runtime", lambda: opened.append("models"))

    worker.main(["start"])

    assert run_app.executor == JobExecutorType.THREAD
    assert opened == ["models"]  # memory and models load before the worker registers
