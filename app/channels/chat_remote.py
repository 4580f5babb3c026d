"""``tourline chat`` through a running server: typed turns over the avatar socket's text mode.

While ``tourline serve`` owns the data dir, a chat can't open the stores, and need not: the
server's ``WS /avatar`` takes typed turns (``{"type": "text"}``) and answers with the same
planner, loop and memory as a call. This client speaks that protocol
(``docs/avatar-protocol.md``) and prints what the agent says exactly as a local chat does:
one line per reply.

**When a reply is over.** Once the whole of a reply has been sent, the server says so with
``agent_done`` and the reply's text: that is the printed line. Each ``mark`` is reported as
``played`` as soon as it arrives (shown text counts as heard), so after a goodbye the
server's ``conversation_ended`` and close follow at once. A reply cut by ``interrupted``
(a line typed over a prompt the agent spoke on its own) gets no ``agent_done``: no line.

**Who is chatting.** The server takes a phone number, email or user id only from a token
signed with ``TOURLINE_AVATAR_SECRET``. This runs on the operator's machine with the server's
settings, so it mints its own token for the caller; without the secret it chats as a new
anonymous device (``device:chat-…``) and says so. ``--caller device:<id>`` chats as that
device, which needs no token.

Nothing heavy is imported: the first line depends on the server, not on loading models.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, TextIO
from urllib.parse import urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1  # the server ended the session for a reason of its own (see its log)
EXIT_USAGE: Final = 2  # the caller id was refused
EXIT_UNREACHABLE: Final = 4  # no server at the URL, or it never finished loading
EXIT_UNAUTHORIZED: Final = 5  # the server refused our token (or has no secret to check it)

CLOSE_POLICY: Final = 1008  # the avatar protocol's close codes (app/channels/avatar/protocol.py)
CLOSE_TRY_AGAIN: Final = 1013

CLIENT_NAME: Final = "tourline-chat"
DEVICE_PREFIX: Final = "device:"  # the avatar protocol's device namespace (a test keeps it in step)
TOKEN_TTL_S: Final = 300.0
"""A token is checked once, at hello: it only has to outlive connecting."""
OUTPUT_RATE: Final = 8000  # we drop the agent's audio: ask for the fewest bytes
LOADING_WAIT_S: Final = 180.0
"""How long to wait for a server that is starting or loading its models."""
RETRY_S: Final = 0.5
READY_TIMEOUT_S: Final = 30.0
SILENCE_WAIT_S: Final = 30.0
"""A piped empty line is the caller saying nothing: wait this long for the agent's prompt."""
CLOSE_TIMEOUT_S: Final = 10.0


class ChatError(Exception):
    """The chat can't go on: one sentence for the user, and the process exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


@dataclass(frozen=True)
class ServerAddress:
    """Where the server is: its base URL and the avatar socket's URL."""

    base: str  # http(s)://host:port[/prefix], no trailing slash
    secure: bool

    @classmethod
    def parse(cls, url: str) -> ServerAddress:
        """``http(s)://``, ``ws(s)://`` or a bare ``host:port``; raises ``ChatError``."""
        text = url.strip()
        if "://" not in text:
            text = "http://" + text
        parts = urlsplit(text)
        scheme = {"http": "http", "ws": "http", "https": "https", "wss": "https"}.get(
            parts.scheme.lower()
        )
        try:
            port = parts.port
        except ValueError:
            port = -1
        if scheme is None or not parts.hostname or port == -1:
            raise ChatError(f"{url!r} is not a server URL (like http://127.0.0.1:8000)", EXIT_USAGE)
        secure = scheme == "https"
        port = port or (443 if secure else 80)
        host = parts.hostname
        shown = f"[{host}]" if ":" in host else host
        return cls(f"{scheme}://{shown}:{port}{parts.path.rstrip('/')}", secure)

    @property
    def avatar_url(self) -> str:
        return ("wss:" if self.secure else "ws:") + self.base.partition(":")[2] + "/avatar"


class _Lines:
    """Caller lines from ``inp`` on a daemon thread, so a pending read never holds up exit."""

    def __init__(self, inp: TextIO) -> None:
        self._queue: asyncio.Queue[str | None] = asyncio.Queue()
        loop = asyncio.get_running_loop()

        def read() -> None:
            while True:
                try:
                    line = inp.readline()
                except (OSError, ValueError):
                    line = ""
                loop.call_soon_threadsafe(self._queue.put_nowait, line or None)
                if not line:
                    return

        threading.Thread(target=read, name="tourline-chat-input", daemon=True).start()

    async def next(self) -> str | None:
        """The next line with its newline, or None at end of input."""
        return await self._queue.get()


