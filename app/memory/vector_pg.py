"""mem0 vector store kept in PostgreSQL, without pgvector: a fleet on PostgreSQL alone.

Why no vector index: every memory query Tourline makes is scoped to one caller, and a
caller has tens of memories. So each point is a row (``tourline_vectors``: collection, id,
``user_id`` in its own indexed column, the vector as float32 ``bytea``, the payload as
JSONB); a search fetches the caller's rows through the ``(collection, user_id)`` index and
scores them exactly in NumPy (cosine: vectors are stored unit-length, as Qdrant stores
them for cosine, so a score is a dot product and equals Qdrant's). Plain PostgreSQL is
enough; no extension is needed.

What it supports is what mem0 and Tourline use of a store: ``insert``, ``search`` and
``list`` with mem0's metadata filters, ``update`` (Qdrant's semantics), ``get``,
``delete``, ``delete_by_filter``, ``count``, ``create_col``/``delete_col``/``list_cols``/
``col_info`` and ``reset``. Filters follow :func:`app.memory.vector_edge.build_filter`
(itself a mirror of mem0's Qdrant provider): a plain value is equality (a list payload
matches if any element does), a list is "any of", ``"*"`` is no condition, ``eq ne in nin
gt gte lt lte contains icontains`` and ``AND``/``OR``/``NOT`` (or ``$and``/``$or``/
``$not``). A ``user_id`` equality (or list/``in``) is answered by the index; the rest of
the filter is checked in Python on that caller's rows. A search or listing *without* a
``user_id`` condition scans the collection in pages (fine for a backup or an admin
count; mem0 itself always scopes by user, agent or run).

Backups read whole points through :attr:`PgVectorStore.client`, which offers the slice of
``QdrantClient``'s point API they use (``count``/``scroll``/``retrieve``), so
``point_io``/``backup`` treat this store like the Qdrant server one.

Several processes may use one database at once: writes are single statements (upserts,
a JSONB merge for payload updates), and creating the tables takes an advisory lock.
Offered only on PostgreSQL: with SQLite the embedded Qdrant Edge store is the single-box
default.
"""

from __future__ import annotations

import builtins
import heapq
import logging
import math
import re
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import numpy as np
from mem0.vector_stores.base import VectorStoreBase
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    and_,
    cast,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import make_url

from app.memory.store_contract import check_batch
from app.memory.store_contract import range_ops as checked_range_ops
from app.stores.database import create_db_engine

__all__ = [
    "PG_BACKEND",
    "PgPointClient",
    "PgStoreConfig",
    "PgVectorStore",
    "matches",
]

logger = logging.getLogger(__name__)

PG_BACKEND = "postgres"
_PAGE = 2000  # rows per round trip when a scan has no user_id to narrow it
_SCHEMA_LOCK = 0x746F75726C76  # pg_advisory_xact_lock key while creating the tables

_metadata = MetaData()
points_table = Table(
    "tourline_vectors",
    _metadata,
    Column("collection", String(255), primary_key=True),
    Column("id", String(64), primary_key=True),
    Column("user_id", Text, nullable=True),
    Column("vector", LargeBinary, nullable=False),
    Column("payload", JSONB, nullable=False),
    Index("tourline_vectors_user", "collection", "user_id"),
)
collections_table = Table(
    "tourline_vector_collections",
    _metadata,
    Column("name", String(255), primary_key=True),
    Column("dims", Integer, nullable=False),
    Column("distance", String(16), nullable=False),
)


class PgStoreConfig(BaseModel):
    """Config mem0 carries for this provider (``MemoryConfig.vector_store.config``)."""

    model_config = ConfigDict(extra="forbid")

    database_url: str = Field(description="A PostgreSQL SQLAlchemy URL (DATABASE_URL)")
    collection_name: str = Field("mem0", description="mem0 collection (a column value)")
    embedding_model_dims: int = Field(384, description="Vector size: the embedder's dim")


@dataclass
class OutputData:
    """One point as mem0 reads it: ``.id``, ``.score``, ``.payload``."""

    id: str
    score: float | None
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass
class PgRecord:
    """A whole point, shaped like ``qdrant_client.models.Record`` (for backups)."""

    id: str
    payload: dict[str, Any] | None
    vector: list[float] | None = None


