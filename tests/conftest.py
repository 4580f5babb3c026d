"""Shared fixtures: database URLs for both backends Tourline supports.

PostgreSQL runs on this machine, so the postgres tests use it for real: each test gets a
fresh schema (selected through ``search_path`` in the URL) that is dropped afterwards.
Set ``TOURLINE_TEST_POSTGRES_URL`` to point them at another server.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from psycopg import sql

# Let a plain `pytest` import `app` from the checkout even before `pip install -e .`.
_REPO_ROOT = str(Path(__file__).resolve().parent.parent)
if _REPO_ROOT not in sys.path:
    sys.path.insert(0, _REPO_ROOT)

PHRASES = "TOURLINE_PHRASE_CACHE_DIR"

# Wall and CPU per module at the end of a run: the suite has a time budget (benchmarks.md).
pytest_plugins = ["tests.module_times"]


def pytest_configure(config: pytest.Config) -> None:
    """One phrase store for the whole run, shared by every server the tests start.

    Why: each server start rendered the ~150 fixed phrases again (about 20 CPU-seconds);
    with one store, the first start renders them and the other ~25 read them. A fresh
    folder per run (made by the controlling process, inherited by xdist workers), so a run
    never plays audio an earlier checkout rendered.
    """
    if PHRASES not in os.environ and "PYTEST_XDIST_WORKER" not in os.environ:
        folder = tempfile.mkdtemp(prefix="tourline-test-phrases-")
        os.environ[PHRASES] = folder
        config.add_cleanup(lambda: shutil.rmtree(folder, ignore_errors=True))


_PG_CANDIDATES = (
    "postgresql://postgres@127.0.0.1:5432/test",
    "postgresql://root@127.0.0.1:5432/test",
)


def _admin_connection() -> tuple[psycopg.Connection, str]:
    """An autocommit connection to the test server and the libpq URL that worked."""
    override = os.environ.get("TOURLINE_TEST_POSTGRES_URL")
    candidates = (override,) if override else _PG_CANDIDATES
    errors: list[str] = []
    for url in candidates:
        try:
            return psycopg.connect(url, autocommit=True, connect_timeout=5), url
        except psycopg.OperationalError as exc:
            errors.append(f"{url}: {exc}".strip())
    pytest.fail(
        "PostgreSQL tests need a server on 127.0.0.1:5432 (database 'test', trust auth) "
        "or TOURLINE_TEST_POSTGRES_URL. Could not connect:\n" + "\n".join(errors),
        pytrace=False,
    )


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite file in a not-yet-existing folder (the engine must create it)."""
    return f"sqlite:///{tmp_path / 'data' / 'tourline.db'}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A SQLAlchemy URL whose connections all live in a fresh, private schema."""
    admin, base_url = _admin_connection()
    schema = f"tourline_test_{uuid.uuid4().hex[:12]}"
    try:
        admin.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        options = quote(f"-csearch_path={schema}", safe="")
        driver_url = base_url.replace("postgresql://", "postgresql+psycopg://", 1)
        yield f"{driver_url}?options={options}"
    finally:
        admin.execute("SET lock_timeout = '10s'")
        admin.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
        admin.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """Run a test once on SQLite and once on PostgreSQL."""
    return str(request.getfixturevalue(f"{request.param}_url"))
