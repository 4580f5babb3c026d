"""Text threads (SMS, WhatsApp): the same planner and memory as a call, one message at a time.

A text thread has no call to hang up, so a **text session** stands in for one: the sender's
messages on one channel belong to one session (a row in ``calls``, channel ``sms`` or
``whatsapp``) while they keep coming within ``SESSION_IDLE`` of each other. Nothing about a
session lives in this process between messages: each message reads the session back from
the database (its newest PlannerState snapshot), so it works across restarts and on several
replicas sharing PostgreSQL.

One inbound message is one turn:

1. find the session: the sender's latest call on this channel, if its last activity is
   recent, the agent has not said goodbye, and the caller's newest snapshot is still this
   session's (a phone call since then had the last word: a new session starts from it);
2. a new session loads the caller's memory like a call (``MemoryService.load_context``) and
   runs the greeting silently, so the planner stands where a caller's first turn would, but
   the greeting is not sent: the texter spoke first;
3. the message is recorded (user exchange), the planner answers, the reply as sent is
   recorded (agent exchange) and the state snapshotted; a goodbye ends the session.

An idle session is ended by :meth:`TextSessions.end_idle` (the server runs it every minute;
``MemoryService`` also ends one left open at its next start), which queues its summary like
a call's end. One turn per sender at a time: an asyncio lock here, and on PostgreSQL an
advisory lock, so two replicas never answer the same sender from the same state at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, Engine, func, select

from app.conversation import Conversation
from app.domain import spoken
from app.domain.identity import masked
from app.domain.state import PlannerState
from app.memory.service import ABANDON_AFTER, MemoryService
from app.planner.agent_planner import PlannerKit
from app.planner.rules import CONFIRMATION_SETTLED
from app.stores.conversations import TEXT_CHANNELS, CallRecord

log = logging.getLogger("tourline.text")

SESSION_IDLE = ABANDON_AFTER
"""A text session this quiet is over (30 min): the same rule memory applies at start-up."""
CONTEXT_TIMEOUT_S = 5.0
"""A text waits longer for memory than a ringing call (Twilio allows 15 s per webhook)."""
LOCK_TIMEOUT_S = 10.0
_POLL_S = 0.05
_SINGLE_KEY = re.compile(r"^[0-9*#]$")
_SAFE_ID = re.compile(r"^[A-Za-z0-9]{1,64}$")
_SPELLED_CODE = re.compile(r"\b([A-Z0-9]{2,12}): that's ((?:[A-Z0-9], )+[A-Z0-9])\b")


class SenderBusyError(TimeoutError):
    """Another turn of this sender held the lock too long."""


def for_reading(reply: str, replacements: tuple[tuple[str, str], ...] = ()) -> str:
    """A reply written for the ear, made for the eye: the confirmation code once, not
    spelled letter by letter, and keypad wording turned into "reply 1"."""

    def code_once(match: re.Match[str]) -> str:
        code, spelled = match.group(1), match.group(2)
        return code if spoken.spell(code) == spelled else match.group(0)

    text = _SPELLED_CODE.sub(code_once, reply)
    for said, written in replacements:
        text = text.replace(said, written)
    return text


# How people write in texts, in the words the planner reads (which were tuned on speech,
# where nobody says "fri" or "u"). Only the planner sees the expansion; memory keeps the text.
_SHORTHAND = {
    "tmrw": "tomorrow",
    "tmr": "tomorrow",
    "tmrow": "tomorrow",
    "2moro": "tomorrow",
    "2morrow": "tomorrow",
    "u": "you",
    "ur": "your",
    "pls": "please",
    "plz": "please",
    "thx": "thanks",
    "thnx": "thanks",
    "ty": "thank you",
    "im": "i'm",
    "appt": "appointment",
    "nxt": "next",
}
_SHORTHAND_WORD = re.compile(
    r"(?<![\w'])(" + "|".join(sorted(_SHORTHAND, key=len, reverse=True)) + r")(?![\w'])",
    re.IGNORECASE,
)
_DAYS = {
    "mon": "monday",
    "tue": "tuesday",
    "tues": "tuesday",
    "wed": "wednesday",
    "thu": "thursday",
    "thur": "thursday",
    "thurs": "thursday",
    "fri": "friday",
    "sat": "saturday",
    "sun": "sunday",
}
_PLAIN_WORDS = {"mon", "wed", "sat", "sun"}  # also words: a day only beside a day's cue
_DAY_WORD = re.compile(
    r"(?<![\w'])(?P<pre>(?:on|this|next|to|for|by|until|till|coming)\s+)?"
    r"(?P<day>" + "|".join(sorted(_DAYS, key=len, reverse=True)) + r")\.?(?![\w'])"
    r"(?P<post>\s*(?:at\b|@|\d|morning|afternoon|evening|night))?",
    re.IGNORECASE,
)
_AT = re.compile(r"(?:(?<=\s)|^)@\s*(?=\d|[^\W\d_])")  # "Sat @ 11", not an address
_WHOLE_REPLY = {
    "y": "yes",
    "ya": "yes",
    "yea": "yes",
    "k": "ok",
    "kk": "ok",
    "n": "no",
    "nah": "no",
}
_NAMES_INTRO = re.compile(r"^\s*name'?s\s+", re.IGNORECASE)  # "name's Kim Lee"


def _day(match: re.Match[str]) -> str:
    day = match.group("day").lower()
    if day in _PLAIN_WORDS and not (match.group("pre") or match.group("post")):
        return match.group(0)  # "does it get sun?"
    return (match.group("pre") or "") + _DAYS[day] + (match.group("post") or "")


def expand_shorthand(text: str) -> str:
    """Texting shorthand as the planner understands it: "move it to fri @ 3pm" -> "move it
    to friday at 3pm", a lone "y" -> "yes", "name's Kim Lee" -> "my name is Kim Lee"."""
    whole = text.strip().strip(".!").lower()
    if whole in _WHOLE_REPLY:
        return _WHOLE_REPLY[whole]
    text = _NAMES_INTRO.sub("my name is ", text)
    text = _DAY_WORD.sub(_day, text)
    text = _AT.sub("at ", text)
    return _SHORTHAND_WORD.sub(lambda m: _SHORTHAND[m.group(1).lower()], text)