class PgVectorStore(VectorStoreBase):  # type: ignore[misc]  # mem0 is untyped: Any base
    """mem0 ``VectorStoreBase`` over two PostgreSQL tables; see the module docstring."""

    def __init__(
        self,
        database_url: str,
        collection_name: str = "mem0",
        embedding_model_dims: int = 384,
    ) -> None:
        url = make_url(database_url)
        if url.get_backend_name() != "postgresql":
            raise ValueError(
                "The postgres vector store needs a PostgreSQL DATABASE_URL, not "
                f"{url.get_backend_name()!r}; on SQLite use the embedded store"
            )
        self.engine: Engine = create_db_engine(database_url, pool_size=4, max_overflow=4)
        self.collection_name = collection_name
        self.embedding_model_dims = int(embedding_model_dims)
        self.distance = "cosine"
        self.client = PgPointClient(self)
        try:
            self._create_tables()
            self.create_col(collection_name, self.embedding_model_dims)
        except BaseException:
            self.engine.dispose()
            raise

    # ------------------------------------------------------------------ lifecycle

    def _create_tables(self) -> None:
        with self.engine.begin() as conn:
            conn.execute(select(func.pg_advisory_xact_lock(_SCHEMA_LOCK)))
            _metadata.create_all(conn)

    def create_col(self, name: str, vector_size: int, distance: Any = "cosine") -> None:
        """Use collection ``name`` (recorded with its size, checked if it exists)."""
        if str(getattr(distance, "value", distance)).lower() != "cosine":
            raise ValueError("The postgres vector store scores by cosine only")
        with self.engine.begin() as conn:
            stmt = pg_insert(collections_table).values(
                name=name, dims=int(vector_size), distance="cosine"
            )
            conn.execute(stmt.on_conflict_do_nothing(index_elements=["name"]))
            dims = conn.execute(
                select(collections_table.c.dims).where(collections_table.c.name == name)
            ).scalar_one()
        if dims != int(vector_size):
            raise ValueError(
                f"Vector collection {name!r} holds {dims}-d vectors, not {vector_size}-d (did "
                "the embedder change? re-index into a new collection)"
            )
        self.collection_name = name
        self.embedding_model_dims = int(vector_size)

    def close(self) -> None:
        """Return the pooled connections. Safe to call twice."""
        self.engine.dispose()

    def _reading(self) -> Connection:
        """A pooled connection in autocommit: a read is then one round trip, with no
        transaction to roll back when the connection goes back to the pool."""
        return self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")

    # ------------------------------------------------------------------ mem0 API

    def insert(
        self,
        vectors: Sequence[Sequence[float]],
        payloads: Sequence[Mapping[str, Any]] | None = None,
        ids: Sequence[Any] | None = None,
    ) -> None:
        check_batch(vectors, payloads, ids)
        rows = []
        for i, vector in enumerate(vectors):
            payload = dict(payloads[i]) if payloads is not None else {}
            rows.append(
                {
                    "collection": self.collection_name,
                    "id": point_key(ids[i]) if ids is not None else str(uuid.uuid4()),
                    "user_id": _user_of(payload),
                    "vector": self._encode(vector),
                    "payload": payload,
                }
            )
        if not rows:
            return
        stmt = pg_insert(points_table)
        stmt = stmt.on_conflict_do_update(
            index_elements=["collection", "id"],
            set_={
                "user_id": stmt.excluded.user_id,
                "vector": stmt.excluded.vector,
                "payload": stmt.excluded.payload,
            },
        )
        with self.engine.begin() as conn:
            conn.execute(stmt, rows)

    def search(
        self,
        query: str,
        vectors: Sequence[float],
        top_k: int = 5,
        filters: Mapping[str, Any] | None = None,
    ) -> list[OutputData]:
        """The ``top_k`` best points by cosine among those ``filters`` keep."""
        q = _unit(np.asarray(vectors, dtype=np.float32), self.embedding_model_dims)
        limit = int(top_k)
        if limit <= 0:
            return []
        best: list[tuple[float, str, dict[str, Any]]] = []
        for page in self._pages(filters, with_vector=True):
            if not page:
                continue
            matrix = np.frombuffer(b"".join(r[2] for r in page), dtype="<f4").reshape(
                len(page), self.embedding_model_dims
            )
            scores = matrix @ q
            keep = np.argsort(-scores, kind="stable")[:limit]
            candidates = [(float(scores[i]), page[i][0], page[i][1]) for i in keep]
            best = heapq.nlargest(limit, [*best, *candidates], key=lambda c: c[0])
        return [OutputData(id=pid, score=score, payload=payload) for score, pid, payload in best]

    def search_batch(
        self,
        queries: Sequence[str],
        vectors_list: Sequence[Sequence[float]],
        top_k: int = 1,
        filters: Mapping[str, Any] | None = None,
    ) -> list[list[OutputData]]:
        return [
            self.search(q, v, top_k, filters) for q, v in zip(queries, vectors_list, strict=False)
        ]

    def keyword_search(
        self, query: str, top_k: int = 5, filters: Mapping[str, Any] | None = None
    ) -> list[OutputData] | None:
        """``None``: no BM25 here (mem0 then ranks by semantic score, as on Qdrant)."""
        return None

    def delete(self, vector_id: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(points_table).where(self._is_point(vector_id)))

    def delete_by_filter(self, filters: Mapping[str, Any]) -> None:
        if not filters:
            raise ValueError("delete_by_filter needs a non-empty filter (use reset() for all)")
        ids = [row[0] for page in self._pages(filters, with_vector=False) for row in page]
        with self.engine.begin() as conn:
            for start in range(0, len(ids), 1000):
                chunk = ids[start : start + 1000]
                conn.execute(
                    delete(points_table).where(self._in_collection(), points_table.c.id.in_(chunk))
                )

    def update(
        self,
        vector_id: Any,
        vector: Sequence[float] | None = None,
        payload: Mapping[str, Any] | None = None,
    ) -> None:
        """Same semantics as mem0's Qdrant provider (and the Edge store).

        Vector and payload: the point is replaced. Payload only: keys are merged. Vector
        only: the vector is replaced, the payload kept.
        """
        values: dict[str, Any] = {}
        if vector is not None:
            values["vector"] = self._encode(vector)
        if payload is not None and vector is not None:
            values["payload"] = dict(payload)
            values["user_id"] = _user_of(payload)
        elif payload is not None:
            patch = cast(dict(payload), JSONB)
            values["payload"] = points_table.c.payload.op("||")(patch)
            if "user_id" in payload:
                values["user_id"] = _user_of(payload)
        if not values:
            return
        with self.engine.begin() as conn:
            conn.execute(update(points_table).where(self._is_point(vector_id)).values(**values))

    def get(self, vector_id: Any) -> OutputData | None:
        try:
            key = point_key(vector_id)
        except ValueError:
            return None
        with self._reading() as conn:
            row = conn.execute(
                select(points_table.c.id, points_table.c.payload).where(
                    self._in_collection(), points_table.c.id == key
                )
            ).first()
        return OutputData(id=row[0], score=None, payload=dict(row[1] or {})) if row else None

    def list(
        self, filters: Mapping[str, Any] | None = None, top_k: int | None = 100
    ) -> list[list[OutputData]]:
        """Up to ``top_k`` points (all if ``None``) in id order, wrapped like Qdrant's
        scroll: ``[points]``."""
        out: list[OutputData] = []
        for page in self._pages(filters, with_vector=False):
            for pid, payload, _ in page:
                if top_k is not None and len(out) >= top_k:
                    return [out]
                out.append(OutputData(id=pid, score=None, payload=payload))
        return [out]

    def count(self, filters: Mapping[str, Any] | None = None) -> int:
        if not filters or _pushed_only(filters):
            with self._reading() as conn:
                return int(
                    conn.execute(
                        select(func.count()).select_from(points_table).where(*self._where(filters))
                    ).scalar_one()
                )
        return sum(len(page) for page in self._pages(filters, with_vector=False))

    def list_cols(self) -> builtins.list[str]:
        with self._reading() as conn:
            return [r[0] for r in conn.execute(select(collections_table.c.name).order_by("name"))]

    def delete_col(self) -> None:
        """Delete the collection's points and its record."""
        with self.engine.begin() as conn:
            conn.execute(delete(points_table).where(self._in_collection()))
            conn.execute(
                delete(collections_table).where(collections_table.c.name == self.collection_name)
            )

    def col_info(self) -> dict[str, Any]:
        return {
            "name": self.collection_name,
            "backend": PG_BACKEND,
            "table": points_table.name,
            "dims": self.embedding_model_dims,
            "distance": self.distance,
            "points_count": self.count(),
        }

    def reset(self) -> None:
        """Delete the collection and create it again, empty."""
        logger.warning("Resetting PostgreSQL vector collection %s", self.collection_name)
        self.delete_col()
        self.create_col(self.collection_name, self.embedding_model_dims)

    # ------------------------------------------------------------------ helpers

    def _in_collection(self) -> Any:
        return points_table.c.collection == self.collection_name

    def _is_point(self, vector_id: Any) -> Any:
        return and_(self._in_collection(), points_table.c.id == point_key(vector_id))

    def _where(self, filters: Mapping[str, Any] | None) -> builtins.list[Any]:
        where = [self._in_collection()]
        users = _user_ids(filters)
        if users is not None:
            where.append(points_table.c.user_id.in_(sorted(users)))
        return where

    def _pages(
        self, filters: Mapping[str, Any] | None, *, with_vector: bool
    ) -> Iterator[builtins.list[tuple[str, dict[str, Any], bytes]]]:
        """The points ``filters`` keep, in id order, a page at a time: (id, payload, vector)."""
        columns = [points_table.c.id, points_table.c.payload]
        if with_vector:
            columns.append(points_table.c.vector)
        where = self._where(filters)
        after: str | None = None
        while True:
            stmt = select(*columns).where(*where)
            if after is not None:
                stmt = stmt.where(points_table.c.id > after)
            stmt = stmt.order_by(points_table.c.id).limit(_PAGE)
            with self._reading() as conn:
                rows = conn.execute(stmt).all()
            if not rows:
                return
            page = [
                (r[0], dict(r[1] or {}), bytes(r[2]) if with_vector else b"")
                for r in rows
                if not filters or matches(r[1] or {}, filters)
            ]
            yield page
            if len(rows) < _PAGE:
                return
            after = rows[-1][0]

    def _encode(self, vector: Sequence[float]) -> bytes:
        values = np.asarray(
            vector.tolist() if hasattr(vector, "tolist") else [*vector], dtype=np.float32
        )
        if values.shape != (self.embedding_model_dims,):
            raise ValueError(
                f"vector has {values.size} dims; collection {self.collection_name!r} holds "
                f"{self.embedding_model_dims}-d vectors"
            )
        return _unit(values, self.embedding_model_dims).astype("<f4").tobytes()

    def _records(
        self, ids: Sequence[Any] | None, *, after: str | None, limit: int | None, with_vector: bool
    ) -> builtins.list[PgRecord]:
        columns = [points_table.c.id, points_table.c.payload, points_table.c.vector]
        stmt = select(*columns).where(self._in_collection())
        if ids is not None:
            keys = []
            for value in ids:
                try:
                    keys.append(point_key(value))
                except ValueError:
                    continue
            stmt = stmt.where(points_table.c.id.in_(keys))
        if after is not None:
            stmt = stmt.where(points_table.c.id >= after)
        stmt = stmt.order_by(points_table.c.id)
        if limit is not None:
            stmt = stmt.limit(limit)
        with self._reading() as conn:
            rows = conn.execute(stmt).all()
        return [
            PgRecord(
                id=r[0],
                payload=dict(r[1] or {}),
                vector=np.frombuffer(bytes(r[2]), dtype="<f4").astype(float).tolist()
                if with_vector
                else None,
            )
            for r in rows
        ]

    def __enter__(self) -> PgVectorStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class PgPointClient:
    """The part of ``QdrantClient``'s point API that backups use, over a PgVectorStore.

    ``point_io.PointIO`` and ``backup`` read whole points (with vectors) from a Qdrant
    server through ``store.client``; this answers the same calls, so a backup of a
    PostgreSQL-backed fleet is the same file format through the same code.
    """

    def __init__(self, store: PgVectorStore) -> None:
        self._store = store

    def count(
        self, collection_name: str, count_filter: Any = None, exact: bool = True
    ) -> SimpleNamespace:
        self._check(collection_name)
        if count_filter is not None:
            raise NotImplementedError("count the store with mem0 filters: PgVectorStore.count")
        return SimpleNamespace(count=self._store.count())

    def scroll(
        self,
        collection_name: str,
        limit: int = 10,
        offset: Any = None,
        with_payload: bool = True,
        with_vectors: bool = False,
    ) -> tuple[list[PgRecord], str | None]:
        """A page in id order from ``offset`` (inclusive) and the next page's offset."""
        self._check(collection_name)
        after = None if offset is None else point_key(offset)
        rows = self._store._records(None, after=after, limit=limit + 1, with_vector=with_vectors)
        next_offset = rows[limit].id if len(rows) > limit else None
        return rows[:limit], next_offset

    def retrieve(
        self,
        collection_name: str,
        ids: Sequence[Any],
        with_payload: bool = True,
        with_vectors: bool = False,
    ) -> list[PgRecord]:
        self._check(collection_name)
        return self._store._records(list(ids), after=None, limit=None, with_vector=with_vectors)

    def close(self) -> None:
        self._store.close()

    def _check(self, name: str) -> None:
        if name != self._store.collection_name:
            raise ValueError(f"this client serves collection {self._store.collection_name!r}")


