"""End of turn in the live loop: a pause mid-sentence is waited out, a short answer is not.

The loop runs for real (turn-taking, transcription on the compute pool, judging, commit); the
models are stand-ins so the caller's pauses are exact: a scripted VAD hears speech wherever
the audio is loud, the recognizer returns a script by how much speech it was given, and the
planner answers "Okay." to anything. Audio is fed in 32 ms windows, as a phone call would.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Collection, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from app.audio.stt import Transcript
from app.domain.state import PlannerState
from app.logging.flight_recorder import FlightRecorder
from app.settings import Settings
from app.voice.compute_pool import ComputePool
from app.voice.realtime_loop import RealtimeLoop
from app.voice.speech_renderer import PhraseCache, SpeechRenderer
from app.voice.voice_kit import VoiceKit

RATE = 8000
WINDOW = 256  # samples: 32 ms at 8 kHz, Silero's window on a phone call


class LoudnessVAD:
    """Speech wherever the audio is loud: pauses are exactly as long as the test makes them."""

    window_samples = WINDOW
    window_ms = 1000 * WINDOW / RATE

    def __init__(self) -> None:
        self._pending = np.zeros(0, dtype=np.int16)

    def process(self, pcm16: bytes) -> list[float]:
        audio = np.concatenate([self._pending, np.frombuffer(pcm16, dtype="<i2")])
        whole = len(audio) - len(audio) % WINDOW
        self._pending = audio[whole:]
        windows = audio[:whole].reshape(-1, WINDOW)
        return [0.95 if np.abs(w).mean() > 500 else 0.02 for w in windows]


class ScriptedSTT:
    """Returns the longest scripted line whose speech fits in what it was given."""

    def __init__(self, lines: dict[int, str]) -> None:
        self.lines = sorted(lines.items())  # (speech ms, text)
        self.unsure: tuple[str, ...] = ()
        self.hints: list[tuple[str, ...]] = []

    def transcribe(self, pcm16_16k: Any) -> str:
        samples = np.frombuffer(pcm16_16k, dtype="<i2")
        speech_ms = np.count_nonzero(np.abs(samples) > 2000) / 16
        said = [text for ms, text in self.lines if speech_ms >= ms * 0.9]
        return said[-1] if said else ""

    def transcribe_detailed(self, pcm16_16k: Any, hints: Sequence[str] = ()) -> Transcript:
        self.hints.append(tuple(hints))
        return Transcript(self.transcribe(pcm16_16k), self.unsure)


class QuietTTS:
    sample_rate = RATE

    def synthesize(self, text: str):
        yield bytes(2 * RATE // 10)  # 100 ms: the content is not the point here


class OkayPlanner:
    """One conversation that answers every turn with "Okay." and keeps what it was told."""

    def __init__(self) -> None:
        self.state = PlannerState()
        self.ended = False
        self.heard: list[str] = []
        self.doubted: list[tuple[str, ...]] = []

    async def _say(self, *sentences: str) -> AsyncIterator[str]:
        for sentence in sentences:
            yield sentence

    def greet(self) -> AsyncIterator[str]:
        return self._say("Hi.")

    def respond(self, text: str, unsure: Collection[str] = ()) -> AsyncIterator[str]:
        self.heard.append(text)
        self.doubted.append(tuple(unsure))
        return self._say("Okay.")

    def on_silence(self) -> AsyncIterator[str]:
        return self._say("Hello?")

    def recognition_hints(self) -> list[str]:
        return ["Hudson 360", "Priya Raman"]


class OkayPlanners:
    def __init__(self) -> None:
        self.planner = OkayPlanner()

    def conversation(self, caller_id: str, context: Any = None) -> OkayPlanner:
        return self.planner

    async def predict(self, state: PlannerState, text: str) -> None:
        return None  # judged on the words alone


class Phone:
    """Plays whatever it is sent at once and echoes the marks, like Twilio with no delay.

    With ``playing`` set, marks wait (the audio is still playing) until ``play_out``."""

    output_rate = RATE

    def __init__(self) -> None:
        self.loop: RealtimeLoop | None = None
        self.playing = False
        self.pending_marks: list[str] = []
        self.audio_sent = 0
        self.clears = 0

    async def send_audio(self, pcm16: bytes) -> None:
        self.audio_sent += 1

    async def send_mark(self, name: str) -> None:
        assert self.loop is not None
        if self.playing:
            self.pending_marks.append(name)
        else:
            self.loop.on_mark(name)

    async def send_clear(self) -> None:
        self.clears += 1
        self.pending_marks.clear()

    def play_out(self) -> None:
        assert self.loop is not None
        marks, self.pending_marks = self.pending_marks, []
        for name in marks:
            self.loop.on_mark(name)

    async def notify(self, event: str, **fields: Any) -> None:
        pass


class WatchedRecorder(FlightRecorder):
    """The call's timeline, with a way to wait for an event instead of sleeping."""

    def __init__(self, data_dir: Path, call_id: str) -> None:
        super().__init__(data_dir, call_id)
        self.events: list[dict[str, Any]] = []
        self._changed = asyncio.Event()

    def event(self, name: str, **fields: Any) -> None:
        super().event(name, **fields)
        self.events.append({"event": name, **fields})
        self._changed.set()

    def named(self, name: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event"] == name]

    def expect(self, name: str) -> Awaitable[dict[str, Any]]:
        """The next ``name`` event after this call (created before the action that causes it)."""
        seen = len(self.named(name))

        async def arrival() -> dict[str, Any]:
            while len(self.named(name)) <= seen:
                self._changed.clear()
                await asyncio.wait_for(self._changed.wait(), timeout=10)
            return self.named(name)[seen]

        return arrival()


class Call:
    def __init__(
        self,
        loop: RealtimeLoop,
        recorder: WatchedRecorder,
        planner: OkayPlanner,
        stt: ScriptedSTT,
        phone: Phone,
    ) -> None:
        self.loop, self.recorder, self.planner, self.stt = loop, recorder, planner, stt
        self.phone = phone

    def speak(self, ms: int) -> None:
        self.loop.feed_audio(np.full(RATE * ms // 1000, 8000, dtype="<i2").tobytes())

    def pause(self, ms: int) -> None:
        for _ in range(ms // 32):
            self.loop.feed_audio(bytes(2 * WINDOW))


@pytest.fixture
async def call(tmp_path: Path, request: pytest.FixtureRequest):
    """A live loop whose caller says "Thanks," (400 ms) and then the rest (1 s more).

    Settings can be overridden by indirect parametrization (``turn_hold_ms``, ...)."""
    settings = Settings(data_dir=tmp_path, **getattr(request, "param", {}))
    stt = ScriptedSTT({400: "Thanks.", 1400: "Thanks. Is there parking at Hudson 360?"})
    tts = QuietTTS()
    pool = ComputePool(2)
    voice = VoiceKit(settings, stt, tts, pool, SpeechRenderer(tts, pool, PhraseCache()))
    voice.new_vad = lambda rate: LoudnessVAD()  # type: ignore[method-assign]
    planners = OkayPlanners()
    phone = Phone()
    recorder = WatchedRecorder(tmp_path, "call-1")
    loop = RealtimeLoop(
        voice,
        planners,  # type: ignore[arg-type]
        phone,
        call_id="call-1",
        caller_id="+15555550100",
        channel="phone",
        input_rate=RATE,
        recorder=recorder,
    )
    phone.loop = loop
    greeted = recorder.expect("agent_said")
    await loop.start()
    await greeted
    yield Call(loop, recorder, planners.planner, stt, phone)
    await loop.hang_up("test over")
    await loop.aclose()
    recorder.close()
    pool.shutdown()


async def test_a_pause_after_thanks_is_not_the_end_of_the_turn(call: Call) -> None:
    judged = call.recorder.expect("turn_judged")
    call.speak(400)
    call.pause(96)  # the loop transcribes the pause: "Thanks."
    assert (await judged)["thought"] == "incomplete"
    call.pause(800)  # longer than both the quick (240 ms) and the usual (600 ms) pause
    call.speak(1000)
    turn_end = call.recorder.expect("turn_end")
    said = call.recorder.expect("caller_said")
    call.pause(320)
    ended = await turn_end
    assert (await said)["text"] == "Thanks. Is there parking at Hudson 360?"
    assert ended["quick"]  # the finished question is still answered after the short pause
    assert len(call.recorder.named("caller_speech_start")) == 1  # one turn, never cut
    assert call.planner.heard == ["Thanks. Is there parking at Hudson 360?"]


async def test_a_lone_thanks_is_answered_after_the_longer_wait(call: Call) -> None:
    judged = call.recorder.expect("turn_judged")
    call.speak(400)
    call.pause(96)
    assert (await judged)["thought"] == "incomplete"
    turn_end = call.recorder.expect("turn_end")
    said = call.recorder.expect("caller_said")
    call.pause(1400)
    ended = await turn_end
    assert 1200 <= ended["silence_ms"] < 1300  # not answered before the longer wait...
    assert (await said)["text"] == "Thanks."  # ...but answered: nobody is left hanging


@pytest.mark.parametrize("answer", ["Yes.", "Hudson 360.", "Dana Lee."])
async def test_a_short_finished_answer_still_ends_at_the_short_pause(
    call: Call, answer: str
) -> None:
    call.stt.lines = [(400, answer)]
    turn_end = call.recorder.expect("turn_end")
    said = call.recorder.expect("caller_said")
    call.speak(400)
    call.pause(320)
    ended = await turn_end
    assert ended["quick"] and ended["silence_ms"] <= 320
    assert (await said)["text"] == answer


async def test_the_words_the_recognizer_doubted_reach_the_planner(call: Call) -> None:
    call.stt.lines = [(400, "My name is Priya.")]
    call.stt.unsure = ("priya",)
    answered = call.recorder.expect("planner_done")
    call.speak(400)
    call.pause(320)
    await answered
    assert call.planner.heard == ["My name is Priya."]
    assert call.planner.doubted == [("priya",)]  # so it can ask "Was that Priya?"
    assert call.stt.hints[-1] == ("Hudson 360", "Priya Raman")  # the call's likely words
    assert call.recorder.named("stt_done")[-1]["unsure"] == ["priya"]  # and the timeline shows it


@pytest.fixture
async def two_sentences(call: Call) -> Call:
    """A caller says "Good morning." (400 ms) and the agent's reply to it has begun playing
    after the short pause; next the caller may go on with a question (1 s)."""
    call.stt.lines = [(400, "Good morning."), (1400, "Good morning. Is there parking?")]
    call.phone.playing = True  # the reply is still playing when the caller goes on
    first_reply = call.recorder.expect("first_frame_out")
    call.speak(400)
    call.pause(320)
    await first_reply
    return call


async def test_going_on_right_after_the_reply_began_is_heard_as_one_turn(
    two_sentences: Call,
) -> None:
    call = two_sentences  # "Good morning." is being answered...
    call.planner.state.caller_name = "changed by the first reply"
    taken_back = call.recorder.expect("turn_taken_back")
    said = call.recorder.expect("caller_said")
    call.speak(1000)  # ...but the caller was only between sentences
    taken = await taken_back
    assert taken["pause_ms"] <= 400
    assert call.phone.clears == 1  # the reply stops at once
    assert taken["hold_ms"] > taken["pause_ms"]  # and this caller's next replies wait longer
    assert call.planner.state.caller_name is None  # what the reply changed is undone
    second_reply = call.recorder.expect("first_frame_out")
    call.pause(320)
    assert (await said)["text"] == "Good morning. Is there parking?"  # both, in one turn
    await second_reply
    answered = call.recorder.expect("agent_said")
    call.phone.play_out()
    await answered
    spoken = [e["text"] for e in call.recorder.named("agent_said")]
    assert spoken == ["Hi.", "Okay."]  # the greeting and one answer: nothing said twice


async def test_speaking_after_a_real_pause_is_talking_over_the_reply(
    two_sentences: Call,
) -> None:
    call = two_sentences
    call.pause(1200)  # over a second: the caller heard the reply begin, and answers it
    started = call.recorder.expect("caller_speech_start")
    call.speak(400)
    assert (await started)["over_agent"]  # judged as speech over the agent (barge-in rules)
    assert call.recorder.named("turn_taken_back") == []
    assert call.planner.heard == ["Good morning."]


@pytest.mark.parametrize("call", [{"turn_hold_ms": 5000}], indirect=True)
async def test_going_on_while_the_reply_is_held_makes_no_sound(call: Call) -> None:
    call.stt.lines = [(400, "Good morning."), (1400, "Good morning. Is there parking?")]
    first_turn = call.recorder.expect("planner_done")
    call.speak(400)
    call.pause(320)  # the turn ends, its reply is ready, but held: the caller may go on
    await first_turn
    taken_back = call.recorder.expect("turn_taken_back")
    said = call.recorder.expect("caller_said")
    call.speak(1000)
    await taken_back
    call.pause(320)
    assert (await said)["text"] == "Good morning. Is there parking?"
    assert call.phone.audio_sent == 1 and call.phone.clears == 0  # only the greeting was heard
