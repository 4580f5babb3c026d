"""A scripted OpenAI-compatible chat-completions server on loopback, for tests.

It is a real HTTP server (Starlette on uvicorn, in a background thread, on 127.0.0.1 with an
ephemeral port), so the official ``openai`` client runs unmodified against it: streaming SSE
chunks in OpenAI's exact shape (role delta, content deltas, ``tool_calls`` deltas with
index/id/name and argument fragments split across chunks, ``finish_reason``, ``data: [DONE]``),
non-streaming responses, and OpenAI-style error bodies.

Tests queue what the "model" answers next and read back every request it received::

    with FakeOpenAIServer() as llm:
        llm.reply_tools(ToolCall("check_availability", {"property_id": "hudson-360", ...}))
        llm.reply_text("Hudson 360 is free at 11 AM. Shall I book it?")
        settings = Settings(openai_base_url=llm.url, openai_api_key="test", ...)
        ...
        assert "Hudson" in llm.requests[0].system_prompt

Nothing here talks to anything but 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

CREATED = 1_700_000_000
GATE_TIMEOUT_S = 10.0


@dataclass
class ToolCall:
    """One function call the scripted model makes."""

    name: str
    arguments: dict[str, Any] | str = field(default_factory=dict)
    id: str | None = None

    @property
    def arguments_json(self) -> str:
        if isinstance(self.arguments, str):
            return self.arguments
        return json.dumps(self.arguments)


@dataclass
class ScriptedReply:
    """What the server answers to one request.

    ``status`` other than 200 answers with an OpenAI-style error body. ``delay_s`` waits
    before answering at all (to trip client timeouts). With ``gate``, the streamed content
    stops right after the text ``gate_after`` until the test sets the event, so a test can
    observe what the client did with a stream that is still open. ``stream_error`` sends an
    error event in the middle of the stream instead of finishing it.
    """

    content: str | None = None
    tool_calls: list[ToolCall] = field(default_factory=list)
    status: int = 200
    error_message: str = "scripted failure"
    delay_s: float = 0.0
    gate: threading.Event | None = None
    gate_after: str | None = None
    stream_error: str | None = None
    chunk_chars: int = 5  # content is streamed this many characters at a time
    argument_chars: int = 7  # tool arguments too


@dataclass
class RecordedRequest:
    """One request the server received."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages", []))

    @property
    def system_prompt(self) -> str:
        return next((m["content"] for m in self.messages if m["role"] == "system"), "")

    @property
    def tool_results(self) -> list[dict[str, Any]]:
        """The ``role: tool`` messages sent back, content parsed as JSON when it is JSON."""
        results = []
        for message in self.messages:
            if message["role"] != "tool":
                continue
            try:
                content = json.loads(message["content"])
            except (TypeError, ValueError):
                content = message["content"]
            results.append({**message, "content": content})
        return results

    @property
    def tool_names(self) -> list[str]:
        return [t["function"]["name"] for t in self.body.get("tools", [])]


