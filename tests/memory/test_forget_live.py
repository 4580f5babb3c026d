"""Forgetting a caller during a live call: the call goes on, nothing of the caller comes back.

Before, the next line of the call re-opened it in the log (the forget had dropped it from
the service's started calls), its snapshot was indexed again, and its end queued a
consolidation: a few seconds after ``DELETE /callers/{id}`` the caller was remembered
again, with what they said after asking to be forgotten.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, or_, select

from app.conversation import Conversation
from app.memory.service import MemoryService
from app.planner.agent_planner import PlannerKit
from app.settings import Settings
from app.stores.conversations import (
    CallForgottenError,
    calls,
    exchanges,
    forgotten_calls,
    planner_snapshots,
)
from tests.memory.conftest import OpenService

CALLER = "+14155550101"
DEVICE = "my phone 7"


async def turn(conversation: Conversation, text: str) -> str:
    """One caller line and the agent's reply, recorded the way every channel does it."""
    conversation.caller_said(text)
    reply = "".join([chunk async for chunk in conversation.respond(text)])
    conversation.agent_said(reply)
    conversation.snapshot()
    return reply


def rows_of(memory: MemoryService, caller: str, call_id: str) -> int:
    with memory.engine.connect() as conn:
        return sum(
            int(
                conn.scalar(
                    select(func.count())
                    .select_from(table)
                    .where(or_(table.c.caller_id == caller, table.c.call_id == call_id))
                )
                or 0
            )
            for table in (calls, exchanges, planner_snapshots)
        )


@pytest.mark.parametrize("caller", [CALLER, DEVICE])
async def test_a_forget_mid_conversation_leaves_nothing_recallable(
    service: MemoryService, settings: Settings, caller: str
) -> None:
    planners = PlannerKit.build(settings, engine=service.engine)
    conversation = await Conversation.open(
        planners, service, caller_id=caller, call_id="live-1", channel="chat"
    )
    "".join([chunk async for chunk in conversation.greet()])
    await turn(conversation, "Hi, this is Dana. A one bedroom at Hudson 360, I have two cats.")
    assert service.flush(120)
    assert service.stats(caller)["exchanges"] >= 2

    report = service.forget(caller)
    assert report["calls"] == 1 and report["exchanges"] >= 2

    reply = await turn(conversation, "My budget is 2500 and my email is dana@zyxwarble.example")
    assert reply  # the call goes on
    await turn(conversation, "Do you allow cats?")
    conversation.end()
    assert service.flush(120)

    assert rows_of(service, caller, "live-1") == 0
    assert service.memories.count(caller) == 0
    assert service.search(caller, "cats") == []
    assert service.search(caller, "budget") == []
    assert service.caller_profile(caller) is None
    assert not service.load_context(caller).is_returning
    assert conversation.forgotten

    # Their next call is a new record: forgetting is not a block list.
    later = await Conversation.open(
        planners, service, caller_id=caller, call_id="later-1", channel="chat"
    )
    await turn(later, "Hi again, it's Dana.")
    later.end()
    assert service.flush(120)
    assert service.stats(caller)["calls"] == 1 and not later.forgotten


def test_a_call_in_another_process_cannot_write_the_caller_back(
    open_service: OpenService, tmp_path
) -> None:
    """Two services on one database (a server and a LiveKit worker): the forget reaches both."""
    worker = open_service()
    server = open_service(data_dir=tmp_path / "server-data")
    worker.start_call(CALLER, "sip-1", "livekit")
    worker.record_exchange(CALLER, "sip-1", "livekit", "user", "I have two cats")

    assert server.forget(CALLER)["exchanges"] == 1

    with pytest.raises(CallForgottenError):
        worker.record_exchange(CALLER, "sip-1", "livekit", "user", "and a budget of 2500")
    with pytest.raises(CallForgottenError):
        worker.end_call(CALLER, "sip-1")
    assert worker.flush(120)
    assert rows_of(worker, CALLER, "sip-1") == 0
    with worker.engine.connect() as conn:  # the mark keeps the call id only
        marks = conn.execute(select(forgotten_calls)).all()
    assert [m.call_id for m in marks] == ["sip-1"]
    assert CALLER not in repr(marks)
