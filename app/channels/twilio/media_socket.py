"""``WS /twilio/media``: Twilio's Media Streams socket, bridged to one RealtimeLoop per call.

This module only translates: Twilio JSON in → loop calls; loop audio/marks/clears → Twilio
JSON out (and nothing else out). A bad message closes only its own socket, with a close code
that says why; the timeline keeps everything recorded before it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from base64 import b64encode
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from app.audio.codec import iter_frames, pcm16_to_ulaw, ulaw_to_pcm16
from app.channels.deps import RuntimeDep
from app.channels.rate_limit import TokenBucket
from app.channels.twilio import media_protocol as twilio
from app.channels.twilio.twilio_http import signature_checker, token_expiry
from app.domain.identity import InvalidCallerId, is_withheld, normalize_caller_id
from app.logging.flight_recorder import FlightRecorder
from app.runtime import Runtime
from app.voice.realtime_loop import RealtimeLoop

log = logging.getLogger("tourline.media")

CLOSE_NORMAL = 1000
CLOSE_TRY_AGAIN = 1013
START_TIMEOUT_S = 10.0
"""Twilio sends ``start`` right after ``connected``; a socket that doesn't is not a call."""
MESSAGE_BURST = 250
MESSAGES_PER_SECOND = 100.0
"""Twilio sends 50 media messages a second plus a few marks and keys, and may deliver up to
a few seconds of them at once after a network stall: 5 s of burst, then twice its rate.
Messages beyond are dropped (the audio of a flood is not a caller's voice)."""
DROPS_BEFORE_CLOSE = 100
"""A second of flood at the allowed rate: past this many dropped messages the socket is
closed with 1008 (policy violation)."""
_MEDIA_TAIL = '"}}'
"""How a media message ends after its payload."""


class TwilioTransport:
    """The loop's voice, as Twilio ``media``/``mark``/``clear`` messages on one socket."""

    output_rate = 8000

    def __init__(self, websocket: WebSocket, stream_sid: str) -> None:
        self.websocket = websocket
        self.stream_sid = stream_sid
        self._lock = asyncio.Lock()
        self.open = True
        # Every media message of this stream up to its payload, exactly as
        # ``media_message`` writes it: only the base64 payload differs between frames.
        empty = twilio.media_message(stream_sid, b"")
        self._media_head = empty[: -len(_MEDIA_TAIL)]

    async def _send(self, messages: list[str]) -> None:
        if not self.open:
            return
        async with self._lock:
            try:
                for message in messages:
                    await self.websocket.send_text(message)
            except (WebSocketDisconnect, RuntimeError, OSError):
                self.open = False  # the caller hung up mid-sentence

    async def send_audio(self, pcm16: bytes) -> None:
        await self._send(self.media_messages(pcm16))

    def media_messages(self, pcm16: bytes) -> list[str]:
        """Twilio's media messages for ``pcm16``, one per 20 ms frame.

        Why not ``media_message`` per frame: building a JSON object per frame was 90% of
        the cost (0.6 ms per 3 s sentence, on the loop, for every call speaking), and
        every frame's message is the same but for its base64 payload."""
        head = self._media_head
        return [
            f"{head}{b64encode(frame).decode('ascii')}{_MEDIA_TAIL}"
            for frame in iter_frames(pcm16_to_ulaw(pcm16))
        ]

    async def send_mark(self, name: str) -> None:
        await self._send([twilio.mark_message(self.stream_sid, name)])

    async def send_clear(self) -> None:
        await self._send([twilio.clear_message(self.stream_sid)])

    async def notify(self, event: str, **fields: Any) -> None:
        """Twilio has no place for transcripts: nothing but media, mark and clear goes out."""


def caller_of(start: twilio.Start) -> str | None:
    """The caller's normalized number from the ``From`` parameter, if it is usable (not
    missing, malformed or withheld)."""
    raw = start.custom_parameters.get("From", "")
    if not raw or is_withheld(raw):
        return None  # a withheld number is nobody in particular: no memory for the call
    try:
        return normalize_caller_id(raw)
    except InvalidCallerId:
        return None


