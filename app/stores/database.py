"""One place that knows how to open Tourline's relational database.

SQLite (the offline default) and PostgreSQL (``DATABASE_URL``) go through the same
SQLAlchemy engine and the same tables, so every store runs one code path on both.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    DateTime,
    Dialect,
    Engine,
    String,
    Table,
    create_engine,
    event,
    inspect,
    make_url,
)
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

SQLITE_BUSY_TIMEOUT_MS = 5000


class Base(DeclarativeBase):
    """Declarative base shared by every store (bookings, calls, exchanges, snapshots)."""


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored as UTC that always reads back timezone-aware in UTC.

    PostgreSQL keeps ``timestamptz`` natively, but SQLite stores text without an offset.
    Writing naive UTC on SQLite keeps text comparison and unique indexes consistent, and
    re-attaching UTC on read means callers never see a naive datetime from either backend.
    Naive input is refused: guessing its timezone is how tours end up an hour off.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: pass a timezone-aware datetime")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


NETWORK_FILESYSTEMS = frozenset(
    {"nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "afs", "ceph", "glusterfs", "lustre"}
    | {"fuse.sshfs", "fuse.glusterfs", "fuse.s3fs", "fuse.rclone", "fuse.gcsfuse"}
)
_OCTAL = re.compile(r"\\([0-7]{3})")  # /proc/mounts escapes spaces and tabs in paths


class StoreSetupError(RuntimeError):
    """The settings point at a store that cannot be used as asked; the message says what to
    do. Start-up (``tourline serve``, the CLI) shows it as one sentence, not a traceback."""


class DatabaseLocationError(StoreSetupError):
    """The SQLite file is somewhere it cannot be shared safely (a network file system)."""


def filesystem_type(path: Path, mounts: str | None = None) -> str | None:
    """The file system type ``path`` lives on, from ``/proc/mounts`` (None if unknown)."""
    if mounts is None:
        try:
            mounts = Path("/proc/mounts").read_text()
        except OSError:
            return None
    target = str(path.expanduser().resolve())
    best, kind = "", None
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        point = _OCTAL.sub(lambda m: chr(int(m[1], 8)), fields[1])  # "\040" is a space
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, kind = point, fields[2]
    return kind


def refuse_network_sqlite(path: Path, mounts: str | None = None) -> None:
    """SQLite's locks do not hold across machines: replicas sharing a SQLite file on a
    network share would corrupt it, so say what to use instead and refuse to start."""
    kind = filesystem_type(path, mounts)
    if kind not in NETWORK_FILESYSTEMS:
        return
    raise DatabaseLocationError(
        f"The SQLite database {path} is on a network file system ({kind}). SQLite's locks "
        "do not hold across machines, so servers sharing it would corrupt it. Keep "
        "TOURLINE_DATA_DIR on a local disk, and to run several replicas point them all at "
        "PostgreSQL (DATABASE_URL=postgresql://user:password@host:5432/tourline), each "
        'with its own TOURLINE_DATA_DIR: see README, "Running several replicas".'
    )


def _sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL, or None for in-memory / URI databases."""
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    """Per-connection pragmas: SQLite forgets all of these except WAL on reconnect."""
    cursor = dbapi_connection.cursor()
    try:
        # busy_timeout first, so switching to WAL waits for a concurrent opener.
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        # Deleted rows are overwritten, not left in free pages: "forget me" means gone.
        cursor.execute("PRAGMA secure_delete=ON")
    finally:
        cursor.close()


NUL = "\x00"


