"""Two ``tourline serve`` replicas on one PostgreSQL: the fleet's edge cases.

- a media stream's ``start`` replayed to the other replica within its token's minute is
  refused there (1008, "this call's token was already used"); the real call goes on;
- a text message with a NUL character (PostgreSQL refuses NUL in text) is answered and
  kept, the rest of the exchange intact, and the conversation goes on;
- kill -9 of a replica with a call on the line: the live replica ends that call (as
  abandoned, and consolidates it) within seconds, not after the 30-minute idle rule, and
  never touches its own live call.

One pair of servers for the module (the kill is last). A short replica lease
(``TOURLINE_REPLICA_LEASE_S``) makes the live replica look every second.
"""

from __future__ import annotations

import asyncio
import json
import signal
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest
from sqlalchemy import Engine, select
from websockets.exceptions import ConnectionClosed

from app.logging.flight_recorder import timeline_path
from app.stores.conversations import calls, exchanges, planner_snapshots
from app.stores.database import create_db_engine
from sim.avatar import AvatarClient, fresh_user
from sim.server import RunningServer, running_server
from sim.twilio import (
    TEST_PUBLIC_URL,
    TEST_TOKEN,
    MediaStream,
    TwilioCall,
    fresh_number,
    local_socket_url,
    new_sid,
    parse_twiml,
    post_sms,
    post_voice_webhook,
    preload_models,
    transcribe,
    twilio_form,
    upgrade_signature,
)
from sim.twilio.voice import shared_voice
from tests.fleet.conftest import WAIT_S, said_in, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

START_S = 240.0  # a replica's start on a loaded 2-core box
LEASE_S = "3"  # the replicas' heartbeat lease: each looks for dead replicas every second
T = TypeVar("T")


@dataclass
class Pair:
    servers: list[RunningServer]
    db: Engine

    def url(self, index: int) -> str:
        return self.servers[index].base_url


