"""Plays Twilio's side of a phone call against the real server, for tests and benchmarks.

Why a simulator instead of mocks: barge-in, end-of-turn and latency only mean something if
the far end behaves like Twilio's media edge. So this module sends exactly the JSON Twilio
sends, paces caller audio at real time on a drift-free 20 ms clock, fills the gaps with line
noise instead of digital silence, and plays the server's audio back the way Twilio's player
does: outbound ``media`` is buffered and played at real time, a ``mark`` is echoed when
playback reaches it, and a ``clear`` empties the buffer and echoes every mark still pending.

Pieces, smallest first:

- ``post_voice_webhook`` / ``parse_twiml`` / ``upgrade_signature``: the HTTP leg of a call.
- ``CallerVoice``: text (Piper) or raw 8 kHz PCM -> 20 ms μ-law frames, each flagged voiced
  or not, so latency can start at the last voiced frame rather than at trailing silence.
- ``MediaClock``: absolute 20 ms deadlines.
- ``MediaStream``: the WebSocket and Twilio's inbound messages with their sequence numbers.
- ``Player``: Twilio's outbound playback buffer (media, marks, clear) plus a record of
  everything the server sent and when.
- ``TwilioCall``: the facade tests use: ``listen``, ``say``, ``say_over_agent``, ``press``,
  ``hang_up``, ``timeline``.
- ``transcribe``: what the caller heard, through one shared Whisper.

Every timestamp is ``time.monotonic()`` seconds (the event loop's clock too).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import re
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlsplit

import httpx
import numpy as np
import numpy.typing as npt
from twilio.request_validator import RequestValidator
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from app.audio.codec import (
    FRAME_MS,
    PHONE_SAMPLE_RATE,
    ULAW_FRAME_BYTES,
    Resampler,
    decode_from_phone,
    pcm16_to_array,
    ulaw_decode,
    ulaw_encode,
    ulaw_to_pcm16,
)

__all__ = [
    "DEFAULT_FROM",
    "DEFAULT_TO",
    "AgentTurn",
    "CallEnded",
    "CallerScript",
    "CallerVoice",
    "MediaClock",
    "MediaStream",
    "NoReply",
    "Outbound",
    "Player",
    "Speech",
    "StreamInstruction",
    "TwilioCall",
    "Utterance",
    "cough_pcm8k",
    "fetch_timeline",
    "fresh_number",
    "local_socket_url",
    "new_sid",
    "parse_twiml",
    "post_voice_webhook",
    "preload_models",
    "question_kind",
    "shared_stt",
    "shared_voice",
    "transcribe",
    "twilio_form",
    "upgrade_signature",
    "wait_for_timeline",
]

FRAME_S: Final = FRAME_MS / 1000
DEFAULT_FROM: Final = "+14155550123"
DEFAULT_TO: Final = "+12125550100"
TWILIO_API_VERSION: Final = "2010-04-01"
MEDIA_PATH: Final = "/twilio/media"

LINE_NOISE_DBFS: Final = -60.0
"""A quiet phone line: low-level noise, never digital zero (VADs treat the two differently)."""
VOICED_DBFS: Final = -40.0
"""A frame of caller audio is "voiced" above this RMS level (Piper speech sits near -20)."""

_OUTBOUND_EVENTS: Final = frozenset({"media", "mark", "clear"})
"""The only messages Twilio accepts from the server on a bidirectional stream."""


TEST_TOKEN = "test-token"
"""The Twilio auth token test servers are started with (signatures are checked)."""
TEST_PUBLIC_URL = "https://tourline.example"
"""The public URL test servers sign against (TOURLINE_PUBLIC_URL)."""


class CallEnded(Exception):
    """The media socket closed (server hung up, or we did) while we were waiting on it."""


class NoReply(TimeoutError):
    """The agent sent no audio within the timeout."""


def new_sid(prefix: str) -> str:
    """A Twilio-shaped id: two-letter prefix + 32 hex digits (CA..., MZ..., AC...)."""
    return prefix + uuid.uuid4().hex


def fresh_number() -> str:
    """A caller id no earlier call used, so no test meets a "returning caller" greeting."""
    return "+1415555" + f"{uuid.uuid4().int % 10_000:04d}"


def _dbfs(samples: npt.NDArray[np.int16]) -> float:
    if samples.size == 0:
        return -120.0
    rms = float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))
    return 20 * np.log10(max(rms, 1e-3) / 32768.0)


# --------------------------------------------------------------------------- HTTP leg


def twilio_form(
    call_sid: str,
    from_number: str = DEFAULT_FROM,
    to_number: str = DEFAULT_TO,
    account_sid: str | None = None,
) -> dict[str, str]:
    """The fields Twilio POSTs to the voice webhook when a call rings (a realistic subset)."""
    return {
        "AccountSid": account_sid or "AC" + "0" * 32,
        "ApiVersion": TWILIO_API_VERSION,
        "CallSid": call_sid,
        "CallStatus": "ringing",
        "Called": to_number,
        "CalledCountry": "US",
        "Caller": from_number,
        "CallerCountry": "US",
        "Direction": "inbound",
        "From": from_number,
        "FromCountry": "US",
        "To": to_number,
        "ToCountry": "US",
    }


async def post_voice_webhook(
    base_url: str,
    public_url: str,
    auth_token: str | None,
    form: dict[str, str],
    *,
    path: str = "/twilio/voice",
) -> str:
    """POST the incoming-call webhook signed as Twilio signs it; returns the TwiML text.

    Twilio signs over the public URL it called (not our loopback address) plus the POST
    params, which is why ``public_url`` and ``base_url`` are separate.
    """
    headers = {"User-Agent": "TwilioProxy/1.1"}
    if auth_token:
        url = public_url.rstrip("/") + path
        headers["X-Twilio-Signature"] = RequestValidator(auth_token).compute_signature(url, form)
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.post(base_url.rstrip("/") + path, data=form, headers=headers)
    response.raise_for_status()
    return response.text


@dataclass(frozen=True)
class StreamInstruction:
    """What ``<Connect><Stream>`` told Twilio to do."""

    url: str
    parameters: dict[str, str]
    twiml: str


def parse_twiml(twiml: str) -> StreamInstruction:
    """The ``<Stream url>`` and its ``<Parameter>``s; raises ValueError if there is none."""
    root = ET.fromstring(twiml)
    stream = root.find("./Connect/Stream")
    if stream is None or not stream.get("url"):
        raise ValueError(f"TwiML has no <Connect><Stream url=...>: {twiml}")
    params = {
        str(p.get("name")): str(p.get("value", ""))
        for p in stream.findall("Parameter")
        if p.get("name")
    }
    return StreamInstruction(str(stream.get("url")), params, twiml)


def upgrade_signature(auth_token: str, stream_url: str) -> str:
    """X-Twilio-Signature of the WebSocket upgrade: over the wss:// URL, no params."""
    return RequestValidator(auth_token).compute_signature(stream_url, {})


