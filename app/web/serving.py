"""How ``tourline serve`` runs the app under uvicorn, so strangers can't stall it.

What uvicorn does not do on its own (checked against uvicorn 0.54):

- A connection that never finishes its request head is never closed: the keep-alive timer
  only starts after a first response, and any byte (one header letter a second, Slowloris)
  cancels it. ``GuardedHttp`` gives every request head ``idle_timeout_s`` to arrive.
- ``limit_concurrency`` does not refuse WebSocket upgrades and answers others with a bare
  "Service Unavailable". ``ConnectionCap`` refuses both, past ``max_connections`` open
  connections (idle ones, HTTP and WebSocket alike), with a 503 and a sentence that says why.
- A request body is read whatever its size and however slowly it comes: ``BodyGuard``
  (``app/web/body_guard.py``) answers 413 past ``max_body_bytes`` and 408 when a body stalls.
- Its access log prints every request path, and the memory API's paths hold caller ids:
  ``MaskedAccessLog`` masks them as every other log line does.
- SIGTERM closes calls with 1012 and no word to the caller, and the process then dies by
  the signal. ``TourlineServer`` drains first: ``/readyz`` says "draining" and new callers
  hear that the line is busy, while the calls in progress go on for up to ``drain_s``; any
  still on the line then hear a goodbye (a few seconds at most). Then it shuts down as usual
  (memory is flushed in the app's lifespan) and exits 0. A second SIGTERM skips the wait.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import signal
import socket
import time
from collections.abc import Callable, Collection
from types import FrameType
from urllib.parse import unquote

import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from app.domain.identity import masked
from app.runtime import Runtime
from app.settings import Settings
from app.voice.realtime_loop import RealtimeLoop
from app.web.body_guard import BodyGuard
from app.web.server import SHUTDOWN_GOODBYE, create_app

log = logging.getLogger("tourline.serving")

GOODBYE_WITHIN_S = 5.0
"""The longest a stop waits for calls to hear the goodbye (the sentence lasts ~3 s)."""
GRACEFUL_SHUTDOWN_S = 5
DRAIN_POLL_S = 0.2
"""After the goodbyes, how long uvicorn waits for requests still running before cancelling."""
FULL_MESSAGE = "The server is at its connection limit; please try again in a minute.\n"
FULL_LOG_EVERY_S = 10.0


class GuardedHttp(HttpToolsProtocol):
    """uvicorn's HTTP protocol, closing connections whose request head does not arrive
    (completely) within ``head_timeout_s``: from connect, and after each response."""

    head_timeout_s: float = 10.0

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._head_timer: asyncio.TimerHandle | None = None

    def _arm(self) -> None:
        self._disarm()
        self._head_timer = self.loop.call_later(self.head_timeout_s, self._head_overdue)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_overdue(self) -> None:
        self._head_timer = None
        idle = self.cycle is None or self.cycle.response_complete
        if idle and not self.transport.is_closing():
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.timeout_keep_alive_task is not None:  # idle now, waiting for the next request
            self._arm()


def guarded_http(settings: Settings) -> type[GuardedHttp]:
    """``GuardedHttp`` with this server's head timeout."""

    class Guarded(GuardedHttp):
        head_timeout_s = settings.idle_timeout_s

    return Guarded