# ---------------------------------------------------------------------- filters

_ISO_DATETIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2})?(\.\d+)?(Z|[+-]\d{2}:?\d{2})?)?$"
)
_LOGICAL = {"$or": "OR", "$not": "NOT", "$and": "AND"}


def matches(payload: Mapping[str, Any], filters: Mapping[str, Any] | None) -> bool:
    """Whether ``payload`` passes mem0's filter dict, with Qdrant's semantics."""
    if not filters:
        return True
    normalized: dict[str, Any] = {}
    for key, value in filters.items():
        normalized.setdefault(_LOGICAL.get(key, key), value)
    for key, value in normalized.items():
        if key in ("AND", "OR", "NOT"):
            if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
                raise ValueError(f"{key} filter value must be a list of filter dicts")
            subs = [sub for sub in value if _filters_something(sub)]
            if key == "AND" and not all(matches(payload, sub) for sub in subs):
                return False
            if key == "OR" and subs and not any(matches(payload, sub) for sub in subs):
                return False
            if key == "NOT" and any(matches(payload, sub) for sub in subs):
                return False
            continue
        if not _field_matches(payload, key, value):
            return False
    return True


def _filters_something(filters: Mapping[str, Any]) -> bool:
    """Qdrant drops sub-filters that hold no condition (e.g. only wildcards)."""
    for key, value in filters.items():
        norm = _LOGICAL.get(key, key)
        if norm in ("AND", "OR", "NOT"):
            if any(_filters_something(sub) for sub in value):
                return True
        elif value != "*":
            return True
    return False


