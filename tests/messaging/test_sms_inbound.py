"""``POST /twilio/sms`` in process: signatures, keywords, bad input, and text conversations.

The app is the real router on a real Runtime (SQLite, embedded vectors, the deterministic
planner), driven over HTTP by Starlette's test client with Twilio's own signing code. The
planner's clock is the coming Monday 9 AM, so "Saturday at 11" is always a free, future slot.
A real server and PostgreSQL run in ``test_sms_e2e.py``.
"""

from __future__ import annotations

import re
import uuid
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from fastapi import FastAPI
from fastapi.testclient import TestClient
from twilio.request_validator import RequestValidator

from app.channels.twilio import sms_routes
from app.conversation import Conversation
from app.planner.agent_planner import PlannerKit
from app.runtime import Runtime
from app.settings import Settings
from app.web import memory_routes

NY = ZoneInfo("America/New_York")
TOKEN = "sms-test-token"
PUBLIC = "https://tourline.example"
OFFICE_NUMBER = "+12125550100"


def coming_monday() -> datetime:
    today = datetime.now(NY)
    return (today + timedelta(days=7 - today.weekday())).replace(
        hour=9, minute=0, second=0, microsecond=0
    )


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("sms") / "data",
        memory_mode="persistent",
        database_url=None,
        qdrant_url=None,
        openai_api_key=None,
        openai_base_url=None,
        twilio_auth_token=TOKEN,
        twilio_account_sid="AC" + "5" * 32,  # texts can go out: bookings queue confirmations
        twilio_from_number=OFFICE_NUMBER,
        twilio_api_base_url="http://127.0.0.1:9",  # nothing sends here: no sender runs
        public_url=PUBLIC,
        api_key=None,
    )
    opened = Runtime.open_memory(settings, optional=False)
    assert opened.memory is not None
    now = coming_monday()
    kit = PlannerKit.build(
        settings, engine=opened.memory.engine, catalog=opened.catalog, clock=lambda: now
    )
    built = Runtime(settings, opened.catalog, opened.memory, _planners=kit, ready=True)
    yield built
    built.close()


@pytest.fixture(scope="module")
def client(runtime: Runtime) -> Iterator[TestClient]:
    app = FastAPI()
    app.state.runtime = runtime
    app.include_router(sms_routes.router)
    app.include_router(memory_routes.router)
    with TestClient(app) as test_client:
        yield test_client


def fresh_number() -> str:
    return "+1415555" + f"{uuid.uuid4().int % 10_000:04d}"


def form(sender: str, body: str, **extra: str) -> dict[str, str]:
    """What Twilio posts for one inbound message (a realistic subset)."""
    return {
        "AccountSid": "AC" + "0" * 32,
        "MessageSid": "SM" + uuid.uuid4().hex,
        "SmsSid": "SM" + uuid.uuid4().hex,
        "From": sender,
        "To": OFFICE_NUMBER,
        "Body": body,
        "NumMedia": "0",
        "NumSegments": "1",
        "ApiVersion": "2010-04-01",
        **extra,
    }


def signature(fields: dict[str, str], url: str = PUBLIC + "/twilio/sms") -> str:
    return str(RequestValidator(TOKEN).compute_signature(url, fields))


def post(client: TestClient, fields: dict[str, str], sig: str | None = "sign") -> Any:
    headers = (
        {} if sig is None else {"X-Twilio-Signature": signature(fields) if sig == "sign" else sig}
    )
    return client.post("/twilio/sms", data=fields, headers=headers)


