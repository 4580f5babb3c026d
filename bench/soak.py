"""Soak: N phone calls at once, continuously, for M minutes (issue 14, item 7).

Each of ``--calls`` callers rings through the Twilio simulator on its own noisy line, goes
through a scripted booking (``bench/call_latency.py``'s callers), hangs up and rings again at
once, until ``--minutes`` have passed. Callers come back (a pool of ``POOL`` numbers), so
memory grows as it would in a day of calls.

Per wall-clock minute it reports: the server's RSS (psutil, sampled every second, the
minute's median), the event loop's worst stall (``/healthz`` ``loop_lag_ms``: the worst
lateness of its 20 ms tick in each second), and p50/p95 voice-to-voice at the harness (last
voiced frame of the caller → first frame of the reply, as ``call_latency.py`` measures it).

Pass/fail:
- RSS flat: every minute's median within ±10% of the second minute's (the first minute is
  warm-up: models touch their arenas, caches fill);
- no event-loop stall over 100 ms in any second of the run;
- p95 steady: the last minute's p95 no more than 25% above the first minute's (the first
  minute holds every call's start at once, so lower later is steady, not a failure).

Run (under the bench lock; ~12 minutes with start-up):
      flock /tmp/bench.lock .venv/bin/python bench/soak.py --calls 10 --minutes 10
      flock /tmp/bench.lock .venv/bin/python bench/soak.py --minutes 2 --no-write   (debug)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from app.logging.waterfall import waterfall  # noqa: E402
from bench.call_latency import (  # noqa: E402
    PUBLIC,
    TOKEN,
    CallResult,
    call_snr,
    parse_snr,
    prerender,
    run_call,
    wait_until_warm,
)
from bench.report import BENCHMARKS_MD, machine_line, percentile, write_section  # noqa: E402
from sim.server import running_server  # noqa: E402
from sim.twilio import CallerVoice  # noqa: E402

POOL = 40
"""Distinct callers (numbers and scripts); past that, callers call again and are recalled."""
RSS_BAND = 0.10
STALL_MS = 100.0
P95_BAND = 0.25
SECTION = "soak"


@dataclass
class Minute:
    """What one wall-clock minute of the soak saw."""

    rss_mb: list[float] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    no_reply: int = 0
    calls_started: int = 0
    calls_failed: int = 0
    worst_lag_ms: float = 0.0
    load: float = 0.0

    @property
    def rss(self) -> float:
        return statistics.median(self.rss_mb) if self.rss_mb else float("nan")

    def p(self, q: float) -> float:
        return percentile(self.latencies_ms, q) if self.latencies_ms else float("nan")


@dataclass
class Soak:
    minutes: list[Minute]
    started: float
    base_url: str
    lag_by_second: dict[int, float] = field(default_factory=dict)
    results: list[CallResult] = field(default_factory=list)
    rang_at: dict[str, float] = field(default_factory=dict)  # call sid -> harness clock
    cpu_by_thread: dict[str, list[float]] = field(default_factory=dict)  # group -> per minute

    def minute_of(self, at: float) -> Minute | None:
        index = int((at - self.started) // 60)
        return self.minutes[index] if 0 <= index < len(self.minutes) else None


class ThreadCpu:
    """CPU seconds per server thread group, from /proc (which thread burns the cores).

    Python names its threads (``tourline-model_0``, ``tourline-memory``) but not at the OS
    level, so the names come from ``py-spy dump`` when py-spy is installed (``PY_SPY`` or
    on PATH); without it, or for native threads (ONNX, CTranslate2), the OS name is used.
    """

    REFRESH_S = 30.0

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.last: dict[int, float] = {}
        self.names: dict[int, str] = {}
        self.spy = os.environ.get("PY_SPY") or shutil.which("py-spy")
        self.named_at = -self.REFRESH_S
        self.tick = os.sysconf("SC_CLK_TCK")

    async def refresh_names(self) -> None:
        """Python thread names by native id (a non-blocking py-spy dump: no pause)."""
        if self.spy is None or time.monotonic() - self.named_at < self.REFRESH_S:
            return
        self.named_at = time.monotonic()
        with contextlib.suppress(OSError):
            proc = await asyncio.create_subprocess_exec(
                self.spy, "dump", "--nonblocking", "--pid", str(self.pid),
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
            out, _ = await proc.communicate()
            for tid, name in re.findall(
                r'^Thread (?:0x[0-9a-fA-F]+ )?(\d+)[^"]*"([^"]*)"', out.decode(), re.M
            ):
                self.names[int(tid)] = name

    def delta(self) -> dict[str, float]:
        """CPU seconds per group since the last call."""
        out: dict[str, float] = {}
        for task in Path(f"/proc/{self.pid}/task").glob("*"):
            try:
                stat = (task / "stat").read_text()
            except OSError:
                continue
            tid = int(task.name)
            comm = stat[stat.index("(") + 1 : stat.rindex(")")]
            fields = stat[stat.rindex(")") + 2 :].split()
            cpu = (int(fields[11]) + int(fields[12])) / self.tick  # utime + stime
            name = self.names.get(tid) or f"{comm} (native)"
            group = re.sub(r"[_-]?\d+$", "", name)
            out[group] = out.get(group, 0.0) + cpu - self.last.get(tid, 0.0)
            self.last[tid] = cpu
        return out


async def caller(
    slot: int, soak: Soak, deadline: float, args: argparse.Namespace, voice: CallerVoice
) -> None:
    """One line: call, hang up, call again, until the deadline."""
    rng = random.Random(args.seed * 7919 + slot)
    snr = parse_snr(args.snr)
    await asyncio.sleep(rng.uniform(0, args.stagger))  # calls don't all start in one tick
    round_ = 0
    while time.monotonic() < deadline:
        index = (slot + round_ * args.calls) % args.pool
        round_ += 1
        minute = soak.minute_of(time.monotonic())
        if minute is not None:
            minute.calls_started += 1
        snr_db = call_snr(snr, args.seed, index)
        rang = time.monotonic()
        result = await run_call(soak.base_url, index, args.turns, voice, 0.0, args.quiet, snr_db)
        soak.results.append(result)
        soak.rang_at[result.call_sid] = rang
        for turn in result.turns:
            at = turn.at_s if turn.at_s is not None else time.monotonic()
            bucket = soak.minute_of(at)
            if bucket is None:
                continue  # a turn after the deadline: the call was finishing
            if turn.latency_s is None:
                bucket.no_reply += 1
            else:
                bucket.latencies_ms.append(turn.latency_s * 1000)
        if result.error:
            failed = soak.minute_of(time.monotonic())
            if failed is not None:
                failed.calls_failed += 1
            print(f"  line {slot}: {result.error}", flush=True)
            await asyncio.sleep(1.0)  # a failing server is not hammered in a tight loop


async def sample(soak: Soak, pid: int, base_url: str, deadline: float) -> None:
    """Every second: the server's RSS; every 5 s: /healthz's per-second loop lag."""
    process = psutil.Process(pid)
    threads = ThreadCpu(pid)
    threads.delta()  # from now on: model loading and warm-up are not the soak's
    async with httpx.AsyncClient(timeout=10) as http:
        tick = 0
        while time.monotonic() < deadline:
            now = time.monotonic()
            minute = soak.minute_of(now)
            if minute is not None:
                with contextlib.suppress(psutil.Error):
                    minute.rss_mb.append(process.memory_info().rss / 2**20)
                minute.load = os.getloadavg()[0]
            if tick % 5 == 0:
                await threads.refresh_names()
                index = int((now - soak.started) // 60)
                for group, cpu_s in threads.delta().items():
                    per_minute = soak.cpu_by_thread.setdefault(group, [0.0] * len(soak.minutes))
                    if 0 <= index < len(per_minute):
                        per_minute[index] += cpu_s
                with contextlib.suppress(httpx.HTTPError, ValueError):
                    health = (await http.get(f"{base_url}/healthz")).json()
                    for second, ms in health.get("loop_lag_ms", []):
                        soak.lag_by_second[int(second)] = max(
                            float(ms), soak.lag_by_second.get(int(second), 0.0)
                        )
            tick += 1
            await asyncio.sleep(max(0.0, now + 1.0 - time.monotonic()))  # a 1 s sampling pace


def assign_lag(soak: Soak, wall_started: float) -> None:
    """Each second's worst loop lag into its minute (wall clock → the soak's minutes)."""
    for second, ms in soak.lag_by_second.items():
        index = int((second - wall_started) // 60)
        if 0 <= index < len(soak.minutes):
            minute = soak.minutes[index]
            minute.worst_lag_ms = max(minute.worst_lag_ms, ms)


def verdicts(minutes: list[Minute]) -> list[tuple[str, bool, str]]:
    """(check, passed, why) for the three goals."""
    out: list[tuple[str, bool, str]] = []
    steady = [m.rss for m in minutes[1:] if m.rss_mb]
    if steady:
        ref = steady[0]
        low, high = min(steady), max(steady)
        ok = ref * (1 - RSS_BAND) <= low and high <= ref * (1 + RSS_BAND)
        out.append(
            (
                "RSS flat within ±10% after the first minute",
                ok,
                f"minute 2: {ref:.0f} MB; minutes 2–{len(minutes)}: {low:.0f}–{high:.0f} MB "
                f"({(high - ref) / ref * 100:+.1f}% / {(low - ref) / ref * 100:+.1f}%)",
            )
        )
    worst = max((m.worst_lag_ms for m in minutes), default=0.0)
    out.append(
        (
            f"no event-loop stall over {STALL_MS:.0f} ms",
            worst <= STALL_MS,
            f"worst second: {worst:.0f} ms",
        )
    )
    first, last = minutes[0].p(95), minutes[-1].p(95)
    ok = first == first and last == last and last <= (1 + P95_BAND) * first
    out.append(
        (
            "p95 voice-to-voice steady (the last minute's no more than 25% above the first's)",
            ok,
            f"first minute {first:.0f} ms, last minute {last:.0f} ms",
        )
    )
    return out


SLOW_MS = 1000.0
"""A turn slower than this (voice to voice at the harness) is "slow" in the breakdown."""
NEAR_START_S = 3.0
"""Another call rang this long before a turn's end of speech, or during its reply."""
NEAR_HANGUP_S = 10.0
"""Another call hung up this long before a turn's end of speech (its consolidation ran)."""