def local_socket_url(base_url: str, stream_url: str) -> str:
    """ws://127.0.0.1:port/path: where the public wss:// stream URL really lands in a test."""
    base = urlsplit(base_url)
    path = urlsplit(stream_url).path or MEDIA_PATH
    return f"ws://{base.netloc}{path}"


# --------------------------------------------------------------------------- caller audio


@dataclass(frozen=True)
class Speech:
    """Caller audio ready to stream: 160-byte μ-law frames and which of them carry voice."""

    text: str
    frames: tuple[bytes, ...]
    voiced: tuple[bool, ...]

    @property
    def duration_s(self) -> float:
        return len(self.frames) * FRAME_S


class CallerVoice:
    """Turns caller lines into phone frames, the way a handset and Twilio would carry them.

    Text goes through Piper (22.05 kHz) -> ``Resampler`` -> 8 kHz, then line noise is mixed
    in and the result is μ-law coded. Renders are cached by text: a benchmark pre-renders
    its script so synthesis never competes with the server while calls run.

    Piper's sampling noise is off by default so a test hears the same audio every run.
    """

    def __init__(self, tts: Any = None, *, seed: int = 7, steady: bool = True) -> None:
        self._tts = tts
        self._steady = steady
        self._cache: dict[str, Speech] = {}
        self._lock = threading.Lock()
        self._rng = np.random.default_rng(seed)

    @property
    def tts(self) -> Any:
        """The PiperTTS instance, loaded on first use (run that off the event loop)."""
        with self._lock:
            if self._tts is None:
                from app.audio.tts import PiperTTS

                noise = {"noise_scale": 0.0, "noise_w_scale": 0.0} if self._steady else {}
                # One intra-op thread: the server under test needs the cores more than we do.
                self._tts = PiperTTS(threads=1, **noise)
            return self._tts

    def render(self, text: str) -> Speech:
        """Text as caller speech. Synchronous and CPU-bound: call it via ``asyncio.to_thread``."""
        with self._lock:
            cached = self._cache.get(text)
        if cached is not None:
            return cached
        tts = self.tts
        pcm = pcm16_to_array(b"".join(tts.synthesize(text)))
        resampler = Resampler(tts.sample_rate, PHONE_SAMPLE_RATE)
        pcm8k = np.concatenate([resampler.process(pcm), resampler.flush()])
        speech = self.from_pcm8k(pcm8k, text=text)
        with self._lock:
            self._cache[text] = speech
        return speech

    def prerender(self, texts: Sequence[str]) -> None:
        """Render (and cache) a script up front."""
        for text in texts:
            self.render(text)

    def from_pcm8k(self, pcm8k: npt.NDArray[np.int16] | bytes, *, text: str = "") -> Speech:
        """Raw 8 kHz PCM16 (a cough, a noise burst) as caller frames with line noise mixed in."""
        clean = pcm16_to_array(pcm8k) if isinstance(pcm8k, bytes | bytearray) else pcm8k
        clean = np.asarray(clean, dtype=np.int16)
        pad = (-clean.size) % ULAW_FRAME_BYTES
        clean = np.concatenate([clean, np.zeros(pad, dtype=np.int16)])
        with self._lock:
            noise = self._noise(clean.size)
        mixed = np.clip(clean.astype(np.int32) + noise, -32768, 32767).astype(np.int16)
        codes = ulaw_encode(mixed).tobytes()
        frames, voiced = [], []
        for i in range(0, clean.size, ULAW_FRAME_BYTES):
            frames.append(codes[i : i + ULAW_FRAME_BYTES])
            voiced.append(_dbfs(clean[i : i + ULAW_FRAME_BYTES]) > VOICED_DBFS)
        return Speech(text, tuple(frames), tuple(voiced))

    def _noise(self, n: int) -> npt.NDArray[np.int32]:
        sigma = 32768.0 * 10 ** (LINE_NOISE_DBFS / 20)
        return np.rint(self._rng.normal(0.0, sigma, n)).astype(np.int32)

    def silence_frames(self, count: int) -> list[bytes]:
        """``count`` frames of line noise (what an idle phone line sounds like)."""
        with self._lock:
            noise = self._noise(count * ULAW_FRAME_BYTES)
        codes = ulaw_encode(noise.astype(np.int16)).tobytes()
        return [codes[i : i + ULAW_FRAME_BYTES] for i in range(0, len(codes), ULAW_FRAME_BYTES)]


