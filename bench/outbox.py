"""Outbox throughput and booking-to-send latency, on SQLite and PostgreSQL.

    flock /tmp/bench.lock .venv/bin/python bench/outbox.py [--messages 400] [--bookings 60]
        [--runs 3] [--postgres URL | --no-postgres] [--no-write]

1. Messages per second through ``OutboxSender`` (the real ``twilio`` client, over loopback
   HTTP to the Twilio fake of ``tests/fakes/twilio_rest.py``): N queued texts drained by one
   sender, then by three senders at once (threads, each with its own engine), per backend.
2. Time from booking to send: a sender runs in the background as in ``tourline serve``
   (woken by each booking); bookings are made one after another through ``TourDesk.book``
   (the booking and its queued confirmation in one transaction) and each is timed from the
   start of ``book`` to the fake receiving the text.

The fake runs in the same process, so its HTTP handling shares the CPU and the GIL: these
are floors for what the sender itself costs, not what Twilio's latency adds.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.domain.catalog import Catalog
from app.messaging.sender import OutboxSender
from app.messaging.texts import MessageTexts
from app.messaging.transports import TwilioTexter
from app.planner.agent_planner import PlannerKit
from app.planner.tour_desk import Contact
from app.settings import Settings
from app.stores.database import create_db_engine, init_schema
from app.stores.opt_outs import OptOutStore
from app.stores.outbox import OutboxPolicy, OutboxStore
from bench.postgres import postgres_schema
from bench.report import machine_line, percentile, write_section
from tests.fakes.twilio_rest import FakeTwilioRest

NY = ZoneInfo("America/New_York")
SID, TOKEN = "AC" + "2" * 32, "bench-token"
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=NY)


def settings_for(data_dir: Path, twilio: FakeTwilioRest, database_url: str | None) -> Settings:
    return Settings(
        data_dir=data_dir,
        database_url=database_url,
        openai_api_key=None,
        openai_base_url=None,
        twilio_account_sid=SID,
        twilio_auth_token=TOKEN,
        twilio_from_number="+12125550100",
        twilio_messaging_service_sid=None,
        twilio_api_base_url=twilio.url,
        smtp_url=None,
        smtp_from=None,
        reminders="",
    )


def _sender(url: str, settings: Settings) -> OutboxSender:
    engine = create_db_engine(url)
    store = OutboxStore(engine, OutboxPolicy(frozenset({"sms"})))
    catalog = Catalog.load(settings.prompts_dir / "properties.yaml")
    return OutboxSender(
        store,
        OptOutStore(engine),
        MessageTexts.load(settings.prompts_dir, catalog),
        {"sms": TwilioTexter(settings)},
    )


def throughput(
    url: str, settings: Settings, twilio: FakeTwilioRest, count: int, senders: int
) -> float:
    """Messages per second: ``count`` queued texts drained by ``senders`` senders."""
    engine = create_db_engine(url)
    init_schema(engine)
    store = OutboxStore(engine)
    run = uuid.uuid4().hex[:8]
    for i in range(count):
        store.queue(
            "confirmation",
            "sms",
            f"+1415555{i % 10000:04d}",
            body=f"bench {run} {i}",
            dedupe_key=f"{run}:{i}",
        )
    workers = [_sender(url, settings) for _ in range(senders)]
    already = len(twilio.messages)
    barrier = threading.Barrier(senders + 1)

    def drain(sender: OutboxSender) -> None:
        barrier.wait()
        while sender.run_once() > 0:
            pass

    threads = [threading.Thread(target=drain, args=(w,)) for w in workers]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    took = time.perf_counter() - started
    sent = len(twilio.messages) - already
    assert sent == count, f"sent {sent} of {count}"
    engine.dispose()
    return count / took


def _slots(catalog: Catalog, count: int, first_day: int) -> Iterator[tuple[str, datetime]]:
    """Distinct virtual-tour slots (every half hour, 9 AM to 7:30 PM) from ``first_day``."""
    found = 0
    for day in range(first_day, first_day + 30):
        for half_hour in range(22):
            start = (NOW + timedelta(days=day)).replace(hour=9, minute=0) + timedelta(
                minutes=30 * half_hour
            )
            for property_id in catalog.properties:
                yield property_id, start
                found += 1
                if found >= count:
                    return


def booking_to_send(
    url: str, settings: Settings, twilio: FakeTwilioRest, bookings: int, run: int
) -> list[float]:
    """Seconds from ``TourDesk.book`` to the fake receiving the confirmation, per booking."""
    engine = create_db_engine(url)
    init_schema(engine)
    kit = PlannerKit.build(settings, engine=engine, clock=lambda: NOW)
    assert kit.desk.outbox is not None
    sender = OutboxSender.build(settings, kit.desk.outbox, kit.catalog)
    kit.desk.on_queued = sender.wake
    times: list[float] = []

    async def main() -> None:
        running = asyncio.create_task(sender.run())
        await asyncio.sleep(0.2)  # the sender's first (empty) pass
        for i, (property_id, start) in enumerate(_slots(kit.catalog, bookings, 1 + 30 * run)):
            before = len(twilio.messages)
            caller = f"+1415556{run}{i:03d}"
            began = time.perf_counter()
            await asyncio.to_thread(
                kit.desk.book,
                property_id,
                "virtual",
                start,
                caller,
                "Bench",
                None,
                Contact(phone=caller, preference="text"),
            )
            arrived = await asyncio.to_thread(twilio.wait_for_messages, before + 1, 10.0)
            assert arrived, "a confirmation did not arrive"
            times.append(time.perf_counter() - began)
        sender.stop()
        await running

    asyncio.run(main())
    engine.dispose()
    return times


def measure(
    name: str, url: str, twilio: FakeTwilioRest, args: argparse.Namespace, tmp: Path
) -> dict[str, str]:
    settings = settings_for(tmp / name, twilio, None if url.startswith("sqlite") else url)
    one = [throughput(url, settings, twilio, args.messages, 1) for _ in range(args.runs)]
    three = [throughput(url, settings, twilio, args.messages, 3) for _ in range(args.runs)]
    latencies: list[float] = []
    for run in range(args.runs):
        latencies += booking_to_send(url, settings, twilio, args.bookings, run)
    ms = [t * 1000 for t in latencies]
    row = {
        "backend": name,
        "one": f"{statistics.median(one):.0f} (min {min(one):.0f})",
        "three": f"{statistics.median(three):.0f} (min {min(three):.0f})",
        "p50": f"{statistics.median(ms):.1f}",
        "p95": f"{percentile(ms, 95):.1f}",
        "max": f"{max(ms):.1f}",
        "n": str(len(ms)),
    }
    print(row, flush=True)
    return row


def load() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=400)
    parser.add_argument("--bookings", type=int, default=60)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--postgres", default=None)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    load_before = load()
    rows = []
    with (
        tempfile.TemporaryDirectory(prefix="bench-outbox-") as tmp,
        FakeTwilioRest(SID, TOKEN) as twilio,
    ):
        sqlite_url = f"sqlite:///{Path(tmp) / 'outbox.db'}"
        rows.append(measure("SQLite", sqlite_url, twilio, args, Path(tmp)))
        if not args.no_postgres:
            with postgres_schema(args.postgres, "bench_outbox") as pg_url:
                if pg_url is None:
                    print("PostgreSQL not reachable: skipped")
                else:
                    rows.append(measure("PostgreSQL", pg_url, twilio, args, Path(tmp)))
    load_after = load()
    columns = ("backend", "one", "three", "p50", "p95", "max", "n")
    table = "\n".join("| " + " | ".join(r[c] for c in columns) + " |" for r in rows)
    command = (
        "`flock /tmp/bench.lock .venv/bin/python bench/outbox.py "
        f"--messages {args.messages} --bookings {args.bookings} --runs {args.runs}`"
    )
    body = f"""## Outbox: messages per second and booking to send

{command}
({machine_line()}; load average {load_before} before, {load_after} after).

The sender (`app/messaging/sender.py`) sends texts with the real `twilio` client over loopback
HTTP to the Twilio fake (`tests/fakes/twilio_rest.py`, same process, so it shares the CPU).
Messages per second: {args.messages} queued texts drained by one sender, and by three senders at
once (threads with their own engines: `FOR UPDATE SKIP LOCKED` on PostgreSQL), median of
{args.runs} runs (min in brackets). Booking to send: `TourDesk.book` (the booking and its
confirmation row in one transaction) until the fake holds the text, with the sender running in
the background and woken by the booking, as in `tourline serve`; {args.bookings} bookings one after
another, {args.runs} runs, all pooled.

| backend | msgs/s, 1 sender | msgs/s, 3 senders | booking→send p50 ms | p95 ms | max ms | n |
|---|---|---|---|---|---|---|
{table}
"""
    print(body)
    if not args.no_write:
        write_section("outbox", body)


if __name__ == "__main__":
    main()
