"""LLMBrain: an OpenAI-compatible chat model with tools, behind the PlannerBrain interface.

Used when ``OPENAI_API_KEY`` or ``OPENAI_BASE_URL`` is set. Per caller turn:

1. The system message is rebuilt from ``prompts/system_prompt.md`` with the current
   PlannerState, the caller's memory, the buildings, the tour rules and the local time.
2. The model's reply is streamed; text is cut into sentences and each one is yielded the
   moment it ends, so speech starts on the first sentence.
3. Tool calls (``prompts/tools.yaml``, run by ``llm_tools.TourTools`` on the shared TourDesk)
   mutate the PlannerState; their results go back to the model, which continues.

The stream is read by a background task that feeds a queue, so the model keeps streaming
(and tools keep running) while the caller hears the first sentence. Any LLM failure (HTTP
error, timeout, a broken stream) is logged and the deterministic RulePlanner answers the turn
instead, so a call never goes silent. The greeting and silence prompts come from the
RulePlanner directly: they are instant, deterministic and already personalized.

Conversation history lives on the brain, not on the PlannerState (which must stay plain JSON):
a dict keyed by ``id(state)`` whose entries are dropped by ``weakref.finalize`` when the state
object is garbage collected. PlannerState is a mutable pydantic model and so unhashable, which
rules out a WeakKeyDictionary. If a state is restored from JSON, its history simply restarts:
the state itself and the memory context in the system prompt carry what matters.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import AsyncIterator, Callable, Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from openai import AsyncOpenAI

from app.domain import spoken
from app.domain.context import CallerContext
from app.domain.state import PlannerState
from app.domain.text import SentenceSplitter, clean_for_speech
from app.planner.llm_prompt import SystemPrompt
from app.planner.llm_tools import TourTools
from app.planner.prompts import Prompts
from app.planner.rules import RulePlanner
from app.planner.tour_desk import TourDesk
from app.settings import Settings

if TYPE_CHECKING:
    from openai.types.chat import ChatCompletionMessageParam, ChatCompletionToolParam

log = logging.getLogger(__name__)

PLACEHOLDER_API_KEY = "not-needed"  # local OpenAI-compatible servers often need no key
MAX_TOOL_ROUNDS = 6  # model calls per caller turn, tool round-trips included
MAX_HISTORY_MESSAGES = 60
_DONE = object()


class LLMTurnError(RuntimeError):
    """The model's answer was unusable (empty, or tools without end)."""


@dataclass
class Conversation:
    """The LLM's view of one conversation: the caller context and the message history."""

    context: CallerContext | None = None
    history: list[dict[str, Any]] = field(default_factory=list)

    def commit(self, messages: list[dict[str, Any]]) -> None:
        self.history.extend(messages)
        if len(self.history) > MAX_HISTORY_MESSAGES:
            del self.history[: len(self.history) - MAX_HISTORY_MESSAGES]
            # Never start on a tool result or an assistant message whose user turn is gone.
            while self.history and self.history[0]["role"] != "user":
                self.history.pop(0)


@dataclass
class _Turn:
    """What one turn produced so far."""

    spoken: list[str] = field(default_factory=list)  # sentences handed to the queue
    messages: list[dict[str, Any]] = field(default_factory=list)  # complete messages only


