"""Planner turn latency in deterministic mode (budget: p95 under 5 ms).

Runs scripted conversations in both recognizer styles through the real AgentPlanner with
a real SQLite booking store, many times over, and times every caller turn from the call
to respond() until its last sentence is out.

    python bench/planner.py [--rounds 40]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.planner.agent_planner import PlannerKit
from app.settings import Settings
from bench.report import machine_line, summary_ms, write_section

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=ZoneInfo("America/New_York"))

CONVERSATIONS = {
    "spoken": [
        "hi my name is dana lee",
        "hudson three sixty",
        "a one bedroom",
        "december first",
        "i have two cats",
        "twenty five hundred",
        "do you have parking",
        "in person",
        "this saturday at eleven in the morning",
        "yes",
        "text",
        "no that's all thanks bye",
    ],
    "written": [
        "Hi, this is Marcus Webb. I'd like a 2-bedroom at 21 West End, around $4,500 a month.",
        "Not sure yet.",
        "Yes, a dog.",
        "Virtual, please.",
        "Next Wednesday afternoon?",
        "The second one.",
        "Actually, make that 3 p.m.",
        "Yes.",
        "Email is best: marcus.webb@example.com",
        "That's all, bye!",
    ],
}


async def run_once(kit: PlannerKit, lines: list[str], caller: str) -> list[float]:
    planner = kit.conversation(caller)
    async for _ in planner.greet():
        pass
    timings = []
    for line in lines:
        started = time.perf_counter()
        async for _ in planner.respond(line):
            pass
        timings.append(time.perf_counter() - started)
        if planner.ended:
            break
    if planner.state.booking is None:
        raise SystemExit(f"scripted conversation did not book a tour: {lines[0]!r}")
    return timings


async def main(rounds: int) -> dict[str, dict[str, float]]:
    results: dict[str, list[float]] = {name: [] for name in CONVERSATIONS}
    with tempfile.TemporaryDirectory() as data_dir:
        for round_number in range(rounds):
            # Each round is a new week, so bookings from earlier rounds never collide.
            now = NOW + timedelta(days=7 * round_number)
            kit = PlannerKit.build(Settings(data_dir=Path(data_dir)), clock=lambda now=now: now)
            for name, lines in CONVERSATIONS.items():
                results[name] += await run_once(kit, lines, f"+1415555{round_number:04d}")
    return {name: summary_ms(values) | {"turns": len(values)} for name, values in results.items()}


def report(stats: dict[str, dict[str, float]], rounds: int) -> str:
    everything = [s for s in stats.values()]
    lines = [
        "## Planner turn latency (deterministic mode)",
        "",
        f"`python bench/planner.py --rounds {rounds}` — {machine_line()}. Budget: p95 < 5 ms.",
        "",
        "| conversation style | turns | p50 ms | p95 ms | max ms |",
        "|---|---|---|---|---|",
    ]
    for name, s in stats.items():
        lines.append(
            f"| {name} | {s['turns']} | {s['p50']:.2f} | {s['p95']:.2f} | {s['max']:.2f} |"
        )
    worst = max(s["p95"] for s in everything)
    lines += ["", f"Worst p95: **{worst:.2f} ms** ({'within' if worst < 5 else 'OVER'} budget)."]
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    stats = asyncio.run(main(args.rounds))
    text = report(stats, args.rounds)
    print(text)
    write_section("planner", text)
