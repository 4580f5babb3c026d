"""Shared by every benchmark: percentiles and writing a section of docs/benchmarks.md.

Each benchmark owns one section between ``<!-- name:start -->`` and ``<!-- name:end -->``
markers, so benchmarks can be re-run one at a time without clobbering each other.
"""

from __future__ import annotations

import platform
import statistics
from datetime import UTC, datetime
from pathlib import Path

BENCHMARKS_MD = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
HEADER = (
    "# Benchmarks\n\n"
    "Every figure here is produced by a script in `bench/`; each section names the command.\n"
    "Times are medians/percentiles over repeated runs on the project's 2-core CPU machine.\n"
)


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100), linear interpolation; values need not be sorted."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summary_ms(values_s: list[float]) -> dict[str, float]:
    """p50/p95/max in milliseconds from seconds."""
    ms = [v * 1000 for v in values_s]
    return {
        "p50": statistics.median(ms),
        "p95": percentile(ms, 95),
        "max": max(ms),
    }


def machine_line() -> str:
    import os

    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, measured {datetime.now(UTC):%Y-%m-%d}"
    )


def write_section(name: str, body: str, path: Path = BENCHMARKS_MD) -> None:
    """Replace (or append) this benchmark's section in docs/benchmarks.md."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{body.strip()}\n{end}"
    text = path.read_text() if path.exists() else HEADER
    if start in text and end in text:
        before = text.split(start, 1)[0]
        after = text.split(end, 1)[1]
        text = before + block + after
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
