"""A throwaway schema on the machine's PostgreSQL, for benchmarks that compare it with SQLite."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

PG_CANDIDATES = (
    "postgresql://postgres@127.0.0.1:5432/test",
    "postgresql://root@127.0.0.1:5432/test",
)


@contextmanager
def postgres_schema(explicit: str | None, prefix: str) -> Iterator[str | None]:
    """A SQLAlchemy URL in a fresh schema (``<prefix>_<random>``) of a reachable
    PostgreSQL, dropped afterwards; None when no PostgreSQL answers."""
    import psycopg
    from psycopg import sql

    admin, base = None, None
    for url in (explicit,) if explicit else PG_CANDIDATES:
        try:
            admin = psycopg.connect(url, autocommit=True, connect_timeout=3)
            base = url
            break
        except psycopg.OperationalError:
            continue
    if admin is None or base is None:
        yield None
        return
    schema = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    try:
        driver = base.replace("postgresql://", "postgresql+psycopg://", 1)
        joiner = "&" if "?" in driver else "?"
        yield f"{driver}{joiner}options=-csearch_path%3D{schema}"
    finally:
        admin.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
        admin.close()
