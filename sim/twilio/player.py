"""Twilio's playback of what the server sends (media, marks, clear), and its records.

Marks are echoed only when playback reaches them, as Twilio does, because the server
learns from those echoes which of its sentences the caller heard; ``AgentTurn`` is one
agent turn as it was played.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final

from websockets.exceptions import ConnectionClosed

from app.audio.codec import PHONE_SAMPLE_RATE, ulaw_to_pcm16

_OUTBOUND_EVENTS: Final = frozenset({"media", "mark", "clear"})
"""The only messages Twilio accepts from the server on a bidirectional stream."""


@dataclass
class Outbound:
    """One message the server sent, as received."""

    at: float
    event: str
    message: dict[str, Any]


@dataclass
class _Media:
    at: float
    payload: bytes
    start: float  # when Twilio's player starts playing it
    end: float
    played: int | None = None  # bytes heard if a clear or hang-up cut it; None: all of it

    def heard(self) -> bytes:
        return self.payload if self.played is None else self.payload[: self.played]


@dataclass
class _Mark:
    at: float
    name: str
    due: float  # when playback reaches it
    echoed_at: float | None = None
    by_clear: bool = False


@dataclass
class _Clear:
    at: float


_Item = _Media | _Mark | _Clear


class Player:
    """Twilio's playback buffer for one call, plus a record of what the server sent.

    Event-driven rather than a 20 ms loop: each media chunk is scheduled to play right after
    the previous one (or now, if the buffer ran dry), which is real-time playback without a
    second clock to drift. ``clear`` cuts the chunk playing now, drops the rest and echoes
    pending marks at once; a closing socket cuts playback the same way but echoes nothing.
    """

    def __init__(self, echo: Callable[[str], Awaitable[None]]) -> None:
        self._echo = echo
        self.items: list[_Item] = []
        self.outbound: list[Outbound] = []
        self.violations: list[str] = []
        self.play_end = 0.0
        self.last_message_at = 0.0
        self.last_echo_at = 0.0
        self.closed_at: float | None = None
        self._pending: deque[_Mark] = deque()
        self._changed = asyncio.Event()

    # -- waiting

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def wait_change(self, timeout_s: float | None) -> None:
        """Return when anything changes (or after ``timeout_s``)."""
        changed = self._changed
        if timeout_s is not None and timeout_s <= 0:
            await asyncio.sleep(0)
            return
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancel that
        # lands as the event fires, and then ``run`` never ends and a hang-up hangs.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await changed.wait()

    # -- inbound from the server

    def on_message(self, raw: str | bytes, now: float) -> None:
        """Record, validate and act on one server message."""
        self.last_message_at = now
        if isinstance(raw, bytes):
            self.violations.append(f"binary frame of {len(raw)} bytes")
            self.outbound.append(Outbound(now, "<binary>", {}))
            return
        try:
            message = json.loads(raw)
        except ValueError:
            self.violations.append(f"not JSON: {raw[:200]!r}")
            self.outbound.append(Outbound(now, "<invalid>", {}))
            return
        if not isinstance(message, dict):
            self.violations.append(f"not a JSON object: {raw[:200]!r}")
            self.outbound.append(Outbound(now, "<invalid>", {}))
            return
        event = str(message.get("event"))
        self.outbound.append(Outbound(now, event, message))
        if event not in _OUTBOUND_EVENTS:
            self.violations.append(f"event {event!r} is not one Twilio accepts: {raw[:200]}")
            return
        if event == "media":
            self._on_media(message, now)
        elif event == "mark":
            name = (message.get("mark") or {}).get("name")
            if not isinstance(name, str) or not name:
                self.violations.append(f"mark without a name: {raw[:200]}")
                return
            self._pending.append(_Mark(now, name, due=max(now, self.play_end)))
            self.items.append(self._pending[-1])
        else:
            self._on_clear(now)
        self._notify()

    def _on_media(self, message: dict[str, Any], now: float) -> None:
        payload = (message.get("media") or {}).get("payload")
        try:
            audio = base64.b64decode(str(payload), validate=True)
        except (binascii.Error, ValueError):
            self.violations.append(f"media payload is not base64: {str(payload)[:80]!r}")
            return
        if not audio:
            self.violations.append("media with an empty payload")
            return
        start = max(now, self.play_end)
        end = start + len(audio) / PHONE_SAMPLE_RATE
        self.play_end = end
        self.items.append(_Media(now, audio, start, end))

    def _cut_playback(self, now: float) -> None:
        for item in reversed(self.items):
            if isinstance(item, _Media):
                if item.end <= now:
                    break
                played = int((now - item.start) * PHONE_SAMPLE_RATE) if now > item.start else 0
                item.played = max(0, min(len(item.payload), played))
        self.play_end = now

    def _on_clear(self, now: float) -> None:
        self._cut_playback(now)
        for mark in self._pending:
            mark.due = now
            mark.by_clear = True
        self.items.append(_Clear(now))

    def on_closed(self, now: float) -> None:
        """The socket is gone: playback stops where it is, pending marks are never echoed."""
        if self.closed_at is None:
            self.closed_at = now
            self._cut_playback(now)
            self._pending.clear()
            self._notify()

    # -- the playback clock for marks

    async def run(self) -> None:
        """Echo each mark when playback reaches it (or at once after a clear)."""
        while True:
            if not self._pending:
                await self.wait_change(None)
                continue
            head = self._pending[0]
            wait = head.due - time.monotonic()
            if wait > 0:
                await self.wait_change(wait)
                continue
            self._pending.popleft()
            try:
                await self._echo(head.name)
            except ConnectionClosed:
                return
            head.echoed_at = self.last_echo_at = time.monotonic()
            self._notify()

    # -- queries

    @property
    def pending_marks(self) -> int:
        return len(self._pending)

    @property
    def last_activity(self) -> float:
        """When the line last had agent activity: a message, an echo, or audio playing."""
        return max(self.last_message_at, self.last_echo_at, self.play_end)

    def drained(self, now: float) -> bool:
        return now >= self.play_end and not self._pending


@dataclass(frozen=True)
class AgentTurn:
    """One stretch of agent speech, as the caller's phone got it.

    ``audio`` is what was actually played (a clear or hang-up cuts it); ``received`` is
    everything the server sent for the turn; ``segments`` splits ``audio`` at the server's
    marks (one per sentence or clause), which is how ``transcribe`` reads it.
    """

    audio: bytes = field(repr=False)
    received: bytes = field(repr=False)
    segments: tuple[bytes, ...] = field(repr=False)
    first_frame_at: float
    last_frame_at: float
    marks: tuple[str, ...]
    marks_heard: tuple[str, ...]
    cleared: bool
    clear_at: float | None
    cut_by_hangup: bool

    @property
    def pcm8k(self) -> bytes:
        """PCM16 at 8 kHz of what was played."""
        return ulaw_to_pcm16(self.audio)

    @property
    def duration_s(self) -> float:
        return len(self.audio) / PHONE_SAMPLE_RATE
