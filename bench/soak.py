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
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

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

    def minute_of(self, at: float) -> Minute | None:
        index = int((at - self.started) // 60)
        return self.minutes[index] if 0 <= index < len(self.minutes) else None


async def caller(
    slot: int, soak: Soak, deadline: float, args: argparse.Namespace, voice: CallerVoice
) -> None:
    """One line: call, hang up, call again, until the deadline."""
    rng = random.Random(args.seed * 7919 + slot)
    snr = parse_snr(args.snr)
    await asyncio.sleep(rng.uniform(0, args.stagger))  # calls don't all start in one tick
    round_ = 0
    while time.monotonic() < deadline:
        index = (slot + round_ * args.calls) % POOL
        round_ += 1
        minute = soak.minute_of(time.monotonic())
        if minute is not None:
            minute.calls_started += 1
        snr_db = call_snr(snr, args.seed, index)
        result = await run_call(soak.base_url, index, args.turns, voice, 0.0, args.quiet, snr_db)
        soak.results.append(result)
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
        f"come back (a pool of {POOL} numbers), so memory keeps growing. Per minute: calls "
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
    )


async def main_async(args: argparse.Namespace, command: str) -> int:
    voice = CallerVoice()
    await asyncio.to_thread(prerender, voice, range(POOL), args.turns)
    data_dir = Path(tempfile.mkdtemp(prefix="tourline-soak-"))
    load_before = os.getloadavg()[0]
    with running_server(
        data_dir,
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10, help="calls at once")
    parser.add_argument("--minutes", type=int, default=10, help="how long (whole minutes)")
    parser.add_argument("--turns", type=int, default=6, help="caller turns per call at most")
    parser.add_argument("--stagger", type=float, default=5.0, help="first calls over N seconds")
    parser.add_argument("--quiet", type=float, default=1.0, help="quiet that ends a reply (s)")
    parser.add_argument("--seed", type=int, default=3, help="seed for offsets and SNRs")
    parser.add_argument("--snr", default="15-25", help="line SNR in dB (as call_latency.py)")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--keep-data", action="store_true", help="keep the server's data dir")
    args = parser.parse_args(argv)
    command = " ".join(["python bench/soak.py", *(sys.argv[1:] if argv is None else argv)])
    return asyncio.run(main_async(args, command))


if __name__ == "__main__":
    raise SystemExit(main())
