"""``WS /avatar``: one avatar client (web or mobile talking head) bridged to one RealtimeLoop.

Same loop and same memory as a phone call, so barge-in, turn-taking and "welcome back" are
the phone's. Who is there is proven, not claimed: a device id needs nothing and lives in its
own ``device:`` namespace; a phone number, email or user id comes only from a token signed
with ``TOURLINE_AVATAR_SECRET`` (:mod:`app.channels.avatar.tokens`). The admin key
(``TOURLINE_API_KEY``) is no avatar credential.

This module only checks who is there, translates messages
(:mod:`app.channels.avatar.protocol`) and keeps the socket alive. A bad message costs only
its own session: an ``error`` event, or a close code that says why; ``_end`` always hangs up
the loop and closes the call's FlightRecorder.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

import numpy as np
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from app.audio.codec import Resampler, array_to_pcm16
from app.channels.admission import ADMISSIONS
from app.channels.avatar import protocol as avatar
from app.channels.avatar.secret import signing_secret
from app.channels.avatar.transport import AvatarTransport
from app.channels.deps import RuntimeDep
from app.channels.rate_limit import TokenBucket
from app.domain.identity import masked
from app.logging.flight_recorder import FlightRecorder
from app.logging.metrics import call_rejected, ws_closed
from app.runtime import Runtime
from app.voice.realtime_loop import RealtimeLoop

log = logging.getLogger("tourline.avatar")

HELLO_TIMEOUT_S = 10.0
PING_INTERVAL_S = 20.0
"""The server pings a client it has not heard from for this long..."""
IDLE_TIMEOUT_S = 60.0
"""...and closes the socket (1008) after this long without any message."""
MAX_ERRORS = 20
"""Bad messages one session may send before it is closed (1008)."""
TEXT_BURST = 20
TEXT_PER_SECOND = 5.0
"""Typed turns: a burst of 20, then 5 a second; the rest get ``rate_limited``. A scripted
client (``tourline chat`` with piped input) sends its next line as soon as a reply is done,
so a limit at human typing speed would refuse it; a flood is still cut to a trickle."""
MEMORY_BURST = 10
MEMORY_PER_SECOND = 2.0
"""``memory`` requests (a page refreshing its panel): each one reads the database."""


def new_session_id() -> str:
    """``AV`` + 32 hex digits: shaped like Twilio's CA... ids, and a valid timeline id."""
    return "AV" + uuid.uuid4().hex


class _Closed(Exception):
    """This session is over (the socket was closed by us or the client)."""


