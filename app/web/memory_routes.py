"""The memory REST API: search, stats, batch check, health, and a caller's record.

Every route goes through the Runtime's memory (a :class:`MemoryService`, or None when the
vector store could not be opened at start-up: then 503) and, with ``TOURLINE_API_KEY`` set,
needs the key (:mod:`app.channels.api_key`). Caller ids in paths are normalized exactly as
memory keys them, so ``/callers/(415) 555-0123`` and ``/callers/+14155550123`` are the same
caller; an unusable id is a 422 that says why.

Work on the memory service runs in a thread: it does database I/O, embeds queries, and
``check_batch``/``forget`` wait for the memory worker, none of which may stall the event
loop that carries call audio.

``agent`` in the ``/memory/*`` paths is kept from the earlier API. Tourline runs one agent,
so it is echoed back and passed to the batch check, not used to split a caller's memories.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Query, status
from fastapi.responses import JSONResponse
from sqlalchemy import func, select

from app.channels.api_key import require_api_key
from app.channels.deps import RuntimeDep
from app.domain.identity import InvalidCallerId, is_phone, masked, normalize_caller_id
from app.domain.state import PlannerState
from app.memory.service import MemoryService
from app.memory.worker import WorkerClosedError
from app.stores.conversations import calls
from app.stores.opt_outs import OptOutStore
from app.stores.outbox import OutboxStore

__all__ = ["MIN_SEARCH_SCORE", "caller_key", "router"]

log = logging.getLogger("tourline.memory_api")
router = APIRouter(tags=["memory"], dependencies=[Depends(require_api_key)])

T = TypeVar("T")

# Calibrated with `python bench/memory_scale.py` (its "score cutoff" table in
# docs/benchmarks.md; labelled set in bench/memory_labels.py: 51 caller questions over 8
# callers with 12-17 memories each, in Tourline's own fact/summary wording, plus 96
# questions no memory answers). e5-small cosine scores are compressed into ~0.72-0.90 and
# the two groups overlap: right answers scored 0.79-0.88, the best hit of an unrelated
# question up to 0.845 (call summaries mention many things and match a bit of everything).
# Measured: 0.80 keeps 96% of right answers in the top 5 but turns away only 59% of
# unrelated questions; 0.81 keeps 92% and turns away 74%, and halves the other memories
# above the cutoff in a top 5 (3.7 -> 2.0); at 0.82 right answers drop to 84%. So 0.81:
# the highest cutoff that still keeps 9 in 10 right answers. Applied only when a query is
# given: a blank query lists the caller's memories in context order, unscored.
MIN_SEARCH_SCORE = 0.81

_PHONE_LIKE = re.compile(r"^[\d\s().+-]+$")
UNAVAILABLE = (
    "caller memory is unavailable: its vector store could not be opened when the server "
    "started (see the server log); calls go on without memory until it is restarted"
)


def caller_key(raw: str) -> str:
    """The normalized caller id, or a 422 that says what is wrong with ``raw``."""
    try:
        cid = normalize_caller_id(raw)
    except InvalidCallerId as exc:
        raise _invalid(raw, str(exc)) from None
    if _PHONE_LIKE.match(cid) and not is_phone(cid):
        raise _invalid(raw, "looks like a phone number but is not a possible one")
    return cid


def _invalid(raw: str, why: str) -> HTTPException:
    return HTTPException(
        422,
        detail=(
            f"invalid caller id {raw!r}: {why}. Use a phone number (any format, e.g. "
            "+14155550123), an email address or a device id."
        ),
    )


def _memory(runtime: RuntimeDep) -> MemoryService:
    memory = runtime.memory
    if memory is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail=UNAVAILABLE)
    return memory


Memory = Annotated[MemoryService, Depends(_memory)]


async def _run(what: str, fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` in a thread; a failing memory backend becomes a 503 that says so."""
    try:
        return await asyncio.to_thread(fn, *args)
    except HTTPException:
        raise
    except WorkerClosedError:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, detail="caller memory is shutting down"
        ) from None
    except TimeoutError:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            detail=f"caller memory is busy: {what} did not finish in time; try again",
        ) from None
    except Exception as exc:
        log.exception("memory %s failed", what)
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            detail=f"caller memory is unavailable: {what} failed ({type(exc).__name__}: {exc})",
        ) from None


def _match(row: dict[str, Any]) -> dict[str, Any]:
    """One search hit: text and score on top, the rest as metadata."""
    return {
        "id": row["id"],
        "text": row["memory"],
        "memory": row["memory"],  # mem0's name for it
        "score": row.get("score"),
        "metadata": {
            key: row.get(key) for key in ("kind", "slot", "call_id", "created_at", "updated_at")
        },
    }


@router.get("/memory/search/{user_id}/{agent}")
async def search(
    user_id: str,
    agent: str,
    memory: Memory,
    query: Annotated[str, Query(max_length=1000)] = "",
    limit: Annotated[int, Query(ge=1, le=100)] = 5,
) -> dict[str, Any]:
    """The caller's memories closest to ``query`` (all of them, in context order, if blank)."""
    cid = caller_key(user_id)
    rows = await _run("search", memory.search, cid, query, limit)
    asked = bool(query.strip())
    if asked:
        rows = [r for r in rows if (r.get("score") or 0.0) >= MIN_SEARCH_SCORE]
    results = [_match(r) for r in rows]
    return {
        "user_id": cid,
        "agent": agent,
        "query": query,
        "limit": limit,
        "min_score": MIN_SEARCH_SCORE if asked else None,
        "count": len(results),
        "results": results,
    }


