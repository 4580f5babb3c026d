"""Several senders on one database never send a message twice; a dead sender's claim lapses.

Three senders (threads, each with its own engine and connections, like three servers) work
through one outbox on a real PostgreSQL (``FOR UPDATE SKIP LOCKED``) and on SQLite (one
writer at a time), all sending to the loopback Twilio fake.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from app.domain.catalog import Catalog
from app.messaging.sender import OutboxSender
from app.messaging.texts import MessageTexts
from app.messaging.transports import TwilioTexter
from app.stores.database import create_db_engine, init_schema
from app.stores.opt_outs import OptOutStore
from app.stores.outbox import OutboxPolicy, OutboxStore
from tests.fakes.twilio_rest import FakeTwilioRest
from tests.messaging.conftest import messaging_settings

MESSAGES = 60
SENDERS = 3


def _sender(url: str, tmp_path: Path, twilio: FakeTwilioRest) -> OutboxSender:
    settings = messaging_settings(tmp_path, twilio)
    engine = create_db_engine(url)
    store = OutboxStore(engine, OutboxPolicy(frozenset({"sms"})))
    catalog = Catalog.load(settings.prompts_dir / "properties.yaml")
    texts = MessageTexts.load(settings.prompts_dir, catalog)
    return OutboxSender(store, OptOutStore(engine), texts, {"sms": TwilioTexter(settings)}, batch=2)


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_three_senders_never_send_a_message_twice(
    backend: str, tmp_path: Path, twilio: FakeTwilioRest, request: pytest.FixtureRequest
) -> None:
    url = str(request.getfixturevalue(f"{backend}_url"))
    engine = create_db_engine(url)
    init_schema(engine)
    store = OutboxStore(engine)
    for i in range(MESSAGES):
        store.queue(
            "confirmation", "sms", f"+1415555{i:04d}", body=f"message {i}", dedupe_key=f"m{i}"
        )
    assert store.queue("confirmation", "sms", "+14155550000", body="again", dedupe_key="m0") is None

    senders = [_sender(url, tmp_path, twilio) for _ in range(SENDERS)]
    start = threading.Barrier(SENDERS)
    errors: list[BaseException] = []

    def work(sender: OutboxSender) -> None:
        try:
            start.wait(10)
            while sender.run_once() > 0:
                pass
        except BaseException as exc:  # reported below, with the thread's own traceback
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(s,)) for s in senders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    assert not any(t.is_alive() for t in threads)

    sent = Counter(twilio.bodies())
    assert len(twilio.messages) == MESSAGES, sent.most_common(3)
    assert set(sent.values()) == {1}
    assert store.counts()["sent"] == MESSAGES
    assert sum(s.sent for s in senders) == MESSAGES
    engine.dispose()


def test_a_dead_senders_claim_lapses_and_its_late_mark_is_ignored(
    sqlite_url: str, tmp_path: Path, twilio: FakeTwilioRest
) -> None:
    """The edge the README owns up to: a row stuck in ``sending`` is sent again after the
    lease; the killed sender can't overwrite what the live one recorded."""
    engine = create_db_engine(sqlite_url)
    init_schema(engine)
    store = OutboxStore(engine)
    store.queue("confirmation", "sms", "+14155550101", body="hello", dedupe_key="m1")
    now = datetime.now(UTC)
    dead = store.claim(1, timedelta(minutes=2), now=now)  # then the process died
    assert len(dead) == 1
    live = _sender(sqlite_url, tmp_path, twilio)

    assert live.run_once(now=now + timedelta(minutes=1)) == 0  # the lease still holds
    assert live.run_once(now=now + timedelta(minutes=2, seconds=1)) == 1
    assert [m.body for m in twilio.messages] == ["hello"]
    assert store.mark_failed(dead[0], "late") is False
    row = store.get(dead[0].id)
    assert row is not None and (row.status, row.attempts) == ("sent", 2)


def test_stopping_sender_finishes_the_message_in_flight_and_hands_back_the_rest(
    sqlite_url: str, tmp_path: Path, twilio: FakeTwilioRest
) -> None:
    """SIGTERM drain: the text being sent is sent and recorded; the claimed rest go back to
    pending at once (for another replica), untried."""
    engine = create_db_engine(sqlite_url)
    init_schema(engine)
    store = OutboxStore(engine)
    for i in range(3):
        store.queue("confirmation", "sms", f"+1415555010{i}", body=f"m{i}", dedupe_key=f"m{i}")
    sender = _sender(sqlite_url, tmp_path, twilio)
    sender.batch = 10
    twilio.hold()

    async def main() -> None:
        running = asyncio.create_task(sender.run(poll_s=60))
        assert await asyncio.to_thread(twilio.wait_for_arrivals, 1)
        sender.stop()  # while the first text is in flight
        twilio.release()
        await asyncio.wait_for(running, 30)

    asyncio.run(main())
    assert [m.body for m in twilio.messages] == ["m0"]
    rows = {m.body or m.dedupe_key: (m.status, m.attempts) for m in store.all()}
    assert rows == {"m0": ("sent", 1), "m1": ("pending", 0), "m2": ("pending", 0)}
