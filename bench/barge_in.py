"""Barge-in on noisy phone lines: how fast talking over the agent stops it, and what else does.

What it measures, with the real server and the Twilio harness at real time, each call on
its own noisy line (``--snr``, as bench/call_latency.py):

- **Barge-in latency:** the caller talks over the agent's reply ("actually wait, can we do
  thursday instead", Piper speech) 0.3 s into it; latency is from the first voiced frame of
  that speech, as sent, to the ``clear`` message arriving back. A barge-in that got no
  ``clear`` within 3 s is a miss.
- **False clears:** backchannels ("Uh-huh.", "okay", "mm-hmm") and a cough played over the
  agent (over the greeting, and over every other reply before the barge-in); a ``clear``
  between such a sound's first voiced frame and 1 s after its end is a false clear.

Why a bench and not only the barge-in tests: the tests say *whether* it stops; how fast,
on a noisy line and with ten calls sharing two cores, is a number that has to be measured.

Run:  python bench/barge_in.py                       (1 call then 10 calls, writes the doc)
      python bench/barge_in.py --calls 1 --cycles 4 --no-write        (a smoke run)
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench.call_latency import (  # noqa: E402
    PUBLIC,
    TOKEN,
    call_snr,
    parse_snr,
    process_cpu_s,
    wait_until_warm,
)
from bench.report import machine_line, percentile, write_section  # noqa: E402
from sim.server import running_server  # noqa: E402
from sim.twilio import CallEnded, CallerVoice, NoReply, Speech, TwilioCall  # noqa: E402
from sim.twilio.player import _Media  # noqa: E402
from sim.twilio.voice import cough_pcm8k  # noqa: E402

BARGE_LINE = "actually wait, can we do thursday instead"
BACKCHANNELS = ("Uh-huh.", "okay", "mm-hmm", "<cough>")
GOAL_MS = 300.0
AFTER_S = 0.3  # into the agent's reply, when the caller starts talking
CLEAR_WINDOW_S = 3.0
FALSE_WINDOW_S = 1.0


@dataclass
class CallRecord:
    snr_db: float | None
    latencies_s: list[float] = field(default_factory=list)
    missed: int = 0  # talked over the agent, no clear within CLEAR_WINDOW_S
    not_over: int = 0  # the reply had ended before the caller's speech began
    sounds: int = 0  # backchannels/coughs played over agent audio
    false_clears: list[str] = field(default_factory=list)
    error: str | None = None


def playing_at(call: TwilioCall, t: float) -> bool:
    """Was agent audio playing on the caller's side at ``t`` (before any later clear)?"""
    for item in call.player.items:
        if isinstance(item, _Media) and item.at <= t:
            end = item.end if item.played is None else item.start + item.played / 8000
            if item.start <= t < end:
                return True
    return False


def clear_between(call: TwilioCall, start: float, end: float) -> float | None:
    return next((at for at in call.clears() if start <= at <= end), None)


async def wait_clear(call: TwilioCall, after: float, timeout_s: float) -> float | None:
    """The first ``clear`` at or after ``after``, waiting up to ``timeout_s`` past it."""
    deadline = after + timeout_s
    while True:
        found = clear_between(call, after, deadline)
        if found is not None or time.monotonic() >= deadline or call.closed.is_set():
            return found
        await call.player.wait_change(max(deadline - time.monotonic(), 0.005))


async def sound_over_agent(
    call: TwilioCall, sounds: dict[str, Speech], name: str, record: CallRecord, after_s: float
) -> None:
    """Play a backchannel or cough ``after_s`` into the current agent turn; note any clear."""
    sent = await call.say_over_agent(sounds[name], after_s=after_s, timeout_s=15)
    begin = sent.first_voiced_frame_at or sent.started_at
    if not playing_at(call, begin):
        return  # the agent had stopped: not a sound over the agent
    record.sounds += 1
    end = sent.ended_at + FALSE_WINDOW_S
    await asyncio.sleep(max(end - time.monotonic(), 0))  # pacing: the caller waits a beat
    if clear_between(call, begin, end) is not None:
        record.false_clears.append(name)