def _field_matches(payload: Mapping[str, Any], key: str, value: Any) -> bool:
    stored = _values(payload, key)
    if not isinstance(value, dict):
        if value == "*":
            return True
        if isinstance(value, (list, tuple, set)):
            return any(_same(s, v) for s in stored for v in value)
        return any(_same(s, value) for s in stored)
    range_ops = checked_range_ops(key, value)
    if range_ops:
        return any(_in_range(s, range_ops, key) for s in stored)
    if "eq" in value:
        return any(_same(s, value["eq"]) for s in stored)
    if "ne" in value:
        return not any(_same(s, value["ne"]) for s in stored)
    if "in" in value:
        return any(_same(s, v) for s in stored for v in value["in"])
    if "nin" in value:
        return not any(_same(s, v) for s in stored for v in value["nin"])
    if "contains" in value:
        return any(isinstance(s, str) and str(value["contains"]) in s for s in stored)
    needle = str(value["icontains"]).lower()
    return any(isinstance(s, str) and needle in s.lower() for s in stored)


def _values(payload: Mapping[str, Any], key: str) -> builtins.list[Any]:
    """A payload field's values: a list field matches on any of its elements (Qdrant)."""
    if key not in payload or payload[key] is None:
        return []
    value = payload[key]
    return list(value) if isinstance(value, list) else [value]


