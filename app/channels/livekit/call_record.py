"""Follows a LiveKit session's events into the caller's Conversation.

The same ``Conversation`` the phone and avatar loop use: every exchange is kept the moment
LiveKit commits it to the chat (``conversation_item_added``: after the caller's turn is
final, after an agent reply is played or cut off), the PlannerState is snapshotted after
each agent reply, and the call is ended when the session closes.
"""

from __future__ import annotations

from collections.abc import Callable

from livekit.agents import AgentSession, CloseEvent, ConversationItemAddedEvent, llm

from app.conversation import Conversation

__all__ = ["CHANNEL", "CallRecord"]

CHANNEL = "livekit"


class CallRecord:
    """One call's session events, turned into the conversation's memory writes."""

    def __init__(self, conversation: Conversation, *, full_reply: Callable[[], str]) -> None:
        """``full_reply``: the whole reply being spoken. It matters when the caller cuts
        the agent off: LiveKit keeps only what was heard, memory keeps both."""
        self.conversation = conversation
        self._full_reply = full_reply
        self._session: AgentSession | None = None

    def attach(self, session: AgentSession) -> CallRecord:
        """Follow the session until it closes."""
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
            self.conversation.caller_said(text)
            return
        if item.interrupted:
            self.conversation.agent_said(self._full_reply().strip() or text, heard=text)
        else:
            self.conversation.agent_said(text)
        self.conversation.snapshot()

    def end(self) -> None:
        """Final snapshot, call marked ended, consolidation queued; once."""
        self.conversation.end()
        if self._session is not None:
            self._session.off("conversation_item_added", self._on_item)
            self._session.off("close", self._on_close)
            self._session = None

    def _on_close(self, ev: CloseEvent) -> None:
        self.end()