@dataclass(frozen=True)
class TextTurn:
    """What one inbound message got."""

    reply: str
    call_id: str
    resumed: bool  # the message continued an open session
    ended: bool  # the agent said goodbye: the next message starts a new session


class SenderLocks:
    """One turn per sender at a time, in this process and (on PostgreSQL) across replicas."""

    def __init__(self, engine: Engine | None) -> None:
        self._engine = (
            engine if engine is not None and engine.dialect.name == "postgresql" else None
        )
        self._local: dict[str, asyncio.Lock] = {}

    @contextlib.asynccontextmanager
    async def hold(self, sender: str, timeout_s: float = LOCK_TIMEOUT_S) -> AsyncIterator[None]:
        """Hold ``sender``'s lock; :class:`SenderBusyError` after ``timeout_s``."""
        lock = self._local.setdefault(sender, asyncio.Lock())
        deadline = time.monotonic() + timeout_s
        try:
            async with asyncio.timeout(timeout_s):
                await lock.acquire()
        except TimeoutError:
            raise SenderBusyError(sender) from None
        conn: Connection | None = None
        try:
            if self._engine is not None:
                conn = await asyncio.to_thread(self._acquire_shared, sender, deadline)
            yield
        finally:
            if conn is not None:
                await asyncio.to_thread(_release_shared, conn, sender)
            lock.release()
            if not lock.locked() and self._local.get(sender) is lock:
                del self._local[sender]  # nobody waits: keep one lock per busy sender only

    def _acquire_shared(self, sender: str, deadline: float) -> Connection:
        assert self._engine is not None
        conn = self._engine.connect()
        try:
            while not conn.scalar(select(func.pg_try_advisory_lock(_lock_key(sender)))):
                if time.monotonic() >= deadline:
                    raise SenderBusyError(sender)
                time.sleep(_POLL_S)  # another replica is answering this sender
            conn.commit()  # the lock is the session's; end the implicit transaction
        except BaseException:
            conn.close()
            raise
        return conn


def _lock_key(sender: str) -> object:
    # Not the key memory's writes share (their caller_id hash): ours is exclusive.
    return func.hashtextextended("tourline-text-session:" + sender, 0)


def _release_shared(conn: Connection, sender: str) -> None:
    try:
        conn.scalar(select(func.pg_advisory_unlock(_lock_key(sender))))
        conn.commit()
    except Exception:
        log.warning("could not release the text lock of %s", masked(sender), exc_info=True)
        conn.invalidate()  # closing the session releases the lock on the server
    finally:
        conn.close()


@dataclass
class _Session:
    call_id: str
    state: PlannerState | None  # None: a new session (load memory, greet silently)