class AvatarSession:
    """One avatar socket, from ``hello`` to ``bye``, goodbye, or a close."""

    def __init__(self, websocket: WebSocket, runtime: Runtime) -> None:
        self.websocket = websocket
        self.runtime = runtime
        self.caller_id = ""  # proven by the hello: "device:<id>", or a token's subject
        self.session_id = new_session_id()
        self.loop: RealtimeLoop | None = None
        self.transport: AvatarTransport | None = None
        self.recorder: FlightRecorder | None = None
        self.resampler: Resampler | None = None
        self.end_reason = "socket closed"
        self.errors = 0
        self._typed = TokenBucket(TEXT_BURST, TEXT_PER_SECOND)
        self._memory_asks = TokenBucket(MEMORY_BURST, MEMORY_PER_SECOND)
        self._last_heard = time.monotonic()
        self._tasks: list[asyncio.Task[None]] = []

    # ------------------------------------------------------------------ the socket

    async def run(self) -> None:
        try:
            hello = await self._hello()
            if hello is None:
                return
            await self._start(hello)
            while True:
                data = await self._receive()
                await self._handle(data)
        except _Closed:
            pass
        except Exception:
            log.exception("avatar session %s failed", self.session_id)
            self.end_reason = "server error"
            await self._close(avatar.CLOSE_INTERNAL, "server_error", "internal error; see log")
        finally:
            await self._end(self.end_reason)

    async def _receive(self) -> str | bytes:
        try:
            message = await self.websocket.receive()
        except (RuntimeError, WebSocketDisconnect):
            raise _Closed from None
        if message["type"] == "websocket.disconnect":
            raise _Closed
        self._last_heard = time.monotonic()
        text = message.get("text")
        return text if text is not None else (message.get("bytes") or b"")

    async def _close(self, code: int, error: str | None, reason: str) -> None:
        """Say why (an ``error`` event, unless it is a normal close), then close."""
        if self.websocket.client_state != WebSocketState.CONNECTED:
            return
        ws_closed("avatar", code)  # /metrics: errors by close code
        with contextlib.suppress(RuntimeError, WebSocketDisconnect, OSError):
            if error is not None:
                await self.websocket.send_text(avatar.dumps(avatar.error(error, reason)))
            await self.websocket.close(code=code, reason=reason[:120])

    async def _refuse(self, err: avatar.ProtocolError) -> None:
        """An ``error`` event; the socket closes when the error says so or errors pile up."""
        self.errors += 1
        if self.recorder is not None:
            self.recorder.event("bad_message", code=err.code, reason=err.reason)
        close_code = err.close_code
        reason = err.reason
        if close_code is None and self.errors > MAX_ERRORS:
            close_code, reason = avatar.CLOSE_POLICY, f"too many bad messages ({self.errors})"
        if close_code is None:
            log.info("avatar %s: %s", self.session_id, reason)
            await self._send(avatar.error(err.code, reason))
            return
        log.warning("avatar %s: closing (%d): %s", self.session_id, close_code, reason)
        self.end_reason = f"bad message: {reason}"
        await self._close(close_code, err.code, reason)
        raise _Closed

    async def _send(self, message: dict[str, Any]) -> None:
        if self.transport is not None:
            await self.transport.send_json(message)
            return
        with contextlib.suppress(RuntimeError, WebSocketDisconnect, OSError):
            await self.websocket.send_text(avatar.dumps(message))

    # ------------------------------------------------------------------ hello

    async def _hello(self) -> avatar.Hello | None:
        """The first message must be a good hello whose identity holds (``self.caller_id``)."""
        try:
            async with asyncio.timeout(HELLO_TIMEOUT_S):
                data = await self._receive()
        except TimeoutError:
            self.end_reason = "no hello"
            await self._close(
                avatar.CLOSE_POLICY, "hello_required", f"no hello within {HELLO_TIMEOUT_S:.0f} s"
            )
            return None
        if isinstance(data, bytes):
            await self._refuse(
                avatar.ProtocolError(
                    "hello_required", "audio before hello: send hello first", avatar.CLOSE_POLICY
                )
            )
            return None  # not reached: the error closes the socket
        try:
            event = avatar.parse_text(data)
        except avatar.ProtocolError as err:
            close = err.close_code or avatar.CLOSE_POLICY
            await self._refuse(avatar.ProtocolError(err.code, err.reason, close))
            return None
        if not isinstance(event, avatar.Hello):
            await self._refuse(
                avatar.ProtocolError(
                    "hello_required", "the first message must be hello", avatar.CLOSE_POLICY
                )
            )
            return None
        try:
            settings = self.runtime.settings
            secret = signing_secret(settings.avatar_secret, settings.data_dir)
            self.caller_id = avatar.identify(event, secret)
        except avatar.ProtocolError as err:
            await self._refuse(err)
            return None
        return event

    async def _start(self, hello: avatar.Hello) -> None:
        runtime = self.runtime
        self.recorder = FlightRecorder(runtime.settings.data_dir, self.session_id)
        self.recorder.event(
            "start",
            channel="avatar",
            caller=self.caller_id,
            id_kind="token" if hello.token else "device_id",
            sample_rate=hello.sample_rate,
            output_rate=hello.output_rate,
            playback_marks=hello.playback_marks,
            client=hello.client,
        )
        input_rate = hello.sample_rate
        if input_rate not in (8000, avatar.NATIVE_RATE):  # 8 kHz runs natively, like phones
            self.resampler = Resampler(input_rate, avatar.NATIVE_RATE)
            input_rate = avatar.NATIVE_RATE
        transport = AvatarTransport(
            self.websocket, hello.output_rate, playback_marks=hello.playback_marks
        )
        self.transport = transport
        self.loop = RealtimeLoop(
            runtime.voice,
            runtime.planners,
            transport,
            call_id=self.session_id,
            caller_id=self.caller_id,
            channel="avatar",
            input_rate=input_rate,
            recorder=self.recorder,
            memory=runtime.memory,
        )
        transport.on_mark = self.loop.on_mark
        await self.loop.start()
        context = self.loop.planner.context if self.loop.planner else None
        await transport.send_json(
            avatar.ready(
                session_id=self.session_id,
                user_id=self.caller_id,
                returning=bool(context and context.is_returning),
                name=context.name if context else None,
                input_rate=hello.sample_rate,
                output_rate=hello.output_rate,
                playback_marks=hello.playback_marks,
                ping_interval_s=PING_INTERVAL_S,
            )
        )
        transport.open_gate()
        log.info("avatar session %s for %s", self.session_id, masked(self.caller_id))
        self._tasks = [
            asyncio.create_task(self._close_when_finished(self.loop)),
            asyncio.create_task(self._keep_alive()),
        ]

    # ------------------------------------------------------------------ messages

    async def _handle(self, data: str | bytes) -> None:
        loop = self.loop
        assert loop is not None
        try:
            event = avatar.parse(data)
        except avatar.ProtocolError as err:
            await self._refuse(err)
            return
        if isinstance(event, avatar.Audio):
            loop.feed_audio(self._resampled(event.pcm16))
        elif isinstance(event, avatar.Text):
            if not self._typed.allow():
                await self._refuse(
                    avatar.ProtocolError("rate_limited", "too many typed turns: slow down")
                )
                return
            await self._send(avatar.transcript(event.text, final=True, source="text"))
            loop.on_text(event.text)
        elif isinstance(event, avatar.Played):
            loop.on_mark(event.mark)
        elif isinstance(event, avatar.Ping):
            await self._send(avatar.simple("pong"))
        elif isinstance(event, avatar.Bye):
            self.end_reason = "bye"
            await self._close(avatar.CLOSE_NORMAL, None, "bye")
            raise _Closed
        elif isinstance(event, avatar.Memory):
            await self._send_memory()
        elif isinstance(event, avatar.Hello):
            await self._refuse(avatar.ProtocolError("duplicate_hello", "hello was already sent"))

    async def _send_memory(self) -> None:
        """This session's own caller record, so a page can show it without the admin key."""
        if not self._memory_asks.allow():
            await self._refuse(avatar.ProtocolError("rate_limited", "too many memory requests"))
            return
        memory = self.runtime.memory
        caller = None
        if memory is not None:
            try:  # database reads: never on the loop that carries the audio
                caller = await asyncio.to_thread(memory.caller_profile, self.caller_id)
            except Exception as exc:
                log.warning("avatar %s: memory lookup failed: %s", self.session_id, exc)
                await self._send(avatar.error("memory_unavailable", "memory can't be read now"))
                return
        await self._send(avatar.memory(caller))

    def _resampled(self, pcm16: bytes) -> bytes:
        if self.resampler is None:
            return pcm16
        return array_to_pcm16(np.asarray(self.resampler.process(pcm16), dtype=np.int16))

    # ------------------------------------------------------------------ background

    async def _close_when_finished(self, loop: RealtimeLoop) -> None:
        """The agent said goodbye and it was heard: say so, then close normally."""
        await loop.finished.wait()
        if self.end_reason != "socket closed":
            return  # we are already closing for another reason
        self.end_reason = "goodbye"
        if self.transport is not None:
            await self.transport.notify("conversation_ended")
        await self._close(avatar.CLOSE_NORMAL, None, "goodbye")

    async def _keep_alive(self) -> None:
        """Ping a quiet client; close one that stays silent past ``IDLE_TIMEOUT_S``."""
        while True:
            await asyncio.sleep(PING_INTERVAL_S / 2)
            idle = time.monotonic() - self._last_heard
            if idle >= IDLE_TIMEOUT_S:
                self.end_reason = "idle"
                await self._close(
                    avatar.CLOSE_POLICY,
                    "idle_timeout",
                    f"no message for {IDLE_TIMEOUT_S:.0f} s (answer pings with pong)",
                )
                return
            if idle >= PING_INTERVAL_S:
                await self._send(avatar.simple("ping"))

    async def _end(self, reason: str) -> None:
        for task in self._tasks:
            if task is not asyncio.current_task():
                task.cancel()
        if self.loop is not None:
            await self.loop.hang_up(reason)
            await self.loop.aclose()
        if self.transport is not None:
            await self.transport.aclose()
        if self.recorder is not None:
            self.recorder.event("stop", reason=reason)
            self.recorder.close()