def without_nul(value: Any) -> Any:
    """``value`` with every NUL character taken out of its strings (through dicts, lists
    and tuples); anything else (bytes included) as it is.

    Why: PostgreSQL refuses NUL in text (and ``\\u0000`` in JSONB), so one NUL in a bad
    transcript or a crafted text message would fail the whole write and lose the exchange.
    """
    if isinstance(value, str):
        return value.replace(NUL, "") if NUL in value else value
    if isinstance(value, dict):
        return {without_nul(k): without_nul(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(without_nul(v) for v in value)
    return value


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return NUL in value
    if isinstance(value, dict):
        return any(_holds_nul(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_holds_nul(v) for v in value)
    return False


def _strip_nul_parameters(
    _conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool
) -> tuple[str, Any]:
    """Every statement's parameters without NUL characters (copied only when one is there)."""
    if _holds_nul(parameters):
        parameters = without_nul(parameters)
    return statement, parameters


def json_without_nul(text: str) -> str:
    """JSON text (kept in a text column) whose strings hold no NUL: the statement hook sees
    only its escaped form, ``\\u0000``, which would read back as NUL. Parsed only then."""
    if "\\u0000" not in text:
        return text
    return json.dumps(without_nul(json.loads(text)), ensure_ascii=False)


def _json_without_nul(value: Any) -> str:
    """JSON columns' serializer: no NUL, which JSONB can't hold even escaped."""
    return json.dumps(without_nul(value))


def upsert_insert(engine: Engine, what: str) -> Any:
    """The dialect's ``insert`` (with ``on_conflict_do_update``) for the atomic claim-or-skip
    statements of claims, call tokens and replica leases; ``what`` names the caller in the
    error for any other database."""
    from sqlalchemy.dialects import postgresql, sqlite

    dialect = engine.dialect.name
    if dialect == "postgresql":
        return postgresql.insert
    if dialect == "sqlite":
        return sqlite.insert
    raise ValueError(f"{what} need PostgreSQL or SQLite, not {dialect}")


def hashed_key(text: str) -> str:
    """A SHA-256 of ``text``: a row key that does not store a caller id or call sid."""
    return hashlib.sha256(text.encode()).hexdigest()


def create_db_engine(url: str, **kwargs: Any) -> Engine:
    """An engine tuned for its backend.

    SQLite: WAL lets readers and one writer work at once, ``synchronous=NORMAL`` is durable
    across process crashes in WAL mode, and a busy timeout makes writers queue instead of
    failing with "database is locked". PostgreSQL: ``pool_pre_ping`` survives server
    restarts and idle connections dropped by proxies. Both: NUL characters are taken out
    of every string written (see ``without_nul``), so what one backend stores the other
    could too, and a backup moves between them.
    """
    backend = make_url(url).get_backend_name()
    kwargs.setdefault("json_serializer", _json_without_nul)
    if backend == "sqlite":
        path = _sqlite_file(url)
        if path is not None:
            path.expanduser().parent.mkdir(parents=True, exist_ok=True)
            refuse_network_sqlite(path)
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _on_sqlite_connect)
    else:
        if backend == "postgresql":
            kwargs.setdefault("pool_pre_ping", True)
        engine = create_engine(url, **kwargs)
    event.listen(engine, "before_cursor_execute", _strip_nul_parameters, retval=True)
    return engine


def init_schema(engine: Engine) -> None:
    """Create every table registered on ``Base`` that does not exist yet.

    A table registers when its module is imported, so the store modules are imported
    here: a fresh database then gets all of them, whoever calls this first.
    """
    # Each import registers that store's tables on Base.
    import app.stores.bookings
    import app.stores.call_tokens
    import app.stores.claims
    import app.stores.conversations
    import app.stores.replicas

    Base.metadata.create_all(engine)
    app.stores.bookings.upgrade_schema(engine)


def widen_varchar(engine: Engine, table: str, column: str, length: int) -> bool:
    """Let ``table.column`` hold ``length`` characters in a database made by an older version.

    ``create_all`` never alters a table that exists, so a column that was declared shorter
    stays short there. PostgreSQL enforces VARCHAR lengths: the column is altered (widening
    a VARCHAR rewrites no rows and is a no-op if another process did it first). SQLite
    ignores declared lengths, so its tables need nothing. Returns True if it altered.
    """
    if engine.dialect.name == "sqlite":
        return False
    found = {c["name"]: c["type"] for c in inspect(engine).get_columns(table)}
    current = found.get(column)
    if current is None:
        raise ValueError(f"table {table!r} has no column {column!r}")
    if not isinstance(current, String) or current.length is None or current.length >= length:
        return False
    quote = engine.dialect.identifier_preparer.quote
    with engine.begin() as conn:
        conn.exec_driver_sql(
            f"ALTER TABLE {quote(table)} ALTER COLUMN {quote(column)} TYPE VARCHAR({int(length)})"
        )
    return True


def add_column(engine: Engine, table: Table, column: str) -> bool:
    """Give ``table`` in a database made by an older version its (nullable) ``column``.

    ``create_all`` never alters a table that exists. The column is added as declared, with
    no default (old rows read NULL); on PostgreSQL ``IF NOT EXISTS`` makes replicas starting
    together safe, on SQLite a concurrent adder's "duplicate column" is taken as done.
    Returns True if it altered.
    """
    if column in {c["name"] for c in inspect(engine).get_columns(table.name)}:
        return False
    declared = table.c[column]
    if not declared.nullable:
        raise ValueError(f"{table.name}.{column} must be nullable to be added to old rows")
    quote = engine.dialect.identifier_preparer.quote
    kind = declared.type.compile(dialect=engine.dialect)
    exists = "IF NOT EXISTS " if engine.dialect.name == "postgresql" else ""
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(
                f"ALTER TABLE {quote(table.name)} ADD COLUMN {exists}{quote(column)} {kind}"
            )
    except OperationalError as exc:
        if "duplicate column" not in str(exc.orig):
            raise
        return False
    return True


def scrub_deleted(engine: Engine) -> None:
    """Make rows just deleted unreadable from the database files (after a forget).

    SQLite in WAL mode keeps earlier page images in the ``-wal`` file until a checkpoint:
    the deleted rows stay readable there while the server runs. Checkpointing and
    truncating the WAL removes them (best effort: a long reader makes it partial, and the
    next checkpoint finishes). PostgreSQL reclaims dead rows with its own VACUUM.
    """
    if engine.dialect.name != "sqlite":
        return
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
