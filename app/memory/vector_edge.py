"""mem0 vector store over Qdrant Edge (``qdrant-edge-py``): Qdrant's engine, in-process.

Each mem0 collection is one Edge shard in ``<path>/<collection_name>/`` (mem0 names its
entity collection ``<collection>_entities``, so both live side by side). The store:

* creates the shard with the dense vector config (cosine, ``embedding_model_dims``), and
  checks an existing shard has the same size (mem0 never passes the embedder's size: the
  caller must);
* creates payload indexes on ``user_id`` (a tenant index), ``agent_id``, ``run_id``,
  ``actor_id`` and any extra metadata fields asked for, so a per-caller search only touches
  that caller's points; with ``keyword_search=True`` also a BM25 full-text index on ``data``
  so mem0 ranks by semantic + keyword score (off by default: on our labelled set it ranked
  slightly worse than e5 alone, and mem0's Qdrant server provider has no BM25 without
  fastembed, so semantic-only keeps both backends alike);
* translates mem0's filter dicts (``eq ne in nin gt gte lt lte contains icontains``,
  ``AND``/``OR``/``NOT``, wildcard ``"*"``) the same way mem0's Qdrant provider does, so
  the embedded and server backends answer alike;
* returns ids as strings (Edge hands back ``uuid.UUID``; mem0's models want ``str``);
* :meth:`compact` rewrites the shard from its live points. Qdrant keeps deleted payloads in
  its WAL and segment pages until they are recycled; a "forget me" needs them gone now.

One process, one owner: Edge locks the shard's WAL, and a second opener (same process or
another) gets :class:`EmbeddedStoreLockedError` instead of Edge's ``WouldBlock``.

Edge never optimizes by itself (no HNSW is built unless :meth:`optimize` is called): a
per-caller search goes through the ``user_id`` index and scores that caller's points
exactly, which stays well under a millisecond at 100k points (``bench/vector_seam.py``).
"""

from __future__ import annotations

import builtins
import contextlib
import logging
import os
import re
import shutil
import threading
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import qdrant_edge as qe
from mem0.vector_stores.base import VectorStoreBase
from pydantic import BaseModel, ConfigDict, Field

from app.memory.owner_lock import EmbeddedStoreLockedError
from app.memory.store_contract import check_batch
from app.memory.store_contract import range_ops as checked_range_ops

__all__ = [
    "DEFAULT_INDEXES",
    "EdgeStoreConfig",
    "EdgeVectorStore",
    "EmbeddedStoreLockedError",
    "OutputData",
    "build_filter",
]

logger = logging.getLogger(__name__)

# Field -> index type. user_id is the tenant key: every memory query is scoped by caller.
DEFAULT_INDEXES: dict[str, str] = {
    "user_id": "tenant",
    "agent_id": "keyword",
    "run_id": "keyword",
    "actor_id": "keyword",
}
TEXT_FIELD = "data"
_SCROLL_PAGE = 1000
_DISTANCES = {"cosine": qe.Distance.Cosine, "dot": qe.Distance.Dot, "euclid": qe.Distance.Euclid}


class EdgeStoreConfig(BaseModel):
    """Config mem0 carries for this provider (``MemoryConfig.vector_store.config``)."""

    model_config = ConfigDict(extra="forbid")

    collection_name: str = Field("mem0", description="Shard directory name under path")
    path: str = Field(description="Directory holding this store's shards")
    embedding_model_dims: int = Field(384, description="Vector size: the embedder's dim")
    distance: str = Field("cosine", description="cosine | dot | euclid")
    keyword_search: bool = Field(False, description="BM25 text index on 'data' for hybrid search")
    index_fields: dict[str, str] = Field(
        default_factory=dict,
        description="Extra payload indexes: field -> keyword|integer|float|bool|datetime|text",
    )


@dataclass
class OutputData:
    """One point as mem0 reads it: ``.id``, ``.score``, ``.payload``."""

    id: str
    score: float | None
    payload: dict[str, Any] = field(default_factory=dict)