class LLMBrain:
    """The PlannerBrain that talks to an OpenAI-compatible chat-completions endpoint."""

    def __init__(
        self,
        settings: Settings,
        desk: TourDesk,
        prompts: Prompts,
        fallback: RulePlanner,
        client: AsyncOpenAI | None = None,
    ) -> None:
        self.settings = settings
        self.desk = desk
        self.prompts = prompts
        self.fallback = fallback
        self.model = settings.llm_model
        self.tools = TourTools(desk, prompts, settings.prompts_dir)
        self.system_prompt = SystemPrompt.load(settings.prompts_dir, desk.catalog, prompts)
        self._client = client
        self._client_loop: asyncio.AbstractEventLoop | None = None  # None: given, keep it
        self._conversations: dict[int, Conversation] = {}

    @property
    def client(self) -> AsyncOpenAI:
        """One client per event loop: pooled connections can't move between loops."""
        loop = asyncio.get_running_loop()
        if self._client is None or (
            self._client_loop is not None and self._client_loop is not loop
        ):
            self._client = AsyncOpenAI(
                api_key=self.settings.openai_api_key or PLACEHOLDER_API_KEY,
                base_url=self.settings.openai_base_url or None,
                timeout=self.settings.llm_timeout_s,
                max_retries=0,  # on a live call, the rule planner is a better retry
            )
            self._client_loop = loop
        return self._client

    # ------------------------------------------------------------------ PlannerBrain

    async def greet(self, state: PlannerState, context: CallerContext | None) -> AsyncIterator[str]:
        conversation = self.conversation(state)
        conversation.context = context
        sentences = self.fallback.greet(state, context)
        conversation.commit([{"role": "assistant", "content": " ".join(sentences)}])
        for sentence in _split(sentences):
            yield sentence

    async def respond(
        self, state: PlannerState, text: str, unsure: Collection[str] = ()
    ) -> AsyncIterator[str]:
        conversation = self.conversation(state)
        state.begin_turn()
        state.silences = 0
        queue: asyncio.Queue[Any] = asyncio.Queue()
        turn = _Turn()
        task = asyncio.create_task(self._run_turn(state, conversation, text, turn, queue))
        heard = 0
        try:
            while (item := await queue.get()) is not _DONE:
                heard += 1
                yield item
        finally:
            if not task.done():  # the caller barged in, or the consumer gave up
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                said = " ".join(turn.spoken[:heard])
                conversation.commit(
                    [{"role": "user", "content": text}]
                    + ([{"role": "assistant", "content": said}] if said else [])
                )

    async def on_silence(self, state: PlannerState) -> AsyncIterator[str]:
        sentences = self.fallback.on_silence(state)
        self.conversation(state).commit([{"role": "assistant", "content": " ".join(sentences)}])
        for sentence in _split(sentences):
            yield sentence

    # ------------------------------------------------------------------ history

    def conversation(self, state: PlannerState) -> Conversation:
        """This state's conversation, created on first use and dropped with the state."""
        key = id(state)
        conversation = self._conversations.get(key)
        if conversation is None:
            conversation = self._conversations[key] = Conversation()
            weakref.finalize(state, self._conversations.pop, key, None)
        return conversation

    # ------------------------------------------------------------------ one turn

    async def _run_turn(
        self,
        state: PlannerState,
        conversation: Conversation,
        text: str,
        turn: _Turn,
        queue: asyncio.Queue[Any],
    ) -> None:
        def say(sentence: str) -> None:
            turn.spoken.append(sentence)
            queue.put_nowait(sentence)

        user = {"role": "user", "content": text}
        try:
            await self._converse(state, conversation, user, turn, say)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # any failure: the rule planner answers instead
            log.warning(
                "LLM turn failed (%s: %s); the rule planner answers this turn",
                type(exc).__name__,
                exc,
            )
            fallback = self._fallback_respond(state, text)
            for sentence in fallback:
                say(sentence)
            said = " ".join(turn.spoken)
            conversation.commit([user, {"role": "assistant", "content": said}])
        else:
            conversation.commit([user, *turn.messages])
            spoken_text = " ".join(turn.spoken)
            questions = [s for s in turn.spoken if s.endswith("?")]
            state.update(
                awaiting=None,  # the rule planner's reading of short answers no longer applies
                last_reply=spoken_text,
                last_question=questions[-1] if questions else state.last_question,
            )
        finally:
            queue.put_nowait(_DONE)

    async def _converse(
        self,
        state: PlannerState,
        conversation: Conversation,
        user: dict[str, Any],
        turn: _Turn,
        say: Callable[[str], None],
    ) -> None:
        system = {
            "role": "system",
            "content": self.system_prompt.render(state, conversation.context, self.desk.now()),
        }
        for _ in range(MAX_TOOL_ROUNDS):
            messages = [system, *conversation.history, user, *turn.messages]
            content, tool_calls = await self._stream_reply(messages, say)
            assistant: dict[str, Any] = {"role": "assistant", "content": content or None}
            if tool_calls:
                assistant["tool_calls"] = tool_calls
            elif not content:
                raise LLMTurnError("the model returned neither text nor tool calls")
            results = []
            for call in tool_calls:
                function = call["function"]
                result = await self.tools.run(state, function["name"], function["arguments"])
                log.debug("tool %s(%s) -> %s", function["name"], function["arguments"], result)
                results.append({"role": "tool", "tool_call_id": call["id"], "content": result})
            turn.messages += [assistant, *results]
            if not tool_calls:
                return
            if state.ended and turn.spoken:
                return  # goodbye already said: hang up without another round-trip
        if state.ended:
            say(self._goodbye(state))
            return
        raise LLMTurnError(f"no answer after {MAX_TOOL_ROUNDS} model calls")

    async def _stream_reply(
        self, messages: list[dict[str, Any]], say: Callable[[str], None]
    ) -> tuple[str, list[dict[str, Any]]]:
        """Stream one model reply: say sentences as they end, collect the tool calls."""
        splitter = SentenceSplitter()
        text: list[str] = []
        calls: dict[int, dict[str, Any]] = {}
        stream = await self.client.chat.completions.create(
            model=self.model,
            # Our messages and tool definitions are plain JSON dicts of the shapes these name.
            messages=cast("list[ChatCompletionMessageParam]", messages),
            tools=cast("list[ChatCompletionToolParam]", self.tools.definitions),
            stream=True,
        )
        async with stream:
            async for chunk in stream:
                for choice in chunk.choices:
                    delta = choice.delta
                    if delta.content:
                        text.append(delta.content)
                        for sentence in splitter.feed(delta.content):
                            say(sentence)
                    for part in delta.tool_calls or ():
                        call = calls.setdefault(
                            part.index,
                            {
                                "id": "",
                                "type": "function",
                                "function": {"name": "", "arguments": ""},
                            },
                        )
                        if part.id:
                            call["id"] = part.id
                        if part.function is not None:
                            call["function"]["name"] += part.function.name or ""
                            call["function"]["arguments"] += part.function.arguments or ""
        for sentence in splitter.flush():
            say(sentence)
        tool_calls = [calls[i] for i in sorted(calls)]
        for number, call in enumerate(tool_calls):
            call["id"] = call["id"] or f"call_{number}"
        return clean_for_speech("".join(text)), tool_calls

    # ------------------------------------------------------------------ fallbacks

    def _fallback_respond(self, state: PlannerState, text: str) -> list[str]:
        """The rule planner's reply, counted as this same turn, keeping what tools changed."""
        if state.ended:  # end_call ran before the failure: just say goodbye
            return [self._goodbye(state)]
        changed = list(state.changed)
        state.turns -= 1  # RulePlanner.respond starts the turn again
        sentences = _split(self.fallback.respond(state, text))
        state.changed = changed + [name for name in state.changed if name not in changed]
        return sentences

    def _goodbye(self, state: PlannerState) -> str:
        name = spoken.first_name(state.caller_name)
        booking = state.booking
        if booking is not None and booking.status == "booked":
            key = "conversation.goodbye_booked" if name else "conversation.goodbye_booked_anonymous"
            return self.prompts.say(key, name=name, when=spoken.when(booking.start))
        if name:
            return self.prompts.say("conversation.goodbye", name=name)
        return self.prompts.say("conversation.goodbye_anonymous")


def _split(parts: list[str]) -> list[str]:
    """The rule planner's reply parts as sentences (the same split AgentPlanner uses)."""
    splitter = SentenceSplitter()
    sentences = [s for part in parts for s in splitter.feed(part.strip() + " ")]
    return sentences + splitter.flush()
