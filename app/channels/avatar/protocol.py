"""The avatar protocol (docs/avatar-protocol.md) as a pure translator: messages ↔ typed events.

Nothing here does I/O, so every malformed message is classified in one place: with an
``error`` code the client can act on, and a WebSocket close code when the socket cannot go
on (``close_code`` None: the session answers with an ``error`` event and carries on).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Final

from app.channels.avatar.tokens import TokenError, verify_token
from app.domain.identity import InvalidCallerId, normalize_caller_id

# WebSocket close codes (RFC 6455).
CLOSE_NORMAL: Final = 1000
CLOSE_UNSUPPORTED: Final = 1003  # an audio format or rate we don't take
CLOSE_INVALID: Final = 1007  # a payload that can't be read (bad hello, odd-length audio)
CLOSE_POLICY: Final = 1008  # no/bad token for a claimed id, no hello, too many bad messages, idle
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
DEVICE_PREFIX: Final = "device:"
"""Anonymous devices live in their own namespace of caller ids: ``device:<id>`` is never a
phone number or email key, so no device id can open a caller's memory."""
MAX_DEVICE_ID: Final = 128
_DEVICE_ID = re.compile(r"^[A-Za-z0-9._-]+$")
OUTPUT_CHUNK_MS: Final = 250
"""Agent audio goes out in binary messages of at most this much audio."""


class ProtocolError(Exception):
    """A message we can't accept: ``code`` for the ``error`` event, ``close_code`` to close."""

    def __init__(self, code: str, reason: str, close_code: int | None = None) -> None:
        reason = readable(reason)
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.close_code = close_code


MAX_REASON_CHARS: Final = 200
"""Reasons are ASCII and at most this long: the session sends the first 120 characters as its
close reason, which must fit in 123 bytes (RFC 6455 5.5), and a log line stays one line."""


def readable(reason: str) -> str:
    """``reason`` as one short line of ASCII (other characters escaped), cut if too long."""
    text = reason.encode("ascii", "backslashreplace").decode("ascii")
    text = " ".join(text.split())
    return text if len(text) <= MAX_REASON_CHARS else text[: MAX_REASON_CHARS - 3] + "..."


# ------------------------------------------------------------------ client → server


@dataclass(frozen=True)
class Hello:
    """The first message: who the client says is talking, and how their audio is framed.

    What it says is a claim; :func:`identify` turns it into the caller id to use."""

    user_id: str | None  # normalized as memory keys it ("device:<id>" for a device); None: no user
    id_kind: str | None  # device_id | user_id | email; None when only a token is sent
    sample_rate: int = NATIVE_RATE
    output_rate: int = NATIVE_RATE
    playback_marks: bool = True
    token: str | None = None
    client: str = ""


@dataclass(frozen=True)
class Memory:
    """The client asks what is remembered about its own caller (the page's memory panel)."""


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


ClientEvent = Hello | Audio | Text | Played | Ping | Pong | Bye | Memory


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
    except RecursionError:
        raise ProtocolError("bad_json", "message is nested too deeply") from None
    except ValueError as exc:  # not JSON, or a number of 5000 digits
        raise ProtocolError("bad_json", f"message is not JSON we can read: {exc}") from None
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
    if kind == "memory":
        return Memory()
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
        token = message.get("token")
        if token is not None and not isinstance(token, str):
            raise ValueError("'token' must be a string")
        token = token.strip() if token else None
        user = message.get("user")
        kind: str | None = None
        user_id: str | None = None
        if user is not None or token is None:  # a token alone is enough
            kind, user_id = _user(user)
        audio = message.get("audio") or {}
        output = message.get("output_audio") or {}
        if not isinstance(audio, dict) or not isinstance(output, dict):
            raise ValueError("'audio' and 'output_audio' must be objects")
        marks = message.get("playback_marks", True)
        client = message.get("client", "")
        if not isinstance(marks, bool):
            raise ValueError("'playback_marks' must be true or false")
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
        token=token or None,
        client=client[:100],
    )


