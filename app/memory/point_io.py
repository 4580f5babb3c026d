"""Whole points (id, vector, payload) in and out of mem0's vector store, for backups.

mem0's ``VectorStoreBase`` lists payloads but never vectors, and a backup that had to
re-embed every memory on import would take hours at scale and could not promise the same
records back. So this reads and writes points directly, with their vectors, on the two
backends Tourline runs: Qdrant Edge (embedded, :class:`EdgeVectorStore`) and a Qdrant
server (mem0's own ``qdrant`` provider, which holds a ``QdrantClient``). Writes go through
the store's mem0 ``insert`` on both, so payloads keep exactly mem0's shape.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import qdrant_edge as qe

from app.memory.vector_edge import EdgeVectorStore

if TYPE_CHECKING:
    from qdrant_client import QdrantClient, models

__all__ = ["Point", "PointIO", "decode_vector", "encode_vector"]

PAGE = 1000


@dataclass(frozen=True)
class Point:
    id: str
    vector: list[float] | None
    payload: dict[str, Any]


def encode_vector(vector: Sequence[float]) -> str:
    """float32, little-endian, base64: exact for what Qdrant stores, ~4x smaller than JSON."""
    return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")


def decode_vector(text: str) -> list[float]:
    vector: list[float] = np.frombuffer(base64.b64decode(text), dtype="<f4").astype(float).tolist()
    return vector


class PointIO:
    """Scroll, look up and insert whole points of one mem0 vector store."""

    def __init__(self, store: Any) -> None:
        self.store = store
        if isinstance(store, EdgeVectorStore):
            self._edge: EdgeVectorStore | None = store
            self._client: QdrantClient | None = None
        elif hasattr(store, "client") and hasattr(store, "collection_name"):
            self._edge = None
            self._client = store.client
        else:
            raise TypeError(f"no point access for vector store {type(store).__name__}")

    @property
    def dims(self) -> int | None:
        dims = getattr(self.store, "embedding_model_dims", None)
        return int(dims) if dims else None

    @property
    def _server(self) -> QdrantClient:
        """The Qdrant server's client (``__init__`` set it when the store is not Edge)."""
        assert self._client is not None
        return self._client

    def count(self) -> int:
        if self._edge is not None:
            return self._edge.count()
        return int(self._server.count(self.store.collection_name, exact=True).count)

    def scroll(self) -> Iterator[list[Point]]:
        """Every point with its vector, in id order, a page at a time."""
        offset: Any = None
        records: list[qe.Record] | list[models.Record]
        while True:
            if self._edge is not None:
                request = qe.ScrollRequest(
                    offset=offset, limit=PAGE, filter=None, with_payload=True, with_vector=True
                )
                records, offset = self._edge.shard.scroll(request)
            else:
                records, offset = self._server.scroll(
                    self.store.collection_name,
                    limit=PAGE,
                    offset=offset,
                    with_payload=True,
                    with_vectors=True,
                )
            if records:
                yield [_point(r) for r in records]
            if offset is None or not records:
                return

    def existing(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Payloads of the points among ``ids`` that are already stored."""
        return {str(r.id): dict(r.payload or {}) for r in self._records(ids, vectors=False)}

    def retrieve(self, ids: Sequence[str]) -> list[Point]:
        """Whole stored points (with their vectors) among ``ids``: what putting a
        replaced memory back needs (``existing`` reads payloads only)."""
        return [_point(r) for r in self._records(ids, vectors=True)]

    def _records(
        self, ids: Sequence[str], *, vectors: bool
    ) -> list[qe.Record] | list[models.Record]:
        if not ids:
            return []
        wanted = [_uuid_or_int(i) for i in ids]
        if self._edge is not None:
            edge_ids: list[qe.PointId] = list(wanted)
            return self._edge.shard.retrieve(edge_ids, with_payload=True, with_vector=vectors)
        return self._server.retrieve(
            self.store.collection_name, ids=wanted, with_payload=True, with_vectors=vectors
        )

    def insert(self, points: Sequence[Point]) -> None:
        if not points:
            return
        missing = [p.id for p in points if p.vector is None]
        if missing:
            raise ValueError(f"points without a vector: {missing[:3]}")
        self.store.insert(
            vectors=[p.vector for p in points],
            payloads=[p.payload for p in points],
            ids=[p.id for p in points],
        )

    def flush(self) -> None:
        if self._edge is not None:
            self._edge.flush()


def _point(record: Any) -> Point:
    return Point(str(record.id), _plain_vector(record.vector), dict(record.payload or {}))


def _plain_vector(vector: Any) -> list[float] | None:
    if vector is None:
        return None
    if isinstance(vector, dict):  # a named-vector collection: mem0 uses the unnamed one
        vector = vector.get("") or next(iter(vector.values()), None)
    return None if vector is None else [float(x) for x in vector]


def _uuid_or_int(value: str) -> str | int:
    if value.isdigit():
        return int(value)
    return str(uuid.UUID(value))