@dataclass
class TurnView:
    """One answered caller turn: harness latency, server stages, what else went on."""

    v2v_ms: float
    stages: dict[str, float]
    server_ms: float | None
    returning: bool
    starts_near: int = 0
    hangups_near: int = 0


def turn_views(soak: Soak) -> list[TurnView]:
    """Each answered turn joined with its server waterfall and its neighbours in time.

    The call's server clock is put on the harness clock through its answered turns (the
    harness's first reply frame vs the server's ``first_frame_out``); rang / hung up times
    come from there too.
    """
    calls: list[tuple[float, float, CallResult, list[dict[str, object]]]] = []
    for result in soak.results:
        if not result.timeline:
            continue
        answered = [t for t in waterfall(result.timeline) if t["outcome"] == "answered"]
        heard = [t for t in result.turns if t.latency_s is not None and t.at_s is not None]
        offsets = []
        for server_turn, harness_turn in zip(answered, heard, strict=False):
            stages = {s["stage"]: s for s in server_turn["stages"]}  # type: ignore[union-attr]
            if "send" in stages and harness_turn.at_s is not None:
                out_ms = server_turn["at_ms"] + stages["send"]["start_ms"] + stages["send"]["ms"]
                offsets.append(harness_turn.at_s - out_ms / 1000)
        zero = statistics.median(offsets) if offsets else soak.rang_at.get(result.call_sid)
        if zero is None:
            continue
        end = zero + max(float(e.get("t_ms", 0.0)) for e in result.timeline) / 1000
        calls.append((zero, end, result, answered))
    views: list[TurnView] = []
    for zero, _, result, answered in calls:
        returning = any(
            e.get("event") == "context_loaded" and e.get("returning") for e in result.timeline
        )
        heard = [t for t in result.turns if t.latency_s is not None]
        for server_turn, harness_turn in zip(answered, heard, strict=False):
            assert harness_turn.latency_s is not None
            stages = {s["stage"]: float(s["ms"]) for s in server_turn["stages"]}  # type: ignore[union-attr]
            spoke = zero + float(server_turn["at_ms"]) / 1000  # type: ignore[arg-type]
            replied = spoke + harness_turn.latency_s
            view = TurnView(
                harness_turn.latency_s * 1000,
                stages,
                server_turn.get("voice_to_voice_ms"),  # type: ignore[arg-type]
                returning,
            )
            for other_zero, other_end, other, _ in calls:
                if other is result:
                    continue
                view.starts_near += spoke - NEAR_START_S <= other_zero <= replied
                view.hangups_near += spoke - NEAR_HANGUP_S <= other_end <= replied
            views.append(view)
    return views


