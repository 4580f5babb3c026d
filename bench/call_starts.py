"""Simultaneous call starts: do the calls already on the line hear their agent stall?

What it measures: ``--running`` phone calls are in conversation with the real server (each
caller streams line noise at real time and keeps asking questions, so the agent keeps
answering); then N new calls ring at once (webhook, media socket, ``start``) and wait for
their greeting. While the N calls start, the harness records:

- audible stall: in the running calls' agent replies, the longest hole in playback, i.e. a
  media frame arriving after everything before it had already been played (Twilio plays
  what it has at real time, so that is silence in the middle of the agent's sentence);
- burst gap: the longest gap between two consecutive agent media frames of one sentence
  (the server sends a sentence's frames back to back, so any gap there is its event loop
  doing something else);
- loop probe: the slowest ``GET /healthz`` of a probe polling every 50 ms (an event loop
  that is blocked answers nothing, whichever call it would have served);
- time to the first greeting audio of each new call, from the moment it rang.

The goal (issue 12): with 30 calls starting at once, no other call stalls for more than
100 ms. Each level runs ``--repeats`` times on one server; the table shows the median and
maximum over the repeats, with the 1-minute load average beside them, because the machine
is shared and a busy neighbour shows up as a stall too.

Run:  python bench/call_starts.py                         (10, 30, 60 calls; 3 repeats)
      python bench/call_starts.py --starts 10 --repeats 1  (a smoke run)
      New calls ring from a separate starter process (this file with ``--ring``), so the
      harness work of ringing 60 calls does not run on the loop that times the running ones.
It prints a markdown table for docs/benchmarks.md; it writes no file.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
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

from bench.call_latency import wait_until_warm  # noqa: E402
from bench.report import machine_line, percentile  # noqa: E402
from sim.server import running_server  # noqa: E402
from sim.twilio import CallEnded, CallerVoice, NoReply, TwilioCall  # noqa: E402
from sim.twilio.player import _Mark, _Media  # noqa: E402

TOKEN = "bench-token"
PUBLIC = "https://tourline.example"
GOAL_CALLS, GOAL_MS = 30, 100.0
QUESTIONS = [
    "what buildings do you have",
    "tell me about riverview lofts",
    "how much is a two bedroom",
    "do you allow pets",
]
PROBE_EVERY_S = 0.05


@dataclass
class Window:
    """One start of N calls, and what the running calls and the probe saw meanwhile."""

    starts: int
    load: float
    greetings_ms: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    audible_stall_ms: float = 0.0
    burst_gap_ms: float = 0.0
    probe_max_ms: float = 0.0
    loop_lag_ms: float = 0.0
    running_frames: int = 0
    harness_late_ms: float = 0.0


def stalls(call: TwilioCall, since: float, until: float) -> tuple[float, float, int]:
    """(audible stall, burst gap, frames) of one running call's agent audio in the window.

    Sentences are the media runs between marks; a reply's later sentences have marks
    ``rN.i`` with i > 0, and only a hole before those (or inside a sentence) is a stall:
    the gap before a reply's first sentence is the agent waiting for the caller.
    """
    audible = burst = 0.0
    frames = 0
    previous: _Media | None = None
    sentence: list[_Media] = []
    for item in call.player.items:
        if isinstance(item, _Media):
            sentence.append(item)
            continue
        if not isinstance(item, _Mark) or not sentence:
            sentence = []
            continue
        continues_reply = not item.name.endswith(".0")
        for index, frame in enumerate(sentence):
            if not since <= frame.at <= until:
                continue
            frames += 1
            if index > 0:
                burst = max(burst, frame.at - sentence[index - 1].at)
            before = sentence[index - 1] if index > 0 else previous if continues_reply else None
            if before is not None:
                audible = max(audible, frame.at - before.end)
        previous, sentence = sentence[-1], []
    return audible * 1000, burst * 1000, frames


async def converse(call: TwilioCall, voice: CallerVoice, stop: asyncio.Event, index: int) -> None:
    """Keep the agent talking: ask, listen to the whole answer, ask again."""
    turn = index
    while not stop.is_set():
        speech = voice.render(QUESTIONS[turn % len(QUESTIONS)])  # pre-rendered: a lookup
        turn += 1
        try:
            await call.queue_speech(speech)
            await call.listen(timeout_s=15)
        except NoReply:
            continue
        except CallEnded:
            return


async def probe(base_url: str, stop: asyncio.Event) -> float:
    """The slowest /healthz while ``stop`` is unset, in ms."""
    worst = 0.0
    async with httpx.AsyncClient(timeout=30) as client:
        while not stop.is_set():
            started = time.monotonic()
            await client.get(f"{base_url}/healthz")
            worst = max(worst, time.monotonic() - started)
            await asyncio.sleep(PROBE_EVERY_S)  # the probe's own pace, not a synchronization
    return worst * 1000


async def server_loop_lag(base_url: str, since: float) -> float:
    """The server's own measure: the worst lateness of its 20 ms event-loop tick in the
    seconds since ``since`` (whole seconds, so the window's edges count in full)."""
    async with httpx.AsyncClient(timeout=30) as client:
        health = (await client.get(f"{base_url}/healthz")).json()
    return max((ms for second, ms in health["loop_lag_ms"] if second >= int(since)), default=0.0)


async def new_call(
    base_url: str, number: str, greeted: asyncio.Future[float], hang_up: asyncio.Event
) -> None:
    """Ring; ``greeted`` gets the ms from ringing to the greeting's first audio (or the
    error); the call then stays on the line until ``hang_up``."""
    rang = time.monotonic()
    try:
        async with TwilioCall.connect(
            base_url, public_url=PUBLIC, auth_token=TOKEN, from_number=number
        ) as call:
            greeting = await call.listen(timeout_s=30, quiet_s=0.2)
            greeted.set_result((greeting.first_frame_at - rang) * 1000)
            await hang_up.wait()
    except Exception as exc:  # a benchmark reports failures, it does not stop at the first
        if not greeted.done():
            greeted.set_exception(exc)


async def ring_all(base_url: str, starts: int, first_number: int) -> None:
    """The starter process: ring ``starts`` calls at once, report, then hang them up.

    Why its own process: ringing costs the harness too (each webhook builds an HTTP client
    and its TLS context, ~40 ms of this loop's time); in the process that times the running
    calls, that would look like the server stalling them.
    """
    loop = asyncio.get_running_loop()
    hang_up = asyncio.Event()
    greeted: list[asyncio.Future[float]] = [loop.create_future() for _ in range(starts)]
    print(json.dumps({"ringing_at": time.monotonic()}), flush=True)
    calls = [
        asyncio.create_task(new_call(base_url, f"+1646777{first_number + i:04d}", g, hang_up))
        for i, g in enumerate(greeted)
    ]
    outcomes = await asyncio.gather(*greeted, return_exceptions=True)
    report = {
        "greeted_at": time.monotonic(),
        "greetings_ms": [o for o in outcomes if not isinstance(o, BaseException)],
        "failures": [f"{type(o).__name__}: {o}" for o in outcomes if isinstance(o, BaseException)],
    }
    print(json.dumps(report), flush=True)
    hang_up.set()
    await asyncio.wait(calls, timeout=30)


async def start_window(
    base_url: str, running: list[TwilioCall], starts: int, first_number: int
) -> Window:
    """Start ``starts`` calls at once (from a starter process); measure until the last one
    has its greeting."""
    window = Window(starts, os.getloadavg()[0])
    wall_since = time.time()
    for call in running:
        call.clock.max_late_s = 0.0
    starter = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--ring",
        base_url,
        str(starts),
        str(first_number),
        stdout=asyncio.subprocess.PIPE,
    )
    assert starter.stdout is not None
    probe_stop = asyncio.Event()
    prober: asyncio.Task[float] | None = None
    since = until = time.monotonic()
    async for line in starter.stdout:  # both clocks are the machine's CLOCK_MONOTONIC
        report = json.loads(line)
        if "ringing_at" in report:
            since = report["ringing_at"]
            prober = asyncio.create_task(probe(base_url, probe_stop))
        else:
            until = report["greeted_at"]
            window.greetings_ms = [float(g) for g in report["greetings_ms"]]
            window.failures = list(report["failures"])
            break
    probe_stop.set()
    if prober is not None:
        window.probe_max_ms = await prober
    window.loop_lag_ms = await server_loop_lag(base_url, wall_since)
    for call in running:
        audible, burst, frames = stalls(call, since, until)
        window.audible_stall_ms = max(window.audible_stall_ms, audible)
        window.burst_gap_ms = max(window.burst_gap_ms, burst)
        window.running_frames += frames
        window.harness_late_ms = max(window.harness_late_ms, call.clock.max_late_s * 1000)
    try:
        await asyncio.wait_for(starter.wait(), timeout=60)
    except TimeoutError:
        starter.kill()
    return window