class MediaSession:
    """One Twilio media socket from ``connected`` to ``stop``."""

    def __init__(self, websocket: WebSocket, runtime: Runtime) -> None:
        self.websocket = websocket
        self.runtime = runtime
        self.loop: RealtimeLoop | None = None
        self.recorder: FlightRecorder | None = None
        self._closer: asyncio.Task[None] | None = None
        self.end_reason = "socket closed"
        self._messages = TokenBucket(MESSAGE_BURST, MESSAGES_PER_SECOND)
        self._dropped = 0

    async def run(self) -> None:
        try:
            while True:
                try:
                    async with asyncio.timeout(START_TIMEOUT_S if self.loop is None else None):
                        message = await self.websocket.receive()
                except TimeoutError:
                    await self._refuse(
                        f"no start within {START_TIMEOUT_S:.0f} s", twilio.CLOSE_POLICY
                    )
                    return
                if message["type"] == "websocket.disconnect":
                    return
                if not self._messages.allow():
                    if not await self._drop():
                        return
                    continue
                data = message.get("text")
                if data is None:
                    data = message.get("bytes") or b""
                if not await self._handle(data):
                    return
        finally:
            await self._end(self.end_reason)

    async def _drop(self) -> bool:
        """Refuse one message over the rate; False (socket closed) once it is a flood."""
        self._dropped += 1
        if self._dropped > DROPS_BEFORE_CLOSE:
            return await self._refuse(
                f"more than {MESSAGES_PER_SECOND:.0f} messages a second", twilio.CLOSE_POLICY
            )
        if self._dropped == 1:  # once: a flood must not flood the log too
            await self._refuse(
                f"over {MESSAGES_PER_SECOND:.0f} messages a second: dropping the excess", None
            )
        return True

    async def _handle(self, data: str | bytes) -> bool:
        """Act on one message; False when this socket is done."""
        try:
            event = twilio.parse(data)
        except twilio.ProtocolError as err:
            return await self._refuse(err.reason, err.close_code)
        if isinstance(event, twilio.Media):
            if self.loop is None:
                return await self._refuse("media before start", twilio.CLOSE_POLICY)
            self.loop.feed_audio(ulaw_to_pcm16(event.payload))
        elif isinstance(event, twilio.Mark):
            if self.loop is not None:
                self.loop.on_mark(event.name)
        elif isinstance(event, twilio.Dtmf):
            if self.loop is not None:
                self.loop.on_dtmf(event.digit)
        elif isinstance(event, twilio.Start):
            if self.loop is not None:
                return await self._refuse("a second start on one stream", twilio.CLOSE_POLICY)
            settings = self.runtime.settings
            checker = signature_checker(settings)
            if not checker.start_ok(event.call_sid, event.custom_parameters):
                log.warning("call %s: start without a valid call token: refused", event.call_sid)
                return await self._refuse("start without this call's token", twilio.CLOSE_POLICY)
            if checker.enabled and not await self._spend_token(event):
                log.warning(
                    "call %s: its token was used on another replica: refused", event.call_sid
                )
                return await self._refuse("this call's token was already used", twilio.CLOSE_POLICY)
            await self._start(event)
        elif isinstance(event, twilio.Stop):
            self.end_reason = "stop"
            return False
        return True

    async def _spend_token(self, start: twilio.Start) -> bool:
        """Spend the call's token in the shared database: False if another process (a
        replica behind the same load balancer) already started this call's stream.

        A database that can't be reached lets the call in (this process's own check has
        passed): a replay needs a token captured in the last minute, a refused call would
        hang up on every caller while the database is down."""
        expires = token_expiry(start.custom_parameters)
        if expires is None:
            return True

        def spend() -> bool:  # off the loop: the first use opens the table too
            tokens = self.runtime.call_tokens()
            return tokens is None or tokens.spend(start.call_sid, expires)

        try:
            return await asyncio.to_thread(spend)
        except Exception as exc:
            log.error("call %s: could not check its token across replicas: %s", start.call_sid, exc)
            return True

    async def _refuse(self, reason: str, close_code: int | None) -> bool:
        """Log a bad message; ignore it, or close this socket with ``close_code``."""
        sid = self.loop.call_id if self.loop else "(no call yet)"
        if self.recorder is not None:
            self.recorder.event("bad_message", reason=reason, close_code=close_code)
        if close_code is None:
            log.warning("call %s: ignored a message: %s", sid, reason)
            return True
        log.warning("call %s: closing the media socket (%d): %s", sid, close_code, reason)
        self.end_reason = f"bad message: {reason}"
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await self.websocket.close(code=close_code, reason=reason[:120])
        return False

    async def _start(self, start: twilio.Start) -> None:
        runtime = self.runtime
        caller = caller_of(start)
        self.recorder = FlightRecorder(runtime.settings.data_dir, start.call_sid)
        self.recorder.event(
            "start", stream_sid=start.stream_sid, caller=caller, encoding=start.encoding
        )
        if start.encoding != "audio/x-mulaw" or start.sample_rate != 8000:
            log.warning("call %s: unexpected media format %s", start.call_sid, start)
        if caller is None:
            log.info("call %s: no usable caller number; memory is off for it", start.call_sid)
        transport = TwilioTransport(self.websocket, start.stream_sid)
        self.loop = RealtimeLoop(
            runtime.voice,
            runtime.planners,
            transport,
            call_id=start.call_sid,
            caller_id=caller or f"unknown-{start.call_sid}",
            channel="phone",
            input_rate=8000,
            recorder=self.recorder,
            memory=runtime.memory if caller else None,
        )
        await self.loop.start()
        self._closer = asyncio.create_task(self._close_when_finished(self.loop))

    async def _close_when_finished(self, loop: RealtimeLoop) -> None:
        """The agent said goodbye and it was heard: end the stream (Twilio hangs up)."""
        await loop.finished.wait()
        if self.websocket.client_state == WebSocketState.CONNECTED:
            with contextlib.suppress(RuntimeError, WebSocketDisconnect):
                await self.websocket.close(code=CLOSE_NORMAL, reason="goodbye")

    async def _end(self, reason: str) -> None:
        if self.loop is not None:
            await self.loop.hang_up(reason)
            await self.loop.aclose()
        if self._closer is not None:
            self._closer.cancel()
        if self.recorder is not None:
            self.recorder.event("stop", reason=reason)
            self.recorder.close()


async def media_stream(websocket: WebSocket, runtime: RuntimeDep) -> None:
    """The route: check the signed upgrade, then run the session."""
    settings = runtime.settings
    checker = signature_checker(settings)
    if not checker.upgrade_ok(websocket.headers.get("x-twilio-signature")):
        log.warning("refused a media socket: bad or missing X-Twilio-Signature")
        await websocket.close(code=twilio.CLOSE_POLICY)  # before accept: HTTP 403
        return
    if not runtime.ready:
        await websocket.close(code=CLOSE_TRY_AGAIN)
        return
    await websocket.accept()
    await MediaSession(websocket, runtime).run()
