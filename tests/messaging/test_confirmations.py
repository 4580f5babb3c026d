"""Confirmations, reminders and notices really go out: booked through the planner, sent by
the outbox sender to a loopback Twilio REST fake and a local SMTP server."""

from __future__ import annotations

import asyncio
import string
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Connection

from app.domain.state import Booking
from app.messaging.sender import OutboxSender
from app.messaging.texts import SMS_SEGMENT, MessageTexts
from app.planner.agent_planner import AgentPlanner, PlannerKit
from app.planner.llm_tools import TourTools
from app.planner.prompts import Prompts
from app.stores.opt_outs import OptOutStore
from app.stores.outbox import OutboxMessage
from tests.fakes.twilio_rest import PATH, FakeTwilioRest
from tests.messaging.conftest import (
    ACCOUNT_SID,
    FROM_NUMBER,
    NOW,
    NY,
    SmtpSink,
    messaging_settings,
    planner_kit,
)

CALLER = "+14155550101"
HUDSON_ADDRESS = "360 West 43rd Street"  # from prompts/properties.yaml
BOOK_HUDSON = [
    "hi my name is dana lee",
    "hudson three sixty in person this saturday at eleven",
    "yes",
]
SOON = NOW + timedelta(minutes=1)
"""When the tests' sender runs: just after the booking (the planners' clock is fixed)."""


async def _talk(planner: AgentPlanner, lines: Sequence[str]) -> list[str]:
    replies = [" ".join([s async for s in planner.greet()])]
    for line in lines:
        replies.append(" ".join([s async for s in planner.respond(line)]))
    return replies


def talk(
    kit: PlannerKit, lines: Sequence[str], caller: str = CALLER
) -> tuple[AgentPlanner, list[str]]:
    planner = kit.conversation(caller)
    return planner, asyncio.run(_talk(planner, lines))


def sender_for(kit: PlannerKit, **kwargs: object) -> OutboxSender:
    assert kit.desk.outbox is not None
    sender = OutboxSender.build(kit.settings, kit.desk.outbox, kit.catalog)
    for name, value in kwargs.items():
        setattr(sender, name, value)
    return sender


def code_of(planner: AgentPlanner) -> str:
    booking = planner.state.booking
    assert booking is not None and booking.status == "booked"
    return booking.confirmation_code


def messages(kit: PlannerKit) -> list[OutboxMessage]:
    assert kit.desk.outbox is not None
    return kit.desk.outbox.all()


def confirmation(kit: PlannerKit) -> OutboxMessage:
    found = [m for m in messages(kit) if m.kind == "confirmation"]
    assert len(found) == 1, found
    return found[0]


# ---------------------------------------------------------------- booked, then sent


def test_booked_by_text_gets_exactly_one_sms_confirmation(
    tmp_path: Path, twilio: FakeTwilioRest, smtp: tuple[SmtpSink, int]
) -> None:
    kit = planner_kit(messaging_settings(tmp_path, twilio, smtp[1]))
    planner, replies = talk(kit, [*BOOK_HUDSON, "by text please"])
    assert "How should we send your confirmation: by text or by email?" in replies[3]
    code = code_of(planner)

    sender = sender_for(kit)
    assert sender.run_once(now=SOON) == 1
    assert sender.run_once(now=SOON + timedelta(minutes=5)) == 0  # nothing twice

    assert len(twilio.requests) == 1
    request = twilio.requests[0]
    assert request.path == PATH.format(sid=ACCOUNT_SID) and request.authorized
    assert request.form["To"] == CALLER and request.form["From"] == FROM_NUMBER
    body = request.form["Body"]
    assert f"Code {code}" in body
    assert "Hudson 360" in body and HUDSON_ADDRESS in body
    assert "Sat Nov 28, 11 AM" in body  # the building's local time
    assert len(body) <= SMS_SEGMENT
    sent = confirmation(kit)
    assert sent.status == "sent" and sent.provider_id == twilio.messages[0].sid
    assert sent.body == body
    assert smtp[0].messages == []