def summary(windows: list[Window]) -> dict[str, str]:
    def med_max(values: list[float]) -> str:
        return f"{statistics.median(values):.0f} / {max(values):.0f}"

    greetings = [g for w in windows for g in w.greetings_ms]
    return {
        "audible": med_max([w.audible_stall_ms for w in windows]),
        "burst": med_max([w.burst_gap_ms for w in windows]),
        "probe": med_max([w.probe_max_ms for w in windows]),
        "lag": med_max([w.loop_lag_ms for w in windows]),
        "greeting": (
            f"{statistics.median(greetings):.0f} / {percentile(greetings, 95):.0f}"
            if greetings
            else "n/a"
        ),
        "failed": str(sum(len(w.failures) for w in windows)),
        "frames": str(sum(w.running_frames for w in windows)),
        "load": " / ".join(f"{w.load:.1f}" for w in windows),
        "late": f"{max(w.harness_late_ms for w in windows):.0f}",
    }


def markdown(levels: dict[int, list[Window]], running: int, command: str, notes: list[str]) -> str:
    header = (
        "| calls starting at once | repeats | audible stall of running calls, median / max (ms) "
        "| burst gap, median / max (ms) | server loop lag, median / max (ms) "
        "| slowest /healthz, median / max (ms) | greeting first audio p50 / p95 (ms) "
        "| failed starts | running-call frames seen "
        "| 1-min load at each start | harness clock max late (ms) |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    rows = []
    for starts, windows in sorted(levels.items()):
        s = summary(windows)
        rows.append(
            f"| {starts} | {len(windows)} | {s['audible']} | {s['burst']} | {s['lag']} "
            f"| {s['probe']} "
            f"| {s['greeting']} | {s['failed']} | {s['frames']} | {s['load']} | {s['late']} |"
        )
    goal = levels.get(GOAL_CALLS)
    if goal:
        worst = max(max(w.audible_stall_ms, w.burst_gap_ms, w.loop_lag_ms) for w in goal)
        probe = max(w.probe_max_ms for w in goal)
        verdict = "PASS" if worst <= GOAL_MS else "FAIL"
        goal_line = (
            f"Goal (issue 12): {GOAL_CALLS} calls starting at once stall no running call more "
            f"than {GOAL_MS:.0f} ms (the worst of audible stall, burst gap and the server's "
            f"loop lag, since a held loop holds every call's audio even when playback is "
            f"buffered): worst {worst:.0f} ms, {verdict}. A new HTTP request (the /healthz "
            f"probe) waited up to {probe:.0f} ms."
        )
    else:
        goal_line = f"Goal (issue 12): {GOAL_CALLS} calls at once was not measured in this run."
    return (
        "## Simultaneous call starts: stalls of the calls already running\n\n"
        f"Command: `{command}`\n\n"
        f"Machine: {machine_line()}.\n\n"
        f"{running} calls are in conversation (each caller streams at real time and keeps "
        "asking, so the agent keeps answering) while N new calls ring at once; the window "
        "lasts until every new call has heard its greeting start. Audible stall = the longest "
        "hole in a running call's agent playback within a reply (a frame arriving after all "
        "audio before it had played); burst gap = the longest gap between consecutive frames "
        "of one sentence, which the server sends back to back; server loop lag = the worst "
        "lateness of the server's own 20 ms event-loop tick in the window (`loop_lag_ms` in "
        "/healthz); slowest /healthz = a probe "
        f"every {PROBE_EVERY_S * 1000:.0f} ms, answered only when the server's event loop is "
        "free. Greeting = ringing (webhook) → first greeting frame at the harness.\n\n"
        + header
        + "\n".join(rows)
        + f"\n\n{goal_line}\n\n"
        + "\n".join(f"- {n}" for n in notes)
        + "\n"
    )


def print_window(window: Window, repeat: int) -> None:
    greeting = statistics.median(window.greetings_ms) if window.greetings_ms else float("nan")
    print(
        f"{window.starts:>3} starts (#{repeat + 1}): audible stall "
        f"{window.audible_stall_ms:.0f} ms, burst gap {window.burst_gap_ms:.0f} ms, slowest "
        f"/healthz {window.probe_max_ms:.0f} ms, loop lag {window.loop_lag_ms:.0f} ms, "
        f"greeting p50 {greeting:.0f} ms, "
        f"{len(window.failures)} failed, load {window.load:.1f}",
        flush=True,
    )
    for failure in window.failures[:3]:
        print(f"      {failure}", flush=True)


async def hang_up_all(stack: contextlib.AsyncExitStack, timeout_s: float = 30.0) -> None:
    """Hang up the running calls, giving up after ``timeout_s``: the numbers are already in,
    and a simulator task that never finishes must not keep the server running."""
    closing = asyncio.ensure_future(stack.aclose())
    done, _ = await asyncio.wait({closing}, timeout=timeout_s)
    if not done:
        print(f"(the running calls did not hang up within {timeout_s:.0f} s; left)", flush=True)


async def main_async(args: argparse.Namespace, command: str) -> int:
    levels_wanted = [int(n) for n in args.starts.split(",") if n.strip()]
    voice = CallerVoice()
    await asyncio.to_thread(voice.prerender, QUESTIONS)
    data_dir = Path(tempfile.mkdtemp(prefix="tourline-starts-bench-"))
    env = {"TWILIO_AUTH_TOKEN": TOKEN, "TOURLINE_PUBLIC_URL": PUBLIC}
    levels: dict[int, list[Window]] = {}
    load_before = os.getloadavg()[0]
    with running_server(data_dir, **env) as server:
        print(f"server up at {server.base_url} (data in {data_dir})", flush=True)
        await wait_until_warm(server.base_url)
        stop = asyncio.Event()
        stack = contextlib.AsyncExitStack()
        try:
            running = [
                await stack.enter_async_context(
                    TwilioCall.connect(
                        server.base_url,
                        public_url=PUBLIC,
                        auth_token=TOKEN,
                        from_number=f"+1646555{i:04d}",
                        voice=voice,
                    )
                )
                for i in range(args.running)
            ]
            talkers = [
                asyncio.create_task(converse(call, voice, stop, i))
                for i, call in enumerate(running)
            ]
            await asyncio.sleep(args.settle)  # let the conversations get going first
            number = 0
            for starts in levels_wanted:
                for repeat in range(args.repeats):
                    window = await start_window(server.base_url, running, starts, number)
                    number += starts
                    levels.setdefault(starts, []).append(window)
                    print_window(window, repeat)
                    await asyncio.sleep(args.settle)  # the hung-up calls' clean-up settles
            stop.set()
            for task in talkers:
                task.cancel()
            await asyncio.gather(*talkers, return_exceptions=True)
        finally:
            await hang_up_all(stack)
    if args.keep_data:
        print(f"server data (timelines, log) kept in {data_dir}", flush=True)
    else:
        shutil.rmtree(data_dir, ignore_errors=True)
    notes = [
        f"{args.running} running calls; each level {args.repeats} times in a row on one "
        f"server, {args.settle:.0f} s apart; new calls are new numbers (no returning callers).",
        "The harness (every call's 20 ms media clock and playback) runs on the same machine "
        "as the server; its clock's worst lateness is in the last column.",
        f"1-min load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after.",
    ]
    print(flush=True)
    print(markdown(levels, args.running, command, notes), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", default="10,30,60", help="calls starting at once, per level")
    parser.add_argument("--running", type=int, default=5, help="calls already in conversation")
    parser.add_argument("--repeats", type=int, default=3, help="windows per level")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds between windows")
    parser.add_argument("--keep-data", action="store_true", help="keep the server's data dir")
    parser.add_argument("--ring", nargs=3, help=argparse.SUPPRESS)  # the starter process
    args = parser.parse_args(argv)
    if args.ring:
        base_url, starts, first_number = args.ring
        coro: Any = ring_all(base_url, int(starts), int(first_number))
        command = ""
    else:
        command = " ".join(
            ["python bench/call_starts.py", *(sys.argv[1:] if argv is None else argv)]
        )
        coro = main_async(args, command)
    # Not asyncio.run: it waits for every task left to finish cancelling, and a simulator
    # task that swallowed its cancellation would keep this process up after the report.
    loop = asyncio.new_event_loop()
    try:
        result = loop.run_until_complete(coro)
        return 0 if result is None else int(result)
    finally:
        loop.close()


if __name__ == "__main__":
    raise SystemExit(main())
