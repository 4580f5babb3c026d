"""Request bodies that are too big or too slow get a clear 413 / 408, not a stalled worker.

uvicorn and Starlette read whatever body a client sends, as slowly as it sends it: a
webhook form of a gigabyte is buffered whole, and a body that stops half-way holds its
request (and its memory) until the client gives up. Every Tourline POST is small (Twilio's
forms are a few kilobytes, an SMS at most 1,600 characters), so ``BodyGuard`` refuses a
body past ``max_bytes`` (at once when ``Content-Length`` says so) and one whose next chunk
does not arrive within ``chunk_timeout_s``. The route then sees a disconnect, and the client
gets one sentence that says why.
"""

from __future__ import annotations

import asyncio
import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("tourline.body_guard")

TOO_LARGE = "The request body is larger than this server accepts ({limit} bytes).\n"
TOO_SLOW = "The request body did not arrive in time.\n"


class _Refused(Exception):
    def __init__(self, status: int, sentence: str) -> None:
        super().__init__(sentence)
        self.status = status
        self.sentence = sentence


class BodyGuard:
    """ASGI wrapper over HTTP requests: bodies at most ``max_bytes``, each chunk within
    ``chunk_timeout_s`` of the last. WebSockets and lifespan pass through untouched."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, chunk_timeout_s: float) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.chunk_timeout_s = chunk_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await _respond(send, 413, TOO_LARGE.format(limit=self.max_bytes))
            return
        await _GuardedRequest(self, receive, send).run(scope)


class _GuardedRequest:
    """One request's receive and send, with the guard's limits applied to the body."""

    def __init__(self, guard: BodyGuard, receive: Receive, send: Send) -> None:
        self.guard = guard
        self._receive = receive
        self._send = send
        self._received = 0
        self._body_done = False
        self._response_started = False
        self._refused = False

    async def run(self, scope: Scope) -> None:
        try:
            await self.guard.app(scope, self.receive, self.send)
        except Exception:
            if not self._refused:
                raise
            # The route met the disconnect we handed it (Starlette's ClientDisconnect):
            # expected, and already answered.

    async def receive(self) -> Message:
        if self._refused:
            return {"type": "http.disconnect"}
        if self._body_done:
            return await self._receive()  # after the body: only a disconnect comes, untimed
        try:
            message = await self._next_chunk()
        except _Refused as refusal:
            self._refused = True
            log.warning("refused a request body: %s", refusal.sentence.strip())
            if not self._response_started:
                await _respond(self._send, refusal.status, refusal.sentence)
            return {"type": "http.disconnect"}
        return message

    async def _next_chunk(self) -> Message:
        try:
            async with asyncio.timeout(self.guard.chunk_timeout_s):
                message = await self._receive()
        except TimeoutError:
            raise _Refused(408, TOO_SLOW) from None
        if message["type"] == "http.request":
            self._received += len(message.get("body", b""))
            if self._received > self.guard.max_bytes:
                raise _Refused(413, TOO_LARGE.format(limit=self.guard.max_bytes))
            self._body_done = not message.get("more_body", False)
        return message

    async def send(self, message: Message) -> None:
        if self._refused:
            return  # the client already has its 408/413; the route's reply goes nowhere
        if message["type"] == "http.response.start":
            self._response_started = True
        await self._send(message)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the HTTP parser refuses a malformed one before we get here
    return None


async def _respond(send: Send, status: int, sentence: str) -> None:
    body = sentence.encode()
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})