class _SwapLock:
    """Shared/exclusive lock with writer preference, guarding *which* shard is open.

    Everything that uses the shard holds it shared (Qdrant's shard is itself thread-safe);
    only replacing or closing the shard takes it exclusively.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._exclusive = False
        self._waiting = 0

    @contextlib.contextmanager
    def shared(self) -> Iterator[None]:
        with self._cond:
            while self._exclusive or self._waiting:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._cond:
            self._waiting += 1
            try:
                while self._exclusive or self._readers:
                    self._cond.wait()
            finally:
                self._waiting -= 1
            self._exclusive = True
        try:
            yield
        finally:
            with self._cond:
                self._exclusive = False
                self._cond.notify_all()


class EdgeVectorStore(VectorStoreBase):  # type: ignore[misc]  # mem0 is untyped: Any base
    """mem0 ``VectorStoreBase`` backed by one Qdrant Edge shard.

    Thread-safe. Reads run concurrently with each other and with writes; writes, and
    :meth:`compact`, are serialised by ``_mutate``; the shard is swapped or closed under the
    exclusive side of ``_swap``. So during a compaction searches go on and writes wait.
    """

    def __init__(
        self,
        collection_name: str = "mem0",
        path: str | os.PathLike[str] | None = None,
        embedding_model_dims: int = 384,
        distance: str = "cosine",
        keyword_search: bool = False,
        index_fields: Mapping[str, str] | None = None,
    ) -> None:
        if path is None:
            raise ValueError("EdgeVectorStore needs a path (the directory for its shards)")
        if distance not in _DISTANCES:
            raise ValueError(f"distance must be one of {sorted(_DISTANCES)}, got {distance!r}")
        self.base_path = Path(path)
        self.collection_name = collection_name
        self.embedding_model_dims = int(embedding_model_dims)
        self.distance = distance
        self.keyword_enabled = keyword_search
        self.index_fields: dict[str, str] = {**DEFAULT_INDEXES, **dict(index_fields or {})}
        if keyword_search:
            self.index_fields.setdefault(TEXT_FIELD, "bm25")
        self._mutate = threading.RLock()
        self._swap = _SwapLock()
        self._shard: qe.EdgeShard | None = None
        self.create_col(collection_name, self.embedding_model_dims, distance)

    # ------------------------------------------------------------------ lifecycle

    @property
    def shard_path(self) -> Path:
        return self.base_path / self.collection_name

    @property
    def shard(self) -> qe.EdgeShard:
        if self._shard is None:
            raise RuntimeError(f"Edge store {self.shard_path} is closed")
        return self._shard

    @property
    def closed(self) -> bool:
        return self._shard is None

    def _edge_config(self) -> qe.EdgeConfig:
        return qe.EdgeConfig(
            vectors=qe.EdgeVectorParams(
                size=self.embedding_model_dims, distance=_DISTANCES[self.distance]
            )
        )

    def create_col(self, name: str, vector_size: int, distance: Any = "cosine") -> None:
        """Open the shard ``name`` (creating it if new) and make this store use it."""
        with self._mutate, self._swap.exclusive():
            self._close_unlocked()
            self.collection_name = name
            self.embedding_model_dims = int(vector_size)
            if isinstance(distance, str) and distance.lower() in _DISTANCES:
                self.distance = distance.lower()
            self.base_path.mkdir(parents=True, exist_ok=True)
            _recover_compaction(self.shard_path)
            shard = self._open_shard(self.shard_path)
            try:
                self._ensure_indexes(shard)
            except BaseException:
                shard.close()
                raise
            self._shard = shard

    def _open_shard(self, path: Path) -> qe.EdgeShard:
        exists = (path / "edge_config.json").exists() or (path / "segments").is_dir()
        try:
            if exists:
                return qe.EdgeShard.load(str(path), self._edge_config())
            return qe.EdgeShard.create(str(path), self._edge_config())
        except Exception as exc:
            text = str(exc)
            if "WouldBlock" in text or "Can't init WAL" in text:
                raise EmbeddedStoreLockedError(path) from exc
            if "ncompatible" in text:
                raise ValueError(
                    f"Vector store {path} was created with another vector config than "
                    f"{self.embedding_model_dims}-d {self.distance} (did the embedder change? "
                    f"re-index into a new collection): {text}"
                ) from exc
            raise

    def _ensure_indexes(self, shard: qe.EdgeShard) -> None:
        existing = set(shard.info().payload_schema)
        for name, kind in self.index_fields.items():
            if name not in existing:
                shard.update(qe.UpdateOperation.create_field_index(name, _index_schema(kind)))

    def _close_unlocked(self) -> None:
        shard, self._shard = self._shard, None
        if shard is not None:
            try:
                shard.flush()
            finally:
                shard.close()

    def flush(self) -> None:
        with self._mutate, self._swap.shared():
            if self._shard is not None:
                self._shard.flush()

    def close(self) -> None:
        """Flush and release the shard (and its lock). Safe to call twice."""
        with self._mutate, self._swap.exclusive():
            self._close_unlocked()

    def optimize(self) -> bool:
        """Run Edge's segment optimizers now (merges, vacuum, HNSW build).

        Blocking, and qdrant-edge-py 0.9 holds the GIL throughout: building HNSW for 100k
        384-d points takes minutes on 2 cores and freezes every Python thread meanwhile.
        Per-caller (filtered) search does not need it; run it offline if at all.
        """
        with self._mutate, self._swap.shared():
            return bool(self.shard.optimize())

    def compact(self) -> int:
        """Rewrite the shard from its live points; return how many were kept.

        Deleted points otherwise stay readable in the shard's WAL and segment files until
        Qdrant reuses that space. The rewrite goes to ``<shard>.compact`` while searches go
        on (writes wait), is flushed and closed, then swapped in by two renames;
        :func:`_recover_compaction` finishes or discards an interrupted swap on the next
        open. Cost: one pass over the shard (about 10 s per 100k points on 2 cores).
        """
        tmp = _sibling(self.shard_path, ".compact")
        done = _sibling(self.shard_path, ".compact.done")
        old = _sibling(self.shard_path, ".old")
        with self._mutate:
            kept = 0
            with self._swap.shared():
                src = self.shard
                src.flush()
                for leftover in (tmp, old):
                    shutil.rmtree(leftover, ignore_errors=True)
                with contextlib.suppress(FileNotFoundError):
                    done.unlink()
                dst = qe.EdgeShard.create(str(tmp), self._edge_config())
                try:
                    self._ensure_indexes(dst)
                    for records in _scroll_pages(src, None, with_vector=True):
                        dst.update(
                            qe.UpdateOperation.upsert_points(
                                [qe.Point(r.id, r.vector, r.payload or {}) for r in records]
                            )
                        )
                        kept += len(records)
                    dst.flush()
                finally:
                    dst.close()
                done.write_text(f"{kept}\n")
                _fsync_dir(self.shard_path.parent)
            with self._swap.exclusive():
                self._close_unlocked()
                os.rename(self.shard_path, old)
                os.rename(tmp, self.shard_path)
                done.unlink()
                _fsync_dir(self.shard_path.parent)
                shutil.rmtree(old, ignore_errors=True)
                self._shard = self._open_shard(self.shard_path)
            return kept

    # ------------------------------------------------------------------ mem0 API

    def insert(
        self,
        vectors: Sequence[Sequence[float]],
        payloads: Sequence[Mapping[str, Any]] | None = None,
        ids: Sequence[Any] | None = None,
    ) -> None:
        check_batch(vectors, payloads, ids)
        points = []
        for i, vector in enumerate(vectors):
            point_id = _point_id(ids[i]) if ids is not None else str(uuid.uuid4())
            payload = dict(payloads[i]) if payloads is not None else {}
            points.append(qe.Point(point_id, self._check_vector(vector), payload))
        if points:
            self._write(qe.UpdateOperation.upsert_points(points))

    def search(
        self,
        query: str,
        vectors: Sequence[float],
        top_k: int = 5,
        filters: Mapping[str, Any] | None = None,
    ) -> list[OutputData]:
        request = qe.QueryRequest(
            limit=int(top_k),
            query=qe.Query.Nearest(self._check_vector(vectors)),
            filter=build_filter(filters),
            with_payload=True,
        )
        with self._swap.shared():
            hits = self.shard.query(request)
        return [_output(h, h.score) for h in hits]

    def search_batch(
        self,
        queries: Sequence[str],
        vectors_list: Sequence[Sequence[float]],
        top_k: int = 1,
        filters: Mapping[str, Any] | None = None,
    ) -> list[list[OutputData]]:
        if not vectors_list:
            return []
        flt = build_filter(filters)
        batch = qe.QueryBatchRequest(
            [
                qe.QueryRequest(
                    limit=int(top_k),
                    query=qe.Query.Nearest(self._check_vector(v)),
                    filter=flt,
                    with_payload=True,
                )
                for v in vectors_list
            ]
        )
        with self._swap.shared():
            results = self.shard.query_batch(batch)
        return [[_output(h, h.score) for h in hits] for hits in results]

    def keyword_search(
        self, query: str, top_k: int = 5, filters: Mapping[str, Any] | None = None
    ) -> list[OutputData] | None:
        """BM25 over the ``data`` text index; ``None`` (mem0: "not supported") if disabled."""
        if not self.keyword_enabled or not query or not query.strip():
            return None
        request = qe.QueryRequest(
            limit=int(top_k),
            query=qe.TextQuery(TEXT_FIELD, query),
            filter=build_filter(filters),
            with_payload=True,
        )
        try:
            with self._swap.shared():
                hits = self.shard.query(request)
        except Exception as exc:  # mem0 treats keyword search as optional
            logger.debug("Edge BM25 search failed: %s", exc)
            return None
        return [_output(h, h.score) for h in hits]

    def delete(self, vector_id: Any) -> None:
        self._write(qe.UpdateOperation.delete_points([_point_id(vector_id)]))

    def delete_by_filter(self, filters: Mapping[str, Any]) -> None:
        flt = build_filter(filters)
        if flt is None:
            raise ValueError("delete_by_filter needs a non-empty filter (use reset() for all)")
        self._write(qe.UpdateOperation.delete_points_by_filter(flt))

    def update(
        self,
        vector_id: Any,
        vector: Sequence[float] | None = None,
        payload: Mapping[str, Any] | None = None,
    ) -> None:
        """Same semantics as mem0's Qdrant provider.

        Vector and payload: the point is replaced. Payload only: keys are merged
        (``set_payload``). Vector only: the vector is replaced, the payload kept.
        """
        pid = _point_id(vector_id)
        if vector is not None and payload is not None:
            point = qe.Point(pid, self._check_vector(vector), dict(payload))
            self._write(qe.UpdateOperation.upsert_points([point]))
            return
        if payload is not None:
            self._write(qe.UpdateOperation.set_payload([pid], dict(payload)))
        if vector is not None:
            vectors = qe.PointVectors(pid, self._check_vector(vector))
            self._write(qe.UpdateOperation.update_vectors([vectors]))

    def get(self, vector_id: Any) -> OutputData | None:
        try:
            pid = _point_id(vector_id)
        except ValueError:
            return None
        with self._swap.shared():
            records = self.shard.retrieve([pid], with_payload=True, with_vector=False)
        return _output(records[0], None) if records else None

    def list(
        self, filters: Mapping[str, Any] | None = None, top_k: int | None = 100
    ) -> list[list[OutputData]]:
        """Up to ``top_k`` points (all if ``None``), wrapped like Qdrant's scroll: ``[points]``."""
        out: list[OutputData] = []
        flt = build_filter(filters)
        with self._swap.shared():
            for records in _scroll_pages(self.shard, flt, limit=top_k):
                out.extend(_output(r, None) for r in records)
        return [out]

    def count(self, filters: Mapping[str, Any] | None = None) -> int:
        request = qe.CountRequest(exact=True, filter=build_filter(filters))
        with self._swap.shared():
            return int(self.shard.count(request))

    def list_cols(self) -> builtins.list[str]:
        return list(iter_collections(self.base_path))

    def delete_col(self) -> None:
        """Close the shard and delete its files."""
        with self._mutate, self._swap.exclusive():
            self._close_unlocked()
            shutil.rmtree(self.shard_path, ignore_errors=True)

    def col_info(self) -> dict[str, Any]:
        with self._swap.shared():
            info = self.shard.info()
        return {
            "name": self.collection_name,
            "path": str(self.shard_path),
            "backend": "qdrant-edge",
            "dims": self.embedding_model_dims,
            "distance": self.distance,
            "points_count": info.points_count,
            "indexed_vectors_count": info.indexed_vectors_count,
            "segments_count": info.segments_count,
            "payload_indexes": sorted(info.payload_schema),
        }

    def reset(self) -> None:
        """Delete the collection and create it again, empty."""
        logger.warning("Resetting Edge collection %s", self.shard_path)
        with self._mutate:
            self.delete_col()
            self.create_col(self.collection_name, self.embedding_model_dims, self.distance)

    # ------------------------------------------------------------------ helpers

    def _write(self, operation: Any) -> None:
        with self._mutate, self._swap.shared():
            self.shard.update(operation)

    def _check_vector(self, vector: Sequence[float]) -> builtins.list[float]:
        values = vector.tolist() if hasattr(vector, "tolist") else [*vector]
        if len(values) != self.embedding_model_dims:
            raise ValueError(
                f"vector has {len(values)} dims; store {self.collection_name!r} holds "
                f"{self.embedding_model_dims}-d vectors"
            )
        return values

    def __enter__(self) -> EdgeVectorStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:  # pragma: no cover - best effort at interpreter exit
        with contextlib.suppress(Exception):
            self._close_unlocked()


