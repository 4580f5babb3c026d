"""A call's timeline is written off the event loop (issue 12, item 6).

Each call start made its FlightRecorder on the event loop, which created the timeline's
folder and file there; on a busy disk that is milliseconds per call, and 30 calls starting
at once held every other call's audio for all of them. The loop now only queues lines; one
writer thread creates and appends the files, and readers still see every line recorded
before they asked.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from app.logging.flight_recorder import FlightRecorder, flush_timelines, read_timeline

BURST = 30


@pytest.fixture
def disk_threads(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Every folder created and file opened from now on, with the thread that did it."""
    seen: list[tuple[str, int]] = []
    real_mkdir, real_open = Path.mkdir, Path.open

    def mkdir(self: Path, *args: object, **kwargs: object) -> None:
        seen.append((f"mkdir {self}", threading.get_ident()))
        real_mkdir(self, *args, **kwargs)  # type: ignore[arg-type]

    def open_(self: Path, *args: object, **kwargs: object) -> object:
        seen.append((f"open {self}", threading.get_ident()))
        return real_open(self, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(Path, "mkdir", mkdir)
    monkeypatch.setattr(Path, "open", open_)
    return seen


async def test_thirty_call_starts_leave_the_disk_to_the_writer_thread(
    tmp_path: Path, disk_threads: list[tuple[str, int]]
) -> None:
    """Not timed (tests do not time things): no timeline folder or file was touched on the
    loop's thread, so a slow disk is never the loop's; bench/call_starts.py measures what
    the running calls hear."""
    recorders = [FlightRecorder(tmp_path, f"CA{n}") for n in range(BURST)]
    for n, recorder in enumerate(recorders):  # what a Twilio `start` records first
        recorder.event("start", stream_sid=f"MZ{n}", caller=None)
    assert flush_timelines()
    # Ours only (the writer thread is the process's), and before the reads below.
    written = [(what, thread) for what, thread in disk_threads if str(tmp_path) in what]

    opened = [what for what, _ in written if what.startswith("open ")]
    assert len(opened) == BURST  # each timeline was created, once
    loop_thread = threading.get_ident()
    on_loop = [what for what, thread in written if thread == loop_thread]
    assert not on_loop, f"the event loop did disk work for the timelines: {on_loop[:3]}"

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
