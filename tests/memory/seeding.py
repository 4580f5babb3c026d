"""Two callers with everything memory keeps about them, for the API and CLI tests.

Dana phones twice (exchanges, snapshots, facts, call summaries, a booking, call timelines);
Omar chats once. Their words are distinct, so a leak of one into the other's data shows.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from app.domain.state import Pet, PlannerState
from app.logging.flight_recorder import FlightRecorder
from app.memory.service import MemoryService

DANA_RAW = "(415) 555-0101"
DANA = "+14155550101"
OMAR = "omar.quist@example.com"
DANA_CALLS = ("CA-dana-1", "CA-dana-2")
OMAR_CALL = "chat-omar-1"
DANA_WORDS = ("zyxwarble", "hudson", "cats", "2,500")
OMAR_WORDS = ("omar", "quist", "riverview", "dog")


def dana_state(booking: Any = None) -> PlannerState:
    state = PlannerState()
    state.update(
        caller_name="Dana Zyxwarble",
        property_id="hudson-360",
        unit_size="1br",
        pets=[Pet(kind="cat", count=2)],
        budget=2500,
    )
    if booking is not None:
        state.update(booking=booking)
    return state


def omar_state() -> PlannerState:
    state = PlannerState()
    state.update(caller_name="Omar Quist", property_id="riverview-lofts", pets=[Pet(kind="dog")])
    return state


def converse(memory: MemoryService, caller: str, call_id: str, channel: str, state) -> None:
    memory.start_call(caller, call_id, channel)
    for i in range(4):
        role = "agent" if i % 2 == 0 else "user"
        memory.record_exchange(caller, call_id, channel, role, f"line {i} of {call_id}")
    memory.save_snapshot(caller, call_id, state)
    memory.end_call(caller, call_id, state)


def seed(memory: MemoryService, data_dir: Path) -> str:
    """Dana (phone, two calls, a booking, timelines) and Omar (chat); returns Dana's code."""
    start = (datetime.now(UTC) + timedelta(days=3)).replace(minute=0, second=0, microsecond=0)
    booking = memory.bookings.book("hudson-360", "virtual", start, DANA, "Dana Zyxwarble")
    for call_id in DANA_CALLS:
        recorder = FlightRecorder(data_dir, call_id)
        recorder.event("start", caller=DANA)
        recorder.close()
        converse(memory, DANA_RAW, call_id, "phone", dana_state(booking))
    recorder = FlightRecorder(data_dir, OMAR_CALL)
    recorder.event("start", caller=OMAR)
    recorder.close()
    converse(memory, "Omar.Quist@Example.com ", OMAR_CALL, "chat", omar_state())
    assert memory.flush(120)
    return booking.confirmation_code