# ---------------------------------------------------------------------- filters

_ISO_DATETIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2})?(\.\d+)?(Z|[+-]\d{2}:?\d{2})?)?$"
)
_LOGICAL = {"$or": "OR", "$not": "NOT", "$and": "AND"}


def build_filter(filters: Mapping[str, Any] | None) -> qe.Filter | None:
    """mem0's filter dict as a Qdrant Edge ``Filter`` (``None`` when it filters nothing).

    Mirrors ``mem0.vector_stores.qdrant.Qdrant._create_filter`` so both backends agree:
    a plain value is equality, a list is "any of", ``"*"`` matches anything (no condition),
    operator dicts map to match/range conditions, and ``AND``/``OR``/``NOT`` (or mem0's
    ``$and``/``$or``/``$not`` after its own preprocessing) nest.
    """
    if not filters:
        return None
    normalized: dict[str, Any] = {}
    for key, value in filters.items():
        norm = _LOGICAL.get(key, key)
        normalized.setdefault(norm, value)

    must: list[Any] = []
    should: list[Any] = []
    must_not: list[Any] = []
    for key, value in normalized.items():
        if key in ("AND", "OR", "NOT"):
            if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
                raise ValueError(f"{key} filter value must be a list of filter dicts")
            target = {"AND": must, "OR": should, "NOT": must_not}[key]
            for sub in value:
                built = build_filter(sub)
                if built is not None:
                    target.append(built)
            continue
        must.extend(_field_conditions(key, value))
    if not (must or should or must_not):
        return None
    return qe.Filter(must=must or None, should=should or None, must_not=must_not or None)


