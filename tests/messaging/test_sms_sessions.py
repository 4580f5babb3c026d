"""Text sessions: what one message continues, when a session ends, restarts and replicas.

``TextSessions`` runs on a real MemoryService (SQLite, and PostgreSQL where it matters) with
the deterministic planner; its idle clock is moved forward instead of waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, inspect, update

from app.channels.text_session import TextSessions, expand_shorthand, for_reading
from app.channels.twilio.sms_routes import SmsPrompts
from app.conversation import Conversation
from app.domain.catalog import Catalog
from app.memory.service import MemoryService
from app.planner.agent_planner import PlannerKit
from app.settings import Settings
from app.stores.conversations import (
    ConversationStore,
    calls,
    exchanges,
    planner_snapshots,
)
from app.stores.database import create_db_engine

NY = ZoneInfo("America/New_York")
FALLBACK = "Sorry, something went wrong."
BOOK = "Hi, I'm Dana Lee, an in-person tour of Hudson 360 on Saturday at 11 please"


def coming_monday() -> datetime:
    today = datetime.now(NY)
    return (today + timedelta(days=7 - today.weekday())).replace(
        hour=9, minute=0, second=0, microsecond=0
    )


def settings_for(data_dir: Path) -> Settings:
    return Settings(
        data_dir=data_dir,
        memory_mode="persistent",
        database_url=None,
        qdrant_url=None,
        openai_api_key=None,
        openai_base_url=None,
    )


class Later:
    """The sessions' idle clock: now, plus however far a test moved it."""

    def __init__(self) -> None:
        self.ahead = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.ahead


Replica = Callable[[str], tuple[MemoryService, TextSessions]]


@pytest.fixture
def later() -> Later:
    return Later()


@contextlib.contextmanager
def _replicas(root: Path, url: str, later: Later) -> Iterator[Replica]:
    """``replica(name)``: a process's memory and text sessions on the shared database
    (its own data dir, as each server has); closed at the end."""
    engine = create_db_engine(url)
    opened: list[MemoryService] = []
    now = coming_monday()

    def open_replica(name: str) -> tuple[MemoryService, TextSessions]:
        settings = settings_for(root / name)
        catalog = Catalog.load(settings.prompts_dir / "properties.yaml")
        memory = MemoryService.open(settings, engine=engine, catalog=catalog)
        opened.append(memory)
        kit = PlannerKit.build(settings, engine=engine, catalog=catalog, clock=lambda: now)
        return memory, TextSessions(lambda: kit, memory, clock=later)

    try:
        yield open_replica
    finally:
        for memory in opened:
            memory.close()
        engine.dispose()


@pytest.fixture
def replica(tmp_path: Path, sqlite_url: str, later: Later) -> Iterator[Replica]:
    with _replicas(tmp_path, sqlite_url, later) as open_replica:
        yield open_replica


@pytest.fixture
def pg_replica(tmp_path: Path, postgres_url: str, later: Later) -> Iterator[Replica]:
    with _replicas(tmp_path, postgres_url, later) as open_replica:
        yield open_replica


def fresh_number() -> str:
    return "+1415555" + f"{uuid.uuid4().int % 10_000:04d}"


async def send(sessions: TextSessions, sender: str, text: str, channel: str = "sms") -> Any:
    return await sessions.exchange(sender, channel, text, fallback=FALLBACK)


# ---------------------------------------------------------------- one process


async def test_messages_within_the_idle_window_are_one_session(replica: Replica) -> None:
    memory, sessions = replica("a")
    sender = fresh_number()
    first = await send(sessions, sender, BOOK)
    assert not first.resumed and first.reply.endswith("Shall I book it?")
    second = await send(sessions, sender, "yes")
    assert second.resumed and second.call_id == first.call_id
    assert "confirmation code is" in second.reply
    # No messaging configured: the code in the thread is the confirmation, and the texter
    # is not told that we "can't text from this line" while texting with us.
    assert "can't text" not in second.reply and "email" not in second.reply.lower()
    assert [c.call_id for c in memory.store.recent_calls(sender)] == [first.call_id]