@pytest.fixture(scope="module")
def pair(fleet_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    """Two replicas, each with its own data dir, on one database (started one after the
    other: the second reads the fixed phrases the first rendered)."""
    env = {
        "DATABASE_URL": fleet_db,
        "TWILIO_AUTH_TOKEN": TEST_TOKEN,
        "TOURLINE_PUBLIC_URL": TEST_PUBLIC_URL,
        "TOURLINE_VECTOR_STORE": "postgres",
        "TOURLINE_REPLICA_LEASE_S": LEASE_S,
        "TOURLINE_CONTEXT_TIMEOUT_MS": "5000",  # recall is not what is measured here
    }
    engine = create_db_engine(fleet_db)
    with ExitStack() as stack:
        servers = [
            stack.enter_context(
                running_server(tmp_path_factory.mktemp(f"edge{i}"), timeout_s=START_S, **env)
            )
            for i in range(2)
        ]
        stack.callback(engine.dispose)
        yield Pair(servers, engine)


def call_row(db: Engine, call_id: str) -> Any:
    with db.connect() as conn:
        return conn.execute(select(calls).where(calls.c.call_id == call_id)).first()


# --------------------------------------------------------------------- token replay


async def test_a_start_replayed_to_another_replica_is_refused(pair: Pair) -> None:
    await preload_models()
    line = await asyncio.to_thread(
        shared_voice().render, "hi, this is dana lee, i'd like to see riverview lofts"
    )
    sid, caller = new_sid("CA"), fresh_number()
    form = twilio_form(sid, caller)
    instruction = parse_twiml(
        await post_voice_webhook(pair.url(0), TEST_PUBLIC_URL, TEST_TOKEN, form)
    )
    assert "Token" in instruction.parameters
    signature = upgrade_signature(TEST_TOKEN, instruction.url)

    async def open_stream(replica: int) -> MediaStream:
        return await MediaStream.open(
            local_socket_url(pair.url(replica), instruction.url),
            signature=signature,
            call_sid=sid,
            account_sid=form["AccountSid"],
        )

    call = TwilioCall(
        await open_stream(0), base_url=pair.url(0), instruction=instruction, voice=shared_voice()
    )
    try:
        await call.begin(instruction.parameters)
        greeting = await call.listen(timeout_s=WAIT_S)

        # Someone who captured the start replays it, within the minute, to replica 1.
        replay = await open_stream(1)
        await replay.send_connected()
        await replay.send_start(instruction.parameters)
        received: list[str | bytes] = []
        async with asyncio.timeout(WAIT_S):
            try:
                async for message in replay.ws:
                    received.append(message)
            except ConnectionClosed:
                pass
        assert (replay.ws.close_code, replay.ws.close_reason) == (
            1008,
            "this call's token was already used",
        )
        assert received == []  # not a word of the agent went to the replayer
        assert not timeline_path(pair.servers[1].data_dir, sid).exists()

        # The real call on replica 0 never noticed.
        await call.queue_speech(line)
        reply = await call.answer(timeout_s=WAIT_S)
        assert call.close_code is None
    finally:
        await call.hang_up()
        await call._shutdown()
    assert "thanks for calling" in (await transcribe(greeting)).lower()
    assert "dana" in (await transcribe(reply)).lower()
    recorded = wait_until(
        "the call ended in the log",
        lambda: (row := call_row(pair.db, sid)) is not None and row.ended_at and row,
    )
    assert recorded.caller_id == caller and recorded.outcome == "completed"
    heard = said_in(pair.db, sid)
    assert any(role == "user" and "dana lee" in text.lower() for role, text in heard), heard


# --------------------------------------------------------------------- NUL in a text


def text_message(server: RunningServer, sender: str, body: str) -> str:
    """POST a signed inbound SMS; the reply's text."""
    response = post_sms(server.base_url, sender, body, timeout_s=WAIT_S)
    assert response.status_code == 200, response.text
    found = ET.fromstring(response.text).find("Message")
    assert found is not None and found.text, response.text
    return found.text


def test_a_text_with_a_nul_is_answered_and_kept(pair: Pair) -> None:
    sender = fresh_number()
    first = text_message(
        pair.servers[0], sender, "hi, this is Nora\x00 Quell, I'd like to see hudson three sixty"
    )
    assert "Nora" in first and "\x00" not in first
    # The thread goes on, on the other replica: the state the first message left is there.
    text_message(pair.servers[1], sender, "an in-person tour please")
    with pair.db.connect() as conn:
        rows = conn.execute(
            select(exchanges.c.call_id, exchanges.c.role, exchanges.c.text)
            .where(exchanges.c.caller_id == sender)
            .order_by(exchanges.c.id)
        ).all()
    assert [r.role for r in rows] == ["user", "agent", "user", "agent"]
    assert len({r.call_id for r in rows}) == 1  # one text session
    assert rows[0].text == "hi, this is Nora Quell, I'd like to see hudson three sixty"
    assert rows[1].text == first
    with pair.db.connect() as conn:
        state = conn.scalar(
            select(planner_snapshots.c.state_json)
            .where(planner_snapshots.c.caller_id == sender)
            .order_by(planner_snapshots.c.id.desc())
        )
    kept = json.loads(state)
    assert kept["caller_name"] == "Nora Quell" and kept["tour_type"] == "in_person"


# --------------------------------------------------------------------- kill -9


async def test_a_killed_replicas_call_is_ended_by_the_live_one(pair: Pair) -> None:
    victim, bystander = fresh_user("victim"), fresh_user("bystander")
    async with (
        AvatarClient.connect(pair.url(1), victim, reader=True) as dying,
        AvatarClient.connect(pair.url(0), bystander, reader=True) as live,
    ):
        for client in (dying, live):
            await client.listen(timeout_s=WAIT_S)
        await dying.type("hi, this is victor hugo, i'd like to see hudson three sixty")
        await dying.listen(timeout_s=WAIT_S)
        orphan, kept = dying.session_id, live.session_id
        wait_until("the victim's reply recorded", lambda: len(said_in(pair.db, orphan)) >= 3)
        assert call_row(pair.db, orphan).owner != call_row(pair.db, kept).owner

        pair.servers[1].process.send_signal(signal.SIGKILL)
        pair.servers[1].process.wait(timeout=WAIT_S)
        ended = wait_until(
            "the dead replica's call ended by the live one",
            lambda: (row := call_row(pair.db, orphan)) is not None and row.ended_at and row,
        )
        assert ended.outcome == "abandoned"
        assert call_row(pair.db, kept).ended_at is None  # the live replica's own call: open

        await live.type("hi, this is lena fox, i'd like to see riverview lofts")
        reply = await live.listen(timeout_s=WAIT_S)
        assert "lena" in reply.text.lower(), reply.text
        await live.bye()
        code, _ = await live.wait_closed(WAIT_S)
        assert code == 1000
    summarized = wait_until(
        "the orphaned call consolidated",
        lambda: (row := call_row(pair.db, orphan)) is not None and row.consolidated and row,
    )
    assert summarized.summary and summarized.summary.endswith("before a goodbye.")
    assert "Victor Hugo" in summarized.summary
    finished = wait_until(
        "the live call ended", lambda: (row := call_row(pair.db, kept)).ended_at and row
    )
    assert finished.outcome == "completed"