@router.get("/memory/stats/{user_id}/{agent}")
async def stats(user_id: str, agent: str, memory: Memory) -> dict[str, Any]:
    """Counts for one caller: calls, exchanges (unsynced), snapshots, memories by kind."""
    cid = caller_key(user_id)
    found = await _run("stats", memory.stats, cid)
    return {"user_id": cid, "agent": agent, **found}


@router.post("/memory/check-batch/{user_id}/{agent}")
async def check_batch(user_id: str, agent: str, memory: Memory) -> dict[str, Any]:
    """Consolidate now if 25+ exchanges are unsynced or an ended call is pending."""
    cid = caller_key(user_id)
    found = await _run("check-batch", memory.check_batch, cid, agent)
    return {"user_id": cid, **found}


@router.get("/memory/health")
async def health(runtime: RuntimeDep) -> JSONResponse:
    """Backend, persistence, counts, storage size and last backup; 503 when degraded."""
    memory = runtime.memory
    if memory is None:
        body = {"ok": False, "backend": None, "persistent": None, "detail": UNAVAILABLE}
        return JSONResponse(body, status_code=status.HTTP_503_SERVICE_UNAVAILABLE)
    report = await _run("health", memory.health)
    code = status.HTTP_200_OK if report.get("ok") else status.HTTP_503_SERVICE_UNAVAILABLE
    return JSONResponse(report, status_code=code)


@router.get("/callers")
async def list_callers(
    memory: Memory,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    q: Annotated[str, Query(max_length=320)] = "",
) -> dict[str, Any]:
    """Callers and avatar users, most recent first (``q``: part of the caller id)."""
    rows = await _run("caller list", _caller_list, memory, limit, q.strip())
    return {"count": len(rows), "limit": limit, "q": q, "callers": rows}


def _caller_list(memory: MemoryService, limit: int, q: str) -> list[dict[str, Any]]:
    """One row per caller from the calls table, named from their latest snapshot.

    Why not mem0: the dashboard lists everyone, and the durable log knows everyone at once.
    """
    last = func.max(calls.c.started_at).label("last")
    query = select(calls.c.caller_id, func.count().label("n"), last).group_by(calls.c.caller_id)
    if q:
        query = query.where(func.lower(calls.c.caller_id).contains(q.lower(), autoescape=True))
    with memory.engine.connect() as conn:
        found = conn.execute(query.order_by(last.desc()).limit(limit)).all()
        ids = [r.caller_id for r in found]
        channels: dict[str, set[str]] = {}
        if ids:
            pairs = select(calls.c.caller_id, calls.c.channel).where(calls.c.caller_id.in_(ids))
            for cid, channel in conn.execute(pairs.distinct()):
                channels.setdefault(cid, set()).add(channel)
    out = []
    for row in found:
        snapshot = memory.store.latest_snapshot(row.caller_id)
        name = PlannerState.from_json(snapshot.state_json).caller_name if snapshot else None
        out.append(
            {
                "caller_id": row.caller_id,
                "name": name,
                "channels": sorted(channels.get(row.caller_id, ())),
                "calls": int(row.n),
                "last_call_at": _iso_utc(row.last),
            }
        )
    return out


def _iso_utc(value: datetime | str | None) -> str | None:
    """ISO 8601 in UTC; SQLite hands ``max()`` of a datetime column back as a naive string."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()


@router.get("/callers/{caller_id}")
async def get_caller(caller_id: str, memory: Memory) -> dict[str, Any]:
    """Profile (latest known facts), memories, recent calls and any upcoming booking."""
    cid = caller_key(caller_id)
    profile = await _run("caller lookup", memory.caller_profile, cid)
    if profile is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no caller {cid} is known")
    profile["messages"], profile["texts_opted_out"] = await _run(
        "caller messages", _messages, memory, cid
    )
    return profile


MESSAGES_SHOWN = 100


def _messages(memory: MemoryService, cid: str) -> tuple[list[dict[str, Any]], bool]:
    """The caller's texts, newest first: what they texted in and the replies (text
    sessions), and what the outbox sent them (confirmations, reminders...) with its
    delivery status; and whether they opted out of texts."""
    found: list[dict[str, Any]] = []
    for e in memory.store.text_exchanges(cid, MESSAGES_SHOWN):
        inbound = e.role == "user"
        found.append(
            {
                "direction": "in" if inbound else "out",
                "kind": "message" if inbound else "reply",
                "channel": e.channel,
                "text": e.text,
                "status": "received" if inbound else "replied",
                "at": _iso_utc(e.created_at),
                "call_id": e.call_id,
                "error": None,
            }
        )
    for m in OutboxStore(memory.engine).for_caller(cid, MESSAGES_SHOWN):
        found.append(
            {
                "direction": "out",
                "kind": m.kind,
                "channel": m.channel,
                "text": m.body,
                "status": m.status,
                "at": _iso_utc(m.sent_at or m.created_at),
                "call_id": None,
                "error": m.last_error,
                "booking_code": m.booking_code,
                "address": m.address,
                "attempts": m.attempts,
            }
        )
    found.sort(key=lambda item: item["at"] or "", reverse=True)
    opted_out = OptOutStore(memory.engine).is_opted_out(cid)
    return found[:MESSAGES_SHOWN], opted_out


@router.delete("/callers/{caller_id}")
async def forget_caller(caller_id: str, memory: Memory) -> dict[str, Any]:
    """Purge every trace of the caller, cancel their bookings, say what was removed."""
    cid = caller_key(caller_id)
    removed = await _run("forget", memory.forget, cid)
    counts = {k: v for k, v in removed.items() if k != "caller_id"}  # the id goes masked
    log.info("forgot caller %s through the API: %s", masked(cid), counts)
    return {"forgotten": True, **removed}