def cough_pcm8k(
    duration_s: float = 0.15, level_dbfs: float = -14.0, seed: int = 3
) -> npt.NDArray[np.int16]:
    """A cough-like burst: loud broadband noise with a sharp attack and a fast decay."""
    rng = np.random.default_rng(seed)
    n = int(duration_s * PHONE_SAMPLE_RATE)
    t = np.arange(n) / PHONE_SAMPLE_RATE
    envelope = np.minimum(1.0, t / 0.01) * np.exp(-t / (duration_s / 3))
    noise = rng.normal(0.0, 1.0, n)
    # A little low-pass (a moving average) so it sounds like breath, not hiss.
    noise = np.convolve(noise, np.ones(3) / 3, mode="same")
    burst = noise * envelope
    rms = float(np.sqrt(np.mean(burst**2))) or 1.0
    scale = 32768.0 * 10 ** (level_dbfs / 20) / rms
    return np.clip(np.rint(burst * scale), -32768, 32767).astype(np.int16)


_SHARED_LOCK = threading.Lock()
_SHARED: dict[str, Any] = {}


def shared_voice() -> CallerVoice:
    """One caller voice per process (Piper takes ~2 s to load)."""
    with _SHARED_LOCK:
        if "voice" not in _SHARED:
            _SHARED["voice"] = CallerVoice()
        return _SHARED["voice"]


def shared_stt() -> Any:
    """One ``WhisperSTT(encoder_window_s=10)`` per process, to hear the agent as a caller does.

    One CPU thread: the server under test is on the same two cores.
    """
    with _SHARED_LOCK:
        if "stt" not in _SHARED:
            from app.audio.stt import WhisperSTT

            _SHARED["stt"] = WhisperSTT(encoder_window_s=10, cpu_threads=1)
        return _SHARED["stt"]


async def preload_models(*, stt: bool = True, voice: bool = True) -> None:
    """Load Piper and Whisper in a worker thread before any call's media clock starts."""

    def load() -> None:
        if voice:
            _ = shared_voice().tts
        if stt:
            shared_stt()

    await asyncio.to_thread(load)


# --------------------------------------------------------------------------- pacing


class MediaClock:
    """20 ms ticks scheduled on absolute deadlines from one origin.

    Why: ``sleep(0.02)`` in a loop drifts by the loop's own overhead every tick; after a
    minute of call the caller would be audibly slow. With absolute deadlines a late tick is
    followed by an early one, as with Twilio's real-time media. ``max_late_s`` tells a
    benchmark whether the harness itself kept up.
    """

    def __init__(self, period_s: float = FRAME_S) -> None:
        self.period_s = period_s
        self.origin: float | None = None
        self.ticks = 0
        self.max_late_s = 0.0

    def start(self, origin: float | None = None) -> None:
        self.origin = time.monotonic() if origin is None else origin
        self.ticks = 0

    async def tick(self) -> int:
        """Wait for the next deadline; returns the tick index (0, 1, 2...)."""
        if self.origin is None:
            self.start()
        assert self.origin is not None
        index = self.ticks
        deadline = self.origin + index * self.period_s
        self.ticks += 1
        delay = deadline - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            self.max_late_s = max(self.max_late_s, -delay)
        return index


# --------------------------------------------------------------------------- socket


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


# --------------------------------------------------------------------------- player


@dataclass
class Outbound:
    """One message the server sent, as received."""

    at: float
    event: str
    message: dict[str, Any]


@dataclass
class _Media:
    at: float
    payload: bytes
    start: float  # when Twilio's player starts playing it
    end: float
    played: int | None = None  # bytes heard if a clear or hang-up cut it; None: all of it

    def heard(self) -> bytes:
        return self.payload if self.played is None else self.payload[: self.played]


@dataclass
class _Mark:
    at: float
    name: str
    due: float  # when playback reaches it
    echoed_at: float | None = None
    by_clear: bool = False


@dataclass
class _Clear:
    at: float


_Item = _Media | _Mark | _Clear


