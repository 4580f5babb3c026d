"""RealtimeLoop: one live conversation, from the caller's audio to the agent's voice.

Caller audio → VAD (32 ms windows) → turn-taking → STT → planner → TTS sentence by sentence
→ transport, with barge-in, keypad input and silence handling. The transport (Twilio media
socket, avatar socket) only translates; everything a conversation *does* is here, once.

Where the latency goes, and what we do about each part:

- end of turn: the caller's first silent window starts a speculative transcription; if it
  reads as a finished sentence, the turn ends after ``turn_quick_silence_ms`` instead of
  ``turn_silence_ms``; if it stops mid-sentence ("...and", a lone "Thanks"), only after
  ``turn_incomplete_silence_ms``, so a pause for breath is not answered; the reply's first
  sound still waits for ``turn_hold_ms`` of silence, and a caller who goes on within
  ``TAKE_BACK_MS`` was between sentences: the reply is taken back and both are one turn;
- the reply: the same speculative transcript is run through a dry-run planner (no booking
  writes) and its first sentence is rendered into the phrase cache while we wait, so the real
  reply usually starts from the cache;
- speech: fixed phrases are pre-rendered; a long first sentence is spoken clause first.

What the caller said reaches the planner with the words the recognizer was unsure of (a
name to read back), and recognition leans toward the call's likely words (building names,
a remembered name, offered times: ``AgentPlanner.recognition_hints``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import weakref
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from app.audio.stt import Transcript
from app.conversation import Conversation, ConversationMemory
from app.domain.state import PlannerState
from app.domain.text import speakable_chunks
from app.logging.flight_recorder import FlightRecorder
from app.planner.agent_planner import AgentPlanner, PlannerKit
from app.voice.compute_pool import BARGE, URGENT
from app.voice.ports import SYSTEM_CLOCK, Clock, Voice
from app.voice.speech_renderer import render_priorities
from app.voice.turn_taking import Cue, Thought, TurnDetector, is_backchannel, judge_thought

log = logging.getLogger("tourline.call")

SPECULATE_AFTER_MS = 64
"""Silence before transcribing the turn so far: a one-window dip inside a word is not a pause."""
PREROLL_MS = 320
"""Audio kept from before the VAD noticed speech: Silero needs a window or two to react."""
ONSET_LEAD_MS = 224
"""What a turn keeps before its first voiced window: a fixed length, however the audio
arrived. Whisper tiny reads a soft first word by what precedes it ("in person" behind ~290 ms
of line noise comes out "and person"), and a loop that had fallen behind and caught up in
one batch used to keep up to a whole batch more."""
BACKCHANNEL_MAX_MS = 900
"""Talking over the agent longer than this is an interruption, whatever the words."""
TAKE_BACK_MS = 1000
"""A caller who speaks again this soon after the pause that ended their turn was pausing
between sentences: the reply is taken back and the whole turn answered once."""
MAX_HOLD_MS = 800
"""The longest the hold grows for a caller who pauses long between sentences."""
DTMF_GAP_S = 1.5
"""Digits typed closer together than this are one entry (a phone number)."""
FAREWELL_GRACE_S = 3.0
"""After the goodbye's audio length, end the call even without playback confirmation."""


class VoiceTransport(Protocol):
    """What the loop needs from a connection. Audio is PCM16 mono at ``output_rate``."""

    output_rate: int

    async def send_audio(self, pcm16: bytes) -> None: ...

    async def send_mark(self, name: str) -> None: ...

    async def send_clear(self) -> None: ...

    async def notify(self, event: str, **fields: Any) -> None:
        """Conversation events a richer client shows (transcripts, agent text)."""
        ...


@dataclass
class _Reply:
    """One agent turn being spoken: its chunks, their marks, and which were heard."""

    number: int
    chunks: list[str] = field(default_factory=list)
    marks: dict[str, int] = field(default_factory=dict)  # mark name -> chunk index
    heard: set[int] = field(default_factory=set)
    audio_s: float = 0.0  # playback length of what was sent
    sending_done: bool = False
    cut: bool = False
    recorded: bool = False
    caller_words: str | None = None  # the turn it answers, kept once the caller hears it

    def heard_text(self) -> str:
        return " ".join(self.chunks[i] for i in sorted(self.heard))

    def unheard(self) -> list[str]:
        return [c for i, c in enumerate(self.chunks) if i not in self.heard]


