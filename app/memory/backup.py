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

Import is idempotent: a record whose key is already stored with the same content is
skipped; one stored with *different* content is kept as it is and counted as a conflict,
so an import never overwrites anything. On PostgreSQL the id sequences are moved past the
imported ids afterwards. A file without its footer was cut short: what it holds is
imported and the report says it is incomplete.

The export reads the stores while they may be written (with shared PostgreSQL/Qdrant
backends a server can be running): each table is consistent, the whole is not a snapshot.
"""

from __future__ import annotations

import gzip
import json
import os
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, cast

from sqlalchemy import Boolean, Column, Engine, Table, func, insert, select, text

from app.memory.point_io import Point, PointIO, decode_vector, encode_vector
from app.stores.bookings import BookingRow
from app.stores.conversations import calls, exchanges, planner_snapshots
from app.stores.database import UTCDateTime

if TYPE_CHECKING:
    from app.memory.service import MemoryService

__all__ = [
    "FORMAT",
    "PLURALS",
    "VERSION",
    "BackupError",
    "ImportReport",
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

Progress = Callable[[str, int], None]  # (record type, records just done)


class BackupError(ValueError):
    """The file is not a Tourline backup, or a line of it is unusable."""


@dataclass
class ImportReport:
    inserted: dict[str, int] = field(default_factory=dict)
    unchanged: dict[str, int] = field(default_factory=dict)
    conflicts: dict[str, int] = field(default_factory=dict)
    complete: bool = False  # the footer was there: the file was not cut short

    def as_dict(self) -> dict[str, Any]:
        return {
            "inserted": dict(self.inserted),
            "unchanged": dict(self.unchanged),
            "conflicts": dict(self.conflicts),
            "complete": self.complete,
        }


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
    memory: MemoryService, path: str | os.PathLike[str], progress: Progress | None = None
) -> ImportReport:
    """Import every record of the backup at ``path`` that is not stored yet."""
    with _reading(path), open_backup(path, "r") as inp:
        return import_backup(memory.engine, points_of(memory), inp, progress)


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
    inp: IO[str],
    progress: Progress | None = None,
    header: dict[str, Any] | None = None,
) -> ImportReport:
    """Insert every record of ``inp`` that is not stored yet (pass ``header`` if read)."""
    if header is None:
        read_header(inp)
    report = ImportReport()
    for name in RECORD_TYPES:
        report.inserted[name] = report.unchanged[name] = report.conflicts[name] = 0
    kind: str | None = None
    batch: list[dict[str, Any]] = []
    for number, record in _records(inp, first_line=2):
        rtype = record.get("type")
        if rtype == "end":
            report.complete = True
            break
        if rtype not in RECORD_TYPES:
            raise BackupError(f"line {number}: unknown record type {rtype!r}")
        if batch and (rtype != kind or len(batch) >= BATCH):
            _import_batch(engine, points, cast(str, kind), batch, report, progress)
            batch = []
        kind = cast(str, rtype)
        batch.append(record)
    if batch and kind is not None:
        _import_batch(engine, points, kind, batch, report, progress)
    if engine.dialect.name == "postgresql":
        _advance_sequences(engine)
    points.flush()
    return report


def _records(inp: Iterable[str], first_line: int) -> Iterator[tuple[int, dict[str, Any]]]:
    for number, line in enumerate(inp, start=first_line):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise BackupError(f"line {number} is not JSON ({exc.msg})") from None
        if not isinstance(record, dict):
            raise BackupError(f"line {number} is not a JSON object")
        yield number, record


def _import_batch(
    engine: Engine,
    points: PointIO,
    kind: str,
    batch: list[dict[str, Any]],
    report: ImportReport,
    progress: Progress | None,
) -> None:
    if kind == MEMORY:
        new, same, clash = _import_points(points, batch)
    else:
        new, same, clash = _import_rows(engine, TABLES[kind], batch)
    report.inserted[kind] += new
    report.unchanged[kind] += same
    report.conflicts[kind] += clash
    if progress:
        progress(kind, len(batch))


def _import_rows(
    engine: Engine, table: Table, records: list[dict[str, Any]]
) -> tuple[int, int, int]:
    (key,) = table.primary_key.columns  # every table here has a one-column key
    rows = [_from_json(table, r) for r in records]
    with engine.begin() as conn:
        found = conn.execute(select(table).where(key.in_([r[key.name] for r in rows])))
        stored = {row[key.name]: _to_json(table, row) for row in found.mappings()}
        fresh = [row for row in rows if row[key.name] not in stored]
        if fresh:
            conn.execute(insert(table), fresh)
    same = sum(1 for row in rows if stored.get(row[key.name]) == _to_json(table, row))
    return len(fresh), same, len(rows) - len(fresh) - same


def _from_json(table: Table, record: dict[str, Any]) -> dict[str, Any]:
    row = {c.name: _column_value(c, record.get(c.name)) for c in table.columns}
    missing = [k.name for k in table.primary_key.columns if row[k.name] is None]
    if missing:
        raise BackupError(f"a {table.name} record has no {', '.join(missing)}")
    return row


def _column_value(column: Column[Any], value: Any) -> Any:
    if value is None:
        return None
    if isinstance(column.type, UTCDateTime):
        parsed = datetime.fromisoformat(value)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return value


def _import_points(points: PointIO, records: list[dict[str, Any]]) -> tuple[int, int, int]:
    batch: list[Point] = []
    for record in records:
        if not isinstance(record.get("id"), str) or not isinstance(record.get("payload"), dict):
            raise BackupError("a memory record needs an 'id' and a 'payload'")
        vector = record.get("vector")
        batch.append(
            Point(record["id"], decode_vector(vector) if vector else None, record["payload"])
        )
    if any(p.vector is None for p in batch):
        raise BackupError("a memory record has no vector; re-export it with this Tourline")
    stored = points.existing([p.id for p in batch])
    fresh = [p for p in batch if _canonical_id(p.id) not in stored]
    try:
        points.insert(fresh)
    except ValueError as exc:  # e.g. vectors of another size than this store's embedder
        raise BackupError(f"memories do not fit this vector store: {exc}") from None
    same = sum(1 for p in batch if stored.get(_canonical_id(p.id)) == p.payload)
    return len(fresh), same, len(batch) - len(fresh) - same


def _canonical_id(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return value


def _advance_sequences(engine: Engine) -> None:
    """After explicit ids, make PostgreSQL's next generated id follow the largest one."""
    with engine.begin() as conn:
        for kind in _SEQUENCED:
            table = TABLES[kind]
            conn.execute(
                text(
                    "SELECT setval(pg_get_serial_sequence(:table, 'id'), "
                    f"COALESCE((SELECT MAX(id) FROM {table.name}), 0) + 1, false)"
                ),
                {"table": table.name},
            )
