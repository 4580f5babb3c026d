"""Strangers can't stall ``tourline serve``: idle and slow-header connections are closed,
past the connection cap newcomers get a 503 that says why (issue 12, item 7), and request
bodies that are too large or stall get a 413 / 408 while the server goes on.

Real loopback sockets against the real server, with a 1 s idle timeout and a cap of 4
connections so each check takes seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import select
import socket
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import InvalidStatus

from sim.server import RunningServer, running_server

IDLE_S = 1.0
CAP = 4
MAX_BODY = 64 * 1024
SLACK_S = 4.0
"""The server must have closed a stalled connection within IDLE_S + SLACK_S (5x the idle
timeout): the bound exists so a server that never closes fails, and a loaded machine that
closes late does not."""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    env = {
        "TOURLINE_IDLE_TIMEOUT_S": str(IDLE_S),
        "TOURLINE_MAX_CONNECTIONS": str(CAP),
        "TOURLINE_MAX_BODY_BYTES": str(MAX_BODY),
    }
    with running_server(tmp_path_factory.mktemp("limits"), **env) as running:
        yield running


def raw_socket(server: RunningServer) -> socket.socket:
    address = urlsplit(server.base_url)
    assert address.hostname is not None and address.port is not None
    return socket.create_connection((address.hostname, address.port), timeout=10)


def closed_by_server(
    sock: socket.socket, within_s: float, started: float | None = None
) -> float | None:
    """Seconds until the server closed ``sock`` (it reads only ``b""`` or a reset), or None;
    counted from ``started`` (default: now)."""
    started = time.monotonic() if started is None else started
    sock.settimeout(within_s)
    try:
        while sock.recv(4096):
            pass  # a response to a finished request: keep reading until the close
    except TimeoutError:
        return None
    except ConnectionResetError:
        pass
    return time.monotonic() - started


def dribble_until_closed(sock: socket.socket, within_s: float) -> float | None:
    """Send a request head one header every 0.2 s (Slowloris) until the server closes the
    socket; seconds that took, or None if it was still open after ``within_s``."""
    started = time.monotonic()
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    n = 0
    while time.monotonic() - started < within_s:
        readable, _, _ = select.select([sock], [], [], 0.2)  # the pace of the dribble
        try:
            if readable and not sock.recv(4096):
                return time.monotonic() - started
            n += 1
            sock.sendall(f"X-Slow-{n}: a\r\n".encode())
        except (ConnectionResetError, BrokenPipeError):
            return time.monotonic() - started
    return None


def test_an_idle_connection_is_closed(server: RunningServer) -> None:
    before_connect = time.monotonic()  # the server's idle clock cannot start before this
    with raw_socket(server) as sock:
        took = closed_by_server(sock, IDLE_S + SLACK_S, started=before_connect)
    assert took is not None, f"a connection that sent nothing was open after {IDLE_S + SLACK_S}s"
    # A lower bound load cannot break (a late test only measures longer): the connection
    # was given its idle time, not dropped at once.
    assert took >= IDLE_S * 0.8, f"closed after {took:.1f}s, before the idle timeout"


def test_a_slow_request_head_is_closed(server: RunningServer) -> None:
    with raw_socket(server) as sock:
        took = dribble_until_closed(sock, IDLE_S + SLACK_S)
    assert took is not None, "a request head dribbled a header at a time was never cut off"


def test_a_slow_second_request_on_a_kept_alive_connection_is_closed(
    server: RunningServer,
) -> None:
    with raw_socket(server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 200"), "the first request was not served"
        took = dribble_until_closed(sock, IDLE_S + SLACK_S)
    assert took is not None, "a slow second request head kept the connection open"


def media_url(server: RunningServer) -> str:
    return server.base_url.replace("http://", "ws://") + "/twilio/media"


async def test_past_the_cap_newcomers_get_a_503_that_says_why(server: RunningServer) -> None:
    held: list[ClientConnection] = []
    try:
        # WebSockets count: CAP - 1 of them leave room for exactly one health check.
        for _ in range(CAP - 1):
            held.append(await ws_connect(media_url(server), ping_interval=None))
        async with httpx.AsyncClient(timeout=5) as client:
            within = await client.get(f"{server.base_url}/healthz")
        assert within.status_code == 200, f"/healthz refused within the cap: {within.text}"

        held.append(await ws_connect(media_url(server), ping_interval=None))
        async with httpx.AsyncClient(timeout=5) as client:
            over = await client.get(f"{server.base_url}/healthz")
        assert over.status_code == 503, f"over the cap, /healthz said {over.status_code}"
        assert "connection limit" in over.text, over.text

        with pytest.raises(InvalidStatus) as refused:
            await ws_connect(media_url(server), ping_interval=None)
        assert refused.value.response.status_code == 503
        assert b"connection limit" in refused.value.response.body
        assert f"at the connection limit ({CAP})" in server.log()
    finally:
        for ws in held:
            with contextlib.suppress(Exception):
                await ws.close()

    assert await health_recovers(server), "/healthz still refused after the sockets closed"


async def health_recovers(server: RunningServer, within_s: float = 10.0) -> bool:
    """Polls /healthz (closed sockets leave the server's count when it sees them close)."""
    deadline = time.monotonic() + within_s
    async with httpx.AsyncClient(timeout=5) as client:
        while time.monotonic() < deadline:
            if (await client.get(f"{server.base_url}/healthz")).status_code == 200:
                return True
            await asyncio.sleep(0.1)  # polling interval, not a guess at when it is done
    return False


def read_response(sock: socket.socket, within_s: float) -> bytes:
    """Everything the server sends until it closes the connection (or ``within_s``)."""
    sock.settimeout(within_s)
    data = b""
    with contextlib.suppress(TimeoutError, ConnectionResetError):
        while chunk := sock.recv(4096):
            data += chunk
    return data


def test_a_declared_huge_body_is_refused_before_it_is_read(server: RunningServer) -> None:
    with raw_socket(server) as sock:
        sock.sendall(
            b"POST /twilio/voice HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: 1000000000\r\n\r\nFrom=%2B12125550199"
        )
        reply = read_response(sock, IDLE_S + SLACK_S)
    assert reply.startswith(b"HTTP/1.1 413"), reply[:200]
    assert f"larger than this server accepts ({MAX_BODY} bytes)".encode() in reply


def test_a_chunked_body_past_the_limit_is_refused(server: RunningServer) -> None:
    chunk = b"a" * 16384
    with raw_socket(server) as sock:
        sock.sendall(
            b"POST /twilio/status HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        with contextlib.suppress(ConnectionResetError, BrokenPipeError):
            for _ in range(MAX_BODY // len(chunk) + 2):  # one chunk more than the limit
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        reply = read_response(sock, IDLE_S + SLACK_S)
    assert reply.startswith(b"HTTP/1.1 413"), reply[:200]


def test_a_body_that_stalls_gets_a_408_and_the_server_goes_on(server: RunningServer) -> None:
    with raw_socket(server) as sock:
        sock.sendall(
            b"POST /twilio/voice HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: 100\r\n\r\nFrom=%2B1212"  # 12 of the 100 bytes, then nothing
        )
        reply = read_response(sock, IDLE_S + SLACK_S)
    assert reply.startswith(b"HTTP/1.1 408"), reply[:200]
    assert b"did not arrive in time" in reply
    assert httpx.get(f"{server.base_url}/healthz", timeout=5).status_code == 200
    assert "Traceback" not in server.log(), "a refused body left a traceback in the log"
