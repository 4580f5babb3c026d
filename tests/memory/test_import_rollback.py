"""A failure in the middle of an import's write takes all of it back: rows and memories.

The checks of ``tourline import`` run before anything is written, so what is left to fail
is the stores themselves: the database refusing a row (a booking code already taken) or
the vector store failing half-way through the memories. Both must leave the SQL rows and
the vector points exactly as they were, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import pytest
from sqlalchemy.exc import IntegrityError

from app.memory import backup
from app.memory.backup import (
    BackupError,
    ConflictError,
    export_backup,
    import_backup,
    points_of,
)
from app.memory.point_io import Point, PointIO
from app.memory.service import MemoryService
from tests.memory.seeding import seed

pytestmark = pytest.mark.slow


@pytest.fixture
def memory(service: MemoryService, data_dir: Path) -> MemoryService:
    seed(service, data_dir)
    return service


def store_now(memory: MemoryService) -> list[str]:
    """Every row and point (vectors included), in a stable order."""
    records = backup_of(memory)[1:-1]
    return sorted(json.dumps(r, sort_keys=True) for r in records)


def opener(lines: list[dict[str, Any]]) -> Any:
    text = "".join(json.dumps(line) + "\n" for line in lines)

    @contextmanager
    def open_it() -> Iterator[IO[str]]:
        yield io.StringIO(text)

    return open_it


def backup_of(memory: MemoryService) -> list[dict[str, Any]]:
    out = io.StringIO()
    export_backup(memory.engine, points_of(memory), out)
    return [json.loads(line) for line in out.getvalue().splitlines()]


def with_new_ids(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The same records under keys the store does not have."""
    out = []
    for line in lines:
        line = dict(line)
        if line["type"] == "call":
            line["call_id"] += "-b"
        elif line["type"] in ("exchange", "snapshot", "booking"):
            line["id"] += 1000
            if line["type"] == "booking":
                line["status"], line["confirmation_code"] = "cancelled", "ZZZZ"
        elif line["type"] == "memory":
            line["id"] = str(uuid.uuid4())
        out.append(line)
    return out


