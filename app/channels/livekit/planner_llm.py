"""Tourline's planner as LiveKit's LLM step.

LiveKit decides when the caller has finished a turn, cancels replies on barge-in and
measures time-to-first-token; all it needs from us is an ``llm.LLM`` whose stream yields
the reply text. ``PlannerLLM`` is that LLM: it takes the caller's words LiveKit added to
the chat since the planner last answered and streams the planner's sentences as chunks.
Nothing in the chat context is sent anywhere: the planner keeps its own state.

Replies that LiveKit would compute speculatively must stay off (``preemptive_generation``),
because every planner turn changes the conversation's state and may book a tour.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol

from livekit.agents import llm
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, NOT_GIVEN, APIConnectOptions
from livekit.agents.utils import shortuuid

__all__ = ["PlannerLLM", "ReplySource"]


class ReplySource(Protocol):
    """Who answers a caller turn: in the worker, the ``TourAgent`` and its planner."""

    def reply_to(self, text: str) -> AsyncIterator[str]:
        """Text pieces to speak, ready to be concatenated as they arrive."""
        ...


class PlannerLLM(llm.LLM):
    """An ``llm.LLM`` that answers with the conversation's planner instead of a model."""

    def __init__(self, source: ReplySource) -> None:
        super().__init__()
        self.source = source
        self._answered: set[str] = set()  # ids of user messages the planner has heard

    @property
    def model(self) -> str:
        return "tourline-planner"

    @property
    def provider(self) -> str:
        return "tourline"

    def chat(
        self,
        *,
        chat_ctx: llm.ChatContext,
        tools: list[llm.Tool] | None = None,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
        parallel_tool_calls: Any = NOT_GIVEN,
        tool_choice: Any = NOT_GIVEN,
        extra_kwargs: Any = NOT_GIVEN,
    ) -> PlannerStream:
        return PlannerStream(self, chat_ctx=chat_ctx, tools=tools or [], conn_options=conn_options)

    def take_unheard(self, chat_ctx: llm.ChatContext) -> str:
        """The caller's messages the planner has not answered yet, joined, marked answered.

        Usually one message; more when LiveKit cancelled a reply before the planner saw
        the turn (the caller kept talking), so no words are lost or answered twice.
        """
        texts: list[str] = []
        for item in chat_ctx.items:
            if not isinstance(item, llm.ChatMessage) or item.role != "user":
                continue
            if item.id in self._answered:
                continue
            self._answered.add(item.id)
            text = (item.text_content or "").strip()
            if text:
                texts.append(text)
        return " ".join(texts)


class PlannerStream(llm.LLMStream):
    """One reply: the planner's sentences as assistant chunks."""

    _llm: PlannerLLM

    async def _run(self) -> None:
        text = self._llm.take_unheard(self._chat_ctx)
        if not text:
            return  # nothing new from the caller (e.g. a bare generate_reply): say nothing
        request_id = shortuuid("planner_")
        async for piece in self._llm.source.reply_to(text):
            delta = llm.ChoiceDelta(role="assistant", content=piece)
            self._event_ch.send_nowait(llm.ChatChunk(id=request_id, delta=delta))