class FakeOpenAIServer:
    """The scripted server. Use as a context manager, or ``start()`` / ``stop()``."""

    def __init__(self, model: str = "gpt-fake") -> None:
        self.model = model
        self.requests: list[RecordedRequest] = []
        self._script: deque[ScriptedReply] = deque()
        self._closing = threading.Event()
        self._ids = itertools.count(1)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0
        self.app = Starlette(
            routes=[
                Route("/v1/chat/completions", self._chat_completions, methods=["POST"]),
                Route("/v1/models", self._models, methods=["GET"]),
            ]
        )

    # ------------------------------------------------------------------ scripting

    @property
    def url(self) -> str:
        """The ``base_url`` for the OpenAI client."""
        return f"http://127.0.0.1:{self.port}/v1"

    def enqueue(self, reply: ScriptedReply) -> ScriptedReply:
        self._script.append(reply)
        return reply

    def reply_text(self, content: str, **options: Any) -> ScriptedReply:
        return self.enqueue(ScriptedReply(content=content, **options))

    def reply_tools(
        self, *calls: ToolCall, content: str | None = None, **options: Any
    ) -> ScriptedReply:
        return self.enqueue(ScriptedReply(content=content, tool_calls=list(calls), **options))

    def reply_error(self, status: int = 500, message: str = "scripted failure") -> ScriptedReply:
        return self.enqueue(ScriptedReply(status=status, error_message=message))

    @property
    def pending(self) -> int:
        """Scripted replies not used yet."""
        return len(self._script)

    def reset(self) -> None:
        self._script.clear()
        self.requests.clear()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> FakeOpenAIServer:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            lifespan="off",
            loop="asyncio",
            http="h11",
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="fake-openai", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the fake OpenAI server did not start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        self._closing.set()
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ HTTP

    async def _models(self, request: Request) -> Response:
        return JSONResponse({"object": "list", "data": [{"id": self.model, "object": "model"}]})

    async def _chat_completions(self, request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "request body is not JSON", "invalid_request_error")
        self.requests.append(RecordedRequest(request.url.path, dict(request.headers), body))
        if not isinstance(body, dict) or not body.get("model") or not body.get("messages"):
            return _error(400, "model and messages are required", "invalid_request_error")
        reply = self._script.popleft() if self._script else None
        if reply is None:
            return _error(500, "the fake server has no scripted reply left", "server_error")
        if reply.delay_s:
            await self._sleep(reply.delay_s)
        if reply.status != 200:
            return _error(reply.status, reply.error_message, "server_error")
        completion_id = f"chatcmpl-fake{next(self._ids)}"
        calls = [(call, call.id or f"call_fake{next(self._ids)}") for call in reply.tool_calls]
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return StreamingResponse(
                self._sse(reply, calls, completion_id, include_usage),
                media_type="text/event-stream",
                headers={"cache-control": "no-cache"},
            )
        return JSONResponse(self._completion(reply, calls, completion_id))

    # ------------------------------------------------------------------ bodies

    def _completion(
        self, reply: ScriptedReply, calls: list[tuple[ToolCall, str]], completion_id: str
    ) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": reply.content, "refusal": None}
        if calls:
            message["tool_calls"] = [
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments_json},
                }
                for call, call_id in calls
            ]
        return {
            "id": completion_id,
            "object": "chat.completion",
            "created": CREATED,
            "model": self.model,
            "system_fingerprint": "fp_fake",
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": "tool_calls" if calls else "stop",
                }
            ],
            "usage": _usage(reply),
        }

    async def _sse(
        self,
        reply: ScriptedReply,
        calls: list[tuple[ToolCall, str]],
        completion_id: str,
        include_usage: bool,
    ) -> AsyncIterator[str]:
        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> str:
            payload: dict[str, Any] = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": CREATED,
                "model": self.model,
                "system_fingerprint": "fp_fake",
                "choices": [
                    {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
                ],
            }
            if include_usage:
                payload["usage"] = None
            return _event(payload)

        yield chunk(
            {"role": "assistant", "content": "" if reply.content else None, "refusal": None}
        )
        content = reply.content or ""
        held, rest = content, ""
        if reply.gate is not None and reply.gate_after and reply.gate_after in content:
            cut = content.index(reply.gate_after) + len(reply.gate_after)
            held, rest = content[:cut], content[cut:]
        for piece in _pieces(held, reply.chunk_chars):
            yield chunk({"content": piece})
            await asyncio.sleep(0)
        if reply.gate is not None:
            await self._wait_for(reply.gate)
        for piece in _pieces(rest, reply.chunk_chars):
            yield chunk({"content": piece})
            await asyncio.sleep(0)
        if reply.stream_error:
            yield _event(
                {
                    "error": {
                        "message": reply.stream_error,
                        "type": "server_error",
                        "param": None,
                        "code": None,
                    }
                }
            )
            return
        for index, (call, call_id) in enumerate(calls):
            yield chunk(
                {
                    "tool_calls": [
                        {
                            "index": index,
                            "id": call_id,
                            "type": "function",
                            "function": {"name": call.name, "arguments": ""},
                        }
                    ]
                }
            )
            for piece in _pieces(call.arguments_json, reply.argument_chars):
                yield chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
        yield chunk({}, "tool_calls" if calls else "stop")
        if include_usage:
            yield _event(
                {
                    "id": completion_id,
                    "object": "chat.completion.chunk",
                    "created": CREATED,
                    "model": self.model,
                    "choices": [],
                    "usage": _usage(reply),
                }
            )
        yield "data: [DONE]\n\n"

    async def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not self._closing.is_set():
            await asyncio.sleep(0.005)

    async def _wait_for(self, gate: threading.Event) -> None:
        deadline = time.monotonic() + GATE_TIMEOUT_S
        while not gate.is_set() and not self._closing.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(0.002)


def _event(payload: dict[str, Any]) -> str:
    return f"data: {json.dumps(payload)}\n\n"


def _pieces(text: str, size: int) -> list[str]:
    size = max(1, size)
    return [text[i : i + size] for i in range(0, len(text), size)]


def _usage(reply: ScriptedReply) -> dict[str, int]:
    completion = len((reply.content or "").split()) + 10 * len(reply.tool_calls)
    return {"prompt_tokens": 100, "completion_tokens": completion, "total_tokens": 100 + completion}


def _error(status: int, message: str, kind: str) -> JSONResponse:
    return JSONResponse(
        {"error": {"message": message, "type": kind, "param": None, "code": None}},
        status_code=status,
    )


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAIServer]:
    """A running fake server; import this fixture into a conftest or test module to use it."""
    with FakeOpenAIServer() as server:
        yield server
