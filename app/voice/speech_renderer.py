"""The agent's voice: text to PCM16 at the transport's rate, with a cache of fixed phrases.

Why a cache: most of what a leasing agent says is fixed ("May I have your name?", the
greeting, the building question). Rendered once, those start playing the moment the planner
picks them instead of after a ~150-300 ms Piper run. Variable sentences ("Nice to meet you,
Dana.") are cached too, in a bounded LRU, so a repeat or re-prompt is free.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable

import numpy as np
import soxr

from app.audio.codec import array_to_pcm16, pcm16_to_array
from app.audio.tts import TextToSpeech
from app.voice.compute_pool import BACKGROUND, NORMAL, URGENT, ComputePool
from app.voice.phrase_store import PhraseStore

log = logging.getLogger(__name__)

ONSET_LEAD_MS = 10
"""Near-silence every rendered clip starts with: no step from the line's silence into speech."""
ONSET_FADE_MS = 5
NEAR_SILENT = 100
"""|sample| at or under this (-50 dBFS) is silence on a phone line."""


class PhraseCache:
    """Thread-safe cache of rendered audio, keyed by (text, rate).

    Two kinds of entry. Fixed phrases (``pinned``: the greeting, the questions, rendered
    by ``prewarm``) stay for the life of the process: there are ~150 of them and every
    call needs them. Everything else (sentences with a name, a date, a confirmation code)
    is an LRU bounded by count *and* bytes. Why the bytes: a sentence is 50-200 KB (its
    native 22 kHz audio plus the phone's 8 kHz copy), most are never said twice, and a
    count-only bound of 1024 let a soak of 10 continuous calls grow the server by ~100 MB.
    """

    def __init__(self, capacity: int = 1024, max_bytes: int = 24 * 2**20) -> None:
        self.capacity = capacity
        self.max_bytes = max_bytes
        self._items: OrderedDict[tuple[str, int], bytes] = OrderedDict()
        self._pinned: dict[tuple[str, int], bytes] = {}
        self._bytes = 0  # of ``_items`` (the LRU part)
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, text: str, rate: int) -> bytes | None:
        key = (text, rate)
        with self._lock:
            audio = self._pinned.get(key)
            if audio is None:
                audio = self._items.get(key)
                if audio is None:
                    self.misses += 1
                    return None
                self._items.move_to_end(key)
            self.hits += 1
            return audio

    def contains(self, text: str, rate: int) -> bool:
        """A lookup that does not count as a hit or miss."""
        with self._lock:
            return (text, rate) in self._pinned or (text, rate) in self._items

    def put(self, text: str, rate: int, audio: bytes, *, pinned: bool = False) -> None:
        """Keep ``audio``; a ``pinned`` (fixed) phrase is never evicted."""
        key = (text, rate)
        with self._lock:
            if pinned:
                self._pinned[key] = audio
                self._drop(key)
                return
            if key in self._pinned:
                return
            self._drop(key)
            self._items[key] = audio
            self._bytes += len(audio)
            while self._items and (
                len(self._items) > self.capacity or self._bytes > self.max_bytes
            ):
                _, evicted = self._items.popitem(last=False)
                self._bytes -= len(evicted)

    def _drop(self, key: tuple[str, int]) -> None:
        old = self._items.pop(key, None)
        if old is not None:
            self._bytes -= len(old)

    @property
    def nbytes(self) -> int:
        """Audio bytes held, pinned and not."""
        with self._lock:
            return self._bytes + sum(len(a) for a in self._pinned.values())

    def __len__(self) -> int:
        return len(self._items) + len(self._pinned)


