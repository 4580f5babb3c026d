"""Notices when nobody has spoken for a while, so the planner can check in.

LiveKit's own ``user_away_timeout`` fires once and stays "away" until the caller speaks
again, but the planner's silence handling is a ladder (check in, ask again, then say
goodbye), so it needs a timer that re-arms every time the agent goes back to listening.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from livekit.agents import AgentSession, AgentStateChangedEvent, CloseEvent, UserStateChangedEvent

__all__ = ["SilenceWatch"]

_QUIET_USER_STATES = ("listening", "away")


class SilenceWatch:
    """Calls ``on_silence`` after ``timeout_s`` with the agent listening and the caller quiet."""

    def __init__(self, timeout_s: float, on_silence: Callable[[], None]) -> None:
        self.timeout_s = timeout_s
        self.on_silence = on_silence
        self._agent_state = "initializing"
        self._user_state = "listening"
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False

    def attach(self, session: AgentSession) -> SilenceWatch:
        self._agent_state = session.agent_state
        self._user_state = session.user_state
        session.on("agent_state_changed", self._on_agent_state)
        session.on("user_state_changed", self._on_user_state)
        session.on("close", self._on_close)
        self._rearm()
        return self

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _on_agent_state(self, ev: AgentStateChangedEvent) -> None:
        self._agent_state = ev.new_state
        self._rearm()

    def _on_user_state(self, ev: UserStateChangedEvent) -> None:
        self._user_state = ev.new_state
        if ev.new_state == "away" and ev.old_state == "listening":
            return  # LiveKit's own away timer: still quiet, keep our countdown going
        self._rearm()

    def _on_close(self, ev: CloseEvent) -> None:
        self._closed = True
        self.cancel()

    def _rearm(self) -> None:
        self.cancel()
        quiet = self._agent_state == "listening" and self._user_state in _QUIET_USER_STATES
        if quiet and not self._closed:
            self._timer = asyncio.get_running_loop().call_later(self.timeout_s, self._fire)

    def _fire(self) -> None:
        self._timer = None
        if not self._closed:
            self.on_silence()
