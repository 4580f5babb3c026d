"""PlannerLLM: the planner answers each caller message once, through LiveKit's LLM stream."""

from __future__ import annotations

from collections.abc import AsyncIterator

from livekit.agents import llm

from app.channels.livekit.planner_llm import PlannerLLM


class Echo:
    """A reply source that repeats what it heard, in two pieces."""

    def __init__(self) -> None:
        self.heard: list[str] = []

    async def _reply(self, text: str) -> AsyncIterator[str]:
        self.heard.append(text)
        yield "You said:"
        yield f" {text}."

    def reply_to(self, text: str) -> AsyncIterator[str]:
        return self._reply(text)


async def collect(model: PlannerLLM, chat: llm.ChatContext) -> str:
    async with model.chat(chat_ctx=chat) as stream:
        return "".join([c.delta.content or "" async for c in stream if c.delta])


async def test_streams_the_reply_to_the_new_user_message():
    source = Echo()
    model = PlannerLLM(source)
    chat = llm.ChatContext.empty()
    chat.add_message(role="assistant", content="May I have your name?")
    chat.add_message(role="user", content="Dana")
    assert await collect(model, chat) == "You said: Dana."

    chat.add_message(role="assistant", content="You said: Dana.")
    chat.add_message(role="user", content="Hudson 360")
    assert await collect(model, chat) == "You said: Hudson 360."
    assert source.heard == ["Dana", "Hudson 360"]


async def test_unanswered_messages_are_joined_and_nothing_new_says_nothing():
    source = Echo()
    model = PlannerLLM(source)
    chat = llm.ChatContext.empty()
    chat.add_message(role="user", content="a two bedroom")
    chat.add_message(role="user", content="at Riverview")
    assert await collect(model, chat) == "You said: a two bedroom at Riverview."
    assert await collect(model, chat) == ""
    assert source.heard == ["a two bedroom at Riverview"]
