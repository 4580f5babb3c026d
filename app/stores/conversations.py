"""The durable conversation log: calls, exchanges and PlannerState snapshots.

This is the source of truth for what was said. An exchange is committed before
``append_exchange`` returns (plain Core insert, one short transaction), so a crash of the
process at any moment loses nothing that was acknowledged: SQLite runs in WAL mode with
``synchronous=NORMAL`` (see ``create_db_engine``), which survives ``kill -9``; PostgreSQL
commits durably by default. Semantic memory (mem0) is derived from this log in the
background and can always be rebuilt from it.

Everything is keyed by the normalized caller id; normalizing is the caller's job
(``MemoryService`` does it at its boundary).

Forgetting a caller (:meth:`ConversationStore.purge`) also marks each of their calls as
forgotten (``forgotten_calls``: call ids only, nothing about the caller), and keeps a
tombstone of the caller (``forgotten_callers``: a SHA-256 of the caller id and when), so
``tourline import`` of a backup taken before the forget does not bring them back. Every write of a
call (start, exchange, snapshot) is one statement that adds nothing for a forgotten call,
so a call still live when its caller was forgotten (in this process or another one on the
same database) cannot write the caller back: it gets :class:`CallForgottenError` instead.
On PostgreSQL a write and a purge of the same caller also take a transaction-scoped
advisory lock (shared for writes, exclusive for the purge): under READ COMMITTED a write
that began before the purge committed would otherwise land after the purge's DELETE saw
the table. SQLite runs one writer at a time, which gives the same order by itself.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Engine,
    Index,
    Integer,
    MetaData,
    Row,
    String,
    Table,
    Text,
    bindparam,
    delete,
    exists,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.schema import CreateIndex, CreateTable

from app.domain.identity import MAX_CALLER_ID_LENGTH
from app.stores.database import Base, UTCDateTime, add_column, json_without_nul
from app.stores.replicas import OWNER_LENGTH

CHANNELS: tuple[str, ...] = ("phone", "avatar", "livekit", "chat", "sms", "whatsapp")
TEXT_CHANNELS: tuple[str, ...] = ("sms", "whatsapp")
"""Text threads: a "call" on these is a text session, open across messages and processes."""
ROLES: tuple[str, ...] = ("user", "agent")
CALLER_ID_LENGTH = MAX_CALLER_ID_LENGTH
_ID = BigInteger().with_variant(Integer, "sqlite")  # SQLite only autoincrements INTEGER

calls = Table(
    "calls",
    Base.metadata,
    Column("call_id", String(128), primary_key=True),
    Column("caller_id", String(CALLER_ID_LENGTH), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("ended_at", UTCDateTime()),
    Column("outcome", String(32)),  # completed | abandoned, once ended
    Column("summary", Text),
    Column("consolidated", Boolean, nullable=False, default=False),
    # The process serving the call (app/stores/replicas.py); NULL for text threads and for
    # calls recorded before owners were: those are closed by the idle rule instead.
    Column("owner", String(OWNER_LENGTH)),
    CheckConstraint(
        "channel IN (" + ", ".join(f"'{c}'" for c in CHANNELS) + ")", name="ck_calls_channel"
    ),
    Index("ix_calls_caller", "caller_id", "started_at"),
    Index("ix_calls_pending", "consolidated", "ended_at"),
)

exchanges = Table(
    "exchanges",
    Base.metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("caller_id", String(CALLER_ID_LENGTH), nullable=False),
    Column("call_id", String(128), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("role", String(8), nullable=False),
    Column("text", Text, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("interrupted", Boolean, nullable=False, default=False),
    Column("heard", Text),  # what the caller heard of an interrupted agent turn
    Column("synced", Boolean, nullable=False, default=False),
    CheckConstraint("role IN ('user', 'agent')", name="ck_exchanges_role"),
    Index("ix_exchanges_caller_synced", "caller_id", "synced"),
    Index("ix_exchanges_call", "call_id", "id"),
)

planner_snapshots = Table(
    "planner_snapshots",
    Base.metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("caller_id", String(CALLER_ID_LENGTH), nullable=False),
    Column("call_id", String(128), nullable=False),
    Column("state_json", Text, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Index("ix_snapshots_caller", "caller_id", "id"),
    Index("ix_snapshots_call", "call_id", "id"),
)

forgotten_calls = Table(
    "forgotten_calls",
    Base.metadata,
    Column("call_id", String(128), primary_key=True),
    Column("forgotten_at", UTCDateTime(), nullable=False),
)

forgotten_callers = Table(
    "forgotten_callers",
    Base.metadata,
    Column("caller_key", String(64), primary_key=True),  # caller_key(): a hash, not the id
    Column("forgotten_at", UTCDateTime(), nullable=False),  # the latest forget
)


def caller_key(caller_id: str) -> str:
    """A forgotten caller's tombstone key: SHA-256 of the normalized id, never the id."""
    return hashlib.sha256(caller_id.encode()).hexdigest()