def reply_of(response: Any) -> str | None:
    """The text of the TwiML <Message>, None for an empty <Response/>."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/xml")
    root = ET.fromstring(response.text)
    assert root.tag == "Response"
    messages = root.findall("Message")
    assert len(messages) <= 1
    return messages[0].text if messages else None


def text(client: TestClient, sender: str, body: str, **extra: str) -> str | None:
    return reply_of(post(client, form(sender, body, **extra)))


# ---------------------------------------------------------------- signatures


def test_only_signed_requests_are_answered(client: TestClient) -> None:
    fields = form(fresh_number(), "hello")
    assert post(client, fields, sig=None).status_code == 403
    assert post(client, fields, sig="bm90IGEgc2lnbmF0dXJl").status_code == 403
    voice_url_sig = signature(fields, PUBLIC + "/twilio/voice")  # signed for another URL
    assert post(client, fields, sig=voice_url_sig).status_code == 403
    tampered = dict(fields, Body="cancel my tour")  # signed body changed in flight
    assert post(client, tampered, sig=signature(fields)).status_code == 403
    assert reply_of(post(client, fields))  # the same message, signed: answered


# ---------------------------------------------------------------- conversations


def test_a_tour_booked_by_text_reads_like_a_text(client: TestClient, runtime: Runtime) -> None:
    sender = fresh_number()
    first = text(
        client,
        sender,
        "Hi, this is Dana Lee. I'd like an in-person tour of Hudson 360 on Saturday at 11",
    )
    assert first is not None
    assert "Thanks for calling" not in first  # the greeting is not sent: the texter spoke first
    assert "Saturday" in first and "11 AM" in first and first.endswith("Shall I book it?")
    done = text(client, sender, "yes")
    assert done is not None
    code = re.search(r"confirmation code is ([A-Z0-9]{4})\b", done)
    assert code, done
    assert f"{code.group(1)}:" not in done and "that's" not in done  # not spelled out
    # Texts go out from this line: the texter is told so, never asked "text or email?".
    assert "by text" in done and "email" not in done.lower(), done
    booking = runtime.planners.bookings.upcoming_for_caller(sender, datetime.now(NY))
    assert booking is not None and booking.confirmation_code == code.group(1)
    assert booking.property_id and booking.start.astimezone(NY).strftime("%A %H") == "Saturday 11"
    # One session, every message and reply in it, on the sms channel.
    assert runtime.memory is not None
    calls = runtime.memory.store.recent_calls(sender)
    assert [(c.channel, c.ended_at) for c in calls] == [("sms", None)]
    said = [(e.role, e.channel) for e in runtime.memory.store.exchanges_of_call(calls[0].call_id)]
    assert said == [("user", "sms"), ("agent", "sms")] * 2


async def _phone_booking(runtime: Runtime, caller: str, place: str) -> str:
    """Book Saturday 2 PM at ``place`` on a phone call; returns the confirmation code."""
    conversation = await Conversation.open(
        runtime.planners,
        runtime.memory,
        caller_id=caller,
        call_id="CA" + uuid.uuid4().hex,
        channel="phone",
    )
    await _say(conversation, conversation.greet())
    for line in (
        f"this is Sam Ortiz, an in-person tour of {place} on saturday at two pm",
        "yes",
        "no, that's all, bye",
    ):
        conversation.caller_said(line)
        await _say(conversation, conversation.respond(line))
    conversation.end()
    booking = conversation.state.booking
    assert booking is not None and booking.status == "booked"
    return booking.confirmation_code


async def _say(conversation: Conversation, stream: AsyncIterator[str]) -> str:
    reply = " ".join([s async for s in stream])
    conversation.agent_said(reply)
    conversation.snapshot()
    return reply


async def _next_greeting(runtime: Runtime, caller: str) -> str:
    conversation = await Conversation.open(
        runtime.planners,
        runtime.memory,
        caller_id=caller,
        call_id="CA" + uuid.uuid4().hex,
        channel="phone",
        context_timeout_s=10,
    )
    greeting = " ".join([s async for s in conversation.greet()])
    conversation.end()
    return greeting


async def test_a_phone_booking_is_moved_by_text_and_the_next_call_knows(
    client: TestClient, runtime: Runtime
) -> None:
    caller = fresh_number()
    code = await _phone_booking(runtime, caller, "riverview lofts")
    formatted = f"({caller[2:5]}) {caller[5:8]}-{caller[8:]}"  # the same caller, any format
    ask = text(client, formatted, "Move my tour to Friday at 3")
    assert ask is not None and "Friday" in ask and "3 PM" in ask and "?" in ask
    moved = text(client, caller, "yes")
    assert moved is not None and "Friday" in moved and code in moved
    address = text(client, caller, "what's the address?")
    assert address is not None and "Riverview Lofts is at" in address
    booking = runtime.planners.bookings.upcoming_for_caller(caller, datetime.now(NY))
    assert booking is not None and booking.confirmation_code == code
    assert booking.start.astimezone(NY).strftime("%A %H") == "Friday 15"
    greeting = await _next_greeting(runtime, caller)
    assert "Welcome back, Sam" in greeting and "Friday" in greeting and "3 PM" in greeting


async def test_cancel_it_by_text_is_a_booking_request_not_an_opt_out(
    client: TestClient, runtime: Runtime
) -> None:
    caller = fresh_number()
    await _phone_booking(runtime, caller, "twenty one west end")
    ask = text(client, caller, "cancel it")
    assert ask is not None and "cancel" in ask.lower() and "?" in ask
    done = text(client, caller, "yes")
    assert done is not None and "cancelled" in done
    assert runtime.planners.bookings.upcoming_for_caller(caller, datetime.now(NY)) is None
    assert text(client, caller, "what's the address of hudson 360?")  # still subscribed


def test_whatsapp_is_its_own_channel_for_the_same_caller(
    client: TestClient, runtime: Runtime
) -> None:
    number = fresh_number()
    reply = text(client, "whatsapp:" + number, "hello, which buildings do you have?")
    assert reply is not None and "Hudson 360" in reply
    assert runtime.memory is not None
    assert [c.channel for c in runtime.memory.store.recent_calls(number)] == ["whatsapp"]


def test_a_planner_failure_gets_the_fallback_text(
    client: TestClient,
    runtime: Runtime,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(*_args: object, **_kwargs: object) -> AsyncIterator[str]:
        raise RuntimeError("planner down")

    sender = fresh_number()
    monkeypatch.setattr(runtime.planners.brain, "respond", broken)
    reply = text(client, sender, "I'd like a tour of Riverview Lofts")
    fallback = _prompts()["fallback"]
    assert reply == fallback
    assert "the planner failed" in caplog.text
    monkeypatch.undo()
    assert text(client, sender, "I'd like a tour of Riverview Lofts") != fallback


# ---------------------------------------------------------------- keywords


def _prompts() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(Path("prompts/sms.yaml").read_text())
    return {
        k: v.format(office=loaded["office"], max_chars=1600) if isinstance(v, str) else v
        for k, v in loaded.items()
    }


def test_stop_start_and_help(client: TestClient) -> None:
    sender, prompts = fresh_number(), _prompts()
    assert text(client, sender, "HELP") == prompts["help"]
    assert text(client, sender, "Stop") == prompts["opted_out"]
    assert text(client, sender, "STOP") is None  # confirmed once
    assert text(client, sender, "I'd like a tour of Hudson 360") is None  # nothing more
    assert text(client, sender, "help") is None
    assert text(client, sender, "start") == prompts["opted_in"]
    assert text(client, sender, "I'd like a tour of Hudson 360")


def test_carrier_opt_out_words_only_alone(client: TestClient) -> None:
    prompts = _prompts()
    for word in ("STOPALL", "unsubscribe", "End", "quit.", " STOP! "):
        assert text(client, fresh_number(), word) == prompts["opted_out"], word
    # Bare CANCEL is the carrier's opt-out (Twilio blocks the number after it): say so.
    assert text(client, fresh_number(), "CANCEL") == prompts["opted_out_cancel"]
    for sentence in ("cancel my tour", "stop by on saturday?", "I want to end my lease search"):
        assert text(client, fresh_number(), sentence) not in (prompts["opted_out"], None), sentence


def test_yes_opts_in_only_a_number_that_opted_out(client: TestClient) -> None:
    prompts, sender = _prompts(), fresh_number()
    assert text(client, sender, "yes") not in (prompts["opted_in"], None)  # an answer
    assert text(client, sender, "stop") == prompts["opted_out"]
    assert text(client, sender, "YES") == prompts["opted_in"]


def test_texts_fit_one_sms_segment() -> None:
    for key, value in _prompts().items():
        if isinstance(value, str) and key != "office":
            assert len(value) <= 160 and value.isascii(), key


# ---------------------------------------------------------------- bad input


def test_bad_input_gets_a_clear_reply(client: TestClient) -> None:
    prompts, sender = _prompts(), fresh_number()
    assert text(client, sender, "") == prompts["empty"]
    assert text(client, sender, "   \n ") == prompts["empty"]
    assert (
        text(client, sender, "", NumMedia="1", MediaUrl0="https://api.twilio.com/x.jpg")
        == prompts["media_only"]
    )
    assert text(client, sender, "x" * 1601) == prompts["too_long"]
    assert text(client, sender, "🎉🏠✨") == prompts["symbols_only"]
    assert text(client, sender, "\x00\x07") == prompts["symbols_only"]


def test_emoji_and_markup_in_words_are_read_and_escaped(client: TestClient) -> None:
    sender = fresh_number()
    reply = text(client, sender, "🏠 hi! I'm <b>Priya & co</b>, tour of hudson 360 please 🙏🏽")
    assert reply is not None and "Hudson 360" in reply  # parsed as XML by reply_of
    assert text(client, sender, "👍")  # a thumbs up is a yes


def test_senders_we_cannot_text_back_get_no_reply(client: TestClient) -> None:
    for sender in ("AMAZON", "12345", "", "+", "whatsapp:", "a" * 400):
        assert text(client, sender, "hello") is None, sender


def test_a_flooding_sender_stops_getting_replies(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sms_routes, "RATE_BURST", 2)
    monkeypatch.setattr(sms_routes, "RATE_PER_SECOND", 0.0)
    flooder, other = fresh_number(), fresh_number()
    assert text(client, flooder, "hello") and text(client, flooder, "hello")
    assert text(client, flooder, "hello") is None
    assert text(client, flooder, "STOP") == _prompts()["opted_out"]  # keywords always work
    assert text(client, other, "hello")  # only the flooder is held back


# ---------------------------------------------------------------- the caller profile


def test_the_caller_profile_lists_text_messages(client: TestClient) -> None:
    sender = fresh_number()
    text(client, sender, "Hi, I'm Lee Park, in-person tour of Riverview Lofts on Saturday at 4 pm")
    booked = text(client, sender, "yes")
    assert booked is not None and "confirmation code is" in booked
    profile = client.get(f"/callers/{sender}").json()
    messages = profile["messages"]
    received = [m for m in messages if m["direction"] == "in"]
    assert [m["text"] for m in received] == [
        "yes",
        "Hi, I'm Lee Park, in-person tour of Riverview Lofts on Saturday at 4 pm",
    ]
    assert {(m["channel"], m["status"]) for m in received} == {("sms", "received")}
    replies = [m for m in messages if m["kind"] == "reply"]
    assert len(replies) == 2 and replies[0]["text"] == booked
    confirmations = [m for m in messages if m["kind"] == "confirmation"]  # from the outbox
    assert len(confirmations) == 1 and confirmations[0]["direction"] == "out"
    assert (
        confirmations[0]["status"] in ("held", "pending") and confirmations[0]["channel"] == "sms"
    )
    assert profile["texts_opted_out"] is False
    text(client, sender, "STOP")
    assert client.get(f"/callers/{sender}").json()["texts_opted_out"] is True
