"""What memory hands the planner before the first word of a conversation."""

from __future__ import annotations

from dataclasses import dataclass, field

from app.domain.state import Booking, PlannerState


@dataclass
class CallerContext:
    """A caller's remembered context, loaded once at the start of a conversation."""

    caller_id: str
    name: str | None = None
    state: PlannerState | None = None  # the latest snapshot from an earlier conversation
    memories: list[str] = field(default_factory=list)
    last_summary: str | None = None
    upcoming_booking: Booking | None = None

    @property
    def is_returning(self) -> bool:
        return bool(self.name or self.state or self.memories or self.upcoming_booking)

    def prefilled_state(self) -> PlannerState:
        """A fresh PlannerState carrying over what the caller told us before."""
        fresh = PlannerState()
        if self.state is not None:
            fresh = PlannerState.model_validate(self.state.caller_facts())
            if self.state.awaiting != "confirm":
                fresh.tour_time = None  # a time asked for last call is stale now...
            # ...unless the call ended on "Shall I book it?" (cut off, or "let me check"):
            # the planner offers it again if it is still ahead.
            if fresh.booking and fresh.booking.status != "booked":
                fresh.booking = None
        if self.name and not fresh.caller_name:
            fresh.caller_name = self.name
        if self.upcoming_booking is not None:
            fresh.booking = self.upcoming_booking
        elif fresh.booking is not None:
            fresh.booking = None  # only a booking the store confirms as upcoming counts
        fresh.changed = []
        return fresh