class CallForgottenError(LookupError):
    """The call's caller was forgotten while it went on: nothing more of it is kept."""

    def __init__(self, call_id: str) -> None:
        super().__init__(f"call {call_id} belongs to a forgotten caller; it is not recorded")
        self.call_id = call_id


def _unless_forgotten(table: Table, columns: Sequence[str]) -> Any:
    """``INSERT INTO table (columns) SELECT :params WHERE the call is not forgotten``."""
    values = select(*[bindparam(c, type_=table.c[c].type) for c in columns]).where(
        ~exists().where(forgotten_calls.c.call_id == bindparam("call_id"))
    )
    return insert(table).from_select(list(columns), values)


_INSERT_CALL = _unless_forgotten(
    calls, ("call_id", "caller_id", "channel", "started_at", "consolidated", "owner")
)
_INSERT_EXCHANGE = _unless_forgotten(
    exchanges,
    (
        "caller_id",
        "call_id",
        "channel",
        "role",
        "text",
        "created_at",
        "interrupted",
        "heard",
        "synced",
    ),
).returning(exchanges.c.id)
_INSERT_SNAPSHOT = _unless_forgotten(
    planner_snapshots, ("caller_id", "call_id", "state_json", "created_at")
).returning(planner_snapshots.c.id)


@dataclass(frozen=True)
class Exchange:
    """One line of a conversation as stored."""

    id: int
    caller_id: str
    call_id: str
    channel: str
    role: str
    text: str
    created_at: datetime
    interrupted: bool
    heard: str | None
    synced: bool

    @property
    def said(self) -> str:
        """What the other side actually got: for a cut-off agent turn, only what was heard."""
        if self.role == "agent" and self.interrupted and self.heard is not None:
            return self.heard
        return self.text


@dataclass(frozen=True)
class CallRecord:
    call_id: str
    caller_id: str
    channel: str
    started_at: datetime
    ended_at: datetime | None
    outcome: str | None
    summary: str | None
    consolidated: bool
    owner: str | None = None


@dataclass(frozen=True)
class Snapshot:
    id: int
    caller_id: str
    call_id: str
    state_json: str
    created_at: datetime


def check_channel(channel: str) -> str:
    if channel not in CHANNELS:
        raise ValueError(f"channel must be one of {CHANNELS}, got {channel!r}")
    return channel


