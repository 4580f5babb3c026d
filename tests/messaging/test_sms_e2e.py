"""Texting the real server: a tour booked by phone is moved by SMS, and the next call knows.

One ``tourline serve`` on loopback, with Twilio signatures checked, on its own PostgreSQL
database. This test process is a second replica on the same database (its own data dir):
it takes the phone calls through ``Conversation`` (the planner and memory a Twilio call
runs), while the texts go to the server over HTTP, signed as Twilio signs them.
"""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from psycopg import sql

from app.conversation import Conversation
from app.runtime import Runtime
from app.settings import Settings
from sim.server import RunningServer, running_server
from sim.twilio import post_sms
from tests.conftest import _admin_connection

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

NY = ZoneInfo("America/New_York")
TOKEN = "sms-e2e-token"
PUBLIC = "https://tourline.example"


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    admin, base_url = _admin_connection()
    name = f"tl_sms_{uuid.uuid4().hex[:10]}"
    admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield (
            base_url.replace("postgresql://", "postgresql+psycopg://", 1).rsplit("/", 1)[0]
            + "/"
            + name
        )
    finally:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        admin.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, database_url: str) -> Iterator[RunningServer]:
    data_dir = tmp_path_factory.mktemp("sms_server")
    with running_server(
        data_dir, TWILIO_AUTH_TOKEN=TOKEN, TOURLINE_PUBLIC_URL=PUBLIC, DATABASE_URL=database_url
    ) as running:
        yield running


@pytest.fixture(scope="module")
def phone(tmp_path_factory: pytest.TempPathFactory, database_url: str) -> Iterator[Runtime]:
    """The phone side: memory and planner on the server's database, from this process."""
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("sms_phone"),
        memory_mode="persistent",
        database_url=database_url,
        qdrant_url=None,
        openai_api_key=None,
        openai_base_url=None,
    )
    runtime = Runtime.open(settings, voice=False, memory_optional=False)
    yield runtime
    runtime.close()


def tour_days() -> tuple[str, str]:
    """Two days ahead with in-person tours (not Sunday), the earlier first: the tour is
    booked on the later one and moved to the earlier one by text."""
    today = datetime.now(NY).date()
    days = [today + timedelta(days=n) for n in range(2, 8)]
    open_days = [f"{d:%A}" for d in days if d.weekday() != 6]
    return open_days[0], open_days[1]


def sms(server: RunningServer, sender: str, body: str, *, signed: bool = True) -> httpx.Response:
    return post_sms(
        server.base_url, sender, body, auth_token=TOKEN if signed else None, public_url=PUBLIC
    )


def message(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    found = ET.fromstring(response.text).find("Message")
    assert found is not None and found.text, response.text
    return found.text


async def _say(conversation: Conversation, stream: AsyncIterator[str]) -> str:
    reply = " ".join([s async for s in stream])
    conversation.agent_said(reply)
    conversation.snapshot()
    return reply


async def _call(
    phone: Runtime, caller: str, lines: tuple[str, ...] = ()
) -> tuple[str, Conversation]:
    conversation = await Conversation.open(
        phone.planners,
        phone.memory,
        caller_id=caller,
        call_id="CA" + uuid.uuid4().hex,
        channel="phone",
        context_timeout_s=10,
    )
    greeting = await _say(conversation, conversation.greet())
    for line in lines:
        conversation.caller_said(line)
        await _say(conversation, conversation.respond(line))
    conversation.end()
    return greeting, conversation


async def test_a_phone_booking_moved_by_text_is_known_on_the_next_call(
    server: RunningServer, phone: Runtime
) -> None:
    caller = "+1415555" + f"{uuid.uuid4().int % 10_000:04d}"
    day, booked_day = tour_days()
    _, call = await _call(
        phone,
        caller,
        (
            f"this is Sam Ortiz, an in-person tour of hudson three sixty on {booked_day} at two pm",
            "yes",
            "bye",
        ),
    )
    booked = call.state.booking
    assert booked is not None and booked.status == "booked"

    assert sms(server, caller, "Move my tour to Friday at 3", signed=False).status_code == 403
    ask = message(sms(server, caller, f"Move my tour to {day} at 3"))
    assert day in ask and "3 PM" in ask, ask
    moved = message(sms(server, caller, "yes"))
    assert booked.confirmation_code in moved and day in moved, moved

    greeting, _ = await _call(phone, caller)
    assert "Welcome back, Sam" in greeting and day in greeting and "3 PM" in greeting, greeting

    profile = httpx.get(f"{server.base_url}/callers/{caller}", timeout=10).json()
    channels = {c["channel"] for c in profile["calls"]}
    assert {"phone", "sms"} <= channels
    texts = [(m["direction"], m["kind"], m["status"]) for m in profile["messages"] if m["call_id"]]
    assert texts.count(("in", "message", "received")) == 2
    assert texts.count(("out", "reply", "replied")) == 2
    dashboard = httpx.get(f"{server.base_url}/static/dashboard.js", timeout=10)
    assert dashboard.status_code == 200 and "messages" in dashboard.text
