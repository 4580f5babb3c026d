"""One phone call as a test drives it: the caller's mouth, ears and keypad on one stream.

Speech is queued on the media clock with line noise between lines; ``listen`` returns the
agent's next turn once it has finished playing (or was cut by a ``clear``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from websockets.exceptions import ConnectionClosed

from sim.twilio.clock import FRAME_S, MediaClock
from sim.twilio.http import (
    DEFAULT_FROM,
    DEFAULT_TO,
    StreamInstruction,
    fetch_timeline,
    local_socket_url,
    new_sid,
    parse_twiml,
    post_voice_webhook,
    twilio_form,
    upgrade_signature,
    wait_for_timeline,
)
from sim.twilio.player import AgentTurn, Outbound, Player, _Clear, _Mark, _Media
from sim.twilio.script import question_kind
from sim.twilio.stream import MediaStream
from sim.twilio.voice import CallerVoice, Speech, shared_voice


class CallEnded(Exception):
    """The media socket closed (server hung up, or we did) while we were waiting on it."""


class NoReply(TimeoutError):
    """The agent sent no audio within the timeout."""


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

    async def answer(self, *, timeout_s: float = 30.0) -> AgentTurn:
        """The agent's answer to what the caller just said. A reply it began and took back
        (``clear``: the caller went on after a short pause between sentences) is not it."""
        turn = await self.listen(timeout_s=timeout_s)
        while turn.cleared and not self.closed.is_set():
            turn = await self.listen(timeout_s=timeout_s)
        return turn

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