async def test_a_texter_is_not_asked_text_or_email(tmp_path: Path, sqlite_url: str) -> None:
    """With texts and email both configured, a call asks "by text or by email?"; a text
    thread already is a text, so the confirmation goes by text to the sender unasked."""
    settings = settings_for(tmp_path).model_copy(
        update={
            "twilio_account_sid": "AC" + "1" * 32,
            "twilio_auth_token": "secret",
            "twilio_from_number": "+12125550100",
            "smtp_url": "smtp://127.0.0.1:2525",
            "smtp_from": "tours@example.com",
        }
    )
    assert settings.message_channels >= {"sms", "email"}
    engine = create_db_engine(sqlite_url)
    catalog = Catalog.load(settings.prompts_dir / "properties.yaml")
    memory = MemoryService.open(settings, engine=engine, catalog=catalog)
    try:
        now = coming_monday()
        kit = PlannerKit.build(settings, engine=engine, catalog=catalog, clock=lambda: now)
        sessions = TextSessions(lambda: kit, memory)
        sender = fresh_number()
        await send(sessions, sender, BOOK)
        done = (await send(sessions, sender, "yes")).reply
        assert "confirmation code is" in done
        assert "or by email" not in done and "by text" in done, done
        queued = kit.desk.outbox.for_caller(sender) if kit.desk.outbox else []
        confirmations = [(m.channel, m.address) for m in queued if m.kind == "confirmation"]
        assert confirmations == [("sms", sender)]
        assert {m.channel for m in queued} == {"sms"}  # its reminders too
    finally:
        memory.close()
        engine.dispose()


async def test_a_quiet_session_ends_and_is_summarized(replica: Replica, later: Later) -> None:
    memory, sessions = replica("a")
    sender = fresh_number()
    first = await send(sessions, sender, BOOK)
    later.ahead = sessions.idle + timedelta(minutes=1)
    second = await send(sessions, sender, "yes")
    assert not second.resumed and second.call_id != first.call_id  # a new session...
    assert "Shall I book" not in second.reply  # ...that does not take "yes" as a booking
    old = memory.store.get_call(first.call_id)
    assert old is not None and old.ended_at is not None and old.outcome == "completed"
    assert memory.flush()
    summary = memory.store.get_call(first.call_id)
    assert summary is not None and (summary.summary or "").startswith("Text messages on")
    assert "Dana Lee" in (summary.summary or "")


async def test_the_sweep_ends_only_quiet_sessions(replica: Replica) -> None:
    memory, sessions = replica("a")
    quiet, busy = fresh_number(), fresh_number()
    old = await send(sessions, quiet, "what buildings do you have?")
    recent = await send(sessions, busy, "what buildings do you have?")
    assert await sessions.end_idle() == 0  # nothing is quiet yet
    _age(memory.engine, old.call_id, sessions.idle + timedelta(minutes=1))
    assert await sessions.end_idle() == 1
    assert memory.store.get_call(old.call_id).ended_at is not None  # type: ignore[union-attr]
    assert memory.store.get_call(recent.call_id).ended_at is None  # type: ignore[union-attr]


def _age(engine: Engine, call_id: str, by: timedelta) -> None:
    """Move a session's rows back in time, as if its messages came ``by`` ago."""
    then = datetime.now(UTC) - by
    with engine.begin() as conn:
        for table, column in (
            (calls, calls.c.started_at),
            (exchanges, exchanges.c.created_at),
            (planner_snapshots, planner_snapshots.c.created_at),
        ):
            conn.execute(update(table).where(table.c.call_id == call_id).values({column: then}))


async def test_a_goodbye_ends_the_session(replica: Replica) -> None:
    memory, sessions = replica("a")
    sender = fresh_number()
    await send(sessions, sender, "what buildings do you have?")
    bye = await send(sessions, sender, "that's all, thanks, bye")
    assert bye.ended
    assert memory.store.get_call(bye.call_id).ended_at is not None  # type: ignore[union-attr]
    again = await send(sessions, sender, "hi again")
    assert again.call_id != bye.call_id and not again.resumed