def _same(stored: Any, wanted: Any) -> bool:
    if isinstance(stored, bool) or isinstance(wanted, bool):
        return isinstance(stored, bool) and isinstance(wanted, bool) and stored == wanted
    if isinstance(wanted, (int, float)) and isinstance(stored, (int, float)):
        return float(stored) == float(wanted)
    return bool(type(stored) is type(wanted) and stored == wanted)


def _in_range(stored: Any, ops: Mapping[str, Any], key: str) -> bool:
    if all(isinstance(v, str) and _ISO_DATETIME.match(v) for v in ops.values()):
        when = _as_datetime(stored)
        if when is None:
            return False
        bounds = {op: _as_datetime(v) for op, v in ops.items()}
        return _compare(when, bounds)
    try:
        numbers = {op: float(v) for op, v in ops.items()}
    except (TypeError, ValueError) as exc:
        raise ValueError(f"Range filter on {key!r} needs numbers or ISO dates") from exc
    if isinstance(stored, bool) or not isinstance(stored, (int, float)):
        return False
    return _compare(float(stored), numbers)


def _compare(value: Any, bounds: Mapping[str, Any]) -> bool:
    checks = {
        "gt": lambda b: value > b,
        "gte": lambda b: value >= b,
        "lt": lambda b: value < b,
        "lte": lambda b: value <= b,
    }
    return all(checks[op](bound) for op, bound in bounds.items())