class Player:
    """Twilio's playback buffer for one call, plus a record of what the server sent.

    Event-driven rather than a 20 ms loop: each media chunk is scheduled to play right after
    the previous one (or now, if the buffer ran dry), which is real-time playback without a
    second clock to drift. ``clear`` cuts the chunk playing now, drops the rest and echoes
    pending marks at once; a closing socket cuts playback the same way but echoes nothing.
    """

    def __init__(self, echo: Callable[[str], Awaitable[None]]) -> None:
        self._echo = echo
        self.items: list[_Item] = []
        self.outbound: list[Outbound] = []
        self.violations: list[str] = []
        self.play_end = 0.0
        self.last_message_at = 0.0
        self.last_echo_at = 0.0
        self.closed_at: float | None = None
        self._pending: deque[_Mark] = deque()
        self._changed = asyncio.Event()

    # -- waiting

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def wait_change(self, timeout_s: float | None) -> None:
        """Return when anything changes (or after ``timeout_s``)."""
        changed = self._changed
        if timeout_s is not None and timeout_s <= 0:
            await asyncio.sleep(0)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(changed.wait(), timeout_s)

    # -- inbound from the server

    def on_message(self, raw: str | bytes, now: float) -> None:
        """Record, validate and act on one server message."""
        self.last_message_at = now
        if isinstance(raw, bytes):
            self.violations.append(f"binary frame of {len(raw)} bytes")
            self.outbound.append(Outbound(now, "<binary>", {}))
            return
        try:
            message = json.loads(raw)
        except ValueError:
            self.violations.append(f"not JSON: {raw[:200]!r}")
            self.outbound.append(Outbound(now, "<invalid>", {}))
            return
        if not isinstance(message, dict):
            self.violations.append(f"not a JSON object: {raw[:200]!r}")
            self.outbound.append(Outbound(now, "<invalid>", {}))
            return
        event = str(message.get("event"))
        self.outbound.append(Outbound(now, event, message))
        if event not in _OUTBOUND_EVENTS:
            self.violations.append(f"event {event!r} is not one Twilio accepts: {raw[:200]}")
            return
        if event == "media":
            self._on_media(message, now)
        elif event == "mark":
            name = (message.get("mark") or {}).get("name")
            if not isinstance(name, str) or not name:
                self.violations.append(f"mark without a name: {raw[:200]}")
                return
            self._pending.append(_Mark(now, name, due=max(now, self.play_end)))
            self.items.append(self._pending[-1])
        else:
            self._on_clear(now)
        self._notify()

    def _on_media(self, message: dict[str, Any], now: float) -> None:
        payload = (message.get("media") or {}).get("payload")
        try:
            audio = base64.b64decode(str(payload), validate=True)
        except (binascii.Error, ValueError):
            self.violations.append(f"media payload is not base64: {str(payload)[:80]!r}")
            return
        if not audio:
            self.violations.append("media with an empty payload")
            return
        start = max(now, self.play_end)
        end = start + len(audio) / PHONE_SAMPLE_RATE
        self.play_end = end
        self.items.append(_Media(now, audio, start, end))

    def _cut_playback(self, now: float) -> None:
        for item in reversed(self.items):
            if isinstance(item, _Media):
                if item.end <= now:
                    break
                played = int((now - item.start) * PHONE_SAMPLE_RATE) if now > item.start else 0
                item.played = max(0, min(len(item.payload), played))
        self.play_end = now

    def _on_clear(self, now: float) -> None:
        self._cut_playback(now)
        for mark in self._pending:
            mark.due = now
            mark.by_clear = True
        self.items.append(_Clear(now))

    def on_closed(self, now: float) -> None:
        """The socket is gone: playback stops where it is, pending marks are never echoed."""
        if self.closed_at is None:
            self.closed_at = now
            self._cut_playback(now)
            self._pending.clear()
            self._notify()

    # -- the playback clock for marks

    async def run(self) -> None:
        """Echo each mark when playback reaches it (or at once after a clear)."""
        while True:
            if not self._pending:
                await self.wait_change(None)
                continue
            head = self._pending[0]
            wait = head.due - time.monotonic()
            if wait > 0:
                await self.wait_change(wait)
                continue
            self._pending.popleft()
            try:
                await self._echo(head.name)
            except ConnectionClosed:
                return
            head.echoed_at = self.last_echo_at = time.monotonic()
            self._notify()

    # -- queries

    @property
    def pending_marks(self) -> int:
        return len(self._pending)

    @property
    def last_activity(self) -> float:
        """When the line last had agent activity: a message, an echo, or audio playing."""
        return max(self.last_message_at, self.last_echo_at, self.play_end)

    def drained(self, now: float) -> bool:
        return now >= self.play_end and not self._pending