def _user(user: Any) -> tuple[str, str]:
    """(which key, the caller id) from ``{"device_id"|"user_id"|"email": ...}``."""
    if not isinstance(user, dict):
        raise ValueError(
            f"'user' must be an object with one of {', '.join(USER_KEYS)} (or send a 'token')"
        )
    given = [k for k in USER_KEYS if user.get(k) not in (None, "")]
    if len(given) != 1:
        raise ValueError(f"'user' needs exactly one of {', '.join(USER_KEYS)}")
    kind = given[0]
    raw = user[kind]
    if not isinstance(raw, str):
        raise ValueError(f"user.{kind} must be a string")
    if kind == "device_id":
        return kind, _device(raw)
    if kind == "email" and "@" not in raw:
        raise ValueError(f"user.{kind} {raw!r} is not an email address")
    try:
        cid = normalize_caller_id(raw)
    except InvalidCallerId as exc:
        raise ValueError(f"user.{kind}: {exc}") from None
    if cid.startswith(DEVICE_PREFIX):
        raise ValueError(f"user.{kind} can't start with {DEVICE_PREFIX!r}: send user.device_id")
    return kind, cid


def _device(raw: str) -> str:
    """``device:<id>``: kept exactly as sent (no phone or email rules apply to it)."""
    value = raw.strip()
    if not value:
        raise ValueError("user.device_id is empty")
    if len(value) > MAX_DEVICE_ID or not _DEVICE_ID.match(value):
        raise ValueError(
            f"user.device_id must be 1-{MAX_DEVICE_ID} letters, digits, '-', '_' or '.' "
            "(e.g. a random UUID)"
        )
    return DEVICE_PREFIX + value


def identify(hello: Hello, secret: str | None) -> str:
    """The caller id this session speaks as; raises ``ProtocolError`` (closing) if none.

    A device needs nothing. A phone number, email or user id is taken only from a token
    signed with ``secret``: a ``user`` sent with it must name the same caller."""
    if hello.token is None:
        if hello.id_kind == "device_id" and hello.user_id is not None:
            return hello.user_id
        raise ProtocolError(
            "unauthorized",
            f"user.{hello.id_kind} needs a signed 'token' whose sub is that id (the API key "
            "is not an avatar credential); without a token, send user.device_id",
            CLOSE_POLICY,
        )
    try:
        sub = verify_token(secret, hello.token)
        caller_id = normalize_caller_id(sub)
    except TokenError as exc:
        raise ProtocolError("unauthorized", str(exc), CLOSE_POLICY) from None
    except InvalidCallerId as exc:
        raise ProtocolError("unauthorized", f"the token's sub: {exc}", CLOSE_POLICY) from None
    if caller_id.startswith(DEVICE_PREFIX):
        raise ProtocolError(
            "unauthorized",
            "a token's sub can't be a device id: devices connect without a token",
            CLOSE_POLICY,
        )
    if hello.user_id is not None and hello.user_id != caller_id:
        raise ProtocolError(
            "bad_hello",
            f"user.{hello.id_kind} is not the token's subject: send the token alone, or the "
            "user it was minted for",
            CLOSE_INVALID,
        )
    return caller_id


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


def memory(caller: dict[str, Any] | None) -> dict[str, Any]:
    """What is remembered about this session's caller: the memory API's caller record."""
    return {"type": "memory", "caller": caller}


def simple(kind: str) -> dict[str, Any]:
    """``interrupted``, ``conversation_ended``, ``ping``, ``pong``."""
    return {"type": kind}


def audio_chunks(pcm16: bytes, rate: int, max_ms: int = OUTPUT_CHUNK_MS) -> list[bytes]:
    """Agent audio as binary messages of whole samples, at most ``max_ms`` each."""
    step = max(2, rate * max_ms // 1000 * 2)
    usable = len(pcm16) - len(pcm16) % 2
    return [pcm16[i : min(i + step, usable)] for i in range(0, usable, step)]
