"""A fresh PostgreSQL database per fleet test module, dropped at the end.

Replicas are separate processes, so a schema picked by ``search_path`` (what the shared
``postgres_url`` fixture does) would do too; a database of their own keeps them apart from
every other test running on this server at the same time, and one DROP removes it all.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from typing import TypeVar

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import Engine, select

from app.stores.conversations import exchanges

T = TypeVar("T")
WAIT_S = 60.0  # a bound for a hang under load, never a pace

_CANDIDATES = (
    "postgresql://postgres@127.0.0.1:5432/test",
    "postgresql://root@127.0.0.1:5432/test",
)


def _admin() -> tuple[psycopg.Connection, str]:
    override = os.environ.get("TOURLINE_TEST_POSTGRES_URL")
    errors: list[str] = []
    for url in (override,) if override else _CANDIDATES:
        try:
            return psycopg.connect(url, autocommit=True, connect_timeout=5), url
        except psycopg.OperationalError as exc:
            errors.append(f"{url}: {exc}".strip())
    pytest.fail("the fleet tests need PostgreSQL:\n" + "\n".join(errors), pytrace=False)


@pytest.fixture(scope="module")
def fleet_db() -> Iterator[str]:
    """``postgresql+psycopg://…/tl_rep_<random>``: a new database, dropped afterwards."""
    admin, url = _admin()
    name = f"tl_rep_{uuid.uuid4().hex[:10]}"
    admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    base, _, _ = url.rpartition("/")
    try:
        yield base.replace("postgresql://", "postgresql+psycopg://", 1) + "/" + name
    finally:
        # FORCE: a replica killed with -9 may leave a backend behind for a moment.
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        admin.close()


def wait_until(what: str, check: Callable[[], T | None], timeout_s: float = WAIT_S) -> T:
    """Poll ``check`` until it returns something truthy (background work has a lag)."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout_s:.0f} s")
        time.sleep(0.1)  # polling a condition, with a deadline


def said_in(db: Engine, call_id: str) -> list[tuple[str, str]]:
    """A call's exchanges as recorded in the shared database: (role, text), in order."""
    with db.connect() as conn:
        rows = conn.execute(
            select(exchanges.c.role, exchanges.c.text)
            .where(exchanges.c.call_id == call_id)
            .order_by(exchanges.c.id)
        ).all()
    return [(r.role, r.text) for r in rows]
