"""Slot facts over both vector paths mem0 can take: Qdrant Edge and mem0's qdrant provider.

No Qdrant server runs here, so the server path (``QDRANT_URL``) is driven through
qdrant-client's in-process local mode: the same mem0 provider code, another engine.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.memory.caller_memories import INDEX_FIELDS, CallerMemories
from app.memory.mem0_engine import build_mem0

pytestmark = pytest.mark.filterwarnings("ignore:Failed to obtain server version")

DANA, OMAR = "+14155550101", "+12125550199"


@pytest.fixture(params=["qdrant-edge", "qdrant-client"])
def memories(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CallerMemories]:
    if request.param == "qdrant-edge":
        mem0 = build_mem0(tmp_path / "memory", index_fields=INDEX_FIELDS)
    else:
        from qdrant_client import QdrantClient

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mem0 = build_mem0(tmp_path / "memory", qdrant_client=QdrantClient(location=":memory:"))
    yield CallerMemories(mem0)
    mem0.close()


def test_a_slot_holds_one_sentence(memories: CallerMemories) -> None:
    assert memories.put(DANA, "budget", "Budget about $2,400 a month", call_id="c1") == "added"
    assert memories.put(DANA, "budget", "Budget about $2,400 a month", call_id="c1") == "unchanged"
    assert memories.put(DANA, "budget", "Budget about $2,800 a month", call_id="c2") == "updated"
    assert memories.put(DANA, "pets", "Has two cats", value="two cats") == "added"
    assert memories.put(OMAR, "budget", "Budget about $1,900 a month") == "added"
    rows = {r.slot: r for r in memories.list(DANA)}
    assert {s: r.text for s, r in rows.items()} == {
        "budget": "Budget about $2,800 a month",
        "pets": "Has two cats",
    }
    assert (rows["budget"].kind, rows["budget"].call_id) == ("fact", "c2")
    assert rows["pets"].value == "two cats"
    assert memories.count(DANA) == 2 and memories.count() == 3

    assert memories.put(DANA, "pets", None) == "deleted"
    assert memories.put(DANA, "pets", None) == "unchanged"
    assert [r.slot for r in memories.list(DANA)] == ["budget"]


def test_search_stays_within_the_caller(memories: CallerMemories) -> None:
    memories.put(DANA, "pets", "Has two cats")
    memories.put(OMAR, "pets", "Has a parrot named Quorbit")
    hits = memories.search(DANA, "parrot named Quorbit", limit=5)
    assert [h.text for h in hits] == ["Has two cats"]


def test_forget_removes_one_caller(memories: CallerMemories) -> None:
    memories.put(DANA, "name", "Name is Dana Lee")
    memories.put(OMAR, "name", "Name is Omar Quist")
    report = memories.forget(DANA)
    assert report.memory_ids == 1
    assert memories.list(DANA) == []
    assert [r.text for r in memories.list(OMAR)] == ["Name is Omar Quist"]