@dataclass(frozen=True)
class AgentTurn:
    """One stretch of agent speech, as the caller's phone got it.

    ``audio`` is what was actually played (a clear or hang-up cuts it); ``received`` is
    everything the server sent for the turn; ``segments`` splits ``audio`` at the server's
    marks (one per sentence or clause), which is how ``transcribe`` reads it.
    """

    audio: bytes = field(repr=False)
    received: bytes = field(repr=False)
    segments: tuple[bytes, ...] = field(repr=False)
    first_frame_at: float
    last_frame_at: float
    marks: tuple[str, ...]
    marks_heard: tuple[str, ...]
    cleared: bool
    clear_at: float | None
    cut_by_hangup: bool

    @property
    def pcm8k(self) -> bytes:
        """PCM16 at 8 kHz of what was played."""
        return ulaw_to_pcm16(self.audio)

    @property
    def duration_s(self) -> float:
        return len(self.audio) / PHONE_SAMPLE_RATE


@dataclass(frozen=True)
class Utterance:
    """What the caller sent and when; voice-to-voice latency starts at ``last_voiced_frame_at``."""

    text: str
    started_at: float
    ended_at: float
    first_voiced_frame_at: float | None
    last_voiced_frame_at: float | None
    frames: int

    @property
    def duration_s(self) -> float:
        return self.frames * FRAME_S


@dataclass
class _Queued:
    speech: Speech
    future: asyncio.Future[Utterance]
    index: int = 0
    started_at: float = 0.0
    first_voiced_at: float | None = None
    last_voiced_at: float | None = None


# --------------------------------------------------------------------------- the call


_UNSET: Any = object()