async def test_a_call_since_the_last_text_has_the_last_word(replica: Replica) -> None:
    """A phone call after a text thread: the next text starts from the call, not the thread."""
    memory, sessions = replica("a")
    sender = fresh_number()
    texted = await send(sessions, sender, BOOK)  # awaiting "Shall I book it?"
    kit = sessions._planners()
    call = await Conversation.open(
        kit, memory, caller_id=sender, call_id="CA" + uuid.uuid4().hex, channel="phone"
    )
    greeting = " ".join([s async for s in call.greet()])
    assert "Dana" in greeting  # the call picks up from the text thread
    call.agent_said(greeting)
    call.snapshot()
    call.end()
    after = await send(sessions, sender, "yes")
    assert after.call_id != texted.call_id and not after.resumed
    assert memory.store.get_call(texted.call_id).ended_at is not None  # type: ignore[union-attr]


def test_replies_are_written_for_reading() -> None:
    spoken = "You're all set! Your confirmation code is 7KQ2: that's 7, K, Q, 2. Anything else?"
    assert for_reading(spoken) == "You're all set! Your confirmation code is 7KQ2. Anything else?"
    odd = "Your code is 7KQ2: that's 7, K, Q, 3."  # not the code spelled: left as it is
    assert for_reading(odd) == odd
    keypad = "Please say or press 1, 2 or 3."
    assert for_reading(keypad, (("say or press", "reply"),)) == "Please reply 1, 2 or 3."


async def test_a_digit_answers_a_numbered_question(replica: Replica) -> None:
    memory, plain = replica("a")
    reading = SmsPrompts.load(Path("prompts")).reading
    sessions = TextSessions(plain._planners, memory, replacements=reading)
    sender = fresh_number()
    await send(sessions, sender, "I'd like to book a tour")
    turn = await send(sessions, sender, "I'm not sure which building")
    for _ in range(3):  # asked again until the agent offers numbers
        if "1 for 21 West End" in turn.reply:
            break
        turn = await send(sessions, sender, "hmm not sure")
    assert "reply 1 for 21 West End" in turn.reply and "press" not in turn.reply, turn.reply
    picked = await send(sessions, sender, "2")
    assert "Hudson 360" in picked.reply and picked.call_id == turn.call_id


async def test_texting_shorthand_is_understood(replica: Replica) -> None:
    memory, sessions = replica("a")
    sender = fresh_number()
    asked = await send(sessions, sender, "name's Kim Lee, in-person tour of hudson 360 sat @ 11am")
    assert "for Kim Lee" in asked.reply and "Saturday" in asked.reply, asked.reply
    assert "Shall I book it?" in asked.reply
    assert "confirmation code is" in (await send(sessions, sender, "y")).reply
    move = await send(sessions, sender, "can u move it to fri at 3pm?")
    assert "Friday" in move.reply and "3 PM" in move.reply and "?" in move.reply, move.reply
    moved = await send(sessions, sender, "k")
    assert moved.reply.startswith("Done!") and "Friday" in moved.reply, moved.reply
    said = [e.text for e in memory.store.exchanges_of_call(moved.call_id) if e.role == "user"]
    assert said[-1] == "k"  # memory keeps what was texted; only the planner reads "ok"


def test_shorthand_expands_only_where_it_means_a_day_or_a_word() -> None:
    assert expand_shorthand("can u move it to fri @ 3pm?") == "can you move it to friday at 3pm?"
    assert expand_shorthand("Y") == "yes" and expand_shorthand("nah") == "no"
    assert expand_shorthand("on sun at 2") == "on sunday at 2"
    for kept in ("does it get sun?", "I sat down", "email me at kim@example.com", "Summit"):
        assert expand_shorthand(kept) == kept


async def test_a_new_session_does_not_apologise_for_a_question_never_sent(
    replica: Replica,
) -> None:
    _, sessions = replica("a")
    turn = await send(
        sessions, fresh_number(), "I'd like to see Hudson 360 Saturday at 11am, in person"
    )
    assert not turn.reply.startswith("Sorry") and "Sorry, what" not in turn.reply, turn.reply


# ---------------------------------------------------------------- restarts and replicas


async def test_a_session_resumes_after_a_restart(replica: Replica) -> None:
    memory, sessions = replica("a")
    sender = fresh_number()
    asked = await send(sessions, sender, BOOK)
    memory.close()  # the server stops between two messages
    _, restarted = replica("a")
    done = await send(restarted, sender, "yes")
    assert done.resumed and done.call_id == asked.call_id
    assert "confirmation code is" in done.reply