def _field_conditions(key: str, value: Any) -> list[Any]:
    if not isinstance(value, dict):
        if value == "*":
            return []
        if isinstance(value, (list, tuple, set)):
            return [qe.FieldCondition(key, match=qe.MatchAny(list(value)))]
        return [_equals(key, value)]
    range_ops = checked_range_ops(key, value)
    if range_ops:
        if all(isinstance(v, str) and _ISO_DATETIME.match(v) for v in range_ops.values()):
            return [qe.FieldCondition(key, range=qe.RangeDateTime(**range_ops))]
        try:
            floats = {op: float(v) for op, v in range_ops.items()}
        except (TypeError, ValueError) as exc:
            raise ValueError(f"Range filter on {key!r} needs numbers or ISO dates") from exc
        return [qe.FieldCondition(key, range=qe.RangeFloat(**floats))]
    if "eq" in value:
        return [_equals(key, value["eq"])]
    if "ne" in value:
        return [qe.FieldCondition(key, match=qe.MatchExcept([value["ne"]]))]
    if "in" in value:
        return [qe.FieldCondition(key, match=qe.MatchAny(list(value["in"])))]
    if "nin" in value:
        return [qe.FieldCondition(key, match=qe.MatchExcept(list(value["nin"])))]
    text = value.get("contains", value.get("icontains"))
    return [qe.FieldCondition(key, match=qe.MatchText(str(text)))]