def test_booked_by_email_gets_exactly_one_email(
    tmp_path: Path, twilio: FakeTwilioRest, smtp: tuple[SmtpSink, int]
) -> None:
    sink, port = smtp
    kit = planner_kit(messaging_settings(tmp_path, twilio, port))
    planner, replies = talk(kit, [*BOOK_HUDSON, "email", "dana dot lee at example dot com"])
    assert "your email, dana.lee@example.com" in replies[-1]
    code = code_of(planner)

    sender = sender_for(kit)
    sender.run_once(now=SOON)
    sender.run_once(now=SOON + timedelta(minutes=5))

    assert sink.wait_for(1)
    assert len(sink.messages) == 1 and twilio.requests == []
    mail = sink.messages[0]
    assert mail["To"] == "dana.lee@example.com"
    assert "tours@example.com" in mail["From"]
    assert mail["Subject"] == "Your tour of Hudson 360: Sat Nov 28, 11 AM"
    text = str(mail.get_payload(decode=True), "utf-8")
    assert f"Confirmation code: {code}" in text and HUDSON_ADDRESS in text
    assert "in-person tour of Hudson 360 is booked for Sat Nov 28, 11 AM" in text
    assert confirmation(kit).status == "sent"


def test_text_only_line_texts_the_calling_number_without_asking(
    tmp_path: Path, twilio: FakeTwilioRest
) -> None:
    kit = planner_kit(messaging_settings(tmp_path, twilio))
    planner, replies = talk(kit, BOOK_HUDSON)
    assert "I'll text your confirmation to this number." in replies[-1]
    assert "email" not in replies[-1]
    sender_for(kit).run_once(now=SOON)
    assert [m.to for m in twilio.messages] == [CALLER]
    assert f"Code {code_of(planner)}" in twilio.messages[0].body


def test_dropped_call_still_gets_its_confirmation_by_the_default_route(
    tmp_path: Path, twilio: FakeTwilioRest, smtp: tuple[SmtpSink, int]
) -> None:
    """Asked "text or email?", the caller hung up: after the hold, a text to their number."""
    kit = planner_kit(messaging_settings(tmp_path, twilio, smtp[1]))
    talk(kit, BOOK_HUDSON)
    assert confirmation(kit).status == "held"
    sender = sender_for(kit)
    sender.run_once(now=SOON)
    assert twilio.requests == []  # still waiting for the caller's answer
    sender.run_once(now=NOW + timedelta(minutes=11))
    assert [m.to for m in twilio.messages] == [CALLER]
    assert confirmation(kit).status == "sent"


def test_no_channel_configured_agent_promises_nothing_and_nothing_is_queued(tmp_path: Path) -> None:
    kit = planner_kit(messaging_settings(tmp_path))
    planner, replies = talk(kit, [*BOOK_HUDSON, "no that's all"])
    assert f"Your confirmation code is {code_of(planner)}" in replies[3]
    assert "I can't text or email from this line yet" in replies[3]
    assert "by text or by email" not in " ".join(replies)
    assert messages(kit) == []


def test_llm_tools_offer_only_what_the_line_can_send(
    tmp_path: Path, twilio: FakeTwilioRest
) -> None:
    def contact_enum(kit: PlannerKit) -> list[str] | None:
        tools = TourTools(
            kit.desk, Prompts.load(kit.settings.prompts_dir), kit.settings.prompts_dir
        )
        update = next(d for d in tools.definitions if d["function"]["name"] == "update_preferences")
        found = update["function"]["parameters"]["properties"].get("contact_preference")
        return None if found is None else list(found["enum"])

    assert contact_enum(planner_kit(messaging_settings(tmp_path / "none"))) is None
    assert contact_enum(planner_kit(messaging_settings(tmp_path / "sms", twilio))) == [
        "text",
        "call",
    ]


def test_llm_book_tour_tells_the_model_the_truth(tmp_path: Path) -> None:
    kit = planner_kit(messaging_settings(tmp_path))
    tools = TourTools(kit.desk, Prompts.load(kit.settings.prompts_dir), kit.settings.prompts_dir)
    planner = kit.conversation(CALLER)
    args = (
        '{"property_id": "hudson-360", "tour_type": "in_person", '
        '"date": "2026-11-28", "time": "11:00"}'
    )
    result = asyncio.run(tools.run(planner.state, "book_tour", args))
    assert "can't text or email yet" in result and "never offer a text or an email" in result


