"""Plays an avatar client's side of ``WS /avatar`` against the real server, for tests and bench.

Why a client that behaves like a real one: turn-taking and barge-in only mean something if
the far end streams its microphone at real time and plays the agent's audio at real time.
So this client sends PCM16 in 20 ms frames on the phone simulator's drift-free clock
(line noise between utterances, never digital zero), plays every binary message back on a
virtual speaker (each chunk starts when the previous one ends) and reports each ``mark``
as ``played`` when playback reaches it, or drops the pending marks on ``interrupted``.
A ``reader`` client is a text chat instead (``tourline chat``, a chat widget): it shows the
agent's words rather than playing them, so it reports each mark as played the moment it
arrives and a reply is over at its ``agent_done``; a typed conversation then runs as fast as
the agent answers. Every server message is kept in ``items`` (``of_kind("agent_done")``: the
replies sent whole); ``listen`` returns a stretch of agent speech with its ``agent_done``
events.

Caller speech is Piper's (the phone simulator's shared voice), resampled to the client's
declared rate. ``snr_db`` puts the session on a noisy line (sim/line_noise.py) as the phone
simulator does: the same noise under speech and between utterances, voiced flags from the
clean speech. Every timestamp is ``time.monotonic()`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from app.audio.codec import Resampler, pcm16_to_array
from sim.line_noise import LineNoise, noise_level_for
from sim.twilio.clock import MediaClock
from sim.twilio.voice import SPEECH_LEVEL_DBFS, shared_stt, shared_voice

__all__ = [
    "AgentReply",
    "AvatarClient",
    "AvatarSpeech",
    "Received",
    "SessionClosed",
    "Utterance",
    "avatar_url",
    "clean_speech",
    "errors_of",
    "fresh_user",
    "raw_session",
    "render_speech",
    "transcribe_pcm",
]

FRAME_MS: Final = 20
NOISE_DBFS: Final = -60.0
VOICED_DBFS: Final = -40.0


class SessionClosed(Exception):
    """The socket closed while we were waiting on it."""


def avatar_url(base_url: str) -> str:
    return base_url.replace("http://", "ws://", 1).rstrip("/") + "/avatar"


def fresh_user(prefix: str = "device") -> str:
    """A device id no other test used, so nobody meets a "welcome back" by accident."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def _dbfs(samples: npt.NDArray[np.int16]) -> float:
    if samples.size == 0:
        return -120.0
    rms = float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))
    return 20 * np.log10(max(rms, 1e-3) / 32768.0)


# --------------------------------------------------------------------------- speech


@dataclass(frozen=True)
class AvatarSpeech:
    """A line as 20 ms PCM16 frames at one rate, each flagged voiced or not."""

    text: str
    rate: int
    frames: tuple[bytes, ...]
    voiced: tuple[bool, ...]


_CACHE: dict[tuple[str, int], AvatarSpeech] = {}
_CACHE_LOCK = threading.Lock()


def render_speech(text: str, rate: int = 16000, seed: int = 11) -> AvatarSpeech:
    """Piper speech at ``rate`` with quiet noise mixed in (CPU-bound: use a thread)."""
    with _CACHE_LOCK:
        cached = _CACHE.get((text, rate))
    if cached is not None:
        return cached
    clean = clean_speech(text, rate)
    noise = _noise(clean.size, seed)
    mixed = np.clip(clean.astype(np.int32) + noise, -32768, 32767).astype(np.int16)
    speech = _framed(text, rate, clean, mixed)
    with _CACHE_LOCK:
        _CACHE[(text, rate)] = speech
    return speech


_CLEAN: dict[tuple[str, int], npt.NDArray[np.int16]] = {}


def clean_speech(text: str, rate: int = 16000) -> npt.NDArray[np.int16]:
    """Piper speech at ``rate``, padded to whole frames, no noise (cached; use a thread)."""
    with _CACHE_LOCK:
        cached = _CLEAN.get((text, rate))
    if cached is not None:
        return cached
    tts = shared_voice().tts
    pcm = pcm16_to_array(b"".join(tts.synthesize(text)))
    resampler = Resampler(tts.sample_rate, rate)
    clean = np.concatenate([resampler.process(pcm), resampler.flush()]).astype(np.int16)
    frame = rate * FRAME_MS // 1000
    clean = np.concatenate([clean, np.zeros((-clean.size) % frame, dtype=np.int16)])
    with _CACHE_LOCK:
        _CLEAN[(text, rate)] = clean
    return clean


