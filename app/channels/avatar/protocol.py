"""The avatar protocol (docs/avatar-protocol.md) as a pure translator: messages ↔ typed events.

Nothing here does I/O, so every malformed message is classified in one place: with an
``error`` code the client can act on, and a WebSocket close code when the socket cannot go
on (``close_code`` None: the session answers with an ``error`` event and carries on).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

from app.domain.identity import InvalidCallerId, normalize_caller_id

# WebSocket close codes (RFC 6455).
CLOSE_NORMAL: Final = 1000
CLOSE_UNSUPPORTED: Final = 1003  # an audio format or rate we don't take
CLOSE_INVALID: Final = 1007  # a payload that can't be read (bad hello, odd-length audio)
CLOSE_POLICY: Final = 1008  # no/wrong API key, no hello, too many bad messages, idle
CLOSE_TOO_BIG: Final = 1009
CLOSE_INTERNAL: Final = 1011
CLOSE_TRY_AGAIN: Final = 1013  # the server is still loading its models

NATIVE_RATE: Final = 16000
"""What VAD and STT run at; 8000 is also taken as is (the phone path's rate)."""
SUPPORTED_RATES: Final = (8000, 16000, 22050, 24000, 32000, 44100, 48000)
MAX_TEXT_BYTES: Final = 16 * 1024  # one JSON message
MAX_AUDIO_BYTES: Final = 256 * 1024  # one binary message: > 2.5 s at 48 kHz
MAX_TYPED_CHARS: Final = 1000
MAX_MARK_CHARS: Final = 64
USER_KEYS: Final = ("device_id", "user_id", "email")
OUTPUT_CHUNK_MS: Final = 250
"""Agent audio goes out in binary messages of at most this much audio."""


class ProtocolError(Exception):
    """A message we can't accept: ``code`` for the ``error`` event, ``close_code`` to close."""

    def __init__(self, code: str, reason: str, close_code: int | None = None) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.close_code = close_code


# ------------------------------------------------------------------ client → server


@dataclass(frozen=True)
class Hello:
    """The first message: who is talking, and how their audio is framed."""

    user_id: str  # normalized, as memory keys it
    id_kind: str  # device_id | user_id | email
    sample_rate: int = NATIVE_RATE
    output_rate: int = NATIVE_RATE
    playback_marks: bool = True
    api_key: str | None = None
    client: str = ""


@dataclass(frozen=True)
class Audio:
    pcm16: bytes  # little-endian mono at the hello's sample rate


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class Played:
    mark: str


@dataclass(frozen=True)
class Ping:
    pass


@dataclass(frozen=True)
class Pong:
    pass


@dataclass(frozen=True)
class Bye:
    pass


ClientEvent = Hello | Audio | Text | Played | Ping | Pong | Bye


def parse(data: str | bytes) -> ClientEvent:
    """Any message: binary is audio, text is JSON; raises ``ProtocolError``."""
    return parse_binary(data) if isinstance(data, bytes) else parse_text(data)


def parse_binary(data: bytes) -> Audio:
    """One binary message: PCM16 audio, whole samples only."""
    if len(data) > MAX_AUDIO_BYTES:
        raise ProtocolError(
            "too_big", f"audio message of {len(data)} bytes (max {MAX_AUDIO_BYTES})", CLOSE_TOO_BIG
        )
    if len(data) % 2:
        raise ProtocolError(
            "bad_audio",
            f"audio message of {len(data)} bytes is not whole PCM16 samples",
            CLOSE_INVALID,
        )
    return Audio(bytes(data))


def parse_text(text: str) -> ClientEvent:
    """One JSON message; raises ``ProtocolError``."""
    if len(text) > MAX_TEXT_BYTES:
        raise ProtocolError(
            "too_big", f"message of {len(text)} bytes (max {MAX_TEXT_BYTES})", CLOSE_TOO_BIG
        )
    try:
        message = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProtocolError("bad_json", f"message is not JSON: {exc}") from None
    if not isinstance(message, dict):
        raise ProtocolError("bad_json", "message is not a JSON object")
    kind = message.get("type")
    if kind == "hello":
        return _hello(message)
    if kind == "text":
        return Text(_typed(message.get("text")))
    if kind == "played":
        return Played(_mark(message.get("mark")))
    if kind == "ping":
        return Ping()
    if kind == "pong":
        return Pong()
    if kind == "bye":
        return Bye()
    raise ProtocolError("unknown_type", f"unknown message type {kind!r}")


def _typed(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ProtocolError("bad_message", "'text' needs a non-empty string field 'text'")
    if len(value) > MAX_TYPED_CHARS:
        raise ProtocolError("bad_message", f"'text' is longer than {MAX_TYPED_CHARS} characters")
    return value.strip()


def _mark(value: Any) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_MARK_CHARS:
        raise ProtocolError("bad_message", "'played' needs the string field 'mark' of a mark")
    return value


def _hello(message: dict[str, Any]) -> Hello:
    """A bad hello closes the socket: without it there is no session to carry on."""
    try:
        kind, user_id = _user(message.get("user"))
        audio = message.get("audio") or {}
        output = message.get("output_audio") or {}
        if not isinstance(audio, dict) or not isinstance(output, dict):
            raise ValueError("'audio' and 'output_audio' must be objects")
        marks = message.get("playback_marks", True)
        key = message.get("api_key")
        client = message.get("client", "")
        if not isinstance(marks, bool):
            raise ValueError("'playback_marks' must be true or false")
        if key is not None and not isinstance(key, str):
            raise ValueError("'api_key' must be a string")
        if not isinstance(client, str):
            raise ValueError("'client' must be a string")
    except ValueError as exc:
        raise ProtocolError("bad_hello", f"bad hello: {exc}", CLOSE_INVALID) from None
    return Hello(
        user_id=user_id,
        id_kind=kind,
        sample_rate=_format(audio, "audio"),
        output_rate=_format(output, "output_audio"),
        playback_marks=marks,
        api_key=key or None,
        client=client[:100],
    )


def _user(user: Any) -> tuple[str, str]:
    """(which key, the normalized id) from ``{"device_id"|"user_id"|"email": ...}``."""
    if not isinstance(user, dict):
        raise ValueError(f"'user' must be an object with one of {', '.join(USER_KEYS)}")
    given = [k for k in USER_KEYS if user.get(k) not in (None, "")]
    if len(given) != 1:
        raise ValueError(f"'user' needs exactly one of {', '.join(USER_KEYS)}")
    kind = given[0]
    raw = user[kind]
    if not isinstance(raw, str):
        raise ValueError(f"user.{kind} must be a string")
    if kind == "email" and "@" not in raw:
        raise ValueError(f"user.email {raw!r} is not an email address")
    try:
        cid = normalize_caller_id(raw)
    except InvalidCallerId as exc:
        raise ValueError(f"user.{kind}: {exc}") from None
    return kind, cid


def _format(audio: dict[str, Any], where: str) -> int:
    """The sample rate of a PCM16 mono format; anything else closes with 1003."""
    fmt = audio.get("format", "pcm16")
    rate = audio.get("sample_rate", NATIVE_RATE)
    channels = audio.get("channels", 1)
    if fmt != "pcm16" or channels != 1:
        raise ProtocolError(
            "unsupported_audio",
            f"{where}: only PCM16 mono is supported (format 'pcm16', channels 1)",
            CLOSE_UNSUPPORTED,
        )
    if isinstance(rate, bool) or not isinstance(rate, int) or rate not in SUPPORTED_RATES:
        rates = ", ".join(str(r) for r in SUPPORTED_RATES)
        raise ProtocolError(
            "unsupported_audio",
            f"{where}: sample_rate {rate!r} is not one of {rates}",
            CLOSE_UNSUPPORTED,
        )
    return rate


# ------------------------------------------------------------------ server → client


def dumps(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"), default=str)


def ready(
    *,
    session_id: str,
    user_id: str,
    returning: bool,
    name: str | None,
    input_rate: int,
    output_rate: int,
    playback_marks: bool,
    ping_interval_s: float,
) -> dict[str, Any]:
    return {
        "type": "ready",
        "session_id": session_id,
        "user_id": user_id,
        "returning": returning,
        "name": name,
        "input_audio": {"format": "pcm16", "sample_rate": input_rate, "channels": 1},
        "output_audio": {"format": "pcm16", "sample_rate": output_rate, "channels": 1},
        "playback_marks": playback_marks,
        "ping_interval_s": ping_interval_s,
    }


def transcript(text: str, *, final: bool, source: str = "voice") -> dict[str, Any]:
    return {"type": "transcript", "text": text, "final": final, "source": source}


def agent_text(text: str, mark: str) -> dict[str, Any]:
    return {"type": "agent_text", "text": text, "mark": mark}


def agent_done(text: str, reply: str) -> dict[str, Any]:
    return {"type": "agent_done", "text": text, "reply": reply}


def mark(name: str) -> dict[str, Any]:
    return {"type": "mark", "name": name}


def error(code: str, message: str) -> dict[str, Any]:
    return {"type": "error", "code": code, "message": message}


def simple(kind: str) -> dict[str, Any]:
    """``interrupted``, ``conversation_ended``, ``ping``, ``pong``."""
    return {"type": kind}


def audio_chunks(pcm16: bytes, rate: int, max_ms: int = OUTPUT_CHUNK_MS) -> list[bytes]:
    """Agent audio as binary messages of whole samples, at most ``max_ms`` each."""
    step = max(2, rate * max_ms // 1000 * 2)
    usable = len(pcm16) - len(pcm16) % 2
    return [pcm16[i : min(i + step, usable)] for i in range(0, usable, step)]