class ConversationStore:
    """Short synchronous transactions over the three tables; safe to share across threads."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        for table in (calls, exchanges, planner_snapshots, forgotten_calls, forgotten_callers):
            table.create(engine, checkfirst=True)
        upgrade_schema(engine)

    # -- writes on the caller's path ---------------------------------------------------

    def start_call(
        self,
        caller_id: str,
        call_id: str,
        channel: str,
        started_at: datetime | None = None,
        *,
        owner: str | None = None,
    ) -> bool:
        """Record a call once, served by ``owner`` (a process name); returns False if it
        was already there (a resumed call)."""
        check_channel(channel)
        values = {
            "call_id": call_id,
            "caller_id": caller_id,
            "channel": channel,
            "started_at": started_at or datetime.now(UTC),
            "consolidated": False,
            "owner": owner,
        }
        if self.get_call(call_id) is not None:
            return False
        try:
            with self.engine.begin() as conn:
                _lock_caller(conn, caller_id)
                added = conn.execute(_INSERT_CALL, values).rowcount
        except IntegrityError:
            return False  # another thread or process recorded it first
        if not added:
            raise CallForgottenError(call_id)
        return True

    def append_exchange(
        self,
        caller_id: str,
        call_id: str,
        channel: str,
        role: str,
        text: str,
        *,
        interrupted: bool = False,
        heard: str | None = None,
        created_at: datetime | None = None,
    ) -> int:
        """Append one exchange and commit it; returns its id.

        Raises :class:`CallForgottenError` if the call's caller was forgotten."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, got {role!r}")
        check_channel(channel)
        params = {
            "caller_id": caller_id,
            "call_id": call_id,
            "channel": channel,
            "role": role,
            "text": text,
            "created_at": created_at or datetime.now(UTC),
            "interrupted": interrupted,
            "heard": heard,
            "synced": False,
        }
        with self.engine.begin() as conn:
            _lock_caller(conn, caller_id)
            new_id = conn.execute(_INSERT_EXCHANGE, params).scalar()
        if new_id is None:
            raise CallForgottenError(call_id)
        return int(new_id)

    def add_snapshot(self, caller_id: str, call_id: str, state_json: str) -> int:
        """Store a PlannerState snapshot; :class:`CallForgottenError` as for exchanges."""
        params = {
            "caller_id": caller_id,
            "call_id": call_id,
            "state_json": json_without_nul(state_json),
            "created_at": datetime.now(UTC),
        }
        with self.engine.begin() as conn:
            _lock_caller(conn, caller_id)
            new_id = conn.execute(_INSERT_SNAPSHOT, params).scalar()
        if new_id is None:
            raise CallForgottenError(call_id)
        return int(new_id)

    def end_call(
        self, call_id: str, outcome: str = "completed", at: datetime | None = None
    ) -> bool:
        """Mark a call ended (once); returns False if it was already ended or unknown."""
        with self.engine.begin() as conn:
            result = conn.execute(
                update(calls)
                .where(calls.c.call_id == call_id, calls.c.ended_at.is_(None))
                .values(ended_at=at or datetime.now(UTC), outcome=outcome)
            )
        return bool(result.rowcount)

    def adopt_call(self, call_id: str, owner: str) -> bool:
        """A call resumed by another process is now served by ``owner`` (if still open)."""
        with self.engine.begin() as conn:
            result = conn.execute(
                update(calls)
                .where(calls.c.call_id == call_id, calls.c.ended_at.is_(None))
                .values(owner=owner)
            )
        return bool(result.rowcount)

    def owned_open_calls(self) -> list[CallRecord]:
        """Open calls (not text threads) that name the process serving them."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(calls).where(
                    calls.c.ended_at.is_(None),
                    calls.c.owner.is_not(None),
                    calls.c.channel.not_in(list(TEXT_CHANNELS)),
                )
            ).all()
        return [_call(r) for r in rows]

    def end_orphaned_call(self, call_id: str, owner: str, at: datetime) -> bool:
        """End a call its dead ``owner`` left open ("abandoned", at its last activity),
        unless it ended or another process took it over meanwhile."""
        with self.engine.begin() as conn:
            result = conn.execute(
                update(calls)
                .where(
                    calls.c.call_id == call_id,
                    calls.c.owner == owner,
                    calls.c.ended_at.is_(None),
                )
                .values(ended_at=at, outcome="abandoned")
            )
        return bool(result.rowcount)

    # -- consolidation bookkeeping -------------------------------------------------------

    def unsynced_count(self, caller_id: str) -> int:
        with self.engine.connect() as conn:
            return int(
                conn.scalar(
                    select(func.count())
                    .select_from(exchanges)
                    .where(exchanges.c.caller_id == caller_id, exchanges.c.synced.is_(False))
                )
                or 0
            )

    def unsynced_exchanges(self, caller_id: str) -> list[Exchange]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(exchanges)
                .where(exchanges.c.caller_id == caller_id, exchanges.c.synced.is_(False))
                .order_by(exchanges.c.id)
            ).all()
        return [_exchange(r) for r in rows]

    def pending_calls(self, caller_id: str) -> list[CallRecord]:
        """The caller's ended calls that were not consolidated yet, oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(calls)
                .where(
                    calls.c.caller_id == caller_id,
                    calls.c.ended_at.is_not(None),
                    calls.c.consolidated.is_(False),
                )
                .order_by(calls.c.started_at)
            ).all()
        return [_call(r) for r in rows]

    def finish_consolidation(
        self,
        caller_id: str,
        exchange_ids: Sequence[int],
        summaries: dict[str, str],
    ) -> None:
        """Mark exchanges synced and calls consolidated (with their summaries), atomically."""
        with self.engine.begin() as conn:
            for chunk in _chunks(list(exchange_ids), 500):
                conn.execute(
                    update(exchanges)
                    .where(exchanges.c.caller_id == caller_id, exchanges.c.id.in_(chunk))
                    .values(synced=True)
                )
            for call_id, summary in summaries.items():
                conn.execute(
                    update(calls)
                    .where(calls.c.call_id == call_id)
                    .values(summary=summary, consolidated=True)
                )

    def open_calls(self, channels: Iterable[str] | None = None) -> list[CallRecord]:
        """Calls that never ended (their process died, or they are still live elsewhere);
        only those on ``channels`` when given."""
        query = select(calls).where(calls.c.ended_at.is_(None))
        if channels is not None:
            query = query.where(calls.c.channel.in_(list(channels)))
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [_call(r) for r in rows]

    def last_activity(self, call_id: str) -> datetime | None:
        """When the call last recorded an exchange or snapshot."""
        with self.engine.connect() as conn:
            times = [
                conn.scalar(select(func.max(t.c.created_at)).where(t.c.call_id == call_id))
                for t in (exchanges, planner_snapshots)
            ]
        present = [t for t in times if t is not None]
        if not present:
            return None
        # max() over a TypeDecorator column comes back raw on SQLite: normalize it.
        return max(_as_utc(t) for t in present)

    def callers_needing_consolidation(self) -> list[str]:
        """Callers with ended calls not consolidated, or unsynced exchanges of ended calls."""
        ended = select(calls.c.call_id).where(calls.c.ended_at.is_not(None))
        with self.engine.connect() as conn:
            pending_calls = conn.scalars(
                select(calls.c.caller_id)
                .where(calls.c.ended_at.is_not(None), calls.c.consolidated.is_(False))
                .distinct()
            ).all()
            stale_exchanges = conn.scalars(
                select(exchanges.c.caller_id)
                .where(exchanges.c.synced.is_(False), exchanges.c.call_id.in_(ended))
                .distinct()
            ).all()
        return sorted(set(pending_calls) | set(stale_exchanges))

    # -- reads ---------------------------------------------------------------------------

    def get_call(self, call_id: str) -> CallRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(calls).where(calls.c.call_id == call_id)).first()
        return None if row is None else _call(row)

    def latest_snapshot(self, caller_id: str, call_id: str | None = None) -> Snapshot | None:
        """The newest snapshot of the caller (or of one of their calls)."""
        query = select(planner_snapshots).where(planner_snapshots.c.caller_id == caller_id)
        if call_id is not None:
            query = query.where(planner_snapshots.c.call_id == call_id)
        with self.engine.connect() as conn:
            row = conn.execute(query.order_by(planner_snapshots.c.id.desc()).limit(1)).first()
        return None if row is None else _snapshot(row)

    def last_summary(self, caller_id: str) -> str | None:
        with self.engine.connect() as conn:
            return conn.scalar(
                select(calls.c.summary)
                .where(calls.c.caller_id == caller_id, calls.c.summary.is_not(None))
                .order_by(calls.c.started_at.desc())
                .limit(1)
            )

    def latest_call(self, caller_id: str, channel: str) -> CallRecord | None:
        """The caller's most recent call on ``channel`` (a text thread's current session)."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(calls)
                .where(calls.c.caller_id == caller_id, calls.c.channel == channel)
                .order_by(calls.c.started_at.desc())
                .limit(1)
            ).first()
        return None if row is None else _call(row)

    def recent_calls(self, caller_id: str, limit: int = 10) -> list[CallRecord]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(calls)
                .where(calls.c.caller_id == caller_id)
                .order_by(calls.c.started_at.desc())
                .limit(limit)
            ).all()
        return [_call(r) for r in rows]

    def exchanges_of_call(self, call_id: str) -> list[Exchange]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(exchanges).where(exchanges.c.call_id == call_id).order_by(exchanges.c.id)
            ).all()
        return [_exchange(r) for r in rows]

    def text_exchanges(self, caller_id: str, limit: int = 100) -> list[Exchange]:
        """The caller's text messages and the replies to them, newest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(exchanges)
                .where(
                    exchanges.c.caller_id == caller_id,
                    exchanges.c.channel.in_(TEXT_CHANNELS),
                )
                .order_by(exchanges.c.id.desc())
                .limit(limit)
            ).all()
        return [_exchange(r) for r in rows]

    def exchange_counts(self, call_ids: Iterable[str]) -> dict[str, int]:
        ids = list(call_ids)
        if not ids:
            return {}
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(exchanges.c.call_id, func.count())
                .where(exchanges.c.call_id.in_(ids))
                .group_by(exchanges.c.call_id)
            ).all()
        return {call_id: int(n) for call_id, n in rows}

    def caller_counts(self, caller_id: str) -> dict[str, int]:
        with self.engine.connect() as conn:
            return {
                "calls": _count(conn, calls, calls.c.caller_id == caller_id),
                "exchanges": _count(conn, exchanges, exchanges.c.caller_id == caller_id),
                "unsynced": _count(
                    conn,
                    exchanges,
                    exchanges.c.caller_id == caller_id,
                    exchanges.c.synced.is_(False),
                ),
                "snapshots": _count(
                    conn, planner_snapshots, planner_snapshots.c.caller_id == caller_id
                ),
            }

    def counts(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            callers = conn.scalar(select(func.count(func.distinct(calls.c.caller_id))))
            return {
                "callers": int(callers or 0),
                "calls": _count(conn, calls),
                "exchanges": _count(conn, exchanges),
                "unsynced": _count(conn, exchanges, exchanges.c.synced.is_(False)),
                "snapshots": _count(conn, planner_snapshots),
            }

    def call_ids(self, caller_id: str) -> set[str]:
        """Every call id the caller appears under, in any table."""
        with self.engine.connect() as conn:
            found: set[str] = set()
            for table in (calls, exchanges, planner_snapshots):
                found.update(
                    conn.scalars(
                        select(table.c.call_id).where(table.c.caller_id == caller_id).distinct()
                    )
                )
        return found

    # -- forget --------------------------------------------------------------------------

    def purge(self, caller_id: str, live_calls: Iterable[str] = ()) -> dict[str, int]:
        """Delete every row of the caller and mark their calls forgotten, in one transaction.

        ``live_calls``: calls of the caller that may have no row yet (opened in this
        process); they are marked too, so none of them can write the caller back.
        Returns how many rows went from each table.
        """
        removed: dict[str, int] = {}
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            _lock_caller(conn, caller_id, exclusive=True)
            call_ids = set(live_calls)
            for table in (calls, exchanges, planner_snapshots):
                call_ids.update(
                    conn.scalars(select(table.c.call_id).where(table.c.caller_id == caller_id))
                )
            known = set(
                conn.scalars(
                    select(forgotten_calls.c.call_id).where(
                        forgotten_calls.c.call_id.in_(sorted(call_ids))
                    )
                )
            )
            fresh = [{"call_id": c, "forgotten_at": now} for c in sorted(call_ids - known)]
            if fresh:
                conn.execute(insert(forgotten_calls), fresh)
            _tombstone(conn, caller_id, now)
            for name, table in (
                ("exchanges", exchanges),
                ("snapshots", planner_snapshots),
                ("calls", calls),
            ):
                result = conn.execute(delete(table).where(table.c.caller_id == caller_id))
                removed[name] = int(result.rowcount)
        return removed

    def forgotten_callers(self) -> dict[str, datetime]:
        """Every tombstone: ``caller_key`` -> when that caller was last forgotten."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(forgotten_callers)).all()
        return {row.caller_key: row.forgotten_at for row in rows}

    def is_forgotten(self, call_id: str) -> bool:
        """Whether the call's caller was forgotten (its writes are refused)."""
        with self.engine.connect() as conn:
            found = conn.scalar(
                select(forgotten_calls.c.call_id).where(forgotten_calls.c.call_id == call_id)
            )
        return found is not None


def upgrade_schema(engine: Engine) -> bool:
    """Bring a ``calls`` table made by an older Tourline up to date: its ``owner`` column,
    and a channel check that takes every channel in ``CHANNELS``.

    ``create_all`` never alters a table that exists, and the channel check lives in the
    table: on PostgreSQL a named constraint (dropped and added again, in one transaction),
    on SQLite the ``CREATE TABLE`` text, which no ALTER can change (the table is rebuilt
    under the write lock: new table, rows copied, old one dropped, renamed, indexes made
    again). A no-op once done, and safe when several processes start at once. Returns True
    if it changed the table.
    """
    changed = False
    if engine.dialect.name == "postgresql":
        changed = _upgrade_postgres(engine)
    elif engine.dialect.name == "sqlite":
        changed = _upgrade_sqlite(engine)
    return add_column(engine, calls, "owner") or changed


_CHANNEL_CHECK = "channel IN (" + ", ".join(f"'{c}'" for c in CHANNELS) + ")"
_PG_CHECK_DEF = text(
    "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
    "WHERE conname = 'ck_calls_channel' AND conrelid = to_regclass('calls')"
)
_UPGRADE_LOCK = 0x746C63616C6C73  # any constant: one upgrade of this database at a time


def _knows_every_channel(check: str | None) -> bool:
    return check is not None and all(f"'{c}'" in check for c in CHANNELS)


def _upgrade_postgres(engine: Engine) -> bool:
    with engine.connect() as conn:
        if _knows_every_channel(conn.scalar(_PG_CHECK_DEF)):
            return False
    with engine.begin() as conn:
        conn.execute(select(func.pg_advisory_xact_lock(_UPGRADE_LOCK)))
        if _knows_every_channel(conn.scalar(_PG_CHECK_DEF)):
            return False  # another process upgraded it while we waited
        conn.exec_driver_sql("ALTER TABLE calls DROP CONSTRAINT IF EXISTS ck_calls_channel")
        conn.exec_driver_sql(
            f"ALTER TABLE calls ADD CONSTRAINT ck_calls_channel CHECK ({_CHANNEL_CHECK})"
        )
    return True


_SQLITE_DDL = text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'calls'")


def _upgrade_sqlite(engine: Engine) -> bool:
    with engine.connect() as conn:
        if _knows_every_channel(conn.scalar(_SQLITE_DDL)):
            return False
    # pysqlite opens transactions only before DML: drive BEGIN/COMMIT ourselves, so the
    # rebuild is one transaction and holds the write lock from its first read.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            if _knows_every_channel(conn.scalar(_SQLITE_DDL)):
                conn.exec_driver_sql("ROLLBACK")
                return False
            fresh = calls.to_metadata(MetaData(), name="calls_upgrade")
            kept = {row[1] for row in conn.exec_driver_sql("PRAGMA table_info(calls)")}
            columns = ", ".join(f'"{c.name}"' for c in calls.columns if c.name in kept)
            conn.execute(CreateTable(fresh))
            conn.exec_driver_sql(
                f"INSERT INTO calls_upgrade ({columns}) SELECT {columns} FROM calls"
            )
            conn.exec_driver_sql("DROP TABLE calls")
            conn.exec_driver_sql("ALTER TABLE calls_upgrade RENAME TO calls")
            for index in calls.indexes:
                conn.execute(CreateIndex(index))
            conn.exec_driver_sql("COMMIT")
        except BaseException:
            conn.exec_driver_sql("ROLLBACK")
            raise
    return True


def _tombstone(conn: Connection, caller_id: str, at: datetime) -> None:
    """Note (or move to ``at``) that the caller was forgotten, in the purge's transaction."""
    key = caller_key(caller_id)
    moved = conn.execute(
        update(forgotten_callers)
        .where(forgotten_callers.c.caller_key == key)
        .values(forgotten_at=at)
    ).rowcount
    if not moved:  # the purge's exclusive lock (or SQLite's one writer) orders two forgets
        conn.execute(insert(forgotten_callers).values(caller_key=key, forgotten_at=at))


def _lock_caller(conn: Connection, caller_id: str, *, exclusive: bool = False) -> None:
    """On PostgreSQL, order this transaction against a purge of the same caller.

    Writes share the lock, a purge holds it alone, both until commit; see the module
    docstring. SQLite needs nothing: it runs one write transaction at a time.
    """
    if conn.dialect.name != "postgresql":
        return
    how = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
    conn.execute(select(getattr(func, how)(func.hashtextextended(caller_id, 0))))


def _count(conn: Any, table: Table, *where: Any) -> int:
    query = select(func.count()).select_from(table)
    if where:
        query = query.where(*where)
    return int(conn.scalar(query) or 0)


def _as_utc(value: datetime | str) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _chunks(items: list[int], size: int) -> Iterable[list[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _exchange(row: Row[Any]) -> Exchange:
    return Exchange(
        id=int(row.id),
        caller_id=row.caller_id,
        call_id=row.call_id,
        channel=row.channel,
        role=row.role,
        text=row.text,
        created_at=row.created_at,
        interrupted=bool(row.interrupted),
        heard=row.heard,
        synced=bool(row.synced),
    )


def _call(row: Row[Any]) -> CallRecord:
    return CallRecord(
        call_id=row.call_id,
        caller_id=row.caller_id,
        channel=row.channel,
        started_at=row.started_at,
        ended_at=row.ended_at,
        outcome=row.outcome,
        summary=row.summary,
        consolidated=bool(row.consolidated),
        owner=row.owner,
    )


def _snapshot(row: Row[Any]) -> Snapshot:
    return Snapshot(
        id=int(row.id),
        caller_id=row.caller_id,
        call_id=row.call_id,
        state_json=row.state_json,
        created_at=row.created_at,
    )


__all__ = [
    "CHANNELS",
    "ROLES",
    "TEXT_CHANNELS",
    "CallForgottenError",
    "CallRecord",
    "ConversationStore",
    "Exchange",
    "Snapshot",
    "caller_key",
    "calls",
    "check_channel",
    "exchanges",
    "forgotten_callers",
    "forgotten_calls",
    "planner_snapshots",
    "upgrade_schema",
]