def breakdown_lines(soak: Soak) -> list[str]:
    """Slow turns vs the rest: median stage times and what was going on around them."""
    views = turn_views(soak)
    if not views:
        return []
    groups = {
        f"slow (> {SLOW_MS:.0f} ms)": [v for v in views if v.v2v_ms > SLOW_MS],
        "the rest": [v for v in views if v.v2v_ms <= SLOW_MS],
    }
    names = ("end_of_turn_wait", "stt", "planner", "tts", "send")

    def med(values: list[float]) -> str:
        return f"{statistics.median(values):.0f}" if values else "–"

    def share(group: list[TurnView], test: Callable[[TurnView], bool]) -> str:
        return f"{sum(1 for v in group if test(v)) / len(group) * 100:.0f}%" if group else "–"

    rows = []
    for label, group in groups.items():
        cells = [label, str(len(group)), med([v.v2v_ms for v in group])]
        cells += [med([v.stages[n] for v in group if n in v.stages]) for n in names]
        cells.append(med([v.server_ms for v in group if v.server_ms is not None]))
        gap = [v.v2v_ms - v.server_ms for v in group if v.server_ms is not None]
        cells.append(med(gap))
        cells += [
            share(group, lambda v: v.starts_near > 0),
            share(group, lambda v: v.hangups_near > 0),
            share(group, lambda v: v.returning),
        ]
        rows.append("| " + " | ".join(cells) + " |")
    return [
        "Where the slow turns lose their time (medians, ms; server stages from each call's "
        "waterfall; harness − server = the caller's last voiced frame to the server's speech "
        "end, plus the first frame's trip back):",
        "",
        "| turns | n | v2v | end-of-turn wait | STT | planner | TTS first audio | send "
        "| server v2v | harness − server | a call rang near | a hang-up near | returning caller |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        f'("near": another call rang within {NEAR_START_S:.0f} s before the turn\'s end of '
        f"speech or before its reply; hung up within {NEAR_HANGUP_S:.0f} s.)",
    ]


