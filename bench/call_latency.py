"""Voice-to-voice latency of phone calls and avatar sessions: the real server, our harness.

What it measures: for 1, 5, 10 and 20 simultaneous calls over loopback at real time, each a
scripted conversation answered by voice, the time from the last voiced 20 ms frame of the
caller's turn leaving the harness to the first frame of the agent's reply arriving back,
as a caller would feel it (minus the network). Each call's server timeline then splits that
time into stages: end-of-turn wait, STT, planner, time to first TTS audio, first frame out.

Why the harness is the clock: the server's own stage timings can all look fast while audio
still waits somewhere (a queue, a busy event loop); only the far end sees the sum.

Calls start at random moments over ``--stagger`` seconds, and every call in the run has its
own name, building, unit size, move-in, pets and budget, so replies can't all come from the
phrase cache. Caller speech is rendered by Piper before any call starts, so synthesis in
this process never competes with the server being measured.

``--mode avatar`` measures the same thing over ``WS /avatar`` (docs/avatar-protocol.md):
1, 10 and 20 simultaneous avatar sessions, each streaming 16 kHz PCM16 at real time from
the avatar client (sim/avatar.py) and playing the agent's audio back
at real time, reporting marks as played. Its table is its own section of docs/benchmarks.md.

Phone-line noise (issue 13): each call (or session) is on its own noisy line, at an SNR drawn
from ``--snr`` (default 15-25 dB, a third of the calls in the bottom 2 dB); ``--snr off`` is
the old quiet line. The noise (sim/line_noise.py) runs under the speech and between lines;
latency still starts at the last voiced frame of the clean speech.

Per level it also reads the server process's CPU time (/proc/<pid>/stat) before and after,
and reports CPU seconds per call-minute and the calls per core that implies.

Run:  python bench/call_latency.py --calls 1,5,10,20 --turns 6
      python bench/call_latency.py --mode avatar                     (1, 5, 10, 20 sessions)
      python bench/call_latency.py --snr off                         (the quiet line)
      python bench/call_latency.py --calls 1 --turns 2 --no-write      (a smoke run)
      --keep-data keeps the server's data dir (call timelines, server.log) for a closer look.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench.report import BENCHMARKS_MD, machine_line, percentile, write_section  # noqa: E402
from sim.avatar import AvatarClient, SessionClosed, clean_speech  # noqa: E402
from sim.line_noise import draw_snr  # noqa: E402
from sim.server import running_server  # noqa: E402
from sim.twilio import (  # noqa: E402
    CallEnded,
    CallerScript,
    CallerVoice,
    NoReply,
    TwilioCall,
    fetch_timeline,
    question_kind,
)

TOKEN = "bench-token"
PUBLIC = "https://tourline.example"

# Goals from issue 13, voice to voice at the harness on noisy lines (avatar sessions too).
BUDGET = {
    1: {"p50": 450.0, "p95": 700.0},
    10: {"p95": 1000.0},
    20: {"p95": 1500.0},
}
CAPACITY_P95_MS = 1000.0
"""A level "holds" if its voice-to-voice p95 is within this (the 10-call goal)."""
LEVELS = {"phone": "1,5,10,20", "avatar": "1,5,10,20"}
SECTIONS = {"phone": "call_latency", "avatar": "avatar_latency"}

FIRST_NAMES = [
    "dana", "sam", "priya", "lee", "maria", "omar", "grace", "tom", "nina", "victor",
    "helen", "raj", "olivia", "marcus", "sofia", "ben", "chloe", "david", "emma", "felix",
    "hannah", "isaac", "julia", "kevin", "laura", "mike", "nora", "oscar", "paula", "quinn",
    "rosa", "simon", "tara", "ursula", "vera", "walter", "yara", "zoe", "adam", "bella",
]  # fmt: skip
LAST_NAMES = ["lee", "ortiz", "patel", "wong", "lopez", "khan", "park", "brown", "silva", "novak"]
PROPERTIES = ["hudson three sixty", "twenty one west end", "riverview lofts"]
UNITS = ["a one bedroom", "a two bedroom"]
MOVE_INS = ["early january", "in february", "march first", "next month", "in april"]
PETS = ["no pets", "one small dog", "two cats", "no pets at all", "a cat"]
BUDGETS = [
    "about three thousand",
    "four thousand dollars",
    "thirty five hundred",
    "five thousand a month",
    "around four thousand five hundred",
]
TOUR_TYPES = ["in person", "virtual"]
DAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday"]
HOURS = [
    "ten in the morning",
    "eleven in the morning",
    "one in the afternoon",
    "two in the afternoon",
    "three in the afternoon",
    "four in the afternoon",
    "five in the afternoon",
]
ORDER = [
    "name",
    "property",
    "unit_size",
    "move_in",
    "pets",
    "budget",
    "tour_type",
    "tour_time",
    "confirm",
    "contact",
    "anything_else",
]


def script_for(index: int) -> CallerScript:
    """Call ``index``'s caller: its own answers (and its own tour slot, if it gets that far)."""
    first = FIRST_NAMES[index % len(FIRST_NAMES)]
    last = LAST_NAMES[(index // len(FIRST_NAMES) + index) % len(LAST_NAMES)]
    day = DAYS[index % len(DAYS)]
    hour = HOURS[(index // len(DAYS)) % len(HOURS)]
    return CallerScript.booking(
        name=f"my name is {first} {last}",
        property=PROPERTIES[index % len(PROPERTIES)],
        unit_size=UNITS[index % len(UNITS)],
        move_in=MOVE_INS[index % len(MOVE_INS)],
        pets=PETS[index % len(PETS)],
        budget=BUDGETS[(index * 3) % len(BUDGETS)],
        tour_type=TOUR_TYPES[index % len(TOUR_TYPES)],
        tour_time=f"next {day} at {hour}",
    )


@dataclass
class TurnResult:
    latency_s: float | None  # None: no reply
    extra_replies: int = 0
    cut: bool = False  # the reply was cleared / interrupted before it finished
    at_s: float | None = None  # when the reply's first frame arrived (time.monotonic)


@dataclass
class CallResult:
    call_sid: str
    snr_db: float | None = None
    duration_s: float = 0.0  # connected time, for CPU per call-minute
    greeting_s: float | None = None
    turns: list[TurnResult] = field(default_factory=list)
    timeline: list[dict[str, Any]] = field(default_factory=list)
    clock_late_s: float = 0.0
    violations: list[str] = field(default_factory=list)
    error: str | None = None


def last_agent_text(events: list[dict[str, Any]]) -> str:
    said = [e for e in events if e.get("event") == "agent_said"]
    return str(said[-1].get("text", "")) if said else ""


def next_line(script: CallerScript, asked: str, position: int) -> tuple[str, str]:
    """(kind, line): the answer to what the agent asked, else the next line in ``ORDER``."""
    answer = script.answer(asked) if question_kind(asked) else None
    if answer is not None:
        return answer
    kind = ORDER[min(position, len(ORDER) - 1)]
    return kind, script.lines[kind]


async def run_call(
    base_url: str,
    index: int,
    turns: int,
    voice: CallerVoice,
    delay_s: float,
    quiet_s: float,
    snr_db: float | None = None,
) -> CallResult:
    """One scripted call; answers the question the agent asked (from its timeline text)."""
    await asyncio.sleep(delay_s)  # the random start offset of this call
    script = script_for(index)
    phone = f"+1646555{index:04d}"
    result = CallResult(call_sid="", snr_db=snr_db)
    line_voice = voice.on_line(snr_db, seed=1000 + index) if snr_db is not None else voice
    started = time.monotonic()
    try:
        async with TwilioCall.connect(
            base_url,
            public_url=PUBLIC,
            auth_token=TOKEN,
            from_number=phone,
            voice=line_voice,
            quiet_s=quiet_s,
        ) as call:
            result.call_sid = call.call_sid
            started = time.monotonic()
            greeting = await call.listen(timeout_s=15)
            result.greeting_s = greeting.first_frame_at - started
            position = 0
            for _ in range(turns):
                # What did the agent just ask? Its own words (the timeline) are cheaper than
                # transcribing here, and transcribing would steal CPU from the server.
                asked = last_agent_text(await call.timeline())
                kind, line = next_line(script, asked, position)
                position += 1
                sent = await call.say(line)
                try:
                    reply = await call.listen(timeout_s=15)
                except NoReply:
                    result.turns.append(TurnResult(None))
                    continue
                assert sent.last_voiced_frame_at is not None
                turn = TurnResult(
                    reply.first_frame_at - sent.last_voiced_frame_at,
                    cut=reply.cleared,
                    at_s=reply.first_frame_at,
                )
                # A second burst of agent audio before the caller speaks again is a 2nd reply.
                while call.unheard_media():
                    await call.listen(timeout_s=1)
                    turn.extra_replies += 1
                result.turns.append(turn)
                if kind == "anything_else":
                    break
            # Anything after the last reply is one reply too many.
            try:
                await call.listen(timeout_s=quiet_s + 0.5)
                if result.turns:
                    result.turns[-1].extra_replies += 1
            except (NoReply, CallEnded):
                pass
            result.clock_late_s = call.clock.max_late_s
            result.violations = list(call.violations)
        result.duration_s = time.monotonic() - started
        result.timeline = await call.timeline()
    except CallEnded as ended:
        result.error = f"call ended early: {ended}"
    except Exception as exc:  # a benchmark reports failures, it does not stop at the first
        result.error = f"{type(exc).__name__}: {exc}"
    return result


async def run_avatar_session(
    base_url: str,
    index: int,
    turns: int,
    delay_s: float,
    quiet_s: float,
    snr_db: float | None = None,
) -> CallResult:
    """One scripted avatar session over ``WS /avatar``, answered by voice like ``run_call``."""
    await asyncio.sleep(delay_s)  # the random start offset of this session
    script = script_for(index)
    result = CallResult(call_sid="", snr_db=snr_db)
    started = time.monotonic()
    try:
        async with AvatarClient.connect(
            base_url,
            f"bench-avatar-{index:04d}",
            stream_audio=True,
            quiet_s=quiet_s,
            snr_db=snr_db,
            noise_seed=1000 + index,
        ) as client:
            result.call_sid = client.session_id
            started = time.monotonic()
            greeting = await client.listen(timeout_s=15)
            result.greeting_s = greeting.first_audio_at - started
            asked, position = greeting.text, 0
            for _ in range(turns):
                kind, line = next_line(script, asked, position)
                position += 1
                sent = await client.say(line)
                try:
                    reply = await client.listen(timeout_s=15)
                except TimeoutError:
                    result.turns.append(TurnResult(None))
                    continue
                assert sent.last_voiced_frame_at is not None
                turn = TurnResult(
                    reply.first_audio_at - sent.last_voiced_frame_at, cut=reply.interrupted
                )
                asked = reply.text
                while client.unheard_audio():  # a second burst before the user speaks again
                    await client.listen(timeout_s=1)
                    turn.extra_replies += 1
                result.turns.append(turn)
                if kind == "anything_else":
                    break
            try:
                await client.listen(timeout_s=quiet_s + 0.5)
                if result.turns:
                    result.turns[-1].extra_replies += 1
            except (TimeoutError, SessionClosed):
                pass
            result.clock_late_s = client.clock.max_late_s
            result.violations = [
                f"error {e['code']}: {e['message']}" for e in client.of_kind("error")
            ]
        result.duration_s = time.monotonic() - started
        result.timeline = await fetch_timeline(base_url, result.call_sid) or []
    except SessionClosed as closed:
        result.error = f"session ended early: {closed}"
    except Exception as exc:  # a benchmark reports failures, it does not stop at the first
        result.error = f"{type(exc).__name__}: {exc}"
    return result


# --------------------------------------------------------------------------- timeline stages


def stage_times(events: list[dict[str, Any]]) -> dict[str, list[float]]:
    """Per caller turn (a ``turn_end``), the server's stage timings in ms."""
    stages: dict[str, list[float]] = {
        "endpointing": [],
        "stt": [],
        "planner": [],
        "tts_first_audio": [],
        "first_frame_out": [],
    }
    last_speech_end: float | None = None
    last_stt: float | None = None
    in_turn = False
    awaiting_tts = False
    for event in events:
        name = event.get("event")
        if name == "speech_end":
            last_speech_end = float(event["t_ms"])
        elif name == "stt_done":
            last_stt = float(event.get("ms", 0.0))
        elif name == "turn_end":
            if last_speech_end is not None:
                stages["endpointing"].append(float(event["t_ms"]) - last_speech_end)
            in_turn = True
        elif name == "caller_said" and in_turn and last_stt is not None:
            stages["stt"].append(last_stt)
        elif name == "planner_done" and event.get("trigger") == "turn":
            stages["planner"].append(float(event.get("ms", 0.0)))
            awaiting_tts = True
        elif name == "tts_first_audio" and awaiting_tts:
            stages["tts_first_audio"].append(float(event.get("ms", 0.0)))
            awaiting_tts = False
        elif name == "first_frame_out" and event.get("trigger") == "turn":
            since = event.get("ms_since_speech_end")
            if since is not None:
                stages["first_frame_out"].append(float(since))
            in_turn = False
    return stages


def server_reply_counts(events: list[dict[str, Any]]) -> tuple[int, int]:
    """(caller turns the server heard, agent turns it spoke after the greeting)."""
    heard = sum(1 for e in events if e.get("event") == "caller_said")
    spoken = sum(1 for e in events if e.get("event") == "agent_said") - 1
    return heard, max(spoken, 0)


# --------------------------------------------------------------------------- report


def p50_p95(values_ms: list[float]) -> str:
    if not values_ms:
        return "n/a"
    return f"{statistics.median(values_ms):.0f} / {percentile(values_ms, 95):.0f}"


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (its reaped children too), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # After the ")" the fields start at state (3rd): utime, stime, cutime, cstime are 14-17.
    ticks = sum(int(fields[i]) for i in (11, 12, 13, 14))
    return ticks / os.sysconf("SC_CLK_TCK")


@dataclass
class Level:
    calls: int
    results: list[CallResult]
    cpu_s: float = float("nan")  # the server process's CPU time over the level
    wall_s: float = float("nan")

    @property
    def call_minutes(self) -> float:
        return sum(r.duration_s for r in self.results) / 60

    @property
    def cpu_per_call_minute(self) -> float:
        minutes = self.call_minutes
        return self.cpu_s / minutes if minutes > 0 else float("nan")

    @property
    def snrs(self) -> list[float]:
        return [r.snr_db for r in self.results if r.snr_db is not None]

    @property
    def latencies_ms(self) -> list[float]:
        return [
            t.latency_s * 1000 for r in self.results for t in r.turns if t.latency_s is not None
        ]

    def counts(self) -> tuple[int, int, int, int, int]:
        """(caller turns, answered exactly once, no reply, more than one reply, cut).

        Cut: the one reply was cleared before it finished (a reply both cut and repeated
        counts as repeated). Answered exactly once excludes all three.
        """
        turns = [t for r in self.results for t in r.turns]
        none = sum(1 for t in turns if t.latency_s is None)
        many = sum(1 for t in turns if t.extra_replies)
        cut = sum(1 for t in turns if t.cut and not t.extra_replies and t.latency_s is not None)
        return len(turns), len(turns) - none - many - cut, none, many, cut

    def stages(self) -> dict[str, list[float]]:
        merged: dict[str, list[float]] = {}
        for result in self.results:
            for name, values in stage_times(result.timeline).items():
                merged.setdefault(name, []).extend(values)
        return merged


def budget_lines(levels: dict[int, Level]) -> list[str]:
    lines = []
    for calls, limits in BUDGET.items():
        level = levels.get(calls)
        if level is None or not level.latencies_ms:
            lines.append(f"- {calls} call(s): not measured in this run")
            continue
        values = level.latencies_ms
        measured = {"p50": statistics.median(values), "p95": percentile(values, 95)}
        parts = []
        for key, limit in limits.items():
            ok = measured[key] <= limit
            parts.append(
                f"{key} {measured[key]:.0f} ms ≤ {limit:.0f} ms: {'PASS' if ok else 'FAIL'}"
            )
        lines.append(f"- {calls} call(s): " + "; ".join(parts))
    answered_ok = all(lv.counts()[0] == lv.counts()[1] for lv in levels.values())
    lines.append(
        "- every caller turn answered exactly once: " + ("PASS" if answered_ok else "FAIL")
    )
    return lines


def capacity_lines(levels: dict[int, Level]) -> list[str]:
    """Calls per core, two ways: what latency allows, and what CPU alone would allow."""
    cores = os.cpu_count() or 1
    holding = [
        calls
        for calls, lv in levels.items()
        if lv.latencies_ms and percentile(lv.latencies_ms, 95) <= CAPACITY_P95_MS
    ]
    best = max(holding, default=0)
    lines = [
        f"- by latency: the largest level measured whose p95 ≤ {CAPACITY_P95_MS:.0f} ms is "
        f"{best} call(s) on {cores} cores = **{best / cores:.1f} calls per core** "
        "(a floor: levels between those measured were not tried)."
    ]
    for calls, lv in sorted(levels.items()):
        per_min = lv.cpu_per_call_minute
        if per_min == per_min and per_min > 0:
            lines.append(
                f"- by CPU at {calls} call(s): {lv.cpu_s:.0f} CPU-s over {lv.wall_s:.0f} s "
                f"({lv.call_minutes:.1f} call-minutes) = {per_min:.1f} CPU-s per call-minute, "
                f"so one core saturates at {60 / per_min:.1f} calls"
            )
    return lines


INTROS = {
    "phone": (
        "## Phone calls: voice-to-voice latency",
        "Voice to voice = last voiced caller frame sent by the Twilio harness → first agent "
        "media frame received by it, over loopback at real time.",
    ),
    "avatar": (
        "## Avatar sessions: voice-to-voice latency",
        "Voice to voice = last voiced 20 ms frame of 16 kHz PCM16 sent by the avatar client "
        "(sim/avatar.py) → first binary frame of agent audio received by it, "
        "over `WS /avatar` on loopback at real time; the client plays the agent's audio at "
        "real time and reports marks as played. The calls column counts sessions.",
    ),
}


def markdown(levels: dict[int, Level], command: str, notes: list[str], mode: str = "phone") -> str:
    title, intro = INTROS[mode]
    header = (
        "| calls | SNR dB min–max | caller turns | answered once | no reply | 2+ replies | cut "
        "| voice-to-voice p50 / p95 / max (ms) | greeting start p50 / p95 (ms) "
        "| end-of-turn wait | STT | planner | TTS first audio | first frame out "
        "| server CPU s per call-min | harness clock max late (ms) |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    rows = []
    for calls, level in sorted(levels.items()):
        total, once, none, many, cut = level.counts()
        snrs = level.snrs
        snr = f"{min(snrs):.1f}–{max(snrs):.1f}" if snrs else "off"
        lat = level.latencies_ms
        v2v = (
            f"{statistics.median(lat):.0f} / {percentile(lat, 95):.0f} / {max(lat):.0f}"
            if lat
            else "n/a"
        )
        greet = [r.greeting_s * 1000 for r in level.results if r.greeting_s is not None]
        st = level.stages()
        late = max((r.clock_late_s for r in level.results), default=0.0) * 1000
        rows.append(
            f"| {calls} | {snr} | {total} | {once} | {none} | {many} | {cut} | {v2v} "
            f"| {p50_p95(greet)} "
            f"| {p50_p95(st['endpointing'])} | {p50_p95(st['stt'])} | {p50_p95(st['planner'])} "
            f"| {p50_p95(st['tts_first_audio'])} | {p50_p95(st['first_frame_out'])} "
            f"| {level.cpu_per_call_minute:.1f} | {late:.0f} |"
        )
    return (
        f"{title}\n\n"
        f"Command: `{command}`\n\n"
        f"Machine: {machine_line()}.\n\n"
        f"{intro} Stage columns are p50 / p95 "
        "in ms from the server's call timelines: end-of-turn wait = last `speech_end` → "
        "`turn_end`; STT = the transcription the turn used; TTS first audio counts from the "
        "planner start; first frame out counts from the caller's speech end.\n\n"
        + header
        + "\n".join(rows)
        + "\n\nGoals (issue 13):\n\n"
        + "\n".join(budget_lines(levels))
        + "\n\nCapacity:\n\n"
        + "\n".join(capacity_lines(levels))
        + "\n\n"
        + "\n".join(f"- {n}" for n in notes)
        + "\n"
    )


# --------------------------------------------------------------------------- main


def parse_snr(spec: str) -> tuple[float, float] | None:
    """``off`` -> None (the quiet line); ``20`` -> (20, 20); ``15-25`` -> (15, 25)."""
    if spec.strip().lower() in ("off", "none", "clean"):
        return None
    low, _, high = spec.partition("-")
    return float(low), float(high or low)


def call_snr(snr: tuple[float, float] | None, seed: int, index: int) -> float | None:
    """Call ``index``'s SNR: the same for the same seed, whichever level it runs in."""
    if snr is None:
        return None
    return round(draw_snr(random.Random(seed * 100_003 + index), *snr), 1)


async def run_level(
    server: Any, calls: int, first_index: int, args: argparse.Namespace, voice: CallerVoice
) -> Level:
    base_url = server.base_url
    rng = random.Random(args.seed + calls)
    delays = [0.0] + [rng.uniform(0, args.stagger) for _ in range(calls - 1)]
    snr = parse_snr(args.snr)
    snrs = [call_snr(snr, args.seed, first_index + i) for i in range(calls)]
    if args.mode == "avatar":
        sessions = [
            run_avatar_session(
                base_url, first_index + i, args.turns, delays[i], args.quiet, snrs[i]
            )
            for i in range(calls)
        ]
    else:
        sessions = [
            run_call(base_url, first_index + i, args.turns, voice, delays[i], args.quiet, snrs[i])
            for i in range(calls)
        ]
    cpu_before, wall_before = process_cpu_s(server.process.pid), time.monotonic()
    results = await asyncio.gather(*sessions)
    cpu = process_cpu_s(server.process.pid) - cpu_before
    return Level(calls, list(results), cpu_s=cpu, wall_s=time.monotonic() - wall_before)


def prerender(voice: CallerVoice, indices: range, turns: int, mode: str = "phone") -> None:
    """Render every line a call is likely to say, before the clock starts."""
    started = time.perf_counter()
    for index in indices:
        lines = script_for(index).lines
        texts = [lines[kind] for kind in ORDER[: turns + 1]] + [lines["still_there"]]
        if mode == "avatar":
            for text in texts:
                clean_speech(text, 16000)  # cached for the avatar clients' own lines
        else:
            voice.prerender(texts)
    print(f"pre-rendered caller speech in {time.perf_counter() - started:.1f}s", flush=True)


def print_level(level: Level) -> None:
    total, once, none, many, cut = level.counts()
    lat = level.latencies_ms
    print(
        f"{level.calls:>3} calls: {total} turns, {once} answered once, {none} no reply, "
        f"{many} 2+ replies, {cut} cut; voice-to-voice p50/p95 {p50_p95(lat)} ms "
        f"max {max(lat, default=float('nan')):.0f}; server CPU {level.cpu_s:.1f} s = "
        f"{level.cpu_per_call_minute:.1f} s per call-minute",
        flush=True,
    )
    for name, values in level.stages().items():
        print(f"      {name:<16} p50/p95 {p50_p95(values)} ms", flush=True)
    for result in level.results:
        if result.error:
            print(f"      call {result.call_sid or '?'}: {result.error}", flush=True)
        if result.violations:
            print(f"      call {result.call_sid}: protocol: {result.violations[:3]}", flush=True)


async def wait_until_warm(base_url: str, timeout_s: float = 180.0) -> None:
    """Measure a server in steady state: every fixed phrase pre-rendered (/healthz "warm").

    Calls are answered before that too; a cold server renders openings on demand.
    """
    started = time.monotonic()
    async with httpx.AsyncClient() as client:
        while not (await client.get(f"{base_url}/healthz")).json().get("warm"):
            if time.monotonic() - started > timeout_s:
                raise TimeoutError("the server never finished warming its phrase cache")
            await asyncio.sleep(0.25)  # polling a status, not synchronizing on a guess
    print(f"server warm after {time.monotonic() - started:.1f} s", flush=True)


async def main_async(args: argparse.Namespace, command: str) -> int:
    levels_wanted = [int(n) for n in (args.calls or LEVELS[args.mode]).split(",") if n.strip()]
    voice = CallerVoice()
    total_calls = sum(levels_wanted)
    await asyncio.to_thread(prerender, voice, range(total_calls), args.turns, args.mode)
    load_before = os.getloadavg()[0]
    data_dir = Path(tempfile.mkdtemp(prefix="tourline-call-bench-"))
    levels: dict[int, Level] = {}
    with running_server(data_dir, TWILIO_AUTH_TOKEN=TOKEN, TOURLINE_PUBLIC_URL=PUBLIC) as server:
        print(f"server up at {server.base_url} (data in {data_dir})", flush=True)
        await wait_until_warm(server.base_url)
        first_index = 0
        for calls in levels_wanted:
            level = await run_level(server, calls, first_index, args, voice)
            first_index += calls
            levels[calls] = level
            print_level(level)
    if args.keep_data:
        print(f"server data (timelines, log) kept in {data_dir}", flush=True)
    else:
        shutil.rmtree(data_dir, ignore_errors=True)
    notes = [
        f"{args.turns} caller turns per call; calls start at random over {args.stagger:.0f} s; "
        f"a reply ends after {args.quiet:.1f} s of quiet once played out; one server for "
        "every level, in that order.",
        f"Mode `{args.mode}`, line noise `--snr {args.snr}`: each call on its own line "
        "(band-limited 300–3400 Hz, pink-tilted, a little 60 Hz hum; sim/line_noise.py) at its "
        "SNR below the caller's speech level (-19 dBFS), a third of calls in the bottom 2 dB. "
        "The harness (20 ms media clocks, playback, mark echoes) runs on the same machine as "
        "the server; its clock's worst lateness is in the last column.",
        f"1-min load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after.",
    ]
    for calls, level in sorted(levels.items()):
        sent = len([t for r in level.results for t in r.turns])
        heard = spoken = 0
        for result in level.results:
            h, s = server_reply_counts(result.timeline)
            heard, spoken = heard + h, spoken + s
        early = sum(1 for v in level.latencies_ms if v < 0)
        notes.append(
            f"{calls} call(s): the server's timelines show {heard} caller turns heard and "
            f"{spoken} agent replies for {sent} caller turns sent; {early} replies started "
            "before the caller's last voiced frame."
        )
    failures = [r.error for lv in levels.values() for r in lv.results if r.error]
    if failures:
        notes.append(f"{len(failures)} call(s) failed: " + "; ".join(failures[:5]))
    body = markdown(levels, command, notes, args.mode)
    print()
    print(body)
    if not args.no_write:
        write_section(SECTIONS[args.mode], body)
        print(f"wrote {BENCHMARKS_MD.relative_to(REPO_ROOT)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--mode", choices=("phone", "avatar"), default="phone", help="Twilio calls or WS /avatar"
    )
    parser.add_argument(
        "--calls",
        default=None,
        help="simultaneous calls per level (default 1,5,10,20)",
    )
    parser.add_argument("--turns", type=int, default=6, help="caller turns per call")
    parser.add_argument("--stagger", type=float, default=2.0, help="start calls over N seconds")
    parser.add_argument("--quiet", type=float, default=1.0, help="quiet that ends a reply (s)")
    parser.add_argument("--seed", type=int, default=3, help="seed for start offsets and SNRs")
    parser.add_argument(
        "--snr",
        default="15-25",
        help="line SNR in dB per call: a range (15-25), one value (20), or off (quiet line)",
    )
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--keep-data", action="store_true", help="keep the server's data dir")
    args = parser.parse_args(argv)
    command = " ".join(["python bench/call_latency.py", *(sys.argv[1:] if argv is None else argv)])
    return asyncio.run(main_async(args, command))


if __name__ == "__main__":
    raise SystemExit(main())