class RemoteChat:
    """One text conversation with a running server over ``WS /avatar``."""

    def __init__(
        self,
        address: ServerAddress,
        caller_id: str,
        *,
        secret: str | None,
        out: TextIO,
        err: TextIO,
        interactive: bool,
        starting: Callable[[], bool] | None = None,
    ) -> None:
        self.address = address
        self.caller_id = caller_id
        self.secret = secret
        self.out = out
        self.err = err
        self.interactive = interactive
        self.prefix = "agent> " if interactive else ""
        self.starting = starting  # True while the server that owns the data dir is starting
        self.ws: ClientConnection | None = None
        # Replies by number (mark r3.1: chunk 1 of reply 3).
        self.expected = 1  # the reply we wait for: the greeting, then the one to our turn
        self.seen = 0  # the highest one a mark has shown
        self.over = 0  # the highest one that is over: agent_done (printed), or interrupted
        self.ended = False  # the agent said goodbye, or the socket is gone
        self.closed = False
        self.failure: ChatError | None = None
        self.prompting = False
        self._turn: asyncio.Future[str | None] | None = None  # None: accepted; str: refused
        self._pongs = 0
        self._changed = asyncio.Event()
        self._noted: set[str] = set()
        self.device_id = self._device_id(caller_id, secret)  # may note why on stderr

    # ------------------------------------------------------------------ the conversation

    async def run(self, inp: TextIO) -> int:
        try:
            await self._open()
            receiving = asyncio.create_task(self._receive())
            try:
                await self._talk(_Lines(inp))
            finally:
                await self._close()
                receiving.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await receiving
        except ChatError as exc:
            self._error(exc.message)
            return exc.code
        if self.failure is not None:
            self._error(self.failure.message)
            return self.failure.code
        return EXIT_OK

    async def _talk(self, lines: _Lines) -> None:
        await self._settle()  # the greeting
        while not self.ended:
            if self.interactive:
                self._write("you> ")
                self.prompting = True
            line = await self._next_line(lines)
            self.prompting = False
            if line is None:
                break
            text = line.strip()
            if text:
                if not await self._say(text):
                    continue
            elif self.interactive:
                continue
            else:
                await self._silence()
            await self._settle()

    async def _next_line(self, lines: _Lines) -> str | None:
        """The caller's next line; None at end of input or when the conversation ends."""
        read = asyncio.ensure_future(lines.next())
        ended = asyncio.ensure_future(self._wait(lambda: self.ended))
        try:
            await asyncio.wait({read, ended}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ended.cancel()
        if read.done():
            return read.result()
        read.cancel()
        return None

    async def _say(self, text: str) -> bool:
        """Send a typed turn; True once the server took it (it echoes a final transcript)."""
        assert self.ws is not None
        self._turn = asyncio.get_running_loop().create_future()
        try:
            await self.ws.send(json.dumps({"type": "text", "text": text}))
        except ConnectionClosed:
            return False
        await self._wait(lambda: self._turn is None or self._turn.done() or self.closed)
        turn, self._turn = self._turn, None
        if turn is None or not turn.done():
            return False
        refusal = turn.result()
        if refusal is not None:
            self._error(refusal)
            return False
        return True

    async def _silence(self) -> None:
        """The caller says nothing: wait a while for the agent to start prompting them."""
        prompt = max(self.seen, self.over) + 1
        await self._wait(lambda: self.seen >= prompt or self.ended, SILENCE_WAIT_S)

    async def _settle(self) -> None:
        """Until every reply we know of is over and printed, then until what the server
        queued for us so far has arrived: it answers a ping after it (so a goodbye's
        ``conversation_ended`` is here before we send another line)."""
        await self._wait(lambda: self.over >= max(self.expected, self.seen) or self.ended)
        if self.ws is None or self.closed:
            return
        pongs = self._pongs
        with contextlib.suppress(ConnectionClosed):
            await self.ws.send(json.dumps({"type": "ping"}))
        await self._wait(lambda: self._pongs > pongs or self.closed)

    async def _wait(self, done: Callable[[], bool], timeout_s: float | None = None) -> None:
        async def until() -> None:
            while not done():
                self._changed.clear()
                await self._changed.wait()

        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await until()

    # ------------------------------------------------------------------ output

    def _write(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()

    def _print_reply(self, text: str) -> None:
        if self.prompting:  # a prompt the agent spoke on its own, while we wait for input
            self._write("\r" + self.prefix + text + "\nyou> ")
        else:
            self._write(self.prefix + text + "\n")

    def _error(self, message: str) -> None:
        if self.prompting:
            self._write("\n")
            self.prompting = False
        self._write(f"error: {message}\n")

    def _note(self, message: str) -> None:
        """A word on stderr (once each) while we wait, so the wait is not a mystery."""
        if message not in self._noted:
            self._noted.add(message)
            self.err.write(message + "\n")
            self.err.flush()

    # ------------------------------------------------------------------ connecting

    def _device_id(self, caller_id: str, secret: str | None) -> str | None:
        """The device id to chat as, or None to chat as ``caller_id`` with a token."""
        if caller_id.startswith(DEVICE_PREFIX):
            return caller_id.removeprefix(DEVICE_PREFIX)
        if secret:
            return None
        device = f"chat-{uuid.uuid4().hex[:16]}"
        self._note(
            f"no TOURLINE_AVATAR_SECRET here, so the server can't be shown who {caller_id} is: "
            f"chatting as a new anonymous device ({DEVICE_PREFIX}{device}) instead. Set the "
            "server's TOURLINE_AVATAR_SECRET to chat as them."
        )
        return device

    def _hello(self) -> dict[str, Any]:
        """Our hello: a device id, or a token for the caller minted with the server's secret."""
        hello: dict[str, Any] = {
            "type": "hello",
            "output_audio": {"format": "pcm16", "sample_rate": OUTPUT_RATE},
            "playback_marks": True,
            "client": CLIENT_NAME,
        }
        if self.device_id is not None or not self.secret:
            hello["user"] = {"device_id": self.device_id}
            return hello
        from app.channels.avatar.tokens import TokenError, mint_token  # only when needed

        try:
            hello["token"] = mint_token(self.secret, self.caller_id, TOKEN_TTL_S)
        except TokenError as exc:
            raise ChatError(f"can't make a token for {self.caller_id}: {exc}", EXIT_USAGE) from None
        return hello

    async def _open(self) -> None:
        """Connect and say hello, waiting while the server starts or loads its models."""
        deadline = time.monotonic() + LOADING_WAIT_S
        while True:
            ws = await self._connect(deadline)
            if ws is None:
                await asyncio.sleep(RETRY_S)
                continue
            try:
                await ws.send(json.dumps(self._hello()))
                async with asyncio.timeout(READY_TIMEOUT_S):
                    reply = await self._first_event(ws)
            except (ConnectionClosed, TimeoutError):
                reply = None
            if reply is not None and reply.get("type") == "ready":
                self.ws = ws
                return
            await ws.close()
            code = str((reply or {}).get("code", "")) or _refused_by_close(ws)
            if code == "not_ready" and time.monotonic() < deadline:
                self._note(f"waiting for the server at {self.address.base} to load its models…")
                await asyncio.sleep(RETRY_S)
                continue
            raise self._refusal(code, str((reply or {}).get("message", "")), ws)

    async def _connect(self, deadline: float) -> ClientConnection | None:
        """The open socket; None to try again (a server still starting); or ``ChatError``."""
        try:
            return await connect(
                self.address.avatar_url,
                compression=None,
                proxy=None,
                open_timeout=10,
            )
        except InvalidStatus as exc:
            status = exc.response.status_code
            if status in (401, 403):
                raise ChatError(
                    f"the server at {self.address.base} refused the connection (HTTP {status})",
                    EXIT_UNAUTHORIZED,
                ) from None
            raise ChatError(
                f"the server at {self.address.base} answered HTTP {status} on /avatar "
                "(is it a Tourline server?)",
                EXIT_UNREACHABLE,
            ) from None
        except InvalidURI as exc:
            raise ChatError(f"bad server URL: {exc}", EXIT_USAGE) from None
        except (OSError, TimeoutError, InvalidHandshake) as exc:
            if self.starting is not None and self.starting() and time.monotonic() < deadline:
                self._note(f"waiting for the server at {self.address.base} to start…")
                return None
            raise ChatError(
                f"cannot reach the server at {self.address.base} ({_why(exc)}). "
                "Start it with `tourline serve`, or pass another URL with --server",
                EXIT_UNREACHABLE,
            ) from None

    @staticmethod
    async def _first_event(ws: ClientConnection) -> dict[str, Any] | None:
        """``ready`` or the ``error`` that refuses the session (audio can't come first)."""
        while True:
            message = await ws.recv()
            if isinstance(message, str):
                with contextlib.suppress(ValueError):
                    event = json.loads(message)
                    if isinstance(event, dict) and event.get("type") in ("ready", "error"):
                        return event

    def _refusal(self, code: str, message: str, ws: ClientConnection) -> ChatError:
        base = self.address.base
        if code == "unauthorized":
            return ChatError(
                f"the server at {base} refused this chat's token ({message.rstrip('.')}): "
                "set TOURLINE_AVATAR_SECRET to the server's",
                EXIT_UNAUTHORIZED,
            )
        if code == "not_ready":
            return ChatError(
                f"the server at {base} was still loading after {LOADING_WAIT_S:.0f} s",
                EXIT_UNREACHABLE,
            )
        if code == "bad_hello":
            return ChatError(f"the server refused the caller id: {message}", EXIT_USAGE)
        if code:
            return ChatError(f"the server at {base} refused the chat: {message}", EXIT_FAILED)
        return ChatError(
            f"the server at {base} closed the socket before the conversation started"
            + _closing(ws),
            EXIT_FAILED,
        )

    async def _close(self) -> None:
        ws = self.ws
        if ws is None:
            return
        if not self.closed:
            with contextlib.suppress(ConnectionClosed):
                await ws.send(json.dumps({"type": "bye"}))
            await self._wait(lambda: self.closed, CLOSE_TIMEOUT_S)  # the server closes (1000)
        await ws.close()

    # ------------------------------------------------------------------ background

    async def _receive(self) -> None:
        """Server messages: answer marks and pings, print replies, note echoes and the end."""
        ws = self.ws
        assert ws is not None
        try:
            async for message in ws:
                if isinstance(message, bytes):
                    continue  # the agent's audio: a text chat has nowhere to play it
                try:
                    event = json.loads(message)
                except ValueError:
                    continue
                if isinstance(event, dict):
                    await self._on_event(ws, event)
        except ConnectionClosed:
            pass
        finally:
            self.closed = True
            if not self.ended and ws.close_code not in (1000, None):
                self.failure = ChatError(
                    "the server ended the conversation" + _closing(ws), EXIT_FAILED
                )
            self.ended = True
            self._changed.set()

    async def _on_event(self, ws: ClientConnection, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "mark":
            name = str(event.get("name", ""))
            await ws.send(json.dumps({"type": "played", "mark": name}))
            self.seen = max(self.seen, _reply_number(name))
        elif kind == "agent_done":
            self.over = max(self.over, _reply_number(str(event.get("reply", ""))) or self.seen)
            self._print_reply(str(event.get("text", "")))
        elif kind == "interrupted":
            self.over = max(self.over, self.seen)  # cut short: no agent_done will come
        elif kind == "transcript" and event.get("source") == "text" and event.get("final"):
            if self._turn is not None and not self._turn.done():
                # The echo goes out before the reply starts, so the reply to our turn comes
                # after every reply seen so far (a prompt the agent spoke on its own too).
                self.expected = max(self.expected, self.seen, self.over) + 1
                self._turn.set_result(None)
        elif kind == "error":
            message = str(event.get("message") or event.get("code") or "error")
            if self._turn is not None and not self._turn.done():
                self._turn.set_result(message)
            else:  # not about a turn of ours; if it ends the session, the close says why
                self.err.write(f"server: {message}\n")
                self.err.flush()
        elif kind == "ping":
            await ws.send(json.dumps({"type": "pong"}))
        elif kind == "pong":
            self._pongs += 1
        elif kind == "conversation_ended":
            self.ended = True
        else:
            return
        self._changed.set()


def _reply_number(name: str) -> int:
    """``r3.1`` (chunk 1 of reply 3) or ``r3`` -> 3; 0 for a name of another shape."""
    head = name[1:].partition(".")[0] if name.startswith("r") else ""
    return int(head) if head.isdigit() else 0


def _why(exc: Exception) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, TimeoutError):
        return "no answer"
    if isinstance(exc, socket.gaierror):
        return f"unknown host: {exc.strerror}"
    return str(exc) or type(exc).__name__


def _refused_by_close(ws: ClientConnection) -> str:
    """The ``error`` code a close before ``ready`` stands for, when the event itself was
    lost (the server may close before our hello is even sent)."""
    if ws.close_code == CLOSE_TRY_AGAIN:
        return "not_ready"
    if ws.close_code == CLOSE_POLICY and "token" in (ws.close_reason or ""):
        return "unauthorized"
    return ""


def _closing(ws: ClientConnection) -> str:
    code, reason = ws.close_code, ws.close_reason
    if code is None:
        return ""
    return f" (close {code}{': ' + reason if reason else ''})"


async def chat_with_server(
    url: str,
    caller_id: str,
    inp: TextIO,
    out: TextIO,
    *,
    secret: str | None = None,
    err: TextIO | None = None,
    starting: Callable[[], bool] | None = None,
) -> int:
    """Run one text conversation with the server at ``url``; returns the exit code.

    ``secret``: ``TOURLINE_AVATAR_SECRET``, to chat as ``caller_id`` with a token we sign."""
    try:
        address = ServerAddress.parse(url)
    except ChatError as exc:
        out.write(f"error: {exc.message}\n")
        out.flush()
        return exc.code
    chat = RemoteChat(
        address,
        caller_id,
        secret=secret,
        out=out,
        err=err or sys.stderr,
        interactive=inp.isatty(),
        starting=starting,
    )
    return await chat.run(inp)