def _equals(key: str, value: Any) -> Any:
    if isinstance(value, float) and not value.is_integer():
        return qe.FieldCondition(key, range=qe.RangeFloat(gte=value, lte=value))
    if isinstance(value, float):
        value = int(value)
    if not isinstance(value, (str, int, bool)):
        raise ValueError(f"Cannot filter {key!r} on a {type(value).__name__} value")
    return qe.FieldCondition(key, match=qe.MatchValue(value))


# ---------------------------------------------------------------------- helpers


def _index_schema(kind: str) -> Any:
    if kind == "tenant":
        return qe.KeywordIndexParams(is_tenant=True)
    if kind == "bm25":
        return qe.TextIndexParams(
            tokenizer=qe.TokenizerType.Word,
            lowercase=True,
            ascii_folding=True,
            stemmer=qe.SnowballParams(qe.SnowballLanguage.English),
            stopwords=qe.Language.English,
            scoring=True,
        )
    kinds = {
        "keyword": qe.PayloadSchemaType.Keyword,
        "integer": qe.PayloadSchemaType.Integer,
        "float": qe.PayloadSchemaType.Float,
        "bool": qe.PayloadSchemaType.Bool,
        "datetime": qe.PayloadSchemaType.Datetime,
        "text": qe.PayloadSchemaType.Text,
        "uuid": qe.PayloadSchemaType.Uuid,
    }
    if kind not in kinds:
        raise ValueError(f"Unknown index type {kind!r}; use tenant, bm25 or one of {sorted(kinds)}")
    return kinds[kind]