class TwilioCall:
    """One phone call, driven from a test: the caller's mouth and ears.

    Use ``TwilioCall.connect(...)`` as an async context manager; it posts the webhook, opens
    the media socket with a signed upgrade, sends ``connected`` and ``start`` and keeps line
    audio flowing until ``hang_up`` (or the server closes the stream).
    """

    def __init__(
        self,
        stream: MediaStream,
        *,
        base_url: str,
        instruction: StreamInstruction | None,
        voice: CallerVoice,
        quiet_s: float = 1.0,
    ) -> None:
        self.stream = stream
        self.base_url = base_url
        self.instruction = instruction
        self.voice = voice
        self.quiet_s = quiet_s
        self.clock = MediaClock()
        self.player = Player(stream.send_mark)
        self.close_code: int | None = None
        self.close_reason = ""
        self.closed = asyncio.Event()
        self.stopped = False
        self._cursor = 0  # first Player item no listen() has returned yet
        self._speech: deque[_Queued] = deque()
        self._silence = voice.silence_frames(250)  # 5 s of line noise, cycled
        self._tasks: list[asyncio.Task[Any]] = []

    # -- set-up

    @property
    def call_sid(self) -> str:
        return self.stream.call_sid

    @property
    def stream_sid(self) -> str:
        return self.stream.stream_sid

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(
        cls,
        base_url: str,
        *,
        public_url: str,
        auth_token: str | None,
        from_number: str = DEFAULT_FROM,
        to_number: str = DEFAULT_TO,
        call_sid: str | None = None,
        voice: CallerVoice | None = None,
        quiet_s: float = 1.0,
        signature: Any = _UNSET,
    ) -> AsyncIterator[TwilioCall]:
        """Ring the server and stream a call; hangs up on exit if still connected.

        ``signature``: leave unset for a correct signature; pass ``None`` (no header) or a
        string to test rejection (the upgrade then raises ``InvalidStatus``).
        """
        call_sid = call_sid or new_sid("CA")
        form = twilio_form(call_sid, from_number, to_number)
        instruction = parse_twiml(await post_voice_webhook(base_url, public_url, auth_token, form))
        if signature is _UNSET:
            signature = upgrade_signature(auth_token, instruction.url) if auth_token else None
        stream = await MediaStream.open(
            local_socket_url(base_url, instruction.url),
            signature=signature,
            call_sid=instruction.parameters.get("CallSid", call_sid),
            account_sid=form["AccountSid"],
        )
        call = cls(
            stream,
            base_url=base_url,
            instruction=instruction,
            voice=voice or shared_voice(),
            quiet_s=quiet_s,
        )
        try:
            await call.begin(instruction.parameters)
            yield call
        finally:
            await call.hang_up()
            await call._shutdown()

    async def begin(self, custom_parameters: dict[str, str]) -> None:
        """``connected``, ``start``, then line audio every 20 ms from now on."""
        await self.stream.send_connected()
        await self.stream.send_start(custom_parameters)
        self.clock.start()
        self._tasks = [
            asyncio.create_task(self._receive(), name=f"receive {self.call_sid}"),
            asyncio.create_task(self._send_media(), name=f"media {self.call_sid}"),
            asyncio.create_task(self.player.run(), name=f"player {self.call_sid}"),
        ]

    async def _shutdown(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        await self.stream.close()

    # -- background tasks

    async def _receive(self) -> None:
        try:
            async for raw in self.stream.ws:
                self.player.on_message(raw, time.monotonic())
        except ConnectionClosed:
            pass
        finally:
            self.close_code = self.stream.ws.close_code
            self.close_reason = self.stream.ws.close_reason or ""
            self.player.on_closed(time.monotonic())
            self.closed.set()
            self._fail_speech()

    def _fail_speech(self) -> None:
        while self._speech:
            queued = self._speech.popleft()
            if not queued.future.done():
                queued.future.set_exception(CallEnded("the media stream closed mid-utterance"))
                queued.future.exception()  # no "never retrieved" noise if nobody awaits it

    async def _send_media(self) -> None:
        """The media clock: one frame every 20 ms, caller speech if queued, else line noise."""
        try:
            while not self.closed.is_set() and not self.stopped:
                tick = await self.clock.tick()
                if self.stopped:
                    break  # nothing after `stop`, as with Twilio
                queued = self._speech[0] if self._speech else None
                if queued is None:
                    frame = self._silence[tick % len(self._silence)]
                else:
                    frame = queued.speech.frames[queued.index]
                await self.stream.send_media(frame)
                if queued is not None:
                    self._after_speech_frame(queued, time.monotonic())
        except ConnectionClosed:
            pass
        finally:
            self._fail_speech()

    def _after_speech_frame(self, queued: _Queued, sent_at: float) -> None:
        if queued.index == 0:
            queued.started_at = sent_at
        if queued.speech.voiced[queued.index]:
            queued.last_voiced_at = sent_at
            if queued.first_voiced_at is None:
                queued.first_voiced_at = sent_at
        queued.index += 1
        if queued.index >= len(queued.speech.frames):
            self._speech.popleft()
            if not queued.future.done():
                queued.future.set_result(
                    Utterance(
                        text=queued.speech.text,
                        started_at=queued.started_at,
                        ended_at=sent_at,
                        first_voiced_frame_at=queued.first_voiced_at,
                        last_voiced_frame_at=queued.last_voiced_at,
                        frames=len(queued.speech.frames),
                    )
                )

    # -- the caller's mouth

    def queue_speech(self, speech: Speech) -> asyncio.Future[Utterance]:
        """Queue rendered speech after anything already queued; resolves when it is all sent."""
        future: asyncio.Future[Utterance] = asyncio.get_running_loop().create_future()
        if self.closed.is_set():
            future.set_exception(CallEnded("the media stream is closed"))
        elif speech.frames:
            self._speech.append(_Queued(speech, future))
        else:
            now = time.monotonic()
            future.set_result(Utterance(speech.text, now, now, None, None, 0))
        return future

    async def say(self, text: str) -> Utterance:
        """Speak a line at real time (rendered off the loop, line noise meanwhile)."""
        speech = await asyncio.to_thread(self.voice.render, text)
        return await self.queue_speech(speech)

    async def say_pcm(self, pcm8k: npt.NDArray[np.int16] | bytes, label: str = "") -> Utterance:
        """Send raw 8 kHz PCM16 (a cough, a noise burst) at real time."""
        return await self.queue_speech(self.voice.from_pcm8k(pcm8k, text=label))

    async def wait_for_playback(
        self, after_s: float = 0.0, *, after_marks: int = 0, timeout_s: float = 30.0
    ) -> None:
        """Wait until the agent's next turn has played ``after_s`` seconds (counted from its
        ``after_marks``-th echoed mark, or from its first frame when 0)."""
        async with asyncio.timeout(timeout_s):
            while True:
                origin = self._playback_origin(after_marks)
                if origin is not None:
                    remaining = origin + after_s - time.monotonic()
                    if remaining <= 0:
                        return
                    await asyncio.sleep(remaining)  # pacing to a playback position
                    return
                await self.player.wait_change(None)

    def _playback_origin(self, after_marks: int) -> float | None:
        items = self.player.items[self._cursor :]
        first = next((i for i in items if isinstance(i, _Media)), None)
        if first is None:
            return None
        if after_marks <= 0:
            return first.start
        echoed = [i for i in items if isinstance(i, _Mark) and i.echoed_at and not i.by_clear]
        return echoed[after_marks - 1].echoed_at if len(echoed) >= after_marks else None

    async def say_over_agent(
        self,
        text: str | Speech,
        *,
        after_s: float = 0.6,
        after_marks: int = 0,
        timeout_s: float = 30.0,
    ) -> Utterance:
        """Barge in: start talking ``after_s`` into the agent's current turn."""
        speech = (
            text if isinstance(text, Speech) else await asyncio.to_thread(self.voice.render, text)
        )
        await self.wait_for_playback(after_s, after_marks=after_marks, timeout_s=timeout_s)
        return await self.queue_speech(speech)

    async def press(self, digit: str) -> None:
        """A keypad press: Twilio sends one ``dtmf`` message per digit."""
        for d in digit:
            await self.stream.send_dtmf(d)

    async def hang_up(self) -> None:
        """``stop``, then close the socket (no-op if it is already closed)."""
        if self.stopped:
            return
        self.stopped = True
        if not self.closed.is_set():
            with contextlib.suppress(ConnectionClosed):
                await self.stream.send_stop()
            await self.stream.close()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):
                await self.closed.wait()

    # -- the caller's ears

    async def listen(self, *, quiet_s: float | None = None, timeout_s: float = 30.0) -> AgentTurn:
        """The agent's next turn, once it has finished playing.

        Finished means a ``clear`` cut it, or the buffer drained, every mark was echoed and no
        new media came for ``quiet_s``. Raises ``NoReply`` when no audio starts within
        ``timeout_s``, ``CallEnded`` if the stream closes before any does.
        """
        quiet = self.quiet_s if quiet_s is None else quiet_s
        deadline = time.monotonic() + timeout_s
        first = await self._wait_first_media(deadline, timeout_s)
        # Only a clear *after* the turn's first frame ends it; scan each item once.
        checked, clear = first, None
        while True:
            items = self.player.items
            while clear is None and checked < len(items):
                if isinstance(items[checked], _Clear):
                    clear = checked
                checked += 1
            now = time.monotonic()
            if clear is not None:
                # Twilio echoes the pending marks right after a clear; let them land.
                if self.player.pending_marks and not self.closed.is_set():
                    await self.player.wait_change(1.0)
                    continue
                return self._take_turn(clear + 1)
            if self.closed.is_set():
                return self._take_turn(len(items))
            quiet_since = self.player.last_activity
            if self.player.drained(now) and now - quiet_since >= quiet:
                return self._take_turn(len(items))
            await self.player.wait_change(max(quiet_since + quiet - now, 0.005))

    async def _wait_first_media(self, deadline: float, timeout_s: float) -> int:
        index = self._cursor
        while True:
            items = self.player.items
            while index < len(items):
                if isinstance(items[index], _Media):
                    return index
                index += 1
            if self.closed.is_set():
                raise CallEnded(f"stream closed ({self.close_code}) before the agent spoke")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise NoReply(f"no agent audio within {timeout_s:.1f}s")
            await self.player.wait_change(remaining)

    def _take_turn(self, end: int) -> AgentTurn:
        items = self.player.items[self._cursor : end]
        self._cursor = end
        media = [i for i in items if isinstance(i, _Media)]
        marks = [i for i in items if isinstance(i, _Mark)]
        clear = next((i for i in items if isinstance(i, _Clear)), None)
        closed_at = self.player.closed_at
        cut = closed_at is not None and clear is None and any(i.played is not None for i in media)
        segments: list[bytes] = []
        current = bytearray()
        for item in items:
            if isinstance(item, _Media):
                current += item.heard()
            elif isinstance(item, _Mark) and current:
                segments.append(bytes(current))
                current.clear()
        if current:
            segments.append(bytes(current))
        return AgentTurn(
            audio=b"".join(i.heard() for i in media),
            received=b"".join(i.payload for i in media),
            segments=tuple(segments),
            first_frame_at=media[0].at if media else float("nan"),
            last_frame_at=media[-1].at if media else float("nan"),
            marks=tuple(m.name for m in marks if m.echoed_at is not None),
            marks_heard=tuple(m.name for m in marks if m.echoed_at is not None and not m.by_clear),
            cleared=clear is not None,
            clear_at=clear.at if clear else None,
            cut_by_hangup=cut,
        )

    def unheard_media(self) -> bool:
        """Has the server sent audio that no ``listen`` returned yet (e.g. a second reply)?"""
        return any(isinstance(i, _Media) for i in self.player.items[self._cursor :])

    # -- the record

    @property
    def outbound(self) -> list[Outbound]:
        """Every message the server sent, with its arrival time."""
        return self.player.outbound

    @property
    def violations(self) -> list[str]:
        """Server messages Twilio would not accept."""
        return self.player.violations

    def clears(self) -> list[float]:
        return [o.at for o in self.outbound if o.event == "clear"]

    async def timeline(self) -> list[dict[str, Any]]:
        """This call's server-side timeline events (empty if there is none yet)."""
        return await fetch_timeline(self.base_url, self.call_sid) or []

    async def wait_for_timeline(
        self, predicate: Callable[[list[dict[str, Any]]], bool], timeout_s: float = 10.0
    ) -> list[dict[str, Any]]:
        return await wait_for_timeline(self.base_url, self.call_sid, predicate, timeout_s)

    async def what_was_asked(self, heard: str) -> str:
        """``heard`` if a question can be read from it, else the agent's own last words.

        Why: our Whisper sometimes drops half a sentence of the agent's audio; a test about
        the server should not fail on the harness's ears. Assertions still use ``heard``.
        """
        if question_kind(heard) is not None:
            return heard
        said = [e for e in await self.timeline() if e.get("event") == "agent_said"]
        return str(said[-1].get("text", "")) if said else heard


