"""The LiveKit ``Agent`` for one caller: remembers them, greets them, lets the planner talk.

On entering the session it loads the caller's memory (before saying a word), starts the
conversation's planner, follows the session into memory (``CallRecord``) and speaks the
planner's greeting. Every later reply comes through LiveKit's LLM step (``PlannerLLM``),
so turn detection, interruptions and metrics stay LiveKit's. When the planner ends the
conversation, the session is shut down as soon as the goodbye has been spoken.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from livekit.agents import Agent, AgentSession, SpeechCreatedEvent
from livekit.agents.voice import SpeechHandle

from app.channels.livekit.call_record import CHANNEL, CallRecord
from app.channels.livekit.planner_llm import PlannerLLM
from app.channels.livekit.silence import SilenceWatch
from app.conversation import Conversation, ConversationMemory
from app.planner.agent_planner import AgentPlanner, PlannerKit

__all__ = ["TourAgent"]

log = logging.getLogger("tourline.livekit")

INSTRUCTIONS = "Tourline's planner writes every reply; this agent has no prompt."
"""LiveKit requires instructions; the planner (rules or its own LLM) never reads them."""


class TourAgent(Agent):
    """One conversation: the caller's memory, their planner, and when to hang up."""

    def __init__(
        self,
        *,
        kit: PlannerKit,
        caller_id: str,
        call_id: str,
        memory: ConversationMemory | None = None,
        silence_timeout_s: float | None = None,
        context_timeout_s: float = 0.5,
    ) -> None:
        """``silence_timeout_s``: check in after this long without a word (None: never)."""
        super().__init__(instructions=INSTRUCTIONS, llm=PlannerLLM(self))
        self.kit = kit
        self.caller_id = caller_id
        self.call_id = call_id
        self.memory = memory
        self.silence_timeout_s = silence_timeout_s
        self.context_timeout_s = context_timeout_s
        self.conversation: Conversation | None = None
        self.record: CallRecord | None = None
        self.last_reply = ""  # the whole of the reply being spoken, for memory
        self._ready = asyncio.Event()
        self._silence: SilenceWatch | None = None
        self._session: AgentSession | None = None  # kept: ``self.session`` raises once we exit

    @property
    def planner(self) -> AgentPlanner | None:
        """The conversation's planner, once the caller's memory is loaded."""
        return self.conversation.planner if self.conversation is not None else None

    async def on_enter(self) -> None:
        self.conversation = conversation = await Conversation.open(
            self.kit,
            self.memory,
            caller_id=self.caller_id,
            call_id=self.call_id,
            channel=CHANNEL,
            context_timeout_s=self.context_timeout_s,
        )
        self._ready.set()
        session = self._session = self.session
        self.record = CallRecord(conversation, full_reply=lambda: self.last_reply).attach(session)
        session.on("speech_created", self._on_speech_created)
        if self.silence_timeout_s:
            self._silence = SilenceWatch(self.silence_timeout_s, self._on_silence).attach(session)
        session.say(self._spoken(conversation.greet()))

    async def on_exit(self) -> None:
        if self._silence is not None:
            self._silence.cancel()

    def reply_to(self, text: str) -> AsyncIterator[str]:
        """The planner's answer to one caller turn (``PlannerLLM`` streams it to LiveKit)."""
        return self._answer(text)

    async def _answer(self, text: str) -> AsyncIterator[str]:
        await self._ready.wait()  # a turn that beats the greeting waits for the planner
        assert self.conversation is not None
        async for piece in self._spoken(self.conversation.respond(text)):
            yield piece

    async def _spoken(self, sentences: AsyncIterator[str]) -> AsyncIterator[str]:
        """Sentences as text pieces to concatenate; keeps the whole reply in ``last_reply``."""
        said: list[str] = []
        self.last_reply = ""
        async for sentence in sentences:
            yield sentence if not said else " " + sentence
            said.append(sentence)
            self.last_reply = " ".join(said)

    def _on_silence(self) -> None:
        conversation = self.conversation
        if conversation is None or conversation.ended or self._session is None:
            return
        self._session.say(self._spoken(conversation.on_silence()))

    def _on_speech_created(self, ev: SpeechCreatedEvent) -> None:
        ev.speech_handle.add_done_callback(self._after_speech)

    def _after_speech(self, handle: SpeechHandle) -> None:
        """The planner said goodbye and it has been played out: end the session."""
        if self.conversation is not None and self.conversation.ended:
            log.info("call %s: conversation over, closing the session", self.call_id)
            if self._silence is not None:
                self._silence.cancel()
            if self._session is not None:
                self._session.shutdown()
