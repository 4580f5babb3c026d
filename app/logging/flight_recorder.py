"""FlightRecorder: one JSONL timeline per call, so a slow or odd call can be replayed.

Every event gets the milliseconds since the call started; stages (STT, planner, TTS...)
get their duration. Lines are flushed as they are written, so a crash keeps the timeline.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

_SAFE_ID = re.compile(r"[^A-Za-z0-9_.-]")


def timeline_path(data_dir: Path, call_id: str) -> Path:
    """Where a call's timeline lives; the id is sanitized so it can't escape the folder."""
    safe = _SAFE_ID.sub("_", call_id)[:128] or "unknown"
    return data_dir / "calls" / f"{safe}.jsonl"


class FlightRecorder:
    """Appends timestamped events for one call."""

    def __init__(self, data_dir: Path, call_id: str) -> None:
        self.call_id = call_id
        self.path = timeline_path(data_dir, call_id)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("a", encoding="utf-8", buffering=1)
        self._t0 = time.perf_counter()
        self._open_stages: dict[str, float] = {}

    def now_ms(self) -> float:
        return round((time.perf_counter() - self._t0) * 1000, 2)

    def event(self, name: str, **fields: Any) -> None:
        record = {"t_ms": self.now_ms(), "event": name, **fields}
        if not self._file.closed:
            self._file.write(json.dumps(record, default=str) + "\n")

    def stage_start(self, stage: str) -> None:
        self._open_stages[stage] = time.perf_counter()

    def stage_end(self, stage: str, **fields: Any) -> float:
        """Close a stage and record its duration in ms (0 if it was never started)."""
        started = self._open_stages.pop(stage, None)
        ms = round((time.perf_counter() - started) * 1000, 2) if started else 0.0
        self.event(f"{stage}_done", ms=ms, **fields)
        return ms

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()


def read_timeline(data_dir: Path, call_id: str) -> list[dict[str, Any]] | None:
    """A call's events, or None when there is no such call."""
    path = timeline_path(data_dir, call_id)
    if not path.exists():
        return None
    events = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line cut short by a crash
    return events
