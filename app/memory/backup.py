"""``tourline export`` / ``tourline import``: everything Tourline knows, as JSONL.

One JSON object per line, each with a ``type``::

    {"type": "tourline-backup", "version": 1, "exported_at": ..., "counts": {...}}   header
    {"type": "call", "call_id": ..., "caller_id": ..., "started_at": ..., ...}      table rows
    {"type": "exchange", ...}  {"type": "snapshot", ...}  {"type": "booking", ...}
    {"type": "memory", "id": ..., "payload": {...}, "vector": "<base64 float32>"}
    {"type": "end", "counts": {...}}                                                 footer

Rows keep their primary keys and every column (timestamps as ISO 8601 in UTC), memories keep
their id, mem0 payload (text, hash, timestamps, caller, metadata) and vector, so an export
imported into an empty data dir and exported again gives the same records. mem0's history
table (an audit trail of edits) is not exported.

Import is all or nothing. A first pass reads the whole file and checks every line (JSON,
record type, each field's type, no key twice, the end record's counts) and compares each
record with what is stored under its key: new, the same, or a *conflict* (stored with
other content). ``on_conflict`` says what a conflict means: ``fail`` (the default) refuses
the import before anything is written (ConflictError, with counts and the first ids),
``skip`` keeps the stored record, ``replace`` writes the file's over it. A second pass
writes everything in one database transaction (on PostgreSQL the id sequences move past
the imported ids in it too). Memories are written inside that transaction, before it
commits; if anything fails the transaction rolls back and the memories written are taken
back (new ones deleted, replaced ones restored), so a failed import leaves the store as it
was. The vector store has no transactions: a process killed between the memories and the
commit leaves those memories behind, and importing the same file again completes it. A
file cut short (no end record, a last line cut in half) is an invalid file.

A caller forgotten (``tourline forget``, ``DELETE /callers/…``) after the backup was taken
stays forgotten: the forget keeps a tombstone (a hash of the caller id and when), and the
import leaves out every record of such a caller (their calls, exchanges, snapshots,
bookings and memories) and says how many it left out. ``restore_forgotten`` imports them
anyway (for a forget made by mistake). A backup taken after the forget holds only what the
caller said since, and is imported whole.

The export reads the stores while they may be written (with shared PostgreSQL/Qdrant
backends a server can be running): each table is consistent, the whole is not a snapshot.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import logging
import os
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated, Any, Literal, cast, get_args

from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError, create_model
from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Engine,
    Integer,
    String,
    Table,
    delete,
    func,
    insert,
    select,
    text,
)

from app.domain.state import TourType
from app.memory.caller_memories import caller_of
from app.memory.point_io import Point, PointIO, decode_vector, encode_vector
from app.stores.bookings import BookingRow
from app.stores.conversations import (
    CHANNELS,
    ROLES,
    caller_key,
    calls,
    exchanges,
    forgotten_callers,
    planner_snapshots,
)
from app.stores.database import UTCDateTime

if TYPE_CHECKING:
    from app.memory.service import MemoryService

__all__ = [
    "CONFLICT_POLICIES",
    "FORMAT",
    "PLURALS",
    "VERSION",
    "BackupError",
    "ConflictError",
    "ImportReport",
    "OnConflict",
    "backup_counts",
    "count_records",
    "export_backup",
    "export_file",
    "import_backup",
    "import_file",
    "open_backup",
    "read_header",
]

FORMAT = "tourline-backup"
VERSION = 1
BATCH = 500
# Record type -> table, in export order. Rows are exported by primary key.
TABLES: dict[str, Table] = {
    "call": calls,
    "exchange": exchanges,
    "snapshot": planner_snapshots,
    "booking": cast(Table, BookingRow.__table__),
}
MEMORY = "memory"
RECORD_TYPES = (*TABLES, MEMORY)
PLURALS = {
    "call": "calls",
    "exchange": "exchanges",
    "snapshot": "snapshots",
    "booking": "bookings",
    MEMORY: "memories",
}
# Tables whose integer ids come from a sequence on PostgreSQL.
_SEQUENCED = ("exchange", "snapshot", "booking")

SAMPLE_IDS = 3  # conflicting ids named per record type when an import is refused

Progress = Callable[[str, int], None]  # (what is being done, records just done)
Opener = Callable[[], AbstractContextManager[IO[str]]]  # opens the backup from its start
OnConflict = Literal["fail", "skip", "replace"]
CONFLICT_POLICIES: tuple[OnConflict, ...] = get_args(OnConflict)

logger = logging.getLogger(__name__)


class BackupError(ValueError):
    """The file is not a Tourline backup, or a line of it is unusable."""


@dataclass
class ImportReport:
    """What an import found (and, once it returns, did): counts per record type."""

    on_conflict: OnConflict = "fail"
    inserted: dict[str, int] = field(default_factory=lambda: dict.fromkeys(RECORD_TYPES, 0))
    unchanged: dict[str, int] = field(default_factory=lambda: dict.fromkeys(RECORD_TYPES, 0))
    conflicts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(RECORD_TYPES, 0))
    conflict_ids: dict[str, list[str]] = field(default_factory=dict)  # the first few
    forgotten: dict[str, int] = field(default_factory=lambda: dict.fromkeys(RECORD_TYPES, 0))
    """Records left out: their caller was forgotten after the backup was taken."""
    forgotten_callers: set[str] = field(default_factory=set)  # their tombstone keys

    @property
    def conflict_count(self) -> int:
        return sum(self.conflicts.values())

    def add(self, kind: str, found: _Found) -> None:
        self.inserted[kind] += len(found.fresh)
        self.unchanged[kind] += len(found.same)
        self.conflicts[kind] += len(found.clashing)
        sample = self.conflict_ids.setdefault(kind, [])
        for record in found.clashing[: SAMPLE_IDS - len(sample)]:
            sample.append(str(record.key))

    def conflict_summary(self) -> str:
        """ "1 call (CA-1), 12 exchanges (3, 4, 5, ...)": how many of which, the first ids."""
        parts = []
        for kind, n in self.conflicts.items():
            if n:
                ids = self.conflict_ids.get(kind, [])
                more = ", ..." if n > len(ids) else ""
                parts.append(f"{n} {kind if n == 1 else PLURALS[kind]} ({', '.join(ids)}{more})")
        return ", ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        return {
            "on_conflict": self.on_conflict,
            "inserted": dict(self.inserted),
            "unchanged": dict(self.unchanged),
            "conflicts": dict(self.conflicts),
            "conflict_ids": {k: list(v) for k, v in self.conflict_ids.items() if v},
            "forgotten": dict(self.forgotten),
            "forgotten_callers": len(self.forgotten_callers),
        }


class ConflictError(Exception):
    """``on_conflict="fail"`` and records stored under the file's keys differ from it."""

    def __init__(self, report: ImportReport) -> None:
        self.report = report
        n = report.conflict_count
        super().__init__(
            f"{n} record{'s' if n != 1 else ''} differ{'s' if n == 1 else ''} from what is "
            f"stored: {report.conflict_summary()}"
        )