class TextSessions:
    """Text conversations keyed by sender and channel; state in the database only."""

    def __init__(
        self,
        planners: Callable[[], PlannerKit],
        memory: MemoryService | None,
        *,
        idle: timedelta = SESSION_IDLE,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        replacements: tuple[tuple[str, str], ...] = (),
    ) -> None:
        """``planners``: the process's planner kit, asked for at each message (the server
        loads it after it binds)."""
        self._planners = planners
        self.memory = memory
        self.idle = idle
        self._clock = clock
        self._replacements = replacements
        self.locks = SenderLocks(memory.engine if memory is not None else None)

    async def exchange(
        self,
        caller_id: str,
        channel: str,
        text: str,
        *,
        message_id: str | None = None,
        fallback: str,
    ) -> TextTurn:
        """Answer one message from ``caller_id`` (E.164) on ``channel``.

        A planner failure is logged and answered with ``fallback`` (recorded as sent);
        :class:`SenderBusyError` if the sender's previous message is still being answered."""
        if channel not in TEXT_CHANNELS:
            raise ValueError(f"not a text channel: {channel!r}")
        async with self.locks.hold(caller_id):
            session = await asyncio.to_thread(self._find, caller_id, channel)
            call_id = session.call_id if session else _new_call_id(channel, message_id)
            try:
                return await self._turn(caller_id, channel, call_id, session, text, fallback)
            finally:
                if self.memory is not None:
                    self.memory.release_call(call_id)  # the next message may land elsewhere

    async def _turn(
        self,
        caller_id: str,
        channel: str,
        call_id: str,
        session: _Session | None,
        text: str,
        fallback: str,
    ) -> TextTurn:
        kit = self._planners()
        resumed = session is not None and session.state is not None
        if session is not None and session.state is not None:
            planner = kit.conversation(caller_id, None)
            planner.state = session.state
        else:
            context = None
            if self.memory is not None:
                context = await self.memory.aload_context(caller_id, CONTEXT_TIMEOUT_S)
            planner = kit.conversation(caller_id, context)
        conversation = Conversation(
            planner, self.memory, call_id=call_id, channel=channel, caller_id=caller_id
        )
        failed = False
        try:
            if not resumed:
                _ = [sentence async for sentence in conversation.greet()]
                _greeting_unsent(planner.state)
                _confirmation_in_thread(planner.state, kit.desk.offered)
            await asyncio.to_thread(conversation.caller_said, text)
            if _SINGLE_KEY.match(text) and planner.takes_single_key:
                stream = conversation.respond_dtmf(text)  # "reply 1 for 21 West End"
            else:
                stream = conversation.respond(expand_shorthand(text))
            reply = for_reading(" ".join([s async for s in stream]), self._replacements)
        except Exception:
            log.exception("text session %s: the planner failed; sending the fallback", call_id)
            reply, failed = fallback, True
        ended = conversation.ended and not failed
        await asyncio.to_thread(self._keep, conversation, reply, snapshot=not failed)
        if not reply:
            reply = fallback
        return TextTurn(reply=reply, call_id=call_id, resumed=resumed, ended=ended)

    @staticmethod
    def _keep(conversation: Conversation, reply: str, *, snapshot: bool) -> None:
        conversation.agent_said(reply)
        if snapshot:
            conversation.snapshot()
        if conversation.ended:
            conversation.end()

    def _find(self, caller_id: str, channel: str) -> _Session | None:
        """The sender's open session on ``channel`` (see the module docstring), or None;
        a session found over is ended on the way."""
        if self.memory is None:
            return None  # no log to resume from: each message stands alone
        store = self.memory.store
        call = store.latest_call(caller_id, channel)
        if call is None:
            return None
        last = store.last_activity(call.call_id) or call.started_at
        newest = store.latest_snapshot(caller_id)
        current = newest is not None and newest.call_id == call.call_id
        state = PlannerState.from_json(newest.state_json) if newest and current else None
        if self._clock() - last < self.idle and state is not None and not state.ended:
            # Ended meanwhile (a restart's recovery): go on from its state, as a new row.
            call_id = call.call_id if call.ended_at is None else _new_call_id(channel, None)
            return _Session(call_id, state)
        if call.ended_at is None:
            self._end(call)
        return None

    def _end(self, call: CallRecord) -> None:
        if self.memory is None:
            return
        log.info("text session %s of %s is over", call.call_id, masked(call.caller_id))
        try:
            self.memory.end_call(call.caller_id, call.call_id)
        except Exception:
            log.warning("could not end text session %s", call.call_id, exc_info=True)
        finally:
            self.memory.release_call(call.call_id)

    async def end_idle(self) -> int:
        """End every text session quiet for ``idle`` (their summaries are queued); returns
        how many. A sender busy with a message is left for the next sweep."""
        if self.memory is None:
            return 0
        memory = self.memory
        ended = 0
        for call in await asyncio.to_thread(memory.store.open_calls, TEXT_CHANNELS):
            try:
                async with self.locks.hold(call.caller_id, timeout_s=1.0):
                    if await asyncio.to_thread(self._end_if_idle, call):
                        ended += 1
            except SenderBusyError:
                continue
        return ended

    def _end_if_idle(self, call: CallRecord) -> bool:
        assert self.memory is not None
        last = self.memory.store.last_activity(call.call_id) or call.started_at
        if self._clock() - last < self.idle:
            return False
        self._end(call)
        return True


def _greeting_unsent(state: PlannerState) -> None:
    """The planner stands where the greeting left it, but the texter never read it: its
    question was not put yet (no "Sorry, what's your name?"), nothing to repeat."""
    state.ask_streak = 0
    state.reprompts = 0
    state.last_reply = None
    state.said_scope = False


def _confirmation_in_thread(state: PlannerState, offered: tuple[str, ...]) -> None:
    """A texter is not asked "by text or by email?" nor told we can't text: the thread
    itself carries the code. With texts configured the confirmation goes by text to this
    number (its own message, kept in the outbox); without, the route is settled as is."""
    if "text" in offered:
        state.update(contact_preference="text")
    else:
        state.update(asked_once=[*state.asked_once, CONFIRMATION_SETTLED])


def _new_call_id(channel: str, message_id: str | None) -> str:
    """``sms-SM…`` after the message that opened the session (unique, and names it)."""
    if message_id and _SAFE_ID.match(message_id):
        return f"{channel}-{message_id}"
    return f"{channel}-{uuid.uuid4().hex}"
