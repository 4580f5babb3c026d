"""The media WebSocket, speaking Twilio's inbound messages in wire order.

No timing and no playback here (``call`` and ``player`` add those), so bad-input tests can
send anything at all on a socket that is otherwise exactly Twilio's.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from app.audio.codec import FRAME_MS
from sim.twilio.http import (
    TEST_PUBLIC_URL,
    TEST_TOKEN,
    fresh_number,
    local_socket_url,
    new_sid,
    parse_twiml,
    post_voice_webhook,
    twilio_form,
    upgrade_signature,
)


class MediaStream:
    """One media WebSocket speaking Twilio's inbound messages (no timing, no playback).

    Twilio numbers every message after ``connected`` with a string ``sequenceNumber`` and
    every media message with a ``chunk``; one lock keeps those numbers in wire order when
    the media clock, mark echoes and key presses send at the same time.
    """

    def __init__(
        self,
        ws: ClientConnection,
        *,
        stream_sid: str,
        call_sid: str,
        account_sid: str,
    ) -> None:
        self.ws = ws
        self.stream_sid = stream_sid
        self.call_sid = call_sid
        self.account_sid = account_sid
        self.sequence = 0
        self.chunk = 0
        self._lock = asyncio.Lock()

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        signature: str | None,
        call_sid: str,
        account_sid: str | None = None,
        stream_sid: str | None = None,
        open_timeout: float = 10.0,
    ) -> MediaStream:
        """Upgrade the way Twilio does; raises ``websockets.exceptions.InvalidStatus`` on 403."""
        headers = {"X-Twilio-Signature": signature} if signature is not None else {}
        ws = await ws_connect(
            url,
            additional_headers=headers,
            user_agent_header="Twilio.TmeWs/1.0",
            compression=None,  # Twilio does not negotiate permessage-deflate
            ping_interval=None,  # nor ping; a starved server must not be dropped by us
            max_size=2**20,
            # Never stop reading: with a bounded queue, unread agent audio pauses the socket
            # and a close handshake then waits out its 10 s timeout (Twilio reads everything).
            max_queue=None,
            open_timeout=open_timeout,
        )
        return cls(
            ws,
            stream_sid=stream_sid or new_sid("MZ"),
            call_sid=call_sid,
            account_sid=account_sid or "AC" + "0" * 32,
        )

    async def send_raw(self, data: str | bytes) -> None:
        """Anything at all, for bad-input tests."""
        async with self._lock:
            await self.ws.send(data)

    async def _send_numbered(self, build: Callable[[str], dict[str, Any]]) -> None:
        async with self._lock:
            self.sequence += 1
            await self.ws.send(json.dumps(build(str(self.sequence))))

    async def send_connected(self) -> None:
        async with self._lock:
            await self.ws.send(
                json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"})
            )

    def start_message(self, sequence: str, custom_parameters: dict[str, str]) -> dict[str, Any]:
        return {
            "event": "start",
            "sequenceNumber": sequence,
            "start": {
                "accountSid": self.account_sid,
                "streamSid": self.stream_sid,
                "callSid": self.call_sid,
                "tracks": ["inbound"],
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                "customParameters": dict(custom_parameters),
            },
            "streamSid": self.stream_sid,
        }

    async def send_start(self, custom_parameters: dict[str, str]) -> None:
        await self._send_numbered(lambda seq: self.start_message(seq, custom_parameters))

    async def send_media(self, payload: bytes, timestamp_ms: int | None = None) -> None:
        """One 20 ms inbound frame; ``timestamp`` is ms since the stream started."""
        encoded = base64.b64encode(payload).decode("ascii")
        async with self._lock:
            self.sequence += 1
            self.chunk += 1
            stamp = (self.chunk - 1) * FRAME_MS if timestamp_ms is None else timestamp_ms
            message = {
                "event": "media",
                "sequenceNumber": str(self.sequence),
                "media": {
                    "track": "inbound",
                    "chunk": str(self.chunk),
                    "timestamp": str(stamp),
                    "payload": encoded,
                },
                "streamSid": self.stream_sid,
            }
            await self.ws.send(json.dumps(message))

    async def send_dtmf(self, digit: str) -> None:
        await self._send_numbered(
            lambda seq: {
                "event": "dtmf",
                "streamSid": self.stream_sid,
                "sequenceNumber": seq,
                "dtmf": {"track": "inbound_track", "digit": digit},
            }
        )

    async def send_mark(self, name: str) -> None:
        """Echo a mark back, as Twilio does once playback reached it."""
        await self._send_numbered(
            lambda seq: {
                "event": "mark",
                "sequenceNumber": seq,
                "streamSid": self.stream_sid,
                "mark": {"name": name},
            }
        )

    async def send_stop(self) -> None:
        await self._send_numbered(
            lambda seq: {
                "event": "stop",
                "sequenceNumber": seq,
                "streamSid": self.stream_sid,
                "stop": {"accountSid": self.account_sid, "callSid": self.call_sid},
            }
        )

    async def close(self, code: int = 1000) -> None:
        with contextlib.suppress(Exception):
            await self.ws.close(code)

    async def wait_closed(self, timeout_s: float = 10.0) -> tuple[int | None, str]:
        """Read (and drop) messages until the server closes; returns its close code and reason.

        Raises TimeoutError if the socket is still open after ``timeout_s``.
        """
        async with asyncio.timeout(timeout_s):
            try:
                while True:
                    await self.ws.recv()
            except ConnectionClosed as closed:
                frame = closed.rcvd
                return (frame.code, frame.reason) if frame else (None, "")

    async def next_event(self, event: str, timeout_s: float = 10.0) -> dict[str, Any]:
        """The next server message with this ``event`` (others are dropped)."""
        async with asyncio.timeout(timeout_s):
            while True:
                raw = await self.ws.recv()
                with contextlib.suppress(ValueError, TypeError):
                    message = json.loads(raw)
                    if isinstance(message, dict) and message.get("event") == event:
                        return message


async def ring_and_open(
    base_url: str, public_url: str = TEST_PUBLIC_URL, token: str = TEST_TOKEN
) -> tuple[MediaStream, dict[str, str]]:
    """A new call's media socket, rung (signed webhook) and upgraded exactly as Twilio does,
    with ``connected`` sent; returns it and the ``<Parameter>``s its ``start`` must carry."""
    call_sid = new_sid("CA")
    form = twilio_form(call_sid, fresh_number())
    stream = parse_twiml(await post_voice_webhook(base_url, public_url, token, form))
    socket = await MediaStream.open(
        local_socket_url(base_url, stream.url),
        signature=upgrade_signature(token, stream.url),
        call_sid=call_sid,
    )
    await socket.send_connected()
    return socket, stream.parameters
