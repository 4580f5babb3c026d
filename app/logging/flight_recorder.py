"""FlightRecorder: one JSONL timeline per call, so a slow or odd call can be replayed.

Every event gets the milliseconds since the call started; stages (STT, planner, TTS...)
get their duration.

Where the file work happens: on one writer thread for the whole process, never on the
caller's thread. A recorder is made on the event loop at every call start, and creating
its file (a directory lookup and an inode on a busy disk) and writing each line held every
other call's audio meanwhile. ``event`` only formats the line and queues it; the writer
opens the file on the recorder's first line and flushes what it wrote after each batch, so
a crash of the server keeps the timeline up to the last few milliseconds. Readers see every
line queued before they asked: ``read_timeline`` waits for the writer first, and ``close``
off an event loop (scripts, tests) waits for the recorder's lines to be written.

Each event also goes to ``app.logging.metrics.observe``, so ``GET /metrics`` counts what the
timelines record without any metrics code in the calls themselves.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import logging
import re
import threading
import time
from pathlib import Path
from queue import SimpleQueue
from typing import Any, TextIO

from app.logging.metrics import observe

log = logging.getLogger("tourline.timeline")

_SAFE_ID = re.compile(r"[^A-Za-z0-9_.-]")
FLUSH_WAIT_S = 10.0
"""The longest a reader waits for queued lines (a disk that stalls longer is broken)."""


def timeline_path(data_dir: Path, call_id: str) -> Path:
    """Where a call's timeline lives; the id is sanitized so it can't escape the folder."""
    safe = _SAFE_ID.sub("_", call_id)[:128] or "unknown"
    return data_dir / "calls" / f"{safe}.jsonl"


class _Writer:
    """The process's timeline writer thread: opens, appends to and closes timeline files."""

    def __init__(self) -> None:
        self._queue: SimpleQueue[tuple[FlightRecorder | None, str | None, threading.Event | None]]
        self._queue = SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def put(
        self,
        recorder: FlightRecorder | None,
        line: str | None,
        done: threading.Event | None = None,
    ) -> None:
        """Queue a line (``line``), a close (``recorder`` with no line) or a marker that
        sets ``done`` once everything queued before it is written."""
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._run, name="tourline-timeline", daemon=True
                    )
                    self._thread.start()
        self._queue.put((recorder, line, done))

    def flush(self, timeout_s: float = FLUSH_WAIT_S) -> bool:
        """Wait until every line queued before this call is written; False on timeout."""
        if self._thread is None:
            return True
        done = threading.Event()
        self.put(None, None, done)
        return done.wait(timeout_s)

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            while not self._queue.empty():
                batch.append(self._queue.get_nowait())
            touched: dict[int, TextIO] = {}
            for recorder, line, done in batch:
                if done is not None:
                    self._flush_all(touched)
                    done.set()
                elif recorder is not None and line is not None:
                    file = recorder._opened()
                    if file is not None:
                        try:
                            file.write(line)
                        except (OSError, ValueError) as exc:
                            log.warning("timeline of %s: line lost: %s", recorder.call_id, exc)
                        touched[id(file)] = file
                elif recorder is not None:
                    touched.pop(id(recorder._file), None)
                    recorder._close_file()
            self._flush_all(touched)

    @staticmethod
    def _flush_all(touched: dict[int, TextIO]) -> None:
        for file in touched.values():
            try:
                file.flush()
            except (OSError, ValueError) as exc:
                log.warning("timeline %s: not flushed: %s", file.name, exc)
        touched.clear()


_writer = _Writer()
atexit.register(_writer.flush)  # a script's last lines reach the disk before it exits


def flush_timelines(timeout_s: float = FLUSH_WAIT_S) -> bool:
    """Wait until every event recorded so far, in any call, is in its file."""
    return _writer.flush(timeout_s)


class FlightRecorder:
    """Appends timestamped events for one call (written by the timeline thread)."""

    def __init__(self, data_dir: Path, call_id: str) -> None:
        self.call_id = call_id
        self.path = timeline_path(data_dir, call_id)
        self._file: TextIO | None = None
        self._failed = False  # the file could not be opened: its lines are dropped
        self._closed = False
        self._t0 = time.perf_counter()
        self._open_stages: dict[str, float] = {}

    def now_ms(self) -> float:
        return round((time.perf_counter() - self._t0) * 1000, 2)

    def event(self, name: str, **fields: Any) -> None:
        record = {"t_ms": self.now_ms(), "event": name, **fields}
        if not self._closed:
            _writer.put(self, json.dumps(record, default=str) + "\n")
            observe(name, fields)  # the same figures, aggregated for /metrics

    def stage_start(self, stage: str) -> None:
        self._open_stages[stage] = time.perf_counter()

    def stage_end(self, stage: str, **fields: Any) -> float:
        """Close a stage and record its duration in ms (0 if it was never started)."""
        started = self._open_stages.pop(stage, None)
        ms = round((time.perf_counter() - started) * 1000, 2) if started else 0.0
        self.event(f"{stage}_done", ms=ms, **fields)
        return ms

    def close(self) -> None:
        """No events after this. Off an event loop, returns once the file is written."""
        if self._closed:
            return
        self._closed = True
        _writer.put(self, None)
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # a script or test: it may read the file next
            _writer.flush()

    # ------------------------------------------------------------------ the writer's side

    def _opened(self) -> TextIO | None:
        """The file, opened on the first line (writer thread only); None if it can't be."""
        if self._file is None and not self._failed:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._file = self.path.open("a", encoding="utf-8")
            except OSError as exc:
                self._failed = True
                log.warning("call %s: no timeline (%s): %s", self.call_id, self.path, exc)
        return self._file

    def _close_file(self) -> None:
        if self._file is not None and not self._file.closed:
            try:
                self._file.close()
            except OSError as exc:
                log.warning("timeline %s: not closed cleanly: %s", self.path, exc)


def read_timeline(data_dir: Path, call_id: str) -> list[dict[str, Any]] | None:
    """A call's events (every one recorded before this call), or None when there is no
    such call."""
    flush_timelines()
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