# ---------------------------------------------------------------- retries and refusals


def _booked_by_text(tmp_path: Path, twilio: FakeTwilioRest) -> tuple[PlannerKit, OutboxSender]:
    kit = planner_kit(
        messaging_settings(tmp_path, twilio),
    )
    talk(kit, BOOK_HUDSON)  # text only: routed to the calling number at once
    return kit, sender_for(kit)


def test_failing_provider_is_retried_with_exponential_backoff(
    tmp_path: Path, twilio: FakeTwilioRest
) -> None:
    kit, sender = _booked_by_text(tmp_path, twilio)
    twilio.fail_next(2, status=503, code=20503, message="Service Unavailable")
    t0 = SOON
    sender.run_once(now=t0)
    first = confirmation(kit)
    assert (first.status, first.attempts) == ("pending", 1)
    assert "503" in (first.last_error or "")
    assert first.next_attempt_at == t0 + timedelta(seconds=30)

    sender.run_once(now=t0 + timedelta(seconds=29))
    assert len(twilio.requests) == 1  # not due yet

    sender.run_once(now=t0 + timedelta(seconds=30))
    second = confirmation(kit)
    assert (second.status, second.attempts) == ("pending", 2)
    assert second.next_attempt_at == t0 + timedelta(seconds=90)  # 30 s, then 60 s

    sender.run_once(now=t0 + timedelta(seconds=90))
    done = confirmation(kit)
    assert (done.status, done.attempts, done.last_error) == ("sent", 3, None)
    assert len(twilio.requests) == 3 and len(twilio.messages) == 1


def test_gives_up_after_max_attempts_with_the_reason(
    tmp_path: Path, twilio: FakeTwilioRest
) -> None:
    kit, sender = _booked_by_text(tmp_path, twilio)
    twilio.fail_always(status=500, code=20500, message="Internal Server Error")
    when = SOON
    for _ in range(sender.max_attempts + 2):
        sender.run_once(now=when)
        when += timedelta(hours=2)
    failed = confirmation(kit)
    assert (failed.status, failed.attempts) == ("failed", sender.max_attempts)
    assert "500" in (failed.last_error or "") and "Internal Server Error" in (
        failed.last_error or ""
    )
    assert len(twilio.requests) == sender.max_attempts


def test_refused_number_fails_at_once(tmp_path: Path, twilio: FakeTwilioRest) -> None:
    kit, sender = _booked_by_text(tmp_path, twilio)
    twilio.fail_next(1, status=400, code=21211, message="Invalid 'To' Phone Number")
    sender.run_once(now=SOON)
    failed = confirmation(kit)
    assert (failed.status, failed.attempts) == ("failed", 1)
    assert "21211" in (failed.last_error or "") and "Invalid 'To'" in (failed.last_error or "")


def test_opted_out_number_is_skipped_not_sent(tmp_path: Path, twilio: FakeTwilioRest) -> None:
    kit, sender = _booked_by_text(tmp_path, twilio)
    OptOutStore(kit.bookings._engine).opt_out(CALLER)  # STOP arrived after the booking
    sender.run_once(now=SOON)
    skipped = confirmation(kit)
    assert (skipped.status, skipped.last_error) == ("skipped", "opted out")
    assert twilio.requests == []


def test_carrier_unsubscribed_is_skipped(tmp_path: Path, twilio: FakeTwilioRest) -> None:
    kit, sender = _booked_by_text(tmp_path, twilio)
    twilio.fail_next(1, status=400, code=21610, message="Attempt to send to unsubscribed recipient")
    sender.run_once(now=SOON)
    assert confirmation(kit).status == "skipped"


# ---------------------------------------------------------------- reminders, moves, cancels