class FailingPoints(PointIO):
    """A vector store whose insert number ``good + 1`` breaks half-way (a dropped
    connection, a full disk freed a moment later): the one failure the import's checks
    cannot see coming. Later inserts work, as they do once the moment has passed."""

    def __init__(self, store: Any, good: int) -> None:
        super().__init__(store)
        self.good = good

    def insert(self, points: Sequence[Point]) -> None:
        self.good -= 1
        if self.good == -1:
            super().insert(points[: len(points) // 2])
            raise OSError("No space left on device")
        super().insert(points)


def test_a_vector_store_failure_takes_back_rows_and_memories(
    memory: MemoryService, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = backup_of(memory)
    fresh = with_new_ids(lines[1:-1])
    stored_memory = next(line for line in lines if line["type"] == "memory")
    edited = {**stored_memory, "payload": {**stored_memory["payload"], "data": "Edited"}}
    rows = [line for line in fresh if line["type"] != "memory"]
    memories = [line for line in fresh if line["type"] == "memory"]
    body = [*rows, edited, *memories]  # the replaced memory is in the batch that lands
    counts: dict[str, int] = {}
    for line in body:
        counts[line["type"]] = counts.get(line["type"], 0) + 1
    file_lines = [lines[0], *body, {"type": "end", "counts": counts}]
    before = store_now(memory)
    # Batches of 4: the first lands whole, the second half-way, then the store breaks.
    monkeypatch.setattr(backup, "BATCH", 4)
    failing = FailingPoints(memory.memories.mem0.vector_store, good=1)
    with pytest.raises(OSError, match="No space left"):
        import_backup(memory.engine, failing, opener(file_lines), "replace")
    now = store_now(memory)
    assert [r for r in now if r not in before] == [] and [r for r in before if r not in now] == []
    assert now == before  # rows rolled back, new points gone, edited one back

    report = import_backup(memory.engine, points_of(memory), opener(file_lines), "replace")
    assert sum(report.inserted.values()) == len(fresh)
    assert report.conflicts["memory"] == 1


def test_a_row_the_database_refuses_takes_back_the_whole_import(memory: MemoryService) -> None:
    lines = backup_of(memory)
    fresh = with_new_ids(lines[1:-1])
    stored_code = next(line for line in lines if line["type"] == "booking")["confirmation_code"]
    for line in fresh:
        if line["type"] == "booking":
            line["confirmation_code"] = stored_code  # codes are unique: the database says no
    before = store_now(memory)
    with pytest.raises(IntegrityError):
        import_backup(
            memory.engine, points_of(memory), opener([lines[0], *fresh, lines[-1]]), "skip"
        )
    assert store_now(memory) == before


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("kind", "change", "message"),
    [
        ("call", {"started_at": "yesterday"}, "'started_at' must be an ISO 8601 time"),
        ("call", {"channel": "fax"}, "'channel' must be one of 'phone', 'avatar'"),
        ("call", {"consolidated": "yes"}, "'consolidated' must be true or false, got \"yes\""),
        ("call", {"call_id": None}, "'call_id' must be text, got null"),
        ("exchange", {"id": "7"}, "'id' must be a whole number, got \"7\""),
        ("exchange", {"role": "bot"}, "'role' must be one of 'user' or 'agent', got \"bot\""),
        ("exchange", {"text": 5}, "'text' must be text, got 5"),
        ("exchange", {"colour": "red"}, "'colour' is not a field of this record type"),
        ("snapshot", {"state_json": ["x"]}, "'state_json' must be text"),
        ("booking", {"status": "maybe"}, "'status' must be one of 'booked' or 'cancelled'"),
        ("booking", {"caller_name": "x" * 201}, "'caller_name' is longer than 200 characters"),
        ("memory", {"id": "not-a-uuid"}, "'id' must be a UUID, got \"not-a-uuid\""),
        ("memory", {"payload": "text"}, "'payload' must be a JSON object"),
        ("memory", {"vector": "AAAAAA=="}, "'vector' has 1 numbers but this store's embedder"),
        ("memory", {"vector": "%%%"}, "'vector' is not base64 float32 data"),
    ],
)
def test_each_bad_field_is_named_with_its_line(
    memory: MemoryService, kind: str, change: dict[str, Any], message: str
) -> None:
    lines = backup_of(memory)
    at = next(i for i, line in enumerate(lines) if line["type"] == kind)
    lines[at] = {**lines[at], **change}
    before = store_now(memory)
    with pytest.raises(BackupError) as raised:
        import_backup(memory.engine, points_of(memory), opener(lines), "replace")
    assert str(raised.value).startswith(f"line {at + 1}: {message}"), str(raised.value)
    assert "\n" not in str(raised.value)
    assert store_now(memory) == before


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_file_itself_must_hold_together(memory: MemoryService) -> None:
    lines = backup_of(memory)
    exchanges = [i for i, line in enumerate(lines) if line["type"] == "exchange"]
    twice = [*lines[: exchanges[1]], lines[exchanges[0]], *lines[exchanges[1] + 1 :]]
    lost = [line for i, line in enumerate(lines) if i != exchanges[1]]
    after = [*lines, lines[1]]
    for broken, message in (
        (twice, f"line {exchanges[1] + 1}: exchange 1 is already on line {exchanges[0] + 1}"),
        (lost, "the end record counts 12 exchanges but the file holds 11"),
        (after, f"line {len(lines) + 1}: nothing may follow the end record"),
    ):
        with pytest.raises(BackupError, match=message):
            import_backup(memory.engine, points_of(memory), opener(broken))


def test_conflicts_under_fail_write_nothing(memory: MemoryService) -> None:
    lines = backup_of(memory)
    fresh = with_new_ids(lines[1:-1])
    call = next(i for i, line in enumerate(lines) if line["type"] == "call")
    lines[call] = {**lines[call], "outcome": "abandoned"}
    counts = {k: 2 * v for k, v in lines[-1]["counts"].items()}
    before = store_now(memory)
    with pytest.raises(ConflictError) as raised:
        import_backup(
            memory.engine,
            points_of(memory),
            opener([*lines[:-1], *fresh, {"type": "end", "counts": counts}]),
        )
    assert raised.value.report.conflicts["call"] == 1
    assert (
        str(raised.value)
        == f"1 record differs from what is stored: 1 call ({lines[call]['call_id']})"
    )
    assert store_now(memory) == before
