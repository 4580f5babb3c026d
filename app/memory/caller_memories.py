"""Caller memories in mem0, one sentence per slot.

mem0 with ``infer=False`` adds whatever it is given, so "Budget about $2,400" followed by
"Budget about $2,800" would leave two contradicting memories. Facts therefore carry their
slot in the metadata, and :meth:`CallerMemories.put` looks the slot up first: same text,
nothing to do (which makes re-indexing idempotent); other text, ``update`` the memory in
place; nothing yet, ``add``. Listing filters on metadata (a payload index on Qdrant)
rather than embedding a query, which keeps context loading within a few milliseconds.

Every method here may raise when the vector backend is down; the service decides what a
failure means for a call.

Caller ids and mem0: mem0 refuses a ``user_id`` with whitespace, while a device id such as
"my phone 7" is a valid caller id (``normalize_caller_id`` keeps printable text, and the
only printable whitespace is the ASCII space). So every method here keys mem0 by
:func:`memory_key`, which leaves an id without spaces as it is (existing memories keep
their key) and writes each space as a private-use character no accepted id can contain,
so two callers can never share a key.
"""

from __future__ import annotations

import builtins
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from app.memory.mem0_engine import PurgeReport, TourlineMemory, forget_user

logger = logging.getLogger(__name__)

DEFAULT_AGENT = "tourline"
# Payload indexes for the metadata we filter on (embedded Qdrant; a server indexes lazily).
INDEX_FIELDS = {"kind": "keyword", "slot": "keyword", "call_id": "keyword"}
_LIST_LIMIT = 1000  # far more than a caller has: facts are one per slot
SPACE_IN_KEY = "\ue020"
"""Stands for a space in a mem0 key: private use, neither whitespace nor printable, so it
is never part of a normalized caller id (``str.isprintable``) and mem0 accepts it."""


def memory_key(caller_id: str) -> str:
    """The mem0 ``user_id`` of a normalized caller id (mem0 refuses whitespace)."""
    return caller_id.replace(" ", SPACE_IN_KEY)


def caller_of(key: str) -> str:
    """The caller id a mem0 ``user_id`` stands for (the inverse of :func:`memory_key`)."""
    return key.replace(SPACE_IN_KEY, " ")


@dataclass(frozen=True)
class MemoryRow:
    """One stored memory, flattened from mem0's result shape."""

    id: str
    text: str
    kind: str | None
    slot: str | None
    call_id: str | None
    created_at: str | None
    updated_at: str | None
    score: float | None = None
    value: str | None = None  # a fact's raw value (e.g. the name), from its metadata

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "memory": self.text,
            "kind": self.kind,
            "slot": self.slot,
            "call_id": self.call_id,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            **({"score": self.score} if self.score is not None else {}),
        }


class CallerMemories:
    """Slot-aware reads and writes of caller memories in one mem0 ``Memory``."""

    def __init__(self, mem0: TourlineMemory, agent: str = DEFAULT_AGENT) -> None:
        self.mem0 = mem0
        self.agent = agent

    @property
    def backend(self) -> str:
        return self.mem0.backend

    # -- writes (background thread only) -------------------------------------------------

    def put(
        self,
        caller_id: str,
        slot: str,
        text: str | None,
        *,
        kind: str = "fact",
        call_id: str | None = None,
        value: str | None = None,
    ) -> str:
        """Make ``slot`` hold ``text`` (or nothing); returns added/updated/unchanged/deleted."""
        existing = self._by_slot(caller_id, slot)
        if text is None:
            for row in existing:
                self.mem0.delete(row.id)
            return "deleted" if existing else "unchanged"
        metadata: dict[str, Any] = {
            "kind": kind,
            "slot": slot,
            "call_id": call_id or "",
            "ts": datetime.now(UTC).isoformat(),
        }
        if value is not None:
            metadata["value"] = value
        if not existing:
            self.mem0.add(
                text,
                user_id=memory_key(caller_id),
                agent_id=self.agent,
                metadata=metadata,
                infer=False,
            )
            return "added"
        keep, *duplicates = existing
        for row in duplicates:  # only after a crash between an add and its bookkeeping
            self.mem0.delete(row.id)
        if keep.text == text:
            return "deleted" if duplicates else "unchanged"
        self.mem0.update(keep.id, text=text, metadata=metadata)
        return "updated"

    def infer(self, caller_id: str, messages: list[dict[str, str]], call_id: str) -> int:
        """mem0's own LLM extraction over a transcript; returns how many memories it wrote."""
        if not messages:
            return 0
        result = self.mem0.add(
            messages,
            user_id=memory_key(caller_id),
            agent_id=self.agent,
            metadata={"kind": "llm", "call_id": call_id, "ts": datetime.now(UTC).isoformat()},
            infer=True,
        )
        return len(result.get("results", []))

    def forget(self, caller_id: str) -> PurgeReport:
        return forget_user(self.mem0, memory_key(caller_id))

    # -- reads (any thread) ------------------------------------------------------------

    def list(self, caller_id: str, limit: int = _LIST_LIMIT) -> list[MemoryRow]:
        """The caller's memories, by metadata filter (no embedding, no ranking)."""
        found = self.mem0.get_all(filters={"user_id": memory_key(caller_id)}, top_k=limit)
        return [_row(item) for item in found.get("results", [])]

    def search(self, caller_id: str, query: str, limit: int = 5) -> builtins.list[MemoryRow]:
        found = self.mem0.search(query, filters={"user_id": memory_key(caller_id)}, top_k=limit)
        return [_row(item) for item in found.get("results", [])]

    def count(self, caller_id: str | None = None) -> int | None:
        """Points stored (for one caller, or all); None when the backend can't count."""
        store = self.mem0.vector_store
        counter = getattr(store, "count", None)
        if counter is not None:  # Qdrant Edge
            return int(counter({"user_id": memory_key(caller_id)} if caller_id else None))
        client = getattr(store, "client", None)
        if client is None or not hasattr(client, "count"):
            return None if caller_id is None else len(self.list(caller_id))
        from qdrant_client import models  # mem0's own qdrant provider (QDRANT_URL)

        only = None
        if caller_id:
            match = models.MatchValue(value=memory_key(caller_id))
            only = models.Filter(must=[models.FieldCondition(key="user_id", match=match)])
        return int(client.count(store.collection_name, count_filter=only, exact=True).count)

    def _by_slot(self, caller_id: str, slot: str) -> builtins.list[MemoryRow]:
        found = self.mem0.get_all(
            filters={"user_id": memory_key(caller_id), "agent_id": self.agent, "slot": slot},
            top_k=100,
        )
        rows = [_row(item) for item in found.get("results", [])]
        return sorted(rows, key=lambda r: r.created_at or "")


def _row(item: dict[str, Any]) -> MemoryRow:
    meta = item.get("metadata") or {}
    return MemoryRow(
        id=str(item["id"]),
        text=str(item.get("memory") or ""),
        kind=meta.get("kind"),
        slot=meta.get("slot"),
        call_id=meta.get("call_id") or None,
        created_at=item.get("created_at"),
        updated_at=item.get("updated_at"),
        score=item.get("score"),
        value=meta.get("value"),
    )