@pytest.mark.postgres
async def test_two_replicas_answer_one_sender_one_message_at_a_time(pg_replica: Replica) -> None:
    memory_a, on_a = pg_replica("a")
    _, on_b = pg_replica("b")
    sender = fresh_number()
    asked = await send(on_a, sender, BOOK)
    done = await send(on_b, sender, "yes")  # the next message lands on the other replica
    assert done.resumed and done.call_id == asked.call_id and "confirmation code" in done.reply
    # Two messages of a new sender at once, one per replica: one session, both answered.
    other = fresh_number()
    turns = await asyncio.gather(
        send(on_a, other, "what buildings do you have?"),
        send(on_b, other, "and where is Hudson 360?"),
    )
    assert len({t.call_id for t in turns}) == 1
    assert len(memory_a.store.exchanges_of_call(turns[0].call_id)) == 4


# ---------------------------------------------------------------- schema upgrade

OLD_CALLS_DDL = """
CREATE TABLE calls (
    call_id VARCHAR(128) NOT NULL,
    caller_id VARCHAR(320) NOT NULL,
    channel VARCHAR(16) NOT NULL,
    started_at DATETIME NOT NULL,
    ended_at DATETIME,
    outcome VARCHAR(32),
    summary TEXT,
    consolidated BOOLEAN NOT NULL,
    PRIMARY KEY (call_id),
    CONSTRAINT ck_calls_channel CHECK (channel IN ('phone', 'avatar', 'livekit', 'chat'))
)
"""
OLD_ROW = (
    "INSERT INTO calls (call_id, caller_id, channel, started_at, ended_at, outcome, summary, "
    "consolidated) VALUES ('CA1', '+14155550101', 'phone', '2026-11-01 10:00:00', "
    "'2026-11-01 10:05:00', 'completed', 'Phone call on Sunday, November 1.', 1)"
)


def _start_sms(store: ConversationStore) -> None:
    store.start_call("+14155550101", "sms-SM1", "sms")
    store.start_call("+14155550101", "whatsapp-SM2", "whatsapp")


def test_an_old_sqlite_database_takes_text_channels(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:
        db.execute(OLD_CALLS_DDL)
        db.execute("CREATE INDEX ix_calls_caller ON calls (caller_id, started_at)")
        db.execute(OLD_ROW)
    engine = create_db_engine(f"sqlite:///{path}")
    try:
        with pytest.raises(Exception, match="CHECK constraint"), engine.begin() as conn:
            conn.exec_driver_sql(OLD_ROW.replace("'CA1'", "'x'").replace("'phone'", "'sms'"))
        store = ConversationStore(engine)
        _start_sms(store)
        old = store.get_call("CA1")
        assert old is not None and old.summary == "Phone call on Sunday, November 1."
        assert old.ended_at == datetime(2026, 11, 1, 10, 5, tzinfo=UTC)
        assert {c.call_id: c.channel for c in store.recent_calls("+14155550101")} == {
            "CA1": "phone",
            "sms-SM1": "sms",
            "whatsapp-SM2": "whatsapp",
        }
        indexes = {i["name"] for i in inspect(engine).get_indexes("calls")}
        assert {"ix_calls_caller", "ix_calls_pending"} <= indexes
        with pytest.raises(Exception, match="CHECK constraint"), engine.begin() as conn:
            conn.exec_driver_sql(OLD_ROW.replace("'CA1'", "'y'").replace("'phone'", "'fax'"))
        ConversationStore(engine)  # a second open finds it done
        assert len(store.recent_calls("+14155550101")) == 3
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_an_old_postgres_database_takes_text_channels(postgres_url: str) -> None:
    engine = create_db_engine(postgres_url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(OLD_CALLS_DDL.replace("DATETIME", "TIMESTAMP WITH TIME ZONE"))
            conn.exec_driver_sql(OLD_ROW.replace("1)", "true)"))
        store = ConversationStore(engine)
        _start_sms(store)
        assert store.get_call("CA1") is not None
        with pytest.raises(Exception, match="ck_calls_channel"), engine.begin() as conn:
            conn.exec_driver_sql(
                OLD_ROW.replace("'CA1'", "'y'").replace("'phone'", "'fax'").replace("1)", "true)")
            )
    finally:
        engine.dispose()