# ---------------------------------------------------------------------- files


@contextmanager
def open_backup(path: str | os.PathLike[str], mode: str) -> Iterator[IO[str]]:
    """A text handle on ``path``; ``.gz`` names are gzip-compressed."""
    target = Path(path)
    if target.suffix == ".gz":
        with gzip.open(target, mode + "t", encoding="utf-8") as handle:
            yield cast(IO[str], handle)
    else:
        with open(target, mode, encoding="utf-8") as handle:
            yield handle


def export_file(
    memory: MemoryService, target: str | os.PathLike[str], progress: Progress | None = None
) -> dict[str, int]:
    """Export to ``target`` (``.gz``: compressed) via a side file renamed when complete,
    so a failed or interrupted export never leaves a cut-short file under the real name."""
    final = Path(target)
    partial = final.with_name(f"{final.stem}.partial{final.suffix}")  # same compression
    try:
        with open_backup(partial, "w") as out:
            written = export_backup(memory.engine, points_of(memory), out, progress)
        with open(partial, "rb") as done:
            os.fsync(done.fileno())
        partial.replace(final)
    finally:
        partial.unlink(missing_ok=True)
    return written


def backup_counts(path: str | os.PathLike[str]) -> dict[str, int]:
    """The record counts a backup's header announces (for progress), checking the header."""
    with _reading(path), open_backup(path, "r") as inp:
        header = read_header(inp)
    return {str(k): int(v) for k, v in dict(header.get("counts") or {}).items()}


