"""Per-turn matching speed: names and building names, as the planner runs them mid-call.

Tests check what these functions answer; their speed is measured here (tests do not time
things). Each figure is the time of one call, median and p95 over ``--runs`` rounds, after
a warm-up:

- names: ``name_plausibility`` on a heard phrase + ``parse_spelled_name`` + ``closest_name``
  against three known names (what a turn that may carry a name costs), after
  ``names.warm_up()``, with words the process has seen and with words it has not (its
  per-word caches miss); the budget is 1 ms;
- places: ``PlaceMatcher.find`` on a whole normalized turn that names two buildings, one
  misheard; the budget is 2 ms (~0.4 ms on an idle core).

Run:  python bench/matching_speed.py            (a few seconds; prints, writes no file)
      python bench/matching_speed.py --runs 50
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from app.domain.catalog import Catalog, normalize_words  # noqa: E402
from app.planner import names  # noqa: E402
from app.planner.fuzzy_places import PlaceMatcher  # noqa: E402
from bench.report import machine_line, percentile  # noqa: E402

NAMES = ["Priya Patel", "Oluwaseun Adeyemi", "Nguyen Van Minh", "Zhang Wei", "Maria Lopez",
         "Dana Lee", "Jeanne Ó Gabhacháin", "Uğan Çamurcuoğlu", "Aarav Sharma",
         "Emeka Okafor"]  # fmt: skip
NOT_NAMES = ["a virtual tour", "next saturday", "two bedroom", "hudson 360", "my budget",
             "in the morning", "with parking", "do you allow cats"]  # fmt: skip
SYLLABLES = ["ka", "lo", "mi", "ren", "sa", "tu", "vel", "dor", "ny", "bri", "an", "eo", "sh", "zu"]
KNOWN = ["Maria Lopez", "Dana Lee", "Priya"]
TURN = (
    "I'd like to see it on Wednesday at three, is the Hudson one available for a two "
    "bedroom, or maybe river few lofts"
)
NAMES_BUDGET_MS, PLACES_BUDGET_MS = 1.0, 2.0


def per_call_ms(work: Callable[[], None], calls: int, runs: int) -> list[float]:
    """Milliseconds per call of ``work``, one figure per run of ``calls`` calls."""
    work()  # warm
    figures = []
    for _ in range(runs):
        started = time.perf_counter()
        for _ in range(calls):
            work()
        figures.append((time.perf_counter() - started) / calls * 1000)
    return figures


def names_turns(*, fresh: bool, seed: int = 4) -> Callable[[], None]:
    """A phrase that may carry a name; ``fresh``: made-up words never seen before, so none
    of the per-word caches answer (a caller's name is often new to the process)."""
    rng = random.Random(seed)

    def made_up() -> str:
        return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4)))

    def phrases() -> Iterator[str]:
        while True:
            name = f"{made_up()} {made_up()}" if fresh else rng.choice(NAMES)
            yield f"{name} {rng.choice(NOT_NAMES)}"[:30]

    turn = phrases()

    def one() -> None:
        text = next(turn)
        names.name_plausibility(text)
        names.parse_spelled_name("D A N A, last name L E E")
        names.closest_name(text.split()[0], KNOWN)

    return one


def places_turn() -> Callable[[], None]:
    catalog = Catalog.load(REPO_ROOT / "prompts" / "properties.yaml")
    matcher = PlaceMatcher.from_catalog(catalog)
    text = normalize_words(TURN)

    def one() -> None:
        matcher.find(text)

    return one


def line(name: str, figures: list[float], budget_ms: float) -> str:
    median, p95 = percentile(figures, 50), percentile(figures, 95)
    verdict = "ok" if p95 <= budget_ms else "OVER BUDGET"
    return f"| {name} | {median:.3f} | {p95:.3f} | {budget_ms:.1f} | {verdict} |"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30, help="rounds per figure")
    parser.add_argument("--calls", type=int, default=100, help="calls per round")
    args = parser.parse_args(argv)
    names.warm_up()
    works = [
        ("names, known words", names_turns(fresh=False), NAMES_BUDGET_MS),
        ("names, words never seen before", names_turns(fresh=True), NAMES_BUDGET_MS),
        ("places (PlaceMatcher.find, one turn)", places_turn(), PLACES_BUDGET_MS),
    ]
    rows = [line(name, per_call_ms(work, args.calls, args.runs), ms) for name, work, ms in works]
    print(f"Matching speed per call, {args.runs} rounds of {args.calls} calls ({machine_line()})")
    print("\n| work | median ms | p95 ms | budget ms | |\n|---|---|---|---|---|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
