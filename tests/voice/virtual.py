"""A phone call around a real RealtimeLoop, with fake models and a virtual clock.

Everything the loop decides is real: turn-taking, the hold, take-back, barge-in by marks,
backchannels, the keypad, the silence check-in, the goodbye, the planner (the rule planner
on SQLite) and what reaches memory. What is fake is what this machine would spend seconds
on: the VAD hears speech wherever a sample is non-zero, the recognizer reads which caller
line the audio holds from the sample values themselves, speech is rendered as silence of a
length set by the text, and time is a ``VirtualClock`` the test moves. A call of a minute
runs in a few milliseconds of CPU.
"""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from app.audio.stt import Transcript
from app.domain.context import CallerContext
from app.domain.state import PlannerState
from app.logging.flight_recorder import FlightRecorder
from app.planner.agent_planner import PlannerKit
from app.settings import Settings
from app.voice.realtime_loop import RealtimeLoop

RATE = 8000
WINDOW_S = 0.032
MS_PER_WORD = 250
SURE_OPENINGS = frozenset({"wait", "stop", "sorry", "hold", "actually", "excuse", "no"})
"""First words the fake early judgement is sure of (app/audio/interruption_probe.py)."""
"""How long the fake voice takes to say a word."""


async def settle() -> None:
    """Let every task that can run, run (no time passes)."""
    for _ in range(100):
        await asyncio.sleep(0)


class VirtualClock:
    """Time moves only when the test says: ``advance`` wakes the sleepers in order."""

    def __init__(self) -> None:
        self._now = 1000.0
        self._timers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._count = 0

    def now(self) -> float:
        return self._now

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._count += 1
        heapq.heappush(self._timers, (self._now + max(seconds, 0.0), self._count, future))
        await future

    async def advance(self, seconds: float) -> None:
        end = self._now + seconds
        await settle()
        while self._timers and self._timers[0][0] <= end:
            due, _, future = heapq.heappop(self._timers)
            self._now = max(self._now, due)
            if not future.done():  # a cancelled sleeper's future is done already
                future.set_result(None)
            await settle()
        self._now = end
        await settle()


class FakeVAD:
    """Speech in every 32 ms window that holds a non-zero sample."""

    window_ms = WINDOW_S * 1000

    def __init__(self, rate: int) -> None:
        self._window = int(rate * WINDOW_S)
        self._pending = np.zeros(0, dtype=np.int16)

    def process(self, pcm16: bytes) -> list[float]:
        audio = np.concatenate([self._pending, np.frombuffer(pcm16, dtype="<i2")])
        whole = len(audio) - len(audio) % self._window
        self._pending = audio[whole:]
        windows = audio[:whole].reshape(-1, self._window)
        return [0.95 if window.any() else 0.02 for window in windows]


class FakeVoice:
    """VAD, recognizer and speech for the loop. Caller line ``n`` is audio of samples ``n``:
    the recognizer hears, in order, the lines whose samples it was given."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.lines: dict[int, str] = {}
        self.rendered: list[str] = []

    @property
    def settings(self) -> Settings:
        return self._settings

    def line(self, text: str) -> int:
        """The sample value that stands for ``text``."""
        number = len(self.lines) + 1
        self.lines[number] = text
        return number

    def new_vad(self, sample_rate: int) -> FakeVAD:
        return FakeVAD(sample_rate)

    def release_vad(self, vad: FakeVAD) -> None:
        pass

    async def score(self, vad: FakeVAD, pcm16: bytes) -> list[float]:
        return vad.process(pcm16)

    def _words(self, pcm16: bytes) -> str:
        samples = np.frombuffer(pcm16, dtype="<i2")
        heard = dict.fromkeys(int(s) for s in samples[samples != 0])
        return " ".join(self.lines[n] for n in heard)

    async def hear(
        self, owner: str, pcm16: bytes, sample_rate: int, *, priority: int, hints: Sequence[str]
    ) -> Transcript:
        return Transcript(self._words(pcm16))

    async def transcribe(self, owner: str, pcm16: bytes, sample_rate: int, *, priority: int) -> str:
        return self._words(pcm16)

    async def surely_interrupts(
        self, owner: str, pcm16: bytes, sample_rate: int, run_ms: float, *, priority: int
    ) -> bool:
        """Sure from the first word, as the trained probe is about openings like these."""
        words = self._words(pcm16).lower().replace(",", " ").split()
        return bool(words) and words[0] in SURE_OPENINGS

    def is_cached(self, text: str, rate: int) -> bool:
        return True

    async def render(
        self, owner: str, text: str, rate: int, *, priority: int
    ) -> tuple[bytes, bool]:
        self.rendered.append(text)
        seconds = len(text.split()) * MS_PER_WORD / 1000
        return bytes(2 * int(rate * seconds)), True

    def forget(self, owner: str) -> None:
        pass


@dataclass
class Sent:
    """Something the loop sent the phone, and when (virtual seconds since the call began)."""

    at: float
    kind: str  # audio, mark, clear, or a notify event (agent_text, agent_done, ...)
    fields: dict[str, Any] = field(default_factory=dict)


class FakePhone:
    """Twilio's side: plays audio at real (virtual) time, echoes each mark when playback
    reaches it, and on ``clear`` drops the audio and echoes the marks still pending."""

    output_rate = RATE

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self.loop: RealtimeLoop | None = None
        self.sent: list[Sent] = []
        self._began = clock.now()
        self._played_until = clock.now()
        self._pending: dict[str, asyncio.Task[None]] = {}

    def _record(self, kind: str, **fields: Any) -> None:
        self.sent.append(Sent(self.clock.now() - self._began, kind, fields))

    async def send_audio(self, pcm16: bytes) -> None:
        start = max(self.clock.now(), self._played_until)
        self._played_until = start + len(pcm16) / 2 / RATE
        self._record("audio", seconds=len(pcm16) / 2 / RATE)

    async def send_mark(self, name: str) -> None:
        self._record("mark", name=name)
        delay = self._played_until - self.clock.now()
        self._pending[name] = asyncio.create_task(self._echo(name, delay))

    async def _echo(self, name: str, delay: float) -> None:
        await self.clock.sleep(delay)
        self._pending.pop(name, None)
        if self.loop is not None:
            self.loop.on_mark(name)

    async def send_clear(self) -> None:
        self._record("clear")
        self._played_until = self.clock.now()
        pending, self._pending = self._pending, {}
        for name, task in pending.items():
            task.cancel()
            if self.loop is not None:
                self.loop.on_mark(name)

    async def notify(self, event: str, **fields: Any) -> None:
        self._record(event, **fields)

    def kinds(self, *wanted: str) -> list[Sent]:
        return [s for s in self.sent if s.kind in wanted]

    def replies(self) -> list[str]:
        """The agent's whole replies, in order."""
        return [s.fields["text"] for s in self.kinds("agent_done")]