async def run_call(
    base_url: str, index: int, cycles: int, voice: CallerVoice, snr_db: float | None, delay_s: float
) -> CallRecord:
    """A call that keeps interrupting: greeting under backchannels, then ``cycles`` barge-ins."""
    await asyncio.sleep(delay_s)  # the random start offset of this call
    record = CallRecord(snr_db)
    line = voice.on_line(snr_db, seed=2000 + index)
    sounds = {
        name: (
            line.from_pcm8k(cough_pcm8k(duration_s=0.15), text="cough")
            if name == "<cough>"
            else await asyncio.to_thread(line.render, name)
        )
        for name in BACKCHANNELS
    }
    barge = await asyncio.to_thread(line.render, BARGE_LINE)
    answer = await asyncio.to_thread(line.render, f"my name is caller number {index}")
    try:
        async with TwilioCall.connect(
            base_url,
            public_url=PUBLIC,
            auth_token=TOKEN,
            from_number=f"+1646777{index:04d}",
            voice=line,
        ) as call:
            # The greeting is several sentences: a cough and two backchannels over it.
            for name, at in (("<cough>", 1.0), ("Uh-huh.", 2.5), ("okay", 4.0)):
                await sound_over_agent(call, sounds, name, record, at)
            await call.listen(timeout_s=15)
            await call.queue_speech(answer)
            for cycle in range(cycles):
                if cycle % 2 == 1:
                    name = BACKCHANNELS[(cycle // 2) % len(BACKCHANNELS)]
                    await sound_over_agent(call, sounds, name, record, AFTER_S)
                    sent = await call.say_over_agent(barge, after_s=0.0, timeout_s=15)
                else:
                    sent = await call.say_over_agent(barge, after_s=AFTER_S, timeout_s=15)
                onset = sent.first_voiced_frame_at
                assert onset is not None
                if not playing_at(call, onset):
                    record.not_over += 1
                else:
                    cleared = await wait_clear(call, onset, CLEAR_WINDOW_S)
                    if cleared is None:
                        record.missed += 1
                    else:
                        record.latencies_s.append(cleared - onset)
                try:
                    await call.listen(timeout_s=15)  # the turn that was talked over
                except NoReply:
                    break
    except CallEnded as ended:
        record.error = f"call ended early: {ended}"
    except Exception as exc:  # a benchmark reports failures, it does not stop at the first
        record.error = f"{type(exc).__name__}: {exc}"
    return record


@dataclass
class Level:
    calls: int
    records: list[CallRecord]
    cpu_s: float

    @property
    def latencies_ms(self) -> list[float]:
        return [v * 1000 for r in self.records for v in r.latencies_s]

    def total(self, name: str) -> int:
        return sum(int(getattr(r, name)) for r in self.records)

    @property
    def false_clears(self) -> list[str]:
        return [n for r in self.records for n in r.false_clears]


def level_row(level: Level) -> str:
    lat = level.latencies_ms
    stats = (
        f"{statistics.median(lat):.0f} / {percentile(lat, 95):.0f} / {max(lat):.0f}"
        if lat
        else "n/a"
    )
    within = sum(1 for v in lat if v <= GOAL_MS)
    snrs = [r.snr_db for r in level.records if r.snr_db is not None]
    snr = f"{min(snrs):.1f}–{max(snrs):.1f}" if snrs else "off"
    false = level.false_clears
    kinds = ", ".join(f"{k} {false.count(k)}" for k in BACKCHANNELS if k in false) or "none"
    return (
        f"| {level.calls} | {snr} | {len(lat) + level.total('missed')} | {stats} "
        f"| {within} of {len(lat)} | {level.total('missed')} | {level.total('not_over')} "
        f"| {len(false)} of {level.total('sounds')} ({kinds}) |"
    )


def markdown(levels: list[Level], command: str, notes: list[str]) -> str:
    header = (
        "| calls | SNR dB min–max | barge-ins over agent audio "
        "| onset → `clear` p50 / p95 / max (ms) | within 300 ms | no clear in 3 s "
        "| reply over before onset (not counted) | false clears of sounds over the agent |\n"
        "|---|---|---|---|---|---|---|---|\n"
    )
    return (
        "## Phone calls: barge-in on noisy lines\n\n"
        f"Command: `{command}`\n\n"
        f"Machine: {machine_line()}.\n\n"
        f'Barge-in = the caller says "{BARGE_LINE}" (Piper) starting {AFTER_S:.1f} s into the '
        "agent's reply; latency from the first voiced frame of it, as the Twilio harness sent "
        "it, to the `clear` arriving back. False clears: a `clear` between a backchannel's "
        "(Uh-huh., okay, mm-hmm) or a cough's first voiced frame and 1 s after its end, "
        "played over the greeting and over every other reply. Goal (issue 13): "
        f"`clear` ≤ {GOAL_MS:.0f} ms, no false clears.\n\n"
        + header
        + "\n".join(level_row(lv) for lv in levels)
        + "\n\n"
        + "\n".join(f"- {n}" for n in notes)
        + "\n"
    )


async def main_async(args: argparse.Namespace, command: str) -> int:
    wanted = [int(n) for n in args.calls.split(",") if n.strip()]
    voice = CallerVoice()
    await asyncio.to_thread(voice.prerender, [BARGE_LINE, *BACKCHANNELS[:3]])
    snr = parse_snr(args.snr)
    load_before = Path("/proc/loadavg").read_text().strip()
    data_dir = Path(tempfile.mkdtemp(prefix="tourline-barge-bench-"))
    levels: list[Level] = []
    with running_server(data_dir, TWILIO_AUTH_TOKEN=TOKEN, TOURLINE_PUBLIC_URL=PUBLIC) as server:
        await wait_until_warm(server.base_url)
        first = 0
        for calls in wanted:
            cycles = args.cycles or (22 if calls == 1 else 4)
            cpu_before = process_cpu_s(server.process.pid)
            jobs = [
                run_call(
                    server.base_url,
                    first + i,
                    cycles,
                    voice,
                    call_snr(snr, args.seed, first + i),
                    i * args.stagger / max(calls, 1),
                )
                for i in range(calls)
            ]
            records = await asyncio.gather(*jobs)
            level = Level(calls, list(records), process_cpu_s(server.process.pid) - cpu_before)
            levels.append(level)
            first += calls
            print(level_row(level), flush=True)
            for record in records:
                if record.error:
                    print(f"    error: {record.error}", flush=True)
    if args.keep_data:
        print(f"server data kept in {data_dir}", flush=True)
    else:
        shutil.rmtree(data_dir, ignore_errors=True)
    load_after = Path("/proc/loadavg").read_text().strip()
    notes = [
        f"Cycles per call: {args.cycles or '22 at 1 call, 4 at more'}; calls start over "
        f"{args.stagger:.0f} s; each call on its own line, `--snr {args.snr}` "
        "(sim/line_noise.py), one server for every level, in that order.",
        f"`/proc/loadavg` before: {load_before}; after: {load_after}.",
    ]
    errors = [r.error for lv in levels for r in lv.records if r.error]
    if errors:
        notes.append(f"{len(errors)} call(s) failed: " + "; ".join(errors[:3]))
    body = markdown(levels, command, notes)
    print()
    print(body)
    if not args.no_write:
        write_section("barge_in", body)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", default="1,10", help="simultaneous calls per level")
    parser.add_argument("--cycles", type=int, default=0, help="barge-ins per call (0: auto)")
    parser.add_argument("--snr", default="15-25", help="line SNR in dB: 15-25, 20 or off")
    parser.add_argument("--stagger", type=float, default=2.0, help="start calls over N seconds")
    parser.add_argument("--seed", type=int, default=3, help="seed for the SNRs")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--keep-data", action="store_true", help="keep the server's data dir")
    args = parser.parse_args(argv)
    command = " ".join(["python bench/barge_in.py", *(sys.argv[1:] if argv is None else argv)])
    return asyncio.run(main_async(args, command))


if __name__ == "__main__":
    raise SystemExit(main())