class ConnectionCap:
    """ASGI wrapper: past ``limit`` open connections, requests and WebSocket upgrades get
    503 and one sentence, so the calls already connected keep the machine to themselves."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit
        self.connections: Collection[object] = ()  # the server's, once it exists
        self._refused = 0
        self._logged_at = 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or len(self.connections) <= self.limit:
            await self.app(scope, receive, send)
            return
        self._note_refusal()
        body = FULL_MESSAGE.encode()
        headers = [
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
            (b"retry-after", b"60"),
        ]
        prefix = "websocket.http." if scope["type"] == "websocket" else "http."
        await send({"type": prefix + "response.start", "status": 503, "headers": headers})
        await send({"type": prefix + "response.body", "body": body, "more_body": False})

    def _note_refusal(self) -> None:
        """One log line per ``FULL_LOG_EVERY_S`` while full, not one per refused client."""
        self._refused += 1
        now = time.monotonic()
        if now - self._logged_at >= FULL_LOG_EVERY_S:
            log.warning(
                "at the connection limit (%d): refused %d connection(s)", self.limit, self._refused
            )
            self._logged_at, self._refused = now, 0


class TourlineServer(uvicorn.Server):
    """uvicorn's server, with a drain and goodbyes on SIGTERM and a clean exit after them."""

    def __init__(
        self, config: uvicorn.Config, *, runtime_of: Callable[[], Runtime | None], drain_s: float
    ) -> None:
        super().__init__(config)
        self._runtime_of = runtime_of
        self._drain_s = drain_s
        self._loop: asyncio.AbstractEventLoop | None = None
        self._drain_asked = False
        self._drain: asyncio.Task[None] | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().startup(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if sig == signal.SIGTERM and not self.should_exit:
            # A requested stop: exit 0 (uvicorn would re-raise the signal). The first one
            # drains; a second one stops at once (the goodbyes are still said).
            if not self._drain_asked and self._loop is not None and self._drain_s > 0:
                self._drain_asked = True
                self._loop.call_soon_threadsafe(self._begin_drain)
            else:
                self.should_exit = True
            return
        super().handle_exit(sig, frame)

    def _begin_drain(self) -> None:
        assert self._loop is not None
        self._drain = self._loop.create_task(self._drain_calls())

    async def _drain_calls(self) -> None:
        """Take no new call; let the ones in progress finish, up to the deadline."""
        runtime = self._runtime_of()
        if runtime is not None:
            runtime.draining = True
        deadline = time.monotonic() + self._drain_s
        if RealtimeLoop.active():
            log.info(
                "stopping: %d call(s) may go on for up to %.0f s",
                RealtimeLoop.active(),
                self._drain_s,
            )
        while RealtimeLoop.active() and time.monotonic() < deadline:
            await asyncio.sleep(DRAIN_POLL_S)  # a poll of the call count, not a synchronization
        self.should_exit = True

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()  # no new calls while the current ones are told goodbye
        calls = await RealtimeLoop.leave_all(SHUTDOWN_GOODBYE, GOODBYE_WITHIN_S)
        if calls:
            log.info("stopping: said goodbye on %d call(s)", calls)
        await super().shutdown(sockets)


_CALLER_PATH = re.compile(r"^(/callers/|/memory/(?:search|stats|check-batch)/)([^/?]+)")
_CALLER_ROUTES = ("/callers", "/memory/")


def mask_caller_path(path: str) -> str:
    """``/callers/+14155550101?q=…`` as ``/callers/+1415•••0101``: the caller id masked, and
    the query (a search's words or number) dropped, on the routes that carry them."""
    if not path.startswith(_CALLER_ROUTES):
        return path
    path = path.split("?", 1)[0]
    found = _CALLER_PATH.match(path)
    if found is None:
        return path
    return found.group(1) + masked(unquote(found.group(2))) + path[found.end() :]


class MaskedAccessLog(logging.Filter):
    """Masks the caller ids in uvicorn's access log lines (its third argument is the path)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], mask_caller_path(args[2]), *args[3:])
        return True


def build_server(settings: Settings, host: str, port: int, log_level: str) -> TourlineServer:
    """The configured server for ``create_app(settings)``; ``.run()`` serves until stopped."""
    app = create_app(settings)
    guarded = BodyGuard(
        app, max_bytes=settings.max_body_bytes, chunk_timeout_s=settings.idle_timeout_s
    )
    cap = ConnectionCap(guarded, settings.max_connections)
    config = uvicorn.Config(
        cap,
        host=host,
        port=port,
        log_level=log_level,
        http=guarded_http(settings),
        timeout_keep_alive=max(1, math.ceil(settings.idle_timeout_s)),
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )
    logging.getLogger("uvicorn.access").addFilter(MaskedAccessLog())
    server = TourlineServer(
        config,
        runtime_of=lambda: getattr(app.state, "runtime", None),
        drain_s=settings.drain_s,
    )
    state: ServerState = server.server_state
    cap.connections = state.connections
    return server


def serve(settings: Settings, host: str, port: int, log_level: str) -> None:
    """Serve until SIGTERM/SIGINT."""
    build_server(settings, host, port, log_level).run()