# --------------------------------------------------------------------------- a caller's script

# What the agent asks, by the words a caller hears in its last question. Checked in order:
# the first that matches wins, so specific questions come before generic ones.
_QUESTIONS: Final[tuple[tuple[str, tuple[str, ...]], ...]] = (
    ("still_there", ("still there",)),
    ("resume", ("pick up there", "where we left off")),
    ("repeat", ("didn't catch", "did not catch", "missed that", "not sure i follow",
                "didn't quite get")),
    ("confirm", ("book it", "go ahead and book", "shall i book", "should i book",
                 "should i go ahead")),
    ("contact", ("text or", "by text", "by email", "send your confirmation", "how should we send")),
    ("email", ("email address", "spell out your email")),
    ("anything_else", ("anything else",)),
    ("pick_slot", ("which one works", "which of those", "works for you")),
    ("another_day", ("another day", "try another")),
    ("tour_time", ("day and time", "come by", "what day", "what time", "day and a time")),
    ("tour_type", ("in person", "in-person", "virtual")),
    ("budget", ("budget", "spend a month", "spend")),
    ("pet_details", ("kind of pet", "which pets")),
    ("pets", ("pets", "pet")),
    ("move_in", ("move in", "move-in", "moving in")),
    ("unit_size", ("what size", "how many bedrooms", "bedrooms do you need")),
    ("property", ("which building", "building")),
    ("name", ("your name", "name")),
)  # fmt: skip