def _framed(
    text: str, rate: int, clean: npt.NDArray[np.int16], mixed: npt.NDArray[np.int16]
) -> AvatarSpeech:
    """20 ms frames of ``mixed``, voiced where the ``clean`` speech is (not the noise)."""
    frame = rate * FRAME_MS // 1000
    out = mixed.astype("<i2")
    frames, voiced = [], []
    for i in range(0, clean.size, frame):
        frames.append(out[i : i + frame].tobytes())
        voiced.append(_dbfs(clean[i : i + frame]) > VOICED_DBFS)
    return AvatarSpeech(text, rate, tuple(frames), tuple(voiced))


def _noise(n: int, seed: int) -> npt.NDArray[np.int32]:
    sigma = 32768.0 * 10 ** (NOISE_DBFS / 20)
    return np.rint(np.random.default_rng(seed).normal(0.0, sigma, n)).astype(np.int32)


async def transcribe_pcm(pcm16: bytes, rate: int) -> str:
    """What Whisper hears in agent audio (PCM16 at ``rate``), off the event loop."""
    if not pcm16:
        return ""

    def run() -> str:
        samples = pcm16_to_array(pcm16)
        if rate != 16000:
            resampler = Resampler(rate, 16000)
            samples = np.concatenate([resampler.process(samples), resampler.flush()])
        return str(shared_stt().transcribe(samples)).strip()

    return await asyncio.to_thread(run)


# --------------------------------------------------------------------------- what we got


@dataclass
class Received:
    """One server message: ``kind`` is the JSON ``type``, or ``audio`` for binary."""

    at: float
    kind: str
    message: dict[str, Any] = field(default_factory=dict)
    audio: bytes = b""
    start: float = 0.0  # audio: when the virtual speaker starts playing it
    end: float = 0.0


@dataclass(frozen=True)
class Utterance:
    text: str
    started_at: float
    last_voiced_frame_at: float | None


@dataclass(frozen=True)
class AgentReply:
    """One stretch of agent speech, as this client got it."""

    texts: tuple[str, ...]
    audio: bytes
    first_audio_at: float
    marks: tuple[str, ...]
    interrupted: bool
    ended: bool  # conversation_ended came with it
    done: tuple[dict[str, Any], ...] = ()
    """Its ``agent_done`` events (``text``, ``reply``): one per reply sent whole; a reply
    cut by ``interrupted`` has none."""

    @property
    def text(self) -> str:
        return " ".join(self.texts)


@dataclass
class _Mark:
    name: str
    due: float


@dataclass
class _Queued:
    speech: AvatarSpeech
    future: asyncio.Future[Utterance]
    index: int = 0
    started_at: float = 0.0
    last_voiced_at: float | None = None


# --------------------------------------------------------------------------- the client