def import_file(
    memory: MemoryService,
    path: str | os.PathLike[str],
    on_conflict: OnConflict = "fail",
    progress: Progress | None = None,
    *,
    restore_forgotten: bool = False,
) -> ImportReport:
    """Import the backup at ``path``, all or nothing (see :func:`import_backup`)."""
    with _reading(path):
        return import_backup(
            memory.engine,
            points_of(memory),
            lambda: open_backup(path, "r"),
            on_conflict,
            progress,
            restore_forgotten=restore_forgotten,
        )


@contextmanager
def _reading(path: str | os.PathLike[str]) -> Iterator[None]:
    """A file that can't be read as text (binary, a broken .gz) is a BackupError too."""
    try:
        yield
    except (UnicodeDecodeError, EOFError, gzip.BadGzipFile) as exc:
        raise BackupError(f"{path} can't be read as a backup ({exc})") from None


def points_of(memory: MemoryService) -> PointIO:
    return PointIO(memory.memories.mem0.vector_store)


# ---------------------------------------------------------------------- export


def count_records(engine: Engine, points: PointIO) -> dict[str, int]:
    """How many records each type has now (the header's counts, and progress totals)."""
    counts: dict[str, int] = {}
    with engine.connect() as conn:
        for kind, table in TABLES.items():
            counts[kind] = int(conn.scalar(select(func.count()).select_from(table)) or 0)
    counts[MEMORY] = points.count()
    return counts


def export_backup(
    engine: Engine, points: PointIO, out: IO[str], progress: Progress | None = None
) -> dict[str, int]:
    """Write every record to ``out``; returns how many of each type were written."""
    header = {
        "type": FORMAT,
        "version": VERSION,
        "exported_at": datetime.now(UTC).isoformat(),
        "database": engine.dialect.name,
        "counts": count_records(engine, points),
    }
    _write(out, header)
    written = dict.fromkeys(RECORD_TYPES, 0)
    for kind, table in TABLES.items():
        for batch in _table_batches(engine, table):
            for row in batch:
                _write(out, {"type": kind, **row})
            written[kind] += len(batch)
            if progress:
                progress(kind, len(batch))
    for page in points.scroll():
        for point in page:
            record = {"type": MEMORY, "id": point.id, "payload": point.payload}
            if point.vector is not None:
                record["vector"] = encode_vector(point.vector)
            _write(out, record)
        written[MEMORY] += len(page)
        if progress:
            progress(MEMORY, len(page))
    _write(out, {"type": "end", "counts": written})
    return written


def _table_batches(engine: Engine, table: Table) -> Iterator[list[dict[str, Any]]]:
    query = select(table).order_by(*table.primary_key.columns)
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=BATCH).execute(query)
        for chunk in result.partitions(BATCH):
            yield [_to_json(table, row._mapping) for row in chunk]