@dataclass
class _OpenTurn:
    """A turn just taken, which the caller can still continue (see ``TAKE_BACK_MS``)."""

    audio: bytes  # the caller's words, to put in front of what they say next
    quiet_at_ms: float  # where in the call's audio the caller went quiet...
    quiet_since: float  # ...and when, by the wall clock (a client may not stream silence)
    task: asyncio.Task[None]  # transcript -> planner -> speech
    state: str | None = None  # the planner state before the reply, once the reply is planned
    reply: _Reply | None = None  # the reply, once it is being spoken
    thought: Thought | None = None  # how finished the words sounded when the turn ended


@dataclass
class _Attempt:
    """A transcription of the turn so far, started when the caller paused."""

    audio_bytes: int
    started: float
    task: asyncio.Task[Transcript]
    text: str | None = None
    unsure: tuple[str, ...] = ()  # words the recognizer was not confident of
    thought: Thought | None = None  # how finished the words sound; None until judged


class RealtimeLoop:
    """Runs one conversation over any ``VoiceTransport``."""

    _live: ClassVar[weakref.WeakSet[RealtimeLoop]] = weakref.WeakSet()
    """Calls in progress in this process, so a stopping server can say goodbye to each."""

    def __init__(
        self,
        voice: Voice,
        planners: PlannerKit,
        transport: VoiceTransport,
        *,
        call_id: str,
        caller_id: str,
        channel: str,
        input_rate: int,
        recorder: FlightRecorder,
        memory: ConversationMemory | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.voice = voice
        self.planners = planners
        self.transport = transport
        self.call_id = call_id
        self.caller_id = caller_id
        self.channel = channel
        self.input_rate = input_rate
        self.recorder = recorder
        self.memory = memory
        self._clock = clock
        settings = voice.settings
        self._silence_ms = settings.turn_silence_ms
        self._quick_silence_ms = min(settings.turn_quick_silence_ms, settings.turn_silence_ms)
        self._incomplete_silence_ms = max(
            settings.turn_incomplete_silence_ms, settings.turn_silence_ms
        )
        self._barge_in_ms = settings.barge_in_ms
        self._hold_s = settings.turn_hold_ms / 1000
        self._quick_hold_s = min(settings.turn_quick_hold_ms, settings.turn_hold_ms) / 1000
        self._hold_grown = False  # this caller went on after a pause: no quick hold any more
        self._no_input_s = settings.no_input_timeout_s
        self._context_timeout_s = settings.context_timeout_ms / 1000

        self.conversation: Conversation | None = None
        self.finished = asyncio.Event()  # the agent ended the conversation and was heard
        self._vad = voice.new_vad(input_rate)
        self._detector = TurnDetector(window_ms=self._vad.window_ms)
        self._inbound: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._audio = bytearray()  # the caller's current turn (plus pre-roll), PCM16
        self._preroll_bytes = int(input_rate * PREROLL_MS / 1000) * 2
        self._lead_bytes = int(input_rate * ONSET_LEAD_MS / 1000) * 2
        self._window_bytes = int(input_rate * self._vad.window_ms / 1000) * 2
        self._unscored = 0  # bytes at the end of ``_audio`` the VAD holds as a partial window
        self._after_window = 0  # bytes of ``_audio`` after the window being judged
        self._onset_heard_ms = 0.0  # call audio heard up to the current segment's onset
        self._attempt: _Attempt | None = None
        self._open_turn: _OpenTurn | None = None
        self._heard_ms = 0.0  # caller audio scored so far: the call's own clock
        self._unkept_words: dict[asyncio.Task[Any], str] = {}  # turn -> words not yet in memory
        self._reply: _Reply | None = None
        self._reply_task: asyncio.Task[None] | None = None
        self._replies = 0
        self._turn_lock = asyncio.Lock()
        self._speaking = False  # agent audio sent and not yet all heard
        self._segment_over_agent = False  # this caller segment began while the agent spoke
        self._segment_dismissed = False  # ...and was a backchannel
        self._barge_check: asyncio.Task[None] | None = None
        self._checked_run_ms = 0.0  # the overlap's length at its last barge-in check
        self._judged_run_ms = 0.0  # ...at its early judgement (0: this stretch not judged yet)
        self._barge_in_early_ms = settings.barge_in_early_ms
        self._last_pause: float | None = None
        self._digits = ""
        self._digit_timer: asyncio.Task[None] | None = None
        self._silence_timer: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False
        self._leaving = False  # the server is stopping: only the goodbye is left to say
        self._listener = self._spawn(self._listen())

    # ------------------------------------------------------------------ lifecycle

    @property
    def planner(self) -> AgentPlanner | None:
        """The conversation's planner, once ``start`` has loaded the caller."""
        return self.conversation.planner if self.conversation is not None else None

    async def start(self) -> None:
        """Load what we remember about the caller, then speak first."""
        self.conversation = await Conversation.open(
            self.planners,
            self.memory,
            caller_id=self.caller_id,
            call_id=self.call_id,
            channel=self.channel,
            recorder=self.recorder,
            context_timeout_s=self._context_timeout_s,
            # A database's commits go off the loop that carries every call's audio; an
            # in-process memory (tests' lists) is written in place.
            writes_off_loop=self.memory is not None and self.memory.commits_writes,
        )
        RealtimeLoop._live.add(self)
        self._spawn(self._speak(self.conversation.greet(), trigger="greeting"))

    @classmethod
    def active(cls) -> int:
        """Calls in progress in this process, on every channel (the load behind capacity)."""
        return len(cls._live)

    @classmethod
    def live_calls(cls) -> list[tuple[str, str]]:
        """``(call_id, channel)`` of each call in progress: for admission and metrics."""
        return [(loop.call_id, loop.channel) for loop in list(cls._live)]

    @classmethod
    async def leave_all(cls, goodbye: str, within_s: float) -> int:
        """Say ``goodbye`` on every call in progress at once (see ``leave``); how many."""
        loops = list(cls._live)
        await asyncio.gather(*(loop.leave(goodbye, within_s) for loop in loops))
        return len(loops)

    async def leave(self, goodbye: str, within_s: float) -> None:
        """The server is stopping: cut the reply in progress, say ``goodbye``, and set
        ``finished`` once it was heard, or after ``within_s`` at most, so the transport closes
        the call politely instead of the server dropping it. The caller is not heard meanwhile
        (speaking over the goodbye must not start a turn nobody will answer)."""
        if self._closed or self._leaving:
            return
        self._leaving = True
        self.recorder.event("server_stopping", goodbye=goodbye)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within_s):
                await self._stop_for_goodbye()
                await self._speak(_just(goodbye), trigger="shutdown")
                await self.finished.wait()
        if not self.finished.is_set():
            self.recorder.event("conversation_ended", marks_missing=True)
            self.finished.set()

    async def _stop_for_goodbye(self) -> None:
        """Cancel every turn, timer and reply (keeping what was heard of the reply)."""
        reply = self._reply
        pending = [task for task in self._tasks if task is not self._listener]
        for task in pending:
            task.cancel()
        for task in pending:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._drop_attempt()
        speaking, self._speaking = self._speaking, False
        if reply is not None and not reply.recorded:
            reply.cut = True  # first: the marks a clear echoes back are not "heard"
            self._finish_reply(reply, interrupted=True)
        if speaking:
            await self._send_clear()

    async def hang_up(self, reason: str) -> None:
        """The other side is gone: stop everything and keep what was said."""
        if self._closed:
            return
        self._closed = True
        RealtimeLoop._live.discard(self)
        self.recorder.event("hang_up", reason=reason)
        for task in list(self._unkept_words):  # they hung up before hearing the answer
            self._keep_caller_words(task)
        reply = self._reply
        if reply is not None:  # sent is not heard: only what playback confirmed was
            unheard = not reply.sending_done or len(reply.heard) < len(reply.marks)
            self._finish_reply(reply, interrupted=unheard)
        self._inbound.put_nowait(None)
        for task in list(self._tasks):
            task.cancel()
        self.voice.forget(self.call_id)
        self.voice.release_vad(self._vad)
        try:
            if self.conversation is not None:
                await self.conversation.aend()  # everything durable before the call is finished
        finally:  # cancelled meanwhile (the server stopping): the lane still writes it all
            self.finished.set()

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("call %s: task failed", self.call_id, exc_info=task.exception())
            where = getattr(task.get_coro(), "__name__", "task")
            self.recorder.event("error", where=where, error=repr(task.exception()))

    # ------------------------------------------------------------------ caller audio

    def feed_audio(self, pcm16: bytes) -> None:
        """Caller audio from the transport (any length); never blocks."""
        if not self._closed and not self._leaving:
            self._inbound.put_nowait(pcm16)

    async def _listen(self) -> None:
        """Score audio with the VAD (off the loop) and run turn-taking on each window."""
        while True:
            chunk = await self._inbound.get()
            if chunk is None:
                return
            parts = [chunk]
            while not self._inbound.empty():  # catch up in one go if we fell behind
                more = self._inbound.get_nowait()
                if more is None:
                    return
                parts.append(more)
            audio = b"".join(parts)
            probabilities = await self.voice.score(self._vad, audio)
            self._audio += audio
            self._unscored += len(audio) - len(probabilities) * self._window_bytes
            for index, probability in enumerate(probabilities):
                self._heard_ms += self._vad.window_ms
                cue = self._detector.push(probability)
                later = len(probabilities) - 1 - index  # windows of this batch after it
                self._after_window = self._unscored + later * self._window_bytes
                if cue is Cue.SPEECH_START:
                    self._keep_onset_lead(self._after_window)
                self._on_cue(cue)
            if not self._detector.in_speech and len(self._audio) > self._preroll_bytes:
                del self._audio[: len(self._audio) - self._preroll_bytes]

    def _keep_onset_lead(self, after: int) -> None:
        """A turn starts: keep ``ONSET_LEAD_MS`` before its first voiced window, counted back
        from the window that started it (``after`` bytes before the end of ``_audio``). Over
        the agent, all of ``PREROLL_MS``: the early barge-in judgement was trained on that."""
        voiced = round(self._detector.voiced_ms / self._vad.window_ms) * self._window_bytes
        lead = self._preroll_bytes if self._speaking else self._lead_bytes
        start = len(self._audio) - after - voiced - lead
        if start > 0:
            del self._audio[:start]

    def _on_cue(self, cue: Cue | None) -> None:
        detector = self._detector
        if cue is Cue.SPEECH_START:
            self._onset_heard_ms = self._heard_ms - detector.voiced_ms
            self._take_back_if_continued()
            self._segment_over_agent = self._speaking
            self._segment_dismissed = False
            self._cancel_timer("_silence_timer")
            self.recorder.event("caller_speech_start", over_agent=self._speaking)
        elif cue is Cue.PAUSE:
            self._last_pause = self._clock.now()
            self.recorder.event("speech_end", voiced_ms=detector.voiced_ms)
        elif cue is Cue.RESUME:
            self._drop_attempt()
        if not detector.in_speech:
            return
        if self._segment_over_agent:
            self._watch_for_barge_in()
            if not detector.talking and detector.silence_ms >= self._silence_ms:
                self._end_segment_over_agent()
            return
        if (
            self._attempt is None
            and not detector.talking
            and detector.silence_ms >= SPECULATE_AFTER_MS
        ):
            self._start_attempt()
        self._maybe_commit()

    # ------------------------------------------------------------------ end of turn

    def _start_attempt(self) -> None:
        self._drop_attempt()
        audio = bytes(self._audio)
        hints = self.planner.recognition_hints() if self.planner is not None else ()
        task = asyncio.create_task(
            self.voice.hear(self.call_id, audio, self.input_rate, priority=URGENT, hints=hints)
        )
        attempt = _Attempt(len(audio), self._clock.now(), task)
        self._attempt = attempt
        task.add_done_callback(functools.partial(self._attempt_done, attempt))

    def _drop_attempt(self) -> None:
        """The caller went on: this transcription is stale. A queued one never runs; one
        already decoding finishes unused (the timeline counts those: wasted recognizer time)."""
        if self._attempt is not None:
            if not self._attempt.task.done():
                self.recorder.event("stt_dropped")
            self._attempt.task.cancel()
            self._attempt = None

    def _attempt_done(self, attempt: _Attempt, task: asyncio.Task[Transcript]) -> None:
        if task.cancelled() or attempt is not self._attempt:
            return
        if task.exception() is not None:
            log.warning("call %s: transcription failed: %r", self.call_id, task.exception())
            attempt.text = ""
        else:
            heard = task.result()
            attempt.text, attempt.unsure = heard.text, heard.unsure_words
        self._record_stt(attempt)
        if attempt.text:
            self._spawn(self.transport.notify("user_transcript", text=attempt.text, final=False))
        if judge_thought(attempt.text) is Thought.INCOMPLETE:
            attempt.thought = Thought.INCOMPLETE  # words alone settle it: no prediction needed
        self._spawn(self._judge(attempt))
        self._maybe_commit()  # a pause already past the usual length was waiting for the words

    async def _judge(self, attempt: _Attempt) -> None:
        """Decide whether the transcript so far is a finished turn; render its likely reply."""
        text = attempt.text or ""
        prediction = None
        if text and self.planner is not None:
            prediction = await self.planners.predict(self.planner.state, text)
        attempt.thought = judge_thought(text, prediction.progressed if prediction else None)
        if attempt is not self._attempt:
            return
        self.recorder.event("turn_judged", thought=attempt.thought.value)
        if attempt.thought is Thought.COMPLETE and prediction and prediction.sentences:
            rate = self.transport.output_rate
            ready = functools.partial(self.voice.is_cached, rate=rate)
            chunks = speakable_chunks(prediction.sentences, True, ready)[:2]
            for chunk, priority in zip(chunks, render_priorities(chunks, ready), strict=True):
                self._spawn(self.voice.render(self.call_id, chunk, rate, priority=priority))
        self._maybe_commit()

    def _maybe_commit(self) -> None:
        """End the turn when the pause is long enough for what the caller said."""
        detector, attempt = self._detector, self._attempt
        if detector.talking or not detector.in_speech:
            return
        if detector.silence_ms < self._pause_to_end(attempt):
            return
        if attempt is None:  # an utterance shorter than one pause: transcribe now
            self._start_attempt()
            return
        if attempt.text is None and detector.silence_ms < self._incomplete_silence_ms:
            return  # the words may be an unfinished thought: wait for them (not the reply)
        self._commit(attempt)  # a transcript still on its way is awaited in _take_turn

    def _pause_to_end(self, attempt: _Attempt | None) -> float:
        """Silence that ends the turn, by how finished the caller's words sound so far."""
        thought = attempt.thought if attempt is not None else None
        if thought is Thought.COMPLETE:
            return self._quick_silence_ms
        if thought is Thought.INCOMPLETE:
            return self._incomplete_silence_ms
        return self._silence_ms

    def _commit(self, attempt: _Attempt) -> None:
        self.recorder.event(
            "turn_end",
            silence_ms=self._detector.silence_ms,
            quick=self._detector.silence_ms < self._silence_ms,
            voiced_ms=self._detector.voiced_ms,
        )
        pause = self._last_pause
        audio = bytes(self._audio)
        quiet_at_ms = self._heard_ms - self._detector.silence_ms
        self._attempt = None
        self._detector.reset()
        self._audio.clear()
        task = self._spawn(self._take_turn(attempt, pause))
        quiet_since = self._clock.now() - (self._heard_ms - quiet_at_ms) / 1000
        self._open_turn = _OpenTurn(audio, quiet_at_ms, quiet_since, task, thought=attempt.thought)

    def _take_back_if_continued(self) -> None:
        """The caller speaks again right after the pause that ended their turn: they were
        between two sentences ("Good morning." ... "I'd like a tour."). Stop the reply (before
        its first sound, usually), restore the planner, and hear both sentences as one turn.

        Not once the reply was heard in part (a mark came back), after ``TAKE_BACK_MS``, or
        when the reply changed a booking: that happened for real and is confirmed aloud."""
        turn, self._open_turn = self._open_turn, None
        if turn is None or self.planner is None:
            return
        by_audio = self._heard_ms - turn.quiet_at_ms
        by_clock = (self._clock.now() - turn.quiet_since) * 1000
        pause_ms = max(by_audio, by_clock) - self._detector.voiced_ms
        if pause_ms > TAKE_BACK_MS:
            return
        reply = turn.reply
        if reply is not None and (reply.heard or reply.cut):
            return
        if turn.state is not None:
            before = PlannerState.from_json(turn.state)
            if before.booking != self.planner.state.booking:
                return
            self.planner.state = before
        turn.task.cancel()
        self._unkept_words.pop(turn.task, None)
        if reply is not None:
            reply.cut = reply.recorded = True  # at most its first sound reached the caller
            reply.caller_words = None  # kept with the continuation
            if self._speaking:  # its first sound went out: this caller pauses longer
                self._spawn(self._send_clear())
                self._hold_s = min(max(self._hold_s, (pause_ms + 150) / 1000), MAX_HOLD_MS / 1000)
                self._hold_grown = True
            self._speaking = False
        self._audio[:0] = turn.audio
        self.recorder.event(
            "turn_taken_back", pause_ms=round(pause_ms), hold_ms=round(self._hold_s * 1000)
        )

    async def _take_turn(self, attempt: _Attempt, pause: float | None) -> None:
        if attempt.text is None:
            try:
                heard = await attempt.task
                attempt.text, attempt.unsure = heard.text, heard.unsure_words
            except Exception as exc:
                log.warning("call %s: transcription failed: %r", self.call_id, exc)
                attempt.text = ""
            self._record_stt(attempt)
        text = attempt.text.strip()
        if not text:
            self.recorder.event("turn_ignored", reason="no words")
            self._arm_silence_timer()
            return
        self.recorder.event("caller_said", text=text)
        await self.transport.notify("user_transcript", text=text, final=True)
        assert self.planner is not None
        turn = self._open_turn
        if turn is not None and turn.task is asyncio.current_task():
            turn.state = self.planner.state.to_json()
        reply = self.planner.respond(text, unsure=attempt.unsure)
        this_turn = asyncio.current_task()
        if this_turn is not None:
            self._unkept_words[this_turn] = text  # written to memory as the reply starts
        await self._speak(reply, trigger="turn", speech_end=pause)

    def _record_stt(self, attempt: _Attempt) -> None:
        self.recorder.event(
            "stt_done",
            ms=round((self._clock.now() - attempt.started) * 1000, 2),
            text=attempt.text,
            unsure=list(attempt.unsure),
            audio_ms=round(attempt.audio_bytes / 2 / self.input_rate * 1000),
        )

    def _end_segment_over_agent(self) -> None:
        """Speech over the agent that never became an interruption: drop it."""
        self.recorder.event(
            "overlap_ignored",
            voiced_ms=self._detector.voiced_ms,
            backchannel=self._segment_dismissed,
        )
        self._detector.reset()
        self._audio.clear()

    # ------------------------------------------------------------------ barge-in

    def _watch_for_barge_in(self) -> None:
        detector = self._detector
        if not self._speaking:
            # The agent finished while the caller was talking: it is a normal turn now.
            self._segment_over_agent = False
            return
        if detector.run_ms >= BACKCHANNEL_MAX_MS and detector.talking:
            self._barge_in("long overlap")
            return
        if self._segment_dismissed or self._barge_check is not None:
            return
        if detector.run_ms < self._checked_run_ms:
            self._checked_run_ms = 0.0  # a new stretch of talking: judge it afresh
        if detector.run_ms < self._judged_run_ms:
            self._judged_run_ms = 0.0
        if (
            self._barge_in_early_ms
            and not self._judged_run_ms
            and detector.talking
            and self._barge_in_early_ms <= detector.run_ms < self._barge_in_ms
        ):
            self._judged_run_ms = detector.run_ms
            audio = bytes(self._audio[: len(self._audio) - self._after_window])  # to this window
            # Judged from the segment's first voiced window, not the detector's current run:
            # a run restarts at a dip inside a word ("o-kay"), and "kay" after "o" scored as
            # a turn. A segment already long (a second stretch) is left to the words.
            since_onset_ms = self._heard_ms - self._onset_heard_ms
            if since_onset_ms <= 2 * self._barge_in_early_ms:
                self._barge_check = self._spawn(self._judge_onset(audio, since_onset_ms))
                return
        if not detector.talking or detector.run_ms < self._barge_in_ms:
            return
        if self._checked_run_ms and detector.run_ms < self._checked_run_ms + self._barge_in_ms:
            return  # judged as a backchannel so far: look again once it has gone on as long
        self._checked_run_ms = detector.run_ms
        audio = bytes(self._audio)
        self._barge_check = self._spawn(self._check_overlap(audio))

    async def _judge_onset(self, audio: bytes, run_ms: float) -> None:
        """The first ~160 ms of talking over the agent: stop at once if it is surely a turn
        ("wait", "sorry, no"); otherwise the check at ``barge_in_ms`` decides, as before."""
        started = self._clock.now()
        try:
            sure = await self.voice.surely_interrupts(
                self.call_id, audio, self.input_rate, run_ms, priority=BARGE
            )
        finally:
            self._barge_check = None
        ms = round((self._clock.now() - started) * 1000, 2)
        if sure and self._speaking and self._detector.in_speech:
            self._barge_in("(sure from its onset)", probe_ms=ms, run_ms=run_ms)
        else:
            self.recorder.event("overlap_judged", sure=sure, probe_ms=ms, run_ms=run_ms)

    async def _check_overlap(self, audio: bytes) -> None:
        """Is the caller taking the turn, or just saying "uh-huh"? Ask the recognizer, ahead
        of every other call's work (``BARGE``): the agent talks over them until it knows."""
        started = self._clock.now()
        try:
            text = await self.voice.transcribe(self.call_id, audio, self.input_rate, priority=BARGE)
        finally:
            self._barge_check = None
        ms = round((self._clock.now() - started) * 1000, 2)
        if not self._speaking or not self._detector.in_speech:
            return
        if is_backchannel(text) and not self._detector.talking:
            self._segment_dismissed = True
            self.recorder.event("backchannel", text=text, stt_ms=ms)
            return
        if is_backchannel(text):
            # Still talking: judge again on longer audio (a short overlap's words are often
            # misheard), and at BACKCHANNEL_MAX_MS it is a turn whatever the words.
            self.recorder.event("overlap_checked", text=text, stt_ms=ms)
            return
        self._barge_in(text, stt_ms=ms)

    def _barge_in(self, heard_so_far: str, **timing: float) -> None:
        reply = self._reply
        self.recorder.event("barge_in", caller_so_far=heard_so_far, **timing)
        self._segment_over_agent = False
        if self._reply_task is not None:
            self._reply_task.cancel()
        self._speaking = False
        self._spawn(self._send_clear())
        if reply is not None:
            reply.cut = True
            self._finish_reply(reply, interrupted=True)

    async def _send_clear(self) -> None:
        await self.transport.send_clear()
        self.recorder.event("clear_sent")
        await self.transport.notify("interrupted")

    # ------------------------------------------------------------------ agent speech

    async def _speak(
        self,
        sentences: AsyncIterator[str],
        *,
        trigger: str,
        speech_end: float | None = None,
    ) -> None:
        """Render and send one reply, sentence by sentence, each followed by a mark."""
        async with self._turn_lock:
            if self._closed:
                return
            self._cancel_timer("_silence_timer")
            self._replies += 1
            reply = _Reply(self._replies)
            self._reply = reply
            if self._open_turn is not None and self._open_turn.task is asyncio.current_task():
                self._open_turn.reply = reply
            self._reply_task = asyncio.current_task()
            try:
                await self._send_reply(reply, sentences, trigger, speech_end)
            except asyncio.CancelledError:
                reply.cut = True
                raise
            finally:
                reply.sending_done = True
                self._reply_task = None
                if self.conversation is not None:
                    self.conversation.snapshot()
            if reply.chunks and not reply.cut:  # all of it is sent: a text client can stop waiting
                text = " ".join(reply.chunks)
                await self.transport.notify("agent_done", text=text, reply=f"r{reply.number}")
            self._maybe_reply_heard(reply)
            if self.planner is not None and self.planner.ended and not self.finished.is_set():
                self._spawn(self._finish_after(reply.audio_s + FAREWELL_GRACE_S))

    async def _finish_after(self, seconds: float) -> None:
        """End even if the transport never confirms playback (a client that echoes no marks)."""
        await self._clock.sleep(seconds)
        still_ending = self.planner is None or self.planner.ended  # not taken back meanwhile
        if still_ending and not self.finished.is_set():
            self.recorder.event("conversation_ended", marks_missing=True)
            self.finished.set()

    async def _send_reply(
        self,
        reply: _Reply,
        sentences: AsyncIterator[str],
        trigger: str,
        speech_end: float | None,
    ) -> None:
        started = self._clock.now()
        rate = self.transport.output_rate
        planned = [s async for s in sentences]
        self.recorder.event(
            "planner_done", ms=round((self._clock.now() - started) * 1000, 2), trigger=trigger
        )
        ready = functools.partial(self.voice.is_cached, rate=rate)
        chunks = speakable_chunks(planned, True, ready)
        reply.chunks = chunks
        renders = [
            asyncio.ensure_future(self.voice.render(self.call_id, chunk, rate, priority=priority))
            for chunk, priority in zip(chunks, render_priorities(chunks, ready), strict=True)
        ]
        try:
            for index, (chunk, render) in enumerate(zip(chunks, renders, strict=True)):
                audio, cached = await render
                if index == 0:
                    self.recorder.event(
                        "tts_first_audio",
                        ms=round((self._clock.now() - started) * 1000, 2),
                        cached=cached,
                    )
                name = f"r{reply.number}.{index}"
                reply.marks[name] = index
                if index == 0:
                    await self._hold_until_sure()
                    this_turn = asyncio.current_task()
                    if this_turn is not None:
                        reply.caller_words = self._unkept_words.pop(this_turn, None)
                    self._speaking = True
                await self.transport.send_audio(audio)
                reply.audio_s += len(audio) / 2 / rate
                await self.transport.send_mark(name)
                await self.transport.notify("agent_text", text=chunk, mark=name)
                if index == 0:
                    since = self._clock.now() - speech_end if speech_end else None
                    self.recorder.event(
                        "first_frame_out",
                        ms_since_speech_end=round(since * 1000, 2) if since is not None else None,
                        trigger=trigger,
                    )
        finally:
            for render in renders:
                render.cancel()
        if not chunks:
            self._keep_caller_words()

    async def _hold_until_sure(self) -> None:
        """Start a turn's reply only ``turn_hold_ms`` after the caller went quiet: one who was
        only between sentences has gone on by then, and their reply is taken back unheard.
        A caller who went on after a reply had begun pauses longer: for them the hold grows
        to their pause plus 150 ms (at most ``MAX_HOLD_MS``). After a finished answer the
        hold is ``turn_quick_hold_ms``: about 100 ms of every such reply, for callers who wait."""
        turn = self._open_turn
        if turn is None or turn.task is not asyncio.current_task():
            return
        quick = turn.thought is Thought.COMPLETE and not self._hold_grown
        hold = self._quick_hold_s if quick else self._hold_s
        wait = turn.quiet_since + hold - self._clock.now()
        if wait > 0:
            await self._clock.sleep(wait)

    def _keep_caller_words(self, task: asyncio.Task[Any] | None = None) -> None:
        """Write what the caller said to memory when their turn gets no reply to hear."""
        key = task or asyncio.current_task()
        said = self._unkept_words.pop(key, None) if key is not None else None
        if said and self.conversation is not None:
            self.conversation.caller_said(said)

    def _keep_words_answered_by(self, reply: _Reply) -> None:
        """Write the turn a reply answers, once the caller has heard some of the reply (or it
        ended): until then it can be taken back, and the turn is kept once, whole, with its
        continuation (``_take_back_if_continued``)."""
        said, reply.caller_words = reply.caller_words, None
        if said and self.conversation is not None:
            self.conversation.caller_said(said)

    def on_mark(self, name: str) -> None:
        """The transport played audio up to ``name`` (Twilio echoes our marks)."""
        reply = self._reply
        if reply is None or reply.cut or name not in reply.marks:
            return  # a mark of a reply that was cut: Twilio echoes those on clear
        self._keep_words_answered_by(reply)
        reply.heard.add(reply.marks[name])
        self._maybe_reply_heard(reply)

    def _maybe_reply_heard(self, reply: _Reply) -> None:
        if reply.cut or not reply.sending_done or len(reply.heard) < len(reply.marks):
            return
        self._speaking = False
        self._finish_reply(reply, interrupted=False)
        if self._leaving or (self.planner is not None and self.planner.ended):
            self.recorder.event("conversation_ended")
            self._spawn(self.transport.notify("conversation_ended"))
            self.finished.set()
            return
        if self._segment_over_agent:
            self._segment_over_agent = False  # they started just before we finished
            self._maybe_commit()
        self._arm_silence_timer()

    def _finish_reply(self, reply: _Reply, *, interrupted: bool) -> None:
        """Keep the agent's turn as the caller heard it: once, and only the heard part."""
        if reply.recorded:
            return
        reply.recorded = True
        self._keep_words_answered_by(reply)
        heard = reply.heard_text()
        self.recorder.event(
            "agent_said", text=heard, interrupted=interrupted, unheard=reply.unheard()
        )
        if self.conversation is not None:
            self.conversation.agent_said(
                " ".join(reply.chunks), heard=heard if interrupted else None
            )

    # ------------------------------------------------------------------ keypad, silence

    def on_dtmf(self, digit: str) -> None:
        """A key press: interrupts the agent, then reaches the planner as an answer."""
        if self._leaving:
            return
        self.recorder.event("dtmf", digit=digit)
        if self._speaking:
            self._barge_in(f"key {digit}")
        self._digits += digit
        self._cancel_timer("_digit_timer")
        single_key = self.planner.takes_single_key if self.planner else False
        if digit in "*#" or (len(self._digits) == 1 and single_key):
            self._spawn(self._flush_digits())
        else:
            self._digit_timer = self._spawn(self._digits_after_gap())

    async def _digits_after_gap(self) -> None:
        await self._clock.sleep(DTMF_GAP_S)
        self._digit_timer = None
        await self._flush_digits()

    async def _flush_digits(self) -> None:
        digits, self._digits = self._digits.rstrip("#") or self._digits, ""
        if not digits or self.conversation is None:
            return
        self.conversation.caller_said(f"[{digits}]")
        await self._speak(self.conversation.respond_dtmf(digits), trigger="dtmf")

    def on_text(self, text: str) -> None:
        """Typed input (avatar clients without a microphone): a whole turn at once."""
        text = text.strip()
        if not text or self.conversation is None or self._leaving:
            return
        if self._speaking:
            self._barge_in("typed text")
        self.recorder.event("caller_said", text=text, typed=True)
        self.conversation.caller_said(text)
        self._spawn(self._speak(self.conversation.respond(text), trigger="text"))

    def _arm_silence_timer(self) -> None:
        self._cancel_timer("_silence_timer")
        if self._no_input_s > 0 and not self._closed and not self._leaving:
            self._silence_timer = self._spawn(self._after_silence())

    async def _after_silence(self) -> None:
        await self._clock.sleep(self._no_input_s)
        self._silence_timer = None
        if self._detector.in_speech or self._speaking or self.planner is None:
            return
        self.recorder.event("no_input", seconds=self._no_input_s)
        await self._speak(self.planner.on_silence(), trigger="silence")

    def _cancel_timer(self, attribute: str) -> None:
        timer = getattr(self, attribute)
        if timer is not None and timer is not asyncio.current_task():
            timer.cancel()
        setattr(self, attribute, None)

    async def aclose(self) -> None:
        """Wait for background tasks to stop after ``hang_up``."""
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


async def _just(text: str) -> AsyncIterator[str]:
    """One fixed sentence, in the shape ``_speak`` takes a planner's reply."""
    yield text