def cpu_lines(soak: Soak) -> list[str]:
    """Server CPU seconds per thread group, per minute (which work takes the cores)."""
    if not soak.cpu_by_thread:
        return []
    groups = sorted(soak.cpu_by_thread, key=lambda g: -sum(soak.cpu_by_thread[g]))
    head = "| thread | " + " | ".join(str(i + 1) for i in range(len(soak.minutes))) + " | all |"
    rows = [
        f"| {g} | "
        + " | ".join(f"{v:.1f}" for v in soak.cpu_by_thread[g])
        + f" | {sum(soak.cpu_by_thread[g]):.0f} |"
        for g in groups
        if sum(soak.cpu_by_thread[g]) >= 0.5
    ]
    return [
        "Server CPU seconds per thread, per minute (/proc, thread names from py-spy):",
        "",
        head,
        "|---|" + "---|" * (len(soak.minutes) + 1),
        *rows,
    ]


def markdown(soak: Soak, args: argparse.Namespace, command: str, notes: list[str]) -> str:
    minutes = soak.minutes
    rows = [
        f"| {i + 1} | {m.calls_started} | {len(m.latencies_ms)} | {m.no_reply} "
        f"| {statistics.median(m.latencies_ms) if m.latencies_ms else float('nan'):.0f} "
        f"| {m.p(95):.0f} | {m.rss:.0f} | {m.worst_lag_ms:.0f} | {m.load:.1f} |"
        for i, m in enumerate(minutes)
    ]
    checks = [f"- {'PASS' if ok else 'FAIL'}: {name}: {why}" for name, ok, why in verdicts(minutes)]
    all_latencies = [v for m in minutes for v in m.latencies_ms]
    return (
        "## Soak: 10 calls continuously\n\n"
        f"Command: `{command}`\n\n"
        f"Machine: {machine_line()}.\n\n"
        f"{args.calls} Twilio-simulator calls at once for {args.minutes} minutes: each line "
        "rings, books through a scripted caller on a noisy line (as `bench/call_latency.py`, "
        f"`--snr {args.snr}`, up to {args.turns} turns), hangs up and rings again. Callers "
        f"come back (a pool of {args.pool} numbers), so memory keeps growing. Per minute: calls "
        "started, caller turns answered and unanswered, voice-to-voice at the harness p50 / "
        "p95 (ms), the server's RSS (MB, median of 1 s samples, psutil), the event loop's "
        "worst stall in any second (ms, `/healthz` `loop_lag_ms`), and the 1-min load "
        "average (other work shares this machine).\n\n"
        "| minute | calls started | turns | no reply | v2v p50 | v2v p95 | RSS MB "
        "| worst loop stall ms | load |\n"
        "|---|---|---|---|---|---|---|---|---|\n"
        + "\n".join(rows)
        + "\n\nWhole run: "
        + f"{len(all_latencies)} turns answered, voice-to-voice p50 "
        + f"{statistics.median(all_latencies) if all_latencies else float('nan'):.0f} ms, "
        + f"p95 {percentile(all_latencies, 95):.0f} ms.\n\n"
        + "Goals (issue 14; the first minute is warm-up for RSS):\n\n"
        + "\n".join(checks)
        + "\n\n"
        + "\n".join(f"- {n}" for n in notes)
        + "\n"
        + "".join(f"\n{line}" for line in ["", *breakdown_lines(soak), "", *cpu_lines(soak)])
        + "\n"
    )