def test_reminders_go_out_before_the_tour_and_follow_a_move_and_a_cancel(
    tmp_path: Path, twilio: FakeTwilioRest
) -> None:
    kit, sender = _booked_by_text(tmp_path, twilio)
    code = code_of_kit(kit)
    start = datetime(2026, 11, 28, 11, tzinfo=NY)
    reminders = sorted(m.next_attempt_at for m in messages(kit) if m.kind == "reminder")
    assert reminders == [start - timedelta(hours=24), start - timedelta(hours=2)]
    sender.run_once(now=SOON)
    assert len(twilio.messages) == 1

    moved_to = datetime(2026, 11, 28, 15, tzinfo=NY)
    kit.desk.reschedule(code, "in_person", moved_to)
    sender.run_once(now=SOON + timedelta(minutes=1))
    assert len(twilio.messages) == 2
    assert (
        twilio.messages[1].body.startswith("Moved:")
        and "Sat Nov 28, 3 PM" in twilio.messages[1].body
    )
    live = sorted(
        m.next_attempt_at for m in messages(kit) if m.kind == "reminder" and m.status == "pending"
    )
    assert live == [moved_to - timedelta(hours=24), moved_to - timedelta(hours=2)]

    sender.run_once(now=moved_to - timedelta(hours=24))  # the day before
    assert twilio.messages[2].body.startswith("Reminder:") and "3 PM" in twilio.messages[2].body

    kit.desk.cancel(code)
    sender.run_once(now=moved_to - timedelta(hours=1))  # the 2 h reminder would be due now
    assert len(twilio.messages) == 4
    assert twilio.messages[3].body.startswith("Cancelled:")
    statuses = {(m.kind, m.status) for m in messages(kit)}
    assert ("reminder", "skipped") in statuses and ("reminder", "pending") not in statuses


def code_of_kit(kit: PlannerKit) -> str:
    codes = {m.booking_code for m in messages(kit)}
    assert len(codes) == 1
    code = codes.pop()
    assert code is not None
    return code


def test_a_booking_that_does_not_commit_queues_nothing(
    tmp_path: Path, twilio: FakeTwilioRest
) -> None:
    kit = planner_kit(messaging_settings(tmp_path, twilio))
    start = datetime(2026, 11, 28, 11, tzinfo=NY)

    def crash(conn: Connection, booking: Booking) -> None:
        assert kit.desk.outbox is not None
        kit.desk.outbox.on_booked(conn, booking, CALLER, kit.desk.route_for(_contact(), CALLER))
        raise RuntimeError("the process dies mid-transaction")

    with pytest.raises(RuntimeError):
        kit.bookings.book("hudson-360", "in_person", start, CALLER, "Dana", also=crash)
    assert kit.bookings.is_free("hudson-360", start)
    assert messages(kit) == []


def _contact():  # type: ignore[no-untyped-def]
    from app.planner.tour_desk import Contact

    return Contact(phone=CALLER)


def test_every_text_fits_one_sms_segment(tmp_path: Path) -> None:
    kit = planner_kit(messaging_settings(tmp_path))
    texts = MessageTexts.load(kit.settings.prompts_dir, kit.catalog)
    gsm = set(string.ascii_letters + string.digits + " \n!\"#%&'()*+,-./:;<=>?@_$")
    start = datetime(2026, 12, 30, 12, 30, tzinfo=NY)  # a long date: Wed Dec 30, 12:30 PM
    for prop in kit.catalog.properties.values():
        for kind in ("confirmation", "reminder", "reschedule", "cancellation"):
            for tour_type in ("in_person", "virtual"):
                message = _message(kind, prop.id, tour_type, start)
                body = texts.render(message).body
                assert len(body) <= SMS_SEGMENT, (len(body), body)
                assert set(body) <= gsm, set(body) - gsm


def _message(kind: str, property_id: str, tour_type: str, start: datetime) -> OutboxMessage:
    now = datetime.now(UTC)
    return OutboxMessage(
        id=1,
        kind=kind,
        channel="sms",
        address=CALLER,
        body=None,
        caller_id=CALLER,
        booking_code="7KQ2",
        property_id=property_id,
        tour_type=tour_type,
        tour_start=start,
        status="sending",
        attempts=1,
        next_attempt_at=now,
        last_error=None,
        provider_id=None,
        claim_token="t",
        dedupe_key=f"{kind}:7KQ2",
        created_at=now,
        updated_at=now,
        sent_at=None,
    )