def _question_of(heard: str) -> str:
    """The part of an agent turn that asks something: its last sentence ending in "?"."""
    sentences = re.findall(r"[^.!?]*[.!?]?", heard.lower())
    questions = [q for q in sentences if q.strip().endswith("?")]
    return questions[-1] if questions else heard.lower()


def question_kind(heard: str) -> str | None:
    """Which question the agent asked (``name``, ``budget``...), or None."""
    for text in (_question_of(heard), heard.lower()):
        for kind, cues in _QUESTIONS:
            if any(cue in text for cue in cues):
                return kind
    return None


@dataclass
class CallerScript:
    """A caller who answers whatever the agent asks, from a table of lines.

    Why adaptive: the agent's next question depends on what it understood, so a fixed list
    of lines would derail on one misheard word; answering the question actually asked keeps
    a test about the phone path rather than about one exact dialogue.
    """

    lines: dict[str, str]
    previous: str = ""
    asked: list[str] = field(default_factory=list)

    @classmethod
    def booking(cls, **overrides: str) -> CallerScript:
        """A caller who books an in-person tour of Hudson 360 (override any line)."""
        lines = {
            "name": "my name is dana lee",
            "property": "hudson three sixty",
            "unit_size": "a two bedroom",
            "move_in": "early january",
            "pets": "no pets",
            "pet_details": "one small dog",
            "budget": "five thousand dollars",
            "tour_type": "in person",
            "tour_time": "next tuesday at two in the afternoon",
            "another_day": "next wednesday at three in the afternoon",
            "pick_slot": "the first one",
            # Two words, not "yes"/"text": Whisper tiny with a 10 s window often returns
            # nothing for a lone short word (seen on the server as "turn_ignored").
            "confirm": "yes please",
            "contact": "by text please",
            "email": "dana dot lee at example dot com",
            "anything_else": "no that's all",
            "still_there": "yes i'm here",
            "resume": "yes please",
        }
        lines.update(overrides)
        return cls(lines)

    def answer(self, heard: str) -> tuple[str, str] | None:
        """(question kind, the caller's line) for what the agent just said, or None."""
        kind = question_kind(heard)
        if kind is None:
            return None
        line = self.previous if kind == "repeat" and self.previous else self.lines.get(kind)
        if line is None:
            return None
        self.asked.append(kind)
        self.previous = line
        return kind, line


# --------------------------------------------------------------------------- helpers


async def transcribe(turn: AgentTurn | bytes, *, heard: bool = True) -> str:
    """What Whisper hears in the agent's audio (μ-law 8 kHz -> 16 kHz), off the event loop.

    A turn is transcribed segment by segment (split at the server's marks): on a whole
    8-10 s turn the 10 s encoder window sometimes drops the last sentence, which is usually
    the question the caller has to answer.
    """
    if isinstance(turn, AgentTurn):
        parts = list(turn.segments) if heard else [turn.received]
    else:
        parts = [turn]
    parts = [p for p in parts if p]
    if not parts:
        return ""

    def run() -> str:
        stt = shared_stt()
        texts = (str(stt.transcribe(decode_from_phone(p, 16000))).strip() for p in parts)
        return " ".join(t for t in texts if t)

    return await asyncio.to_thread(run)


async def fetch_timeline(base_url: str, call_sid: str) -> list[dict[str, Any]] | None:
    """``GET /calls/{sid}/timeline`` events, or None on 404."""
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(f"{base_url.rstrip('/')}/calls/{call_sid}/timeline")
    if response.status_code == 404:
        return None
    response.raise_for_status()
    return list(response.json()["events"])


async def wait_for_timeline(
    base_url: str,
    call_sid: str,
    predicate: Callable[[list[dict[str, Any]]], bool],
    timeout_s: float = 10.0,
    poll_s: float = 0.05,
) -> list[dict[str, Any]]:
    """Poll the timeline until ``predicate(events)`` holds (the server offers no push).

    Raises TimeoutError with the last events seen.
    """
    deadline = time.monotonic() + timeout_s
    events: list[dict[str, Any]] = []
    while True:
        events = await fetch_timeline(base_url, call_sid) or []
        if predicate(events):
            return events
        if time.monotonic() > deadline:
            names = [e.get("event") for e in events]
            raise TimeoutError(f"timeline of {call_sid} never matched; events: {names}")
        await asyncio.sleep(poll_s)  # polling a condition, with a deadline


def heard_level_dbfs(turn: AgentTurn) -> float:
    """RMS level of what was played (handy to tell silence-padding from speech)."""
    return _dbfs(ulaw_decode(turn.audio))