@dataclass
class Exchange:
    role: str
    text: str
    interrupted: bool = False
    heard: str | None = None


class FakeMemory:
    """What the conversation writes, kept in lists: a stranger on their first call."""

    commits_writes = False  # written in place, so a test sees each write at once

    def __init__(self) -> None:
        self.exchanges: list[Exchange] = []
        self.snapshots: list[PlannerState] = []
        self.ended = 0

    async def aload_context(self, caller_id: str, timeout_s: float = 0.5) -> CallerContext:
        return CallerContext(caller_id=caller_id)

    def start_call(self, caller_id: str, call_id: str, channel: str) -> None:
        pass

    def record_exchange(
        self,
        caller_id: str,
        call_id: str,
        channel: str,
        role: str,
        text: str,
        *,
        interrupted: bool = False,
        heard: str | None = None,
    ) -> int:
        self.exchanges.append(Exchange(role, text, interrupted, heard))
        return len(self.exchanges)

    def save_snapshot(self, caller_id: str, call_id: str, state: PlannerState) -> None:
        self.snapshots.append(state.model_copy(deep=True))

    def end_call(self, caller_id: str, call_id: str, state: PlannerState | None = None) -> None:
        self.ended += 1

    def said(self, role: str) -> list[str]:
        return [e.text for e in self.exchanges if e.role == role]


class Caller:
    """The caller's side of the line: speech, silence and keys, fed as 32 ms windows."""

    def __init__(self, loop: RealtimeLoop, voice: FakeVoice, clock: VirtualClock) -> None:
        self.loop = loop
        self.voice = voice
        self.clock = clock

    async def say(self, text: str, seconds: float | None = None) -> None:
        """Speak ``text`` (by default at 3 words a second), then go on to what is next."""
        value = self.voice.line(text)
        length = seconds if seconds is not None else len(text.split()) / 3
        await self._feed(value, length)

    async def wait(self, seconds: float) -> None:
        """Line noise-free silence, as a phone streams it."""
        await self._feed(0, seconds)

    async def press(self, digits: str) -> None:
        for digit in digits:
            self.loop.on_dtmf(digit)
            await self.clock.advance(0.2)

    async def _feed(self, value: int, seconds: float) -> None:
        window = np.full(int(RATE * WINDOW_S), value, dtype="<i2").tobytes()
        for _ in range(max(1, round(seconds / WINDOW_S))):
            await self.clock.advance(WINDOW_S)  # a window arrives once it has been spoken
            self.loop.feed_audio(window)
        await settle()


class VirtualCall:
    """One call: the loop, the caller, the phone and memory, on one virtual clock."""

    def __init__(self, loop: RealtimeLoop, caller: Caller, phone: FakePhone, memory: FakeMemory):
        self.loop = loop
        self.caller = caller
        self.phone = phone
        self.memory = memory
        self.clock = caller.clock

    def at(self) -> float:
        """Seconds since the call began, on the phone's clock."""
        return self.clock.now() - self.phone._began

    async def after_greeting(self) -> None:
        """Let the greeting play out, as a caller who listens first."""
        await self.caller.wait(0.1)
        while self.loop._speaking:
            await self.caller.wait(0.5)
        await self.caller.wait(0.3)


@asynccontextmanager
async def virtual_call(
    data_dir: Path, planners: PlannerKit, call_id: str = "CAvirtual"
) -> AsyncIterator[VirtualCall]:
    """A started call from a stranger (+14155550123) with the real loop and planner; hung up
    and closed afterwards."""
    settings = Settings(data_dir=data_dir)
    clock = VirtualClock()
    voice = FakeVoice(settings)
    phone = FakePhone(clock)
    memory = FakeMemory()
    loop = RealtimeLoop(
        voice,
        planners,
        phone,
        call_id=call_id,
        caller_id="+14155550123",
        channel="phone",
        input_rate=RATE,
        recorder=FlightRecorder(data_dir, call_id),
        memory=memory,
        clock=clock,
    )
    phone.loop = loop
    await loop.start()
    try:
        yield VirtualCall(loop, Caller(loop, voice, clock), phone, memory)
    finally:
        await loop.hang_up("test over")
        await loop.aclose()