async def main_async(args: argparse.Namespace, command: str) -> int:
    voice = CallerVoice()
    await asyncio.to_thread(prerender, voice, range(args.pool), args.turns)
    data_dir = Path(tempfile.mkdtemp(prefix="tourline-soak-"))
    load_before = os.getloadavg()[0]
    probe = (
        {
            "PYTHONPATH": str(REPO_ROOT / "bench" / "soak_probe"),
            "TOURLINE_SOAK_TRACEMALLOC": "1",
        }
        if args.tracemalloc
        else {}
    )
    with running_server(
        data_dir,
        **probe,
        TWILIO_AUTH_TOKEN=TOKEN,
        TOURLINE_PUBLIC_URL=PUBLIC,
        TOURLINE_MAX_CALLS=str(max(args.calls * 2, 20)),  # the soak measures, not admits
    ) as server:
        print(f"server up at {server.base_url} (data in {data_dir})", flush=True)
        await wait_until_warm(server.base_url)
        started, wall_started = time.monotonic(), time.time()
        deadline = started + args.minutes * 60
        soak = Soak([Minute() for _ in range(args.minutes)], started, server.base_url)
        sampler = asyncio.create_task(sample(soak, server.process.pid, server.base_url, deadline))
        lines = [caller(slot, soak, deadline, args, voice) for slot in range(args.calls)]
        progress = asyncio.create_task(report_progress(soak, deadline))
        await asyncio.gather(*lines)
        await sampler
        progress.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await progress
        async with httpx.AsyncClient(timeout=10) as http:  # the last minute's lag
            health = (await http.get(f"{server.base_url}/healthz")).json()
        for second, ms in health.get("loop_lag_ms", []):
            worst = soak.lag_by_second.get(int(second), 0.0)
            soak.lag_by_second[int(second)] = max(float(ms), worst)
        assign_lag(soak, wall_started)
        rss_end = psutil.Process(server.process.pid).memory_info().rss / 2**20
    if args.tracemalloc:
        print("\n".join(heap_growth(data_dir)), flush=True)
    if args.keep_data:
        print(f"server data kept in {data_dir}", flush=True)
    else:
        shutil.rmtree(data_dir, ignore_errors=True)
    calls = len(soak.results)
    failed = [r.error for r in soak.results if r.error]
    notes = [
        f"{calls} calls in all, {len(failed)} failed"
        + (f" ({'; '.join(str(f) for f in failed[:3])})" if failed else "")
        + f"; RSS after the last call {rss_end:.0f} MB.",
        f"Calls start at random over the first {args.stagger:.0f} s, then back to back; "
        "turns answered after the last minute (calls finishing) are not counted.",
        f"1-min load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after; the "
        "harness (10 media clocks, playback) runs on the same 2 cores as the server.",
    ]
    body = markdown(soak, args, command, notes)
    print()
    print(body)
    if not args.no_write:
        write_section(SECTION, body)
        print(f"wrote {BENCHMARKS_MD.relative_to(REPO_ROOT)}")
    return 0 if all(ok for _, ok, _ in verdicts(soak.minutes)) else 1


