"""AvatarTransport: the RealtimeLoop's voice as avatar-protocol messages on one socket.

Agent audio goes out as binary PCM16 at ``output_rate``, each sentence followed by a ``mark``
and its ``agent_text``; a barge-in is one ``interrupted``. Clients that can't report playback
(``playback_marks: false``) get their marks confirmed here, when the audio sent so far would
have finished playing in real time, so turn-taking and "what was heard" still work.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from app.channels.avatar import protocol as avatar


class AvatarTransport:
    """Implements ``VoiceTransport`` for one avatar socket."""

    def __init__(self, websocket: WebSocket, output_rate: int, *, playback_marks: bool) -> None:
        self.websocket = websocket
        self.output_rate = output_rate
        self.playback_marks = playback_marks
        self.open = True
        self.ended_sent = False
        self.on_mark: Callable[[str], None] | None = None  # the loop's, for self-confirmed marks
        self._lock = asyncio.Lock()
        self._gate = asyncio.Event()  # nothing from the loop goes out before ``ready``
        self._play_end = 0.0  # when the audio sent so far finishes playing (monotonic)
        self._confirmations: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------------ plumbing

    async def send_json(self, message: dict[str, Any]) -> None:
        """A control message; goes out at once, ahead of the gate (``ready``, ``error``)."""
        await self._send(avatar.dumps(message))

    def open_gate(self) -> None:
        """``ready`` is out: let the loop's greeting through."""
        self._gate.set()

    async def _send(self, *messages: str | bytes) -> None:
        if not self.open:
            return
        async with self._lock:
            try:
                for message in messages:
                    if isinstance(message, bytes):
                        await self.websocket.send_bytes(message)
                    else:
                        await self.websocket.send_text(message)
            except (WebSocketDisconnect, RuntimeError, OSError):
                self.open = False  # the client went away mid-sentence

    async def _send_gated(self, *messages: str | bytes) -> None:
        await self._gate.wait()
        await self._send(*messages)

    # ------------------------------------------------------------------ VoiceTransport

    async def send_audio(self, pcm16: bytes) -> None:
        chunks = avatar.audio_chunks(pcm16, self.output_rate)
        await self._send_gated(*chunks)
        now = time.monotonic()
        self._play_end = max(now, self._play_end) + len(pcm16) / 2 / self.output_rate

    async def send_mark(self, name: str) -> None:
        await self._send_gated(avatar.dumps(avatar.mark(name)))
        if not self.playback_marks:
            task = asyncio.create_task(self._confirm_at(name, self._play_end))
            self._confirmations.add(task)
            task.add_done_callback(self._confirmations.discard)

    async def send_clear(self) -> None:
        self._cancel_confirmations()
        self._play_end = time.monotonic()
        await self._send_gated(avatar.dumps(avatar.simple("interrupted")))

    async def notify(self, event: str, **fields: Any) -> None:
        """The loop's conversation events, in protocol terms."""
        if event == "user_transcript":
            message = avatar.transcript(str(fields["text"]), final=bool(fields.get("final")))
        elif event == "agent_text":
            message = avatar.agent_text(str(fields["text"]), str(fields["mark"]))
        elif event == "agent_done":
            message = avatar.agent_done(str(fields["text"]), str(fields.get("reply", "")))
        elif event == "interrupted":
            return  # already said by send_clear, which the loop calls just before
        elif event == "conversation_ended":
            if self.ended_sent:
                return
            self.ended_sent = True
            message = avatar.simple("conversation_ended")
        else:
            message = {"type": event, **fields}  # a newer loop event: pass it on as is
        await self._send_gated(avatar.dumps(message))

    # ------------------------------------------------------------------ self-confirmed marks

    async def _confirm_at(self, name: str, due: float) -> None:
        """Playback reached ``name`` on a client that won't tell us: say so for it."""
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        if self.on_mark is not None and self.open:
            self.on_mark(name)

    def _cancel_confirmations(self) -> None:
        for task in list(self._confirmations):
            task.cancel()
        self._confirmations.clear()

    async def aclose(self) -> None:
        """Stop confirming marks; nothing more goes out."""
        self.open = False
        self._gate.set()
        tasks = list(self._confirmations)
        self._cancel_confirmations()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
