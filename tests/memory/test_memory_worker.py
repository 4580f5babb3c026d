"""The memory worker's thread yields the CPU to calls: its work is never what a caller waits on."""

from __future__ import annotations

import os
import sys
import threading

import pytest

from app.memory.worker import NICENESS, BackgroundWorker


def _niceness() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


@pytest.mark.skipif(sys.platform != "linux", reason="niceness is per thread on Linux only")
def test_memory_work_runs_at_a_lower_cpu_priority_than_the_calls() -> None:
    worker = BackgroundWorker(name="test-memory")
    try:
        here = _niceness()
        there = worker.submit(_niceness).result(timeout=10)
        started_there = worker.submit(
            lambda: _run_in_new_thread(_niceness)  # mem0's own pools start from this thread
        ).result(timeout=10)
    finally:
        worker.close()
    assert _niceness() == here  # the caller's thread is left as it was
    assert there == min(here + NICENESS, 19)
    assert started_there == there


def _run_in_new_thread(fn):  # type: ignore[no-untyped-def]
    result = []
    thread = threading.Thread(target=lambda: result.append(fn()))
    thread.start()
    thread.join()
    return result[0]
