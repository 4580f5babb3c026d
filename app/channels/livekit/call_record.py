"""Writes a LiveKit conversation into caller memory as it happens.

The same ``MemoryService`` the Twilio server uses: every exchange is appended durably the
moment LiveKit commits it to the chat (``conversation_item_added``: after the caller's turn
is final, after an agent reply is played or cut off), the PlannerState is snapshotted after
each agent reply, and the call is ended (final snapshot, consolidation queued) when the
session closes. A failing memory never stops the call.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from livekit.agents import AgentSession, CloseEvent, ConversationItemAddedEvent, llm

from app.domain.state import PlannerState
from app.memory.service import MemoryService

__all__ = ["CHANNEL", "CallRecord"]

log = logging.getLogger("tourline.livekit")

CHANNEL = "livekit"


class CallRecord:
    """One call's writes into memory, driven by the session's events."""

    def __init__(
        self,
        memory: MemoryService,
        caller_id: str,
        call_id: str,
        *,
        state: Callable[[], PlannerState | None],
        full_reply: Callable[[], str],
    ) -> None:
        """``state``: the planner's current state; ``full_reply``: the whole reply being spoken.

        ``full_reply`` matters when the caller cuts the agent off: LiveKit keeps only what
        was heard, memory keeps both (as the phone loop does).
        """
        self.memory = memory
        self.caller_id = caller_id
        self.call_id = call_id
        self._state = state
        self._full_reply = full_reply
        self._session: AgentSession | None = None
        self._ended = False

    def attach(self, session: AgentSession) -> CallRecord:
        """Open the call in the log and follow the session until it closes."""
        self._write("start_call", self.caller_id, self.call_id, CHANNEL)
        session.on("conversation_item_added", self._on_item)
        session.on("close", self._on_close)
        self._session = session
        return self

    def _on_item(self, ev: ConversationItemAddedEvent) -> None:
        item = ev.item
        if not isinstance(item, llm.ChatMessage) or item.role not in ("user", "assistant"):
            return
        text = (item.text_content or "").strip()
        if item.role == "user":
            if text:
                self._exchange("user", text)
            return
        if item.interrupted:
            full = self._full_reply().strip() or text
            if full:
                self._exchange("agent", full, interrupted=True, heard=text)
        elif text:
            self._exchange("agent", text)
        self.snapshot()

    def snapshot(self) -> None:
        """Store the planner's state now (repeats of an unchanged state are skipped)."""
        state = self._state()
        if state is not None:
            self._write("save_snapshot", self.caller_id, self.call_id, state)

    def end(self) -> None:
        """Final snapshot, call marked ended, consolidation queued; once."""
        if self._ended:
            return
        self._ended = True
        self._write("end_call", self.caller_id, self.call_id, self._state())
        if self._session is not None:
            self._session.off("conversation_item_added", self._on_item)
            self._session.off("close", self._on_close)

    def _on_close(self, ev: CloseEvent) -> None:
        self.end()

    def _exchange(self, role: str, text: str, **details: Any) -> None:
        self._write("record_exchange", self.caller_id, self.call_id, CHANNEL, role, text, **details)

    def _write(self, method: str, *args: Any, **kwargs: Any) -> None:
        try:
            getattr(self.memory, method)(*args, **kwargs)
        except Exception:
            log.warning("memory %s failed for call %s", method, self.call_id, exc_info=True)