class AvatarClient:
    """One avatar session driven from a test: the user's microphone, speaker and keyboard."""

    def __init__(
        self,
        ws: ClientConnection,
        *,
        sample_rate: int,
        output_rate: int,
        playback_marks: bool,
        quiet_s: float,
        reader: bool = False,
        snr_db: float | None = None,
        noise_seed: int = 5,
    ) -> None:
        self.ws = ws
        self.reader = reader
        self.sample_rate = sample_rate
        self.output_rate = output_rate
        self.playback_marks = playback_marks
        self.quiet_s = quiet_s
        self.items: list[Received] = []
        self.ready: dict[str, Any] | None = None
        self.closed = asyncio.Event()
        self.close_code: int | None = None
        self.close_reason = ""
        self.clock = MediaClock(FRAME_MS / 1000)
        self.play_end = 0.0
        self.last_activity = 0.0
        self._pending: list[_Mark] = []
        self._cursor = 0
        self._changed = asyncio.Event()
        self._speech: list[_Queued] = []
        self._tasks: list[asyncio.Task[Any]] = []
        self._streaming = False
        self.snr_db = snr_db
        self._line: LineNoise | None = None
        if snr_db is not None:
            level = noise_level_for(SPEECH_LEVEL_DBFS, snr_db)
            self._line = LineNoise(sample_rate, level, seed=noise_seed)
        self._noise_frames = self._make_noise(sample_rate)

    # -- set-up

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(
        cls,
        base_url: str,
        user: dict[str, str] | str | None,
        *,
        token: str | None = None,
        headers: dict[str, str] | None = None,
        sample_rate: int = 16000,
        output_rate: int = 16000,
        playback_marks: bool = True,
        stream_audio: bool = False,
        quiet_s: float = 1.0,
        hello: dict[str, Any] | None = None,
        wait_ready: bool = True,
        reader: bool = False,
        snr_db: float | None = None,
        noise_seed: int = 5,
    ) -> AsyncIterator[AvatarClient]:
        """Open ``WS /avatar``, send hello, wait for ``ready``; says ``bye`` on exit if open.

        ``user``: a device id (str), a ``user`` object, or None to send the ``token`` alone.
        A phone number, email or user id needs a ``token`` (``app.channels.avatar.tokens``).
        ``hello`` replaces the whole hello message (for bad-input tests). ``reader``: a text
        chat, not a speaker (see the module docstring). ``snr_db``: a noisy line (None =
        the quiet -60 dBFS one), seeded by ``noise_seed``.
        """
        ws = await ws_connect(
            avatar_url(base_url),
            additional_headers=headers or {},
            ping_interval=None,  # a starved server must not be dropped by us
            max_size=2**22,
            max_queue=None,
            open_timeout=10,
        )
        client = cls(
            ws,
            sample_rate=sample_rate,
            output_rate=output_rate,
            playback_marks=playback_marks,
            quiet_s=quiet_s,
            reader=reader,
            snr_db=snr_db,
            noise_seed=noise_seed,
        )
        if hello is None:
            hello = {
                "type": "hello",
                "audio": {"format": "pcm16", "sample_rate": sample_rate, "channels": 1},
                "output_audio": {"format": "pcm16", "sample_rate": output_rate},
                "playback_marks": playback_marks,
                "client": "tests/avatar",
            }
            if user is not None:
                hello["user"] = {"device_id": user} if isinstance(user, str) else dict(user)
            if token is not None:
                hello["token"] = token
        client._tasks.append(asyncio.create_task(client._receive()))
        client._tasks.append(asyncio.create_task(client._play()))
        try:
            await client.send_json(hello)
            if wait_ready:
                ready = await client.wait_for("ready", timeout_s=30)
                client.ready = ready.message
            if stream_audio:
                client.start_streaming()
            yield client
        finally:
            await client.bye()
            await client._shutdown()

    def start_streaming(self) -> None:
        """From now on a 20 ms frame goes out every 20 ms: speech if queued, else noise."""
        if not self._streaming:
            self._streaming = True
            self.clock.start()
            self._tasks.append(asyncio.create_task(self._send_audio()))

    async def _shutdown(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5)
        with contextlib.suppress(Exception):
            await self.ws.close()

    # -- sending

    async def send_json(self, message: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(message))

    async def send_raw(self, data: str | bytes) -> None:
        await self.ws.send(data)

    async def type(self, text: str) -> float:
        """A typed turn; returns when it was sent."""
        await self.send_json({"type": "text", "text": text})
        return time.monotonic()

    async def bye(self) -> None:
        if not self.closed.is_set():
            with contextlib.suppress(ConnectionClosed):
                await self.send_json({"type": "bye"})
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5):
                    await self.closed.wait()

    async def say(self, text: str) -> Utterance:
        """Speak a line at real time into the stream (starts streaming if it wasn't)."""
        speech = await asyncio.to_thread(self.render, text)
        self.start_streaming()
        future: asyncio.Future[Utterance] = asyncio.get_running_loop().create_future()
        if self.closed.is_set():
            raise SessionClosed("the socket is closed")
        self._speech.append(_Queued(speech, future))
        return await future

    def render(self, text: str) -> AvatarSpeech:
        """``text`` as this client would send it: on its own line's noise, if it has one."""
        if self._line is None:
            return render_speech(text, self.sample_rate)
        clean = clean_speech(text, self.sample_rate)
        return _framed(text, self.sample_rate, clean, self._line.mix(clean))

    def _make_noise(self, rate: int) -> list[bytes]:
        frame = rate * FRAME_MS // 1000
        if self._line is not None:
            line = np.rint(self._line.take(frame * 250)).astype(np.int32)
            noise = np.clip(line, -32768, 32767).astype("<i2").tobytes()
        else:
            noise = _noise(frame * 250, seed=5).astype("<i2").tobytes()
        return [noise[i : i + frame * 2] for i in range(0, len(noise), frame * 2)]

    async def _send_audio(self) -> None:
        try:
            while not self.closed.is_set():
                tick = await self.clock.tick()
                queued = self._speech[0] if self._speech else None
                if queued is None:
                    await self.ws.send(self._noise_frames[tick % len(self._noise_frames)])
                    continue
                await self.ws.send(queued.speech.frames[queued.index])
                now = time.monotonic()
                if queued.index == 0:
                    queued.started_at = now
                if queued.speech.voiced[queued.index]:
                    queued.last_voiced_at = now
                queued.index += 1
                if queued.index >= len(queued.speech.frames):
                    self._speech.pop(0)
                    utterance = Utterance(
                        queued.speech.text, queued.started_at, queued.last_voiced_at
                    )
                    if not queued.future.done():
                        queued.future.set_result(utterance)
        except ConnectionClosed:
            pass
        finally:
            for queued in self._speech:
                if not queued.future.done():
                    queued.future.set_exception(SessionClosed("closed mid-utterance"))
            self._speech.clear()

    # -- receiving and the virtual speaker

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def _wait_change(self, timeout_s: float | None) -> None:
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancellation that
        # lands as the event fires, and a cancelled task then waits here forever.
        changed = self._changed
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await changed.wait()

    async def _receive(self) -> None:
        try:
            async for raw in self.ws:
                self._on_message(raw, time.monotonic())
        except ConnectionClosed:
            pass
        finally:
            self.close_code = self.ws.close_code
            self.close_reason = self.ws.close_reason or ""
            self.play_end = min(self.play_end, time.monotonic())
            self._pending.clear()
            self.closed.set()
            self._notify()

    def _on_message(self, raw: str | bytes, now: float) -> None:
        self.last_activity = now
        if isinstance(raw, bytes) and self.reader:  # kept, never played
            self.items.append(Received(now, "audio", audio=raw, start=now, end=now))
        elif isinstance(raw, bytes):
            start = max(now, self.play_end)
            end = start + len(raw) / 2 / self.output_rate
            self.play_end = end
            self.items.append(Received(now, "audio", audio=raw, start=start, end=end))
        else:
            message = json.loads(raw)
            kind = str(message.get("type"))
            self.items.append(Received(now, kind, message))
            if kind == "mark":
                due = now if self.reader else max(now, self.play_end)
                self._pending.append(_Mark(str(message["name"]), due))
            elif kind == "interrupted":
                self.play_end = now
                self._pending.clear()  # cut audio is never reported as played
            elif kind == "ping":
                asyncio.get_running_loop().create_task(self._pong())
        self._notify()

    async def _pong(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            await self.send_json({"type": "pong"})

    async def _play(self) -> None:
        """Report each mark as played when the virtual speaker reaches it."""
        while True:
            if not self._pending:
                await self._wait_change(None)
                continue
            head = self._pending[0]
            wait = head.due - time.monotonic()
            if wait > 0:
                await self._wait_change(wait)
                continue
            self._pending.pop(0)
            if self.playback_marks:
                try:
                    await self.send_json({"type": "played", "mark": head.name})
                except ConnectionClosed:
                    return
            self.last_activity = time.monotonic()
            self._notify()

    # -- waiting

    async def wait_for(
        self,
        kind: str,
        *,
        timeout_s: float = 20.0,
        where: Callable[[dict[str, Any]], bool] = lambda _m: True,
        since: int = 0,
    ) -> Received:
        """The first message of ``kind`` (from item ``since`` on) that satisfies ``where``."""
        index = since
        async with asyncio.timeout(timeout_s):
            while True:
                while index < len(self.items):
                    item = self.items[index]
                    index += 1
                    if item.kind == kind and where(item.message):
                        return item
                if self.closed.is_set():
                    raise SessionClosed(
                        f"closed ({self.close_code} {self.close_reason!r}) before {kind!r}"
                    )
                await self._wait_change(None)

    async def wait_closed(self, timeout_s: float = 15.0) -> tuple[int | None, str]:
        async with asyncio.timeout(timeout_s):
            await self.closed.wait()
        return self.close_code, self.close_reason

    def drained(self, now: float) -> bool:
        return now >= self.play_end and not self._pending

    async def listen(self, *, timeout_s: float = 30.0, quiet_s: float | None = None) -> AgentReply:
        """The agent's next turn, once played out (or cut by ``interrupted``); for a reader,
        once its ``agent_done`` has come."""
        quiet = self.quiet_s if quiet_s is None else quiet_s
        deadline = time.monotonic() + timeout_s
        first = await self._first_audio(timeout_s)
        checked = first
        while True:
            items = self.items
            cut = any(i.kind == "interrupted" for i in items[checked:])
            if cut or self.closed.is_set():
                return self._take(len(items), interrupted=cut)
            if self.reader:  # a reply is over at its agent_done, however slowly it comes
                if any(i.kind == "agent_done" for i in items[checked:]):
                    return self._take(len(items), interrupted=False)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no agent_done within {timeout_s:.1f}s")
                await self._wait_change(remaining)
                continue
            now = time.monotonic()
            since = max(self.last_activity, self.play_end)
            if self.drained(now) and now - since >= quiet:
                return self._take(len(items), interrupted=False)
            await self._wait_change(max(since + quiet - now, 0.005))

    async def _first_audio(self, timeout_s: float) -> int:
        index = self._cursor
        deadline = time.monotonic() + timeout_s
        while True:
            while index < len(self.items):
                if self.items[index].kind == "audio":
                    return index
                index += 1
            if self.closed.is_set():
                raise SessionClosed(f"closed ({self.close_code}) before the agent spoke")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no agent audio within {timeout_s:.1f}s")
            await self._wait_change(remaining)

    def _take(self, end: int, *, interrupted: bool) -> AgentReply:
        items = self.items[self._cursor : end]
        self._cursor = end
        audio = [i for i in items if i.kind == "audio"]
        return AgentReply(
            texts=tuple(str(i.message["text"]) for i in items if i.kind == "agent_text"),
            audio=b"".join(i.audio for i in audio),
            first_audio_at=audio[0].at if audio else float("nan"),
            marks=tuple(str(i.message["name"]) for i in items if i.kind == "mark"),
            interrupted=interrupted,
            ended=any(i.kind == "conversation_ended" for i in items),
            done=tuple(i.message for i in items if i.kind == "agent_done"),
        )

    def unheard_audio(self) -> bool:
        """Has agent audio arrived that no ``listen`` returned yet (e.g. a second reply)?"""
        return any(i.kind == "audio" for i in self.items[self._cursor :])

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [i.message for i in self.items if i.kind == kind]

    @property
    def session_id(self) -> str:
        return str((self.ready or {}).get("session_id", ""))


# --------------------------------------------------------------------------- raw sockets


async def raw_session(
    base_url: str, *messages: str | bytes
) -> tuple[list[dict[str, Any]], int | None, str]:
    """Send ``messages`` on a fresh socket, read until the server closes it."""
    received: list[dict[str, Any]] = []
    async with ws_connect(avatar_url(base_url), max_queue=None) as ws:
        for message in messages:
            await ws.send(message)
        try:
            async with asyncio.timeout(20):
                async for raw in ws:
                    if isinstance(raw, str):
                        received.append(json.loads(raw))
        except ConnectionClosed:
            pass
        frame = ws.close_code, ws.close_reason or ""
    return received, frame[0], frame[1]


def errors_of(received: list[dict[str, Any]]) -> list[str]:
    return [m["code"] for m in received if m["type"] == "error"]
