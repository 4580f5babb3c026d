"""A spoken call through LiveKit's whole voice pipeline, with no LiveKit server.

The session's audio input and output are swapped for a scripted microphone (Piper's voice,
fed in real time as 10 ms frames at 48 kHz) and a speaker that "plays" in real time. So
Silero VAD, the Whisper adapter, LiveKit's turn detector, the planner as LLM step, the Piper
adapter, barge-in and memory all run as they do in a room. About 20 s.
"""

from __future__ import annotations

import asyncio
import time

import numpy as np
import numpy.typing as npt
import pytest
import soxr
from livekit import rtc
from livekit.agents import AgentSession, AgentStateChangedEvent
from livekit.agents.voice import io

from app.audio.tts import PiperTTS
from app.channels.livekit.session import turn_handling
from app.channels.livekit.speech import select_speech
from app.channels.livekit.tour_agent import TourAgent
from app.memory.service import MemoryService
from app.planner.agent_planner import PlannerKit
from app.settings import Settings

pytestmark = pytest.mark.slow

RATE = 48000
FRAME = RATE // 100  # 10 ms
CALLER = "+14155550101"


class ScriptedMic(io.AudioInput):
    """Frames the test pushes, as a room participant's track would deliver them."""

    def __init__(self) -> None:
        super().__init__(label="scripted-mic")
        self.frames: asyncio.Queue[rtc.AudioFrame] = asyncio.Queue()

    async def __anext__(self) -> rtc.AudioFrame:
        return await self.frames.get()

    async def play(self, samples: npt.NDArray[np.int16]) -> None:
        """Push ``samples`` at real-time pace (VAD and endpointing run on the wall clock)."""
        started = time.monotonic()
        for n, i in enumerate(range(0, len(samples) - FRAME + 1, FRAME)):
            self.frames.put_nowait(rtc.AudioFrame(samples[i : i + FRAME].tobytes(), RATE, 1, FRAME))
            delay = started + (n + 1) * 0.01 - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)

    async def silence(self, seconds: float) -> None:
        await self.play(np.zeros(int(RATE * seconds), dtype=np.int16))


class _NoPause:
    pause = False


class RealtimeSpeaker(io.AudioOutput):
    """Takes the agent's audio and reports it played once its duration has passed."""

    def __init__(self) -> None:
        super().__init__(label="realtime-speaker", capabilities=_NoPause())
        self.queued = 0.0
        self.started: float | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.played: list[tuple[float, bool]] = []  # (seconds played, interrupted)
        self.sample_rates: set[int] = set()

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        await super().capture_frame(frame)
        if self.started is None:
            self.started = time.monotonic()
            self.on_playback_started(created_at=time.time())
        self.queued += frame.duration
        self.sample_rates.add(frame.sample_rate)

    def flush(self) -> None:
        super().flush()
        if self.started is not None:
            left = self.queued - (time.monotonic() - self.started)
            self.timer = asyncio.get_running_loop().call_later(max(left, 0.0), self._done, False)

    def clear_buffer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
        if self.started is not None:
            self._done(True)

    def _done(self, interrupted: bool) -> None:
        assert self.started is not None
        position = min(self.queued, time.monotonic() - self.started)
        self.played.append((position, interrupted))
        self.queued, self.started, self.timer = 0.0, None, None
        self.on_playback_finished(playback_position=position, interrupted=interrupted)


def caller_voice(text: str) -> npt.NDArray[np.int16]:
    piper = PiperTTS(noise_scale=0.0, noise_w_scale=0.0)
    samples = np.frombuffer(b"".join(piper.synthesize(text)), dtype="<i2").astype(np.float32)
    up = soxr.resample(samples, piper.sample_rate, RATE)
    return np.clip(np.rint(up), -32768, 32767).astype(np.int16)


async def test_spoken_turn_with_barge_in_through_livekit(
    settings: Settings, memory: MemoryService, kit: PlannerKit
):
    speech = select_speech(settings)
    voice = caller_voice("Hi, my name is Dana Lee.")
    mic, speaker = ScriptedMic(), RealtimeSpeaker()
    session = AgentSession(
        stt=speech.stt, tts=speech.tts, vad=speech.vad, turn_handling=turn_handling()
    )
    session.input.audio = mic
    session.output.audio = speaker
    speaking = asyncio.Event()

    def on_state(ev: AgentStateChangedEvent) -> None:
        if ev.new_state == "speaking":
            speaking.set()

    session.on("agent_state_changed", on_state)
    agent = TourAgent(kit=kit, caller_id=CALLER, call_id="lk-voice", memory=memory)
    async with session:
        await session.start(agent)
        while not speaking.is_set():
            await mic.silence(0.1)
        await mic.silence(4.0)  # past LiveKit's echo-cancellation warm-up, mid-greeting
        await mic.play(voice)  # the caller talks over the greeting
        deadline = time.monotonic() + 60
        while len(memory.store.exchanges_of_call("lk-voice")) < 3:
            assert time.monotonic() < deadline, memory.store.exchanges_of_call("lk-voice")
            await mic.silence(0.1)

    greeting, heard, answer = memory.store.exchanges_of_call("lk-voice")[:3]
    assert greeting.role == "agent" and greeting.interrupted  # the caller barged in
    assert greeting.text.startswith("Thanks for calling the leasing office!")
    assert heard.role == "user" and "dana" in heard.text.lower()
    assert answer.role == "agent" and "Nice to meet you, Dana." in answer.text
    assert not answer.interrupted
    assert speaker.played[0][1] and not speaker.played[1][1]  # cut off, then played through
    assert speaker.sample_rates == {22050}  # Piper's own rate reached the speaker
    assert {e.channel for e in memory.store.exchanges_of_call("lk-voice")} == {"livekit"}