class SpeechRenderer:
    """Renders sentences on the shared compute pool, resampled for one output rate."""

    def __init__(
        self,
        tts: TextToSpeech,
        pool: ComputePool,
        cache: PhraseCache,
        store: PhraseStore | None = None,
    ) -> None:
        self.tts = tts
        self.pool = pool
        self.cache = cache
        self.store = store
        """Fixed phrases on disk across restarts (``prewarm`` only: never a caller's words)."""
        self._in_flight: dict[tuple[str, int], asyncio.Future[bytes]] = {}

    def is_cached(self, text: str, rate: int) -> bool:
        """Ready at once: rendered for this rate, or in the voice's own rate (a ~1 ms resample)."""
        return self.cache.contains(text, rate) or self.cache.contains(text, self.tts.sample_rate)

    async def render(
        self, owner: str, text: str, rate: int, *, priority: int = URGENT
    ) -> tuple[bytes, bool]:
        """(PCM16 mono at ``rate``, whether it came from the cache)."""
        audio = self.cache.get(text, rate)
        if audio is not None:
            return audio, True
        key = (text, rate)
        pending = self._in_flight.get(key)
        if pending is None:
            # Shielded and shared: a prediction's render that is still running serves the
            # real reply too, and one waiter giving up does not cancel it for the others.
            job = self.pool.run(owner, self.render_now, text, rate, priority=priority)
            pending = asyncio.ensure_future(job)
            self._in_flight[key] = pending
            pending.add_done_callback(lambda done: self._settled(key, done))
        return await asyncio.shield(pending), False

    def _settled(self, key: tuple[str, int], done: asyncio.Future[bytes]) -> None:
        self._in_flight.pop(key, None)
        if not done.cancelled() and done.exception() is not None:
            log.warning("rendering %r failed: %r", key[0], done.exception())

    def render_now(self, text: str, rate: int, *, fixed: bool = False) -> bytes:
        """Synthesize (or reuse the voice's own-rate audio) and resample; cached for next time.

        The voice's native audio is cached too, so a phrase rendered for the phone (8 kHz)
        costs only a ~1 ms resample for an avatar client (16 kHz), not another synthesis.
        A ``fixed`` phrase is also read from, or written to, the on-disk store.
        """
        native_rate = self.tts.sample_rate
        pcm = self.cache.get(text, native_rate)
        store = self.store if fixed else None
        if pcm is None and store is not None:
            pcm = store.load(text)
        if pcm is None:
            pcm = clean_onset(b"".join(self.tts.synthesize(text)), native_rate)
            if store is not None:
                store.save(text, pcm)
        self.cache.put(text, native_rate, pcm, pinned=fixed)
        if native_rate != rate and pcm:
            samples = soxr.resample(pcm16_to_array(pcm), native_rate, rate, "HQ")
            pcm = array_to_pcm16(np.asarray(samples, dtype=np.int16))
        self.cache.put(text, rate, pcm, pinned=fixed)
        return pcm

    async def prewarm(
        self, phrases: Iterable[str], rate: int, *, priority: int = BACKGROUND
    ) -> int:
        """Render fixed phrases ahead of need, all at once on the pool; returns how many."""
        missing = [
            text
            for text in dict.fromkeys(p for p in phrases if p.strip())
            if not self.cache.contains(text, rate)
        ]
        await asyncio.gather(
            *(
                self.pool.run(
                    "prewarm",
                    functools.partial(self.render_now, fixed=True),
                    text,
                    rate,
                    priority=priority,
                )
                for text in missing
            )
        )
        return len(missing)


def clean_onset(pcm: bytes, rate: int) -> bytes:
    """The clip with at least ``ONSET_LEAD_MS`` of near-silence first, faded in if it had none.

    Why: a voice that starts a fricative on sample 0 ("Sure", "So") steps from the line's
    silence straight to speech level; phones and recognizers lose the first few ms of such a
    step. Clips that already start quietly (most) come back unchanged.
    """
    samples = pcm16_to_array(pcm)
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > NEAR_SILENT)
    lead = rate * ONSET_LEAD_MS // 1000
    if not loud.size or loud[0] >= lead:
        return pcm
    fade = min(samples.size, rate * ONSET_FADE_MS // 1000)
    faded = samples.astype(np.float32)
    faded[:fade] *= (1 - np.cos(np.linspace(0, np.pi, fade, dtype=np.float32))) / 2
    padding = np.zeros(lead - loud[0], dtype=np.float32)
    return array_to_pcm16(np.rint(np.concatenate([padding, faded])).astype(np.int16))


def render_priorities(chunks: list[str], is_ready: Callable[[str], bool]) -> list[int]:
    """URGENT for the first chunk that is not rendered yet, NORMAL for the rest.

    Why: a cached opening ("Got it:") plays for about half a second; the chunk after it is
    then what the caller waits on. At NORMAL it queued behind other calls' transcriptions
    for over a second at 10 calls, and the caller, hearing silence, spoke again.
    """
    priorities: list[int] = []
    urgent_given = False
    for chunk in chunks:
        urgent = not urgent_given and not is_ready(chunk)
        urgent_given |= urgent
        priorities.append(URGENT if urgent or not priorities else NORMAL)
    return priorities


def render_key() -> str:
    """What of this module shapes a stored clip: a change to the onset cleaning starts a
    fresh phrase store rather than replaying audio cleaned the old way."""
    return inspect.getsource(clean_onset) + f"{ONSET_LEAD_MS},{ONSET_FADE_MS},{NEAR_SILENT}"