async def report_progress(soak: Soak, deadline: float) -> None:
    """A line per minute while the soak runs (the run is long; show it is alive)."""
    shown = 0
    while True:
        await asyncio.sleep(5)  # a progress pace
        done = int((time.monotonic() - soak.started) // 60)
        while shown < min(done, len(soak.minutes)):
            m = soak.minutes[shown]
            print(
                f"minute {shown + 1}: {m.calls_started} calls started, "
                f"{len(m.latencies_ms)} turns, p95 {m.p(95):.0f} ms, RSS {m.rss:.0f} MB, "
                f"load {m.load:.1f}",
                flush=True,
            )
            shown += 1
        if shown >= len(soak.minutes) or time.monotonic() > deadline + 120:
            return


def heap_growth(data_dir: Path, top: int = 15) -> list[str]:
    """What Python allocations grew from minute 2 to the last snapshot (``--tracemalloc``)."""
    import tracemalloc

    snaps = sorted(data_dir.glob("tracemalloc-*.snap"))
    if len(snaps) < 3:
        return ["(fewer than 3 tracemalloc snapshots: nothing to diff)"]
    first, last = (tracemalloc.Snapshot.load(str(p)) for p in (snaps[1], snaps[-1]))
    total = sum(s.size for s in last.statistics("filename")) - sum(
        s.size for s in first.statistics("filename")
    )
    lines = [f"Python heap growth, {snaps[1].stem} -> {snaps[-1].stem}: {total / 2**20:+.1f} MB"]
    for stat in last.compare_to(first, "traceback")[:top]:
        frames = " <- ".join(
            f"{f.filename.split('/site-packages/')[-1]}:{f.lineno}" for f in stat.traceback[:4]
        )
        lines.append(f"  {stat.size_diff / 2**20:+7.2f} MB {stat.count_diff:+7d} blocks  {frames}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10, help="calls at once")
    parser.add_argument("--minutes", type=int, default=10, help="how long (whole minutes)")
    parser.add_argument("--turns", type=int, default=6, help="caller turns per call at most")
    parser.add_argument("--stagger", type=float, default=5.0, help="first calls over N seconds")
    parser.add_argument("--quiet", type=float, default=1.0, help="quiet that ends a reply (s)")
    parser.add_argument("--seed", type=int, default=3, help="seed for offsets and SNRs")
    parser.add_argument("--snr", default="15-25", help="line SNR in dB (as call_latency.py)")
    parser.add_argument(
        "--pool", type=int, default=POOL, help="distinct callers; past them callers return"
    )
    parser.add_argument(
        "--tracemalloc",
        action="store_true",
        help="diagnose RSS: snapshot the server's Python heap each minute and diff them",
    )
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--keep-data", action="store_true", help="keep the server's data dir")
    args = parser.parse_args(argv)
    command = " ".join(["python bench/soak.py", *(sys.argv[1:] if argv is None else argv)])
    return asyncio.run(main_async(args, command))


if __name__ == "__main__":
    raise SystemExit(main())