def _as_datetime(value: Any) -> datetime | None:
    if not isinstance(value, str) or not _ISO_DATETIME.match(value):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _user_ids(filters: Mapping[str, Any] | None) -> set[str] | None:
    """The user ids a top-level ``user_id`` condition allows (None: no such condition)."""
    if not filters or "user_id" not in filters:
        return None
    value = filters["user_id"]
    if isinstance(value, dict) and set(value) == {"eq"}:
        value = value["eq"]
    elif isinstance(value, dict) and set(value) == {"in"}:
        value = list(value["in"])
    if isinstance(value, str) and value != "*":
        return {value}
    if isinstance(value, (list, tuple, set)) and all(isinstance(v, str) for v in value):
        return set(value)
    return None


def _pushed_only(filters: Mapping[str, Any]) -> bool:
    """Whether SQL alone answers ``filters`` (only a user_id condition)."""
    return set(filters) == {"user_id"} and _user_ids(filters) is not None


def _user_of(payload: Mapping[str, Any]) -> str | None:
    value = payload.get("user_id")
    return value if isinstance(value, str) else None


# ---------------------------------------------------------------------- helpers


def point_key(value: Any) -> str:
    """A point id as Qdrant spells it (a UUID, or an unsigned int): mem0 uses uuid4s."""
    if isinstance(value, bool):
        raise ValueError(f"Invalid point id {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"Invalid point id {value!r}: must be >= 0")
        return str(value)
    text = str(value)
    if text.isdigit():
        return str(int(text))
    try:
        return str(uuid.UUID(text))
    except ValueError:
        raise ValueError(f"Invalid point id {value!r}: must be a UUID or an unsigned int") from None


def _unit(vector: np.ndarray, dims: int) -> np.ndarray:
    if vector.shape != (dims,):
        raise ValueError(f"vector has {vector.size} dims; the store holds {dims}-d vectors")
    norm = float(np.linalg.norm(vector))
    if not math.isfinite(norm):
        raise ValueError("vector has non-finite values")
    return vector / norm if norm > 0 else vector
