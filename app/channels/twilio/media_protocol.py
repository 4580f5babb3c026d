"""Twilio Media Streams messages, as a pure translator: JSON text in, typed events out.

Nothing here does I/O, so the transport stays small and every malformed message is
classified in one place with a WebSocket close code that says why.
https://www.twilio.com/docs/voice/media-streams/websocket-messages
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any

MAX_MESSAGE_BYTES = 64 * 1024  # a 20 ms media frame is ~250 bytes of JSON; allow big starts

# WebSocket close codes (RFC 6455): 1003 unsupported data, 1007 invalid payload,
# 1008 policy violation, 1009 message too big.
CLOSE_UNSUPPORTED = 1003
CLOSE_INVALID = 1007
CLOSE_POLICY = 1008
CLOSE_TOO_BIG = 1009
MAX_REASON_CHARS = 200
"""Reasons are ASCII and at most this long: the socket sends the first 120 characters as its
close reason, which must fit in 123 bytes (RFC 6455 5.5), and a log line stays one line."""


class ProtocolError(Exception):
    """A message we can't accept; ``close_code`` is None when it can just be ignored."""

    def __init__(self, reason: str, close_code: int | None) -> None:
        reason = readable(reason)
        super().__init__(reason)
        self.reason = reason
        self.close_code = close_code


def readable(reason: str) -> str:
    """``reason`` as one short line of ASCII (other characters escaped), cut if too long."""
    text = reason.encode("ascii", "backslashreplace").decode("ascii")
    text = " ".join(text.split())
    return text if len(text) <= MAX_REASON_CHARS else text[: MAX_REASON_CHARS - 3] + "..."


def _shown(value: Any) -> str:
    """A client's value in an error message: ASCII, and short enough to read."""
    text = ascii(value)
    return text if len(text) <= 40 else text[:37] + "..."


@dataclass(frozen=True)
class Connected:
    protocol: str


@dataclass(frozen=True)
class Start:
    stream_sid: str
    call_sid: str
    account_sid: str
    custom_parameters: dict[str, str] = field(default_factory=dict)
    encoding: str = "audio/x-mulaw"
    sample_rate: int = 8000
    channels: int = 1


@dataclass(frozen=True)
class Media:
    payload: bytes  # μ-law 8 kHz
    timestamp_ms: int
    chunk: int


@dataclass(frozen=True)
class Mark:
    name: str


@dataclass(frozen=True)
class Dtmf:
    digit: str


@dataclass(frozen=True)
class Stop:
    call_sid: str


TwilioEvent = Connected | Start | Media | Mark | Dtmf | Stop


def parse(text: str | bytes) -> TwilioEvent:
    """One WebSocket message from Twilio, as an event; raises ``ProtocolError``."""
    if len(text) > MAX_MESSAGE_BYTES:
        raise ProtocolError(f"message of {len(text)} bytes is too big", CLOSE_TOO_BIG)
    try:
        message = json.loads(text)
    except (ValueError, RecursionError) as exc:  # also bad UTF-8, 5000-digit numbers
        raise ProtocolError(
            f"message is not JSON we can read: {_error(exc)}", CLOSE_INVALID
        ) from None
    if not isinstance(message, dict):
        raise ProtocolError("message is not a JSON object", CLOSE_INVALID)
    event = message.get("event")
    try:
        if event == "media":
            return _media(message["media"])
        if event == "mark":
            return Mark(str(message["mark"]["name"]))
        if event == "dtmf":
            return Dtmf(str(message["dtmf"]["digit"]))
        if event == "start":
            return _start(message)
        if event == "stop":
            return Stop(str(message.get("stop", {}).get("callSid", "")))
        if event == "connected":
            return Connected(str(message.get("protocol", "")))
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
        # AttributeError: a field that should be an object is not ("start": "x"), so it has
        # no .get; OverflowError: a number that is infinite (1e400) where an int belongs.
        raise ProtocolError(f"malformed {event!r} message: {_error(exc)}", CLOSE_INVALID) from None
    raise ProtocolError(f"unknown event {_shown(event)}", None)


def _error(exc: BaseException) -> str:
    """What went wrong, in words: a missing field is named, not shown as a traceback."""
    if isinstance(exc, KeyError):
        return f"no field {_shown(exc.args[0])}"
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _media(media: dict[str, Any]) -> Media:
    try:
        payload = base64.b64decode(media["payload"], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"payload is not base64: {exc}") from exc
    return Media(payload, int(media.get("timestamp", 0)), int(media.get("chunk", 0)))


def _start(message: dict[str, Any]) -> Start:
    start = message["start"]
    fmt = start.get("mediaFormat", {})
    params = start.get("customParameters") or {}
    if not isinstance(params, dict):
        raise ValueError("customParameters is not an object")
    return Start(
        stream_sid=str(start.get("streamSid") or message["streamSid"]),
        call_sid=str(start["callSid"]),
        account_sid=str(start.get("accountSid", "")),
        custom_parameters={str(k): str(v) for k, v in params.items()},
        encoding=str(fmt.get("encoding", "audio/x-mulaw")),
        sample_rate=int(fmt.get("sampleRate", 8000)),
        channels=int(fmt.get("channels", 1)),
    )


# ------------------------------------------------------------------ outbound


def media_message(stream_sid: str, mulaw: bytes) -> str:
    payload = base64.b64encode(mulaw).decode("ascii")
    return json.dumps({"event": "media", "streamSid": stream_sid, "media": {"payload": payload}})


def mark_message(stream_sid: str, name: str) -> str:
    return json.dumps({"event": "mark", "streamSid": stream_sid, "mark": {"name": name}})


def clear_message(stream_sid: str) -> str:
    return json.dumps({"event": "clear", "streamSid": stream_sid})