def _to_json(table: Table, row: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for column in table.columns:
        value = row[column.name]
        if isinstance(value, datetime):
            value = value.astimezone(UTC).isoformat()
        elif isinstance(column.type, Boolean) and value is not None:
            value = bool(value)
        out[column.name] = value
    return out


def _write(out: IO[str], record: dict[str, Any]) -> None:
    out.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")


# ---------------------------------------------------------------------- import


def read_header(inp: IO[str]) -> dict[str, Any]:
    """The first line, checked to be a Tourline backup this version can read."""
    line = inp.readline()
    try:
        header = json.loads(line) if line.strip() else None
    except json.JSONDecodeError:
        header = None
    if not isinstance(header, dict) or header.get("type") != FORMAT:
        raise BackupError("not a Tourline backup: the first line is not its header")
    if header.get("version") != VERSION:
        raise BackupError(
            f"backup format version {header.get('version')!r} is not supported "
            f"(this Tourline reads version {VERSION})"
        )
    return header


def import_backup(
    engine: Engine,
    points: PointIO,
    opener: Opener,
    on_conflict: OnConflict = "fail",
    progress: Progress | None = None,
    *,
    restore_forgotten: bool = False,
) -> ImportReport:
    """Import the backup ``opener`` opens (it is read twice), all or nothing; see the module
    docstring. Raises BackupError (unusable file), ConflictError (``fail`` found stored
    records that differ) or the store's own error, and then nothing was written. Records
    of callers forgotten since the backup are left out (counted in ``forgotten``) unless
    ``restore_forgotten``."""
    if on_conflict not in CONFLICT_POLICIES:
        raise ValueError(f"on_conflict must be one of {', '.join(CONFLICT_POLICIES)}")
    dims = points.dims
    with opener() as inp:
        exported_at = _exported_at(read_header(inp))
    gone = set() if restore_forgotten else _forgotten_since(engine, exported_at)
    plan = ImportReport(on_conflict=on_conflict)
    with opener() as inp, engine.connect() as conn:
        for kind, batch in _batches(_kept(_validated(inp, dims), gone, plan)):
            plan.add(kind, _classify(conn, points, kind, batch))
            if progress:
                progress(f"check {PLURALS[kind]}", len(batch))
    if on_conflict == "fail" and plan.conflict_count:
        raise ConflictError(plan)
    report = ImportReport(on_conflict=on_conflict)
    undo = _VectorUndo(points)
    try:
        with engine.begin() as conn, opener() as inp:
            for kind, batch in _batches(_kept(_validated(inp, dims), gone, report)):
                found = _classify(conn, points, kind, batch)
                if on_conflict == "fail" and found.clashing:  # written meanwhile
                    report.add(kind, found)
                    raise ConflictError(report)
                _write_batch(conn, undo, kind, found, replace=on_conflict == "replace")
                report.add(kind, found)
                if progress:
                    progress(f"write {PLURALS[kind]}", len(batch))
            if engine.dialect.name == "postgresql":
                _advance_sequences(conn)
            points.flush()  # the memories are on disk before the rows commit
    except BaseException:
        undo.run()
        raise
    return report


def _exported_at(header: dict[str, Any]) -> datetime | None:
    """When the backup was taken, from its header (None if it does not say)."""
    try:
        when = datetime.fromisoformat(str(header.get("exported_at")))
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _forgotten_since(engine: Engine, exported_at: datetime | None) -> set[str]:
    """Tombstone keys of callers forgotten after ``exported_at`` (all, if it is unknown)."""
    forgotten_callers.create(engine, checkfirst=True)  # a database no forget has touched
    with engine.connect() as conn:
        rows = conn.execute(select(forgotten_callers)).all()
    return {row.caller_key for row in rows if exported_at is None or row.forgotten_at > exported_at}


def _caller_of(kind: str, record: _Record) -> str | None:
    """The caller a record belongs to (a memory's mem0 ``user_id`` spells it its own way)."""
    if kind == MEMORY:
        user = record.value.payload.get("user_id")
        return caller_of(user) if isinstance(user, str) else None
    caller = record.value.get("caller_id")
    return caller if isinstance(caller, str) else None


def _kept(
    records: Iterator[tuple[str, _Record]], gone: set[str], report: ImportReport
) -> Iterator[tuple[str, _Record]]:
    """The records whose caller was not forgotten since the backup; the others are counted."""
    for kind, record in records:
        caller = _caller_of(kind, record) if gone else None
        key = caller_key(caller) if caller is not None else None
        if key is not None and key in gone:
            report.forgotten[kind] += 1
            report.forgotten_callers.add(key)
            continue
        yield kind, record


# A record type and the store's records of the same keys, sorted by what to do with them.
@dataclass
class _Found:
    fresh: list[_Record] = field(default_factory=list)
    same: list[_Record] = field(default_factory=list)
    clashing: list[_Record] = field(default_factory=list)


@dataclass(frozen=True)
class _Record:
    line: int
    key: Any  # the primary key (a canonical UUID string for memories)
    value: Any  # the row to insert, or a Point


def _validated(inp: IO[str], dims: int | None) -> Iterator[tuple[str, _Record]]:
    """Every record of the file after its header, checked; raises BackupError at the first
    bad line, and at the end if the file was cut short or lost lines on the way."""
    read_header(inp)
    counts = dict.fromkeys(RECORD_TYPES, 0)
    seen: dict[str, dict[Any, int]] = {kind: {} for kind in RECORD_TYPES}
    lines = _numbered(inp, first_line=2)
    for number, line in lines:
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            if next(lines, None) is None:
                raise BackupError(
                    f"the file was cut short: line {number} is not whole and there is no end record"
                ) from None
            raise BackupError(f"line {number} is not JSON ({exc.msg})") from None
        if not isinstance(record, dict):
            raise BackupError(f"line {number} is not a JSON object")
        kind = record.get("type")
        if kind == "end":
            _check_end(number, record, counts)
            for after, _ in lines:
                raise BackupError(f"line {after}: nothing may follow the end record")
            return
        if kind not in RECORD_TYPES:
            raise BackupError(f"line {number}: unknown record type {kind!r}")
        item = _memory(number, line, dims) if kind == MEMORY else _row(number, kind, line)
        first = seen[kind].setdefault(item.key, number)
        if first != number:
            raise BackupError(
                f"line {number}: {kind} {item.key} is already on line {first} of this file"
            )
        counts[kind] += 1
        yield kind, item
    raise BackupError("the file was cut short: it has no end record")


def _numbered(inp: Iterable[str], first_line: int) -> Iterator[tuple[int, str]]:
    for number, line in enumerate(inp, start=first_line):
        if line.strip():
            yield number, line


def _check_end(number: int, record: dict[str, Any], counts: dict[str, int]) -> None:
    """The end record counts what was written: fewer lines here means some were lost."""
    said = record.get("counts")
    if not isinstance(said, dict):
        raise BackupError(f"line {number}: the end record has no 'counts' object")
    for kind in RECORD_TYPES:
        if said.get(kind, 0) != counts[kind]:
            raise BackupError(
                f"line {number}: the end record counts {said.get(kind, 0)} "
                f"{PLURALS[kind]} but the file holds {counts[kind]}"
            )


def _batches(records: Iterator[tuple[str, _Record]]) -> Iterator[tuple[str, list[_Record]]]:
    """Runs of up to BATCH records of one type, in file order."""
    kind: str | None = None
    batch: list[_Record] = []
    for rtype, record in records:
        if batch and (rtype != kind or len(batch) >= BATCH):
            yield cast(str, kind), batch
            batch = []
        kind = rtype
        batch.append(record)
    if batch and kind is not None:
        yield kind, batch


# ------------------------------------------------------------------ field checks


def _row_models() -> dict[str, type[BaseModel]]:
    """A strict pydantic model per table, from its columns: JSON types must match exactly,
    no unknown fields, and the values the database's CHECK constraints allow."""
    allowed: dict[tuple[str, str], tuple[str, ...]] = {
        ("call", "channel"): CHANNELS,
        ("exchange", "channel"): CHANNELS,
        ("exchange", "role"): ROLES,
        ("booking", "tour_type"): get_args(TourType),
        ("booking", "status"): BOOKING_STATUSES,
    }
    models: dict[str, type[BaseModel]] = {}
    for kind, table in TABLES.items():
        fields: dict[str, Any] = {"type": (cast(Any, Literal)[kind], ...)}
        for column in table.columns:
            kind_type: Any = _python_type(column)
            if (kind, column.name) in allowed:
                kind_type = cast(Any, Literal)[allowed[kind, column.name]]
            default = _default(column)
            if column.nullable and not column.primary_key:
                kind_type = kind_type | None
            fields[column.name] = (kind_type, default)
        models[kind] = create_model(
            f"{kind}_record", __config__=ConfigDict(strict=True, extra="forbid"), **fields
        )
    return models


BOOKING_STATUSES = ("booked", "cancelled")  # as ck_bookings_status


def _python_type(column: Column[Any]) -> Any:
    if isinstance(column.type, UTCDateTime):
        return datetime
    if isinstance(column.type, Boolean):
        return bool
    if isinstance(column.type, Integer):
        return int
    if isinstance(column.type, String):
        length = column.type.length
        return Annotated[str, StringConstraints(max_length=length)] if length else str
    raise TypeError(f"no backup type for column {column}")  # a new column type: add it here


def _default(column: Column[Any]) -> Any:
    """Required unless the table has a default for it (or it may be NULL)."""
    if column.default is not None and getattr(column.default, "is_scalar", False):
        return column.default.arg  # type: ignore[attr-defined]
    if column.nullable and not column.primary_key:
        return None
    return ...


_MODELS = _row_models()


class _MemoryRecord(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    type: Literal["memory"]
    id: str
    payload: dict[str, Any]
    vector: str


def _row(number: int, kind: str, line: str) -> _Record:
    try:
        model = _MODELS[kind].model_validate_json(line)
    except ValidationError as exc:
        raise BackupError(f"line {number}: {_sentence(exc)}") from None
    row = model.model_dump(exclude={"type"})
    for name, value in row.items():
        if isinstance(value, datetime) and value.tzinfo is None:
            row[name] = value.replace(tzinfo=UTC)  # written by export in UTC
    (key,) = TABLES[kind].primary_key.columns
    return _Record(number, row[key.name], row)


def _memory(number: int, line: str, dims: int | None) -> _Record:
    try:
        record = _MemoryRecord.model_validate_json(line)
    except ValidationError as exc:
        raise BackupError(f"line {number}: {_sentence(exc)}") from None
    key = _canonical_id(record.id)
    if key is None:
        raise BackupError(f"line {number}: 'id' must be a UUID, got {_shown(record.id)}")
    try:
        base64.b64decode(record.vector, validate=True)
        vector = decode_vector(record.vector)
    except (binascii.Error, ValueError):
        raise BackupError(f"line {number}: 'vector' is not base64 float32 data") from None
    if not vector or (dims is not None and len(vector) != dims):
        raise BackupError(
            f"line {number}: 'vector' has {len(vector)} numbers but this store's embedder "
            f"makes {dims}: the memories come from another embedder"
        )
    return _Record(number, key, Point(record.id, vector, record.payload))


_KINDS_OF_VALUE = {
    "datetime": "an ISO 8601 time",
    "int": "a whole number",
    "bool": "true or false",
    "string": "text",
    "dict": "a JSON object",
}


def _sentence(exc: ValidationError) -> str:
    """The first problem pydantic found, as one sentence a person can act on."""
    error = exc.errors(include_url=False)[0]
    name = ".".join(str(part) for part in error["loc"]) or "the record"
    problem = error["type"]
    if problem == "missing":
        return f"'{name}' is missing"
    if problem == "extra_forbidden":
        return f"'{name}' is not a field of this record type"
    if problem == "literal_error":
        expected = error.get("ctx", {}).get("expected", "")
        return f"'{name}' must be one of {expected}, got {_shown(error['input'])}"
    if problem == "string_too_long":
        limit = error.get("ctx", {}).get("max_length")
        return f"'{name}' is longer than {limit} characters"
    for prefix, wanted in _KINDS_OF_VALUE.items():
        if problem.startswith(prefix):
            return f"'{name}' must be {wanted}, got {_shown(error['input'])}"
    return f"'{name}': {error['msg']}"


def _shown(value: Any) -> str:
    """A value as it looks in the file, cut to a readable length."""
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 40 else text[:37] + "..."


# ------------------------------------------------------------------ store access


def _classify(conn: Connection, points: PointIO, kind: str, batch: list[_Record]) -> _Found:
    """Which records of ``batch`` are new, stored as they are, or stored differently."""
    found = _Found()
    if kind == MEMORY:
        stored = points.existing([r.key for r in batch])
        for record in batch:
            payload = stored.get(record.key)
            group = found.fresh if payload is None else found.same
            if payload is not None and payload != record.value.payload:
                group = found.clashing
            group.append(record)
        return found
    table = TABLES[kind]
    (key,) = table.primary_key.columns
    rows = conn.execute(select(table).where(key.in_([r.key for r in batch])))
    stored_rows = {row[key.name]: _to_json(table, row) for row in rows.mappings()}
    for record in batch:
        row = stored_rows.get(record.key)
        if row is None:
            found.fresh.append(record)
        elif row == _to_json(table, record.value):
            found.same.append(record)
        else:
            found.clashing.append(record)
    return found


def _write_batch(
    conn: Connection, undo: _VectorUndo, kind: str, found: _Found, *, replace: bool
) -> None:
    writes = found.fresh + (found.clashing if replace else [])
    if not writes:
        return
    if kind == MEMORY:
        undo.expect(
            added=[r.key for r in found.fresh],
            replaced=[r.key for r in found.clashing] if replace else [],
        )
        try:
            undo.points.insert([r.value for r in writes])
        except ValueError as exc:  # the store refused a vector
            raise BackupError(f"memories do not fit this vector store: {exc}") from None
        return
    table = TABLES[kind]
    (key,) = table.primary_key.columns
    if replace and found.clashing:
        conn.execute(delete(table).where(key.in_([r.key for r in found.clashing])))
    conn.execute(insert(table), [r.value for r in writes])


class _VectorUndo:
    """What the import wrote to the vector store, to take back if the rows don't commit
    (the vector store has no transactions): new points are deleted, replaced ones are
    written back as they were."""

    def __init__(self, points: PointIO) -> None:
        self.points = points
        self.added: list[str] = []
        self.previous: list[Point] = []

    def expect(self, *, added: list[str], replaced: list[str]) -> None:
        """Call before writing: keeps the points about to be overwritten."""
        self.previous.extend(self.points.retrieve(replaced))
        self.added.extend(added)

    def run(self) -> None:
        if not self.added and not self.previous:
            return
        try:
            for point_id in self.added:
                self.points.store.delete(point_id)
            self.points.insert(self.previous)
            self.points.flush()
        except Exception:
            logger.exception(
                "Could not take back %d memories of the failed import; importing the same "
                "file again with --on-conflict replace repairs them",
                len(self.added) + len(self.previous),
            )


def _canonical_id(value: str) -> str | None:
    """Qdrant's spelling of a point id (a UUID, or digits), or None if it is neither."""
    if value.isdigit():
        return value
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


def _advance_sequences(conn: Connection) -> None:
    """After explicit ids, make PostgreSQL's next generated id follow the largest one."""
    for kind in _SEQUENCED:
        table = TABLES[kind]
        conn.execute(
            text(
                "SELECT setval(pg_get_serial_sequence(:table, 'id'), "
                f"COALESCE((SELECT MAX(id) FROM {table.name}), 0) + 1, false)"
            ),
            {"table": table.name},
        )