def _point_id(value: Any) -> str | int:
    """Edge ids are unsigned ints or UUIDs; mem0 uses ``str(uuid4())``."""
    if isinstance(value, bool):
        raise ValueError(f"Invalid point id {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"Invalid point id {value!r}: must be >= 0")
        return value
    if isinstance(value, uuid.UUID):
        return str(value)
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise ValueError(f"Invalid point id {value!r}: must be a UUID or an unsigned int") from None


def _output(point: Any, score: float | None) -> OutputData:
    payload = point.payload  # a fresh dict built by the binding on each access
    return OutputData(id=str(point.id), score=score, payload=payload if payload else {})


def _scroll_pages(
    shard: qe.EdgeShard,
    flt: qe.Filter | None,
    *,
    limit: int | None = None,
    with_vector: bool = False,
) -> Iterator[list[Any]]:
    offset = None
    remaining = limit
    while remaining is None or remaining > 0:
        page = _SCROLL_PAGE if remaining is None else min(_SCROLL_PAGE, remaining)
        records, offset = shard.scroll(
            qe.ScrollRequest(
                offset=offset, limit=page, filter=flt, with_payload=True, with_vector=with_vector
            )
        )
        if records:
            yield records
        if remaining is not None:
            remaining -= len(records)
        if offset is None or not records:
            return


def _sibling(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)


def _is_scratch(name: str) -> bool:
    return name.endswith((".compact", ".old"))


def _recover_compaction(shard: Path) -> None:
    """Finish or roll back a :meth:`EdgeVectorStore.compact` that was interrupted."""
    tmp, done = _sibling(shard, ".compact"), _sibling(shard, ".compact.done")
    old = _sibling(shard, ".old")
    if done.exists() and tmp.is_dir():
        if shard.exists() and not old.exists():
            os.rename(shard, old)
        if not shard.exists():
            os.rename(tmp, shard)
        done.unlink()
    elif not shard.exists() and old.is_dir():
        os.rename(old, shard)
    with contextlib.suppress(FileNotFoundError):
        done.unlink()
    for leftover in (tmp, old):
        shutil.rmtree(leftover, ignore_errors=True)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def iter_collections(base: str | os.PathLike[str]) -> Iterable[str]:
    """Names of the Edge shards under ``base``."""
    root = Path(base)
    if not root.is_dir():
        return []
    return sorted(
        p.name
        for p in root.iterdir()
        if p.is_dir() and (p / "edge_config.json").exists() and not _is_scratch(p.name)
    )
