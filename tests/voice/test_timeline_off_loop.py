"""A call's timeline is written off the event loop (issue 12, item 6).

Each call start made its FlightRecorder on the event loop, which created the timeline's
folder and file there; on a busy disk that is milliseconds per call, and 30 calls starting
at once held every other call's audio for all of them. The loop now only queues lines; one
writer thread creates and appends the files, and readers still see every line recorded
before they asked.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from app.logging.flight_recorder import FlightRecorder, flush_timelines, read_timeline

BURST = 30
SLOW_DISK_S = 0.02


@pytest.fixture
def slow_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    """Creating a folder or opening a file takes 20 ms, as on a disk busy with other work."""
    real_mkdir, real_open = Path.mkdir, Path.open

    def mkdir(self: Path, *args: object, **kwargs: object) -> None:
        time.sleep(SLOW_DISK_S)  # the disk's latency, not a synchronization
        real_mkdir(self, *args, **kwargs)  # type: ignore[arg-type]

    def open_(self: Path, *args: object, **kwargs: object) -> object:
        time.sleep(SLOW_DISK_S)
        return real_open(self, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(Path, "mkdir", mkdir)
    monkeypatch.setattr(Path, "open", open_)


async def test_thirty_call_starts_do_not_wait_for_the_disk(tmp_path: Path, slow_disk: None) -> None:
    started = time.perf_counter()
    recorders = [FlightRecorder(tmp_path, f"CA{n}") for n in range(BURST)]
    for n, recorder in enumerate(recorders):  # what a Twilio `start` records first
        recorder.event("start", stream_sid=f"MZ{n}", caller=None)
    held_ms = (time.perf_counter() - started) * 1000
    assert held_ms < 100, f"{BURST} call starts waited {held_ms:.0f} ms for their timelines"

    assert flush_timelines()
    for n, recorder in enumerate(recorders):
        recorder.close()
        events = read_timeline(tmp_path, f"CA{n}")
        assert events is not None and [e["event"] for e in events] == ["start"]
        assert events[0]["stream_sid"] == f"MZ{n}"


async def test_a_reader_sees_every_event_recorded_before_it_asked(tmp_path: Path) -> None:
    recorder = FlightRecorder(tmp_path, "CA-live")
    for turn in range(50):
        recorder.event("caller_said", text=f"line {turn}")
    events = read_timeline(tmp_path, "CA-live")  # the call is still going on
    assert events is not None and [e["text"] for e in events] == [f"line {n}" for n in range(50)]
    recorder.close()
    recorder.event("late", text="after the call")  # dropped, as before
    assert read_timeline(tmp_path, "CA-live") == events


def test_a_script_finds_the_file_once_it_closed_the_recorder(tmp_path: Path) -> None:
    recorder = FlightRecorder(tmp_path, "CA-script")
    recorder.event("twilio_status", status="completed")
    recorder.close()
    path = tmp_path / "calls" / "CA-script.jsonl"
    assert path.read_text(encoding="utf-8").count("\n") == 1