def origin_allowed(origin: str | None, host: str | None, allowed: str) -> bool:
    """May a page from ``origin`` open the socket? Its own pages, listed ones, and clients
    that send no Origin at all (native apps). Stops any site's page from talking to an open
    server as its visitor's browser."""
    if origin is None:
        return True
    if urlsplit(origin).netloc == (host or ""):
        return True
    listed = {o.strip().rstrip("/") for o in allowed.split(",") if o.strip()}
    return "*" in listed or origin.rstrip("/") in listed


async def avatar_socket(websocket: WebSocket, runtime: RuntimeDep) -> None:
    """The route: a foreign page is refused before accept (HTTP 403); the rest (who is
    talking included) is the session's."""
    origin = websocket.headers.get("origin")
    if not origin_allowed(origin, websocket.headers.get("host"), runtime.settings.avatar_origins):
        log.warning("refused an avatar socket from origin %s", origin)
        await websocket.close(code=avatar.CLOSE_POLICY)  # before accept: HTTP 403
        return
    await websocket.accept()
    if not runtime.ready:
        with contextlib.suppress(RuntimeError, WebSocketDisconnect, OSError):
            await websocket.send_text(
                avatar.dumps(avatar.error("not_ready", "the server is loading; try again soon"))
            )
            await websocket.close(code=avatar.CLOSE_TRY_AGAIN, reason="loading")
        return
    session = AvatarSession(websocket, runtime)
    capacity = runtime.settings.call_capacity
    if runtime.draining or not ADMISSIONS.try_admit(session.session_id, capacity, "avatar"):
        await _turn_away(websocket, "draining" if runtime.draining else "full")
        return
    await session.run()


async def _turn_away(websocket: WebSocket, reason: str) -> None:
    """No room for another call (or stopping): a ``busy`` error, then 1013 (try again
    later) with ``full`` or ``draining`` as the close reason. Counted as rejected."""
    call_rejected(reason, "avatar")
    log.info("avatar socket turned away: %s", reason)
    message = (
        "every line is busy; try again in a minute"
        if reason == "full"
        else "the server is stopping; try again in a minute"
    )
    with contextlib.suppress(RuntimeError, WebSocketDisconnect, OSError):
        await websocket.send_text(avatar.dumps(avatar.error("busy", message)))
        await websocket.close(code=avatar.CLOSE_TRY_AGAIN, reason=reason)
