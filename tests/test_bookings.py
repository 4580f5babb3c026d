"""BookingStore on SQLite and PostgreSQL: the no-double-booking rule holds in the database."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import cast
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import (
    Column,
    Connection,
    Engine,
    MetaData,
    String,
    Table,
    insert,
    inspect,
    select,
)

from app.domain.state import Booking
from app.stores.bookings import (
    CODE_ALPHABET,
    BookingCancelled,
    BookingNotFound,
    BookingRow,
    BookingStore,
    SlotTaken,
    new_confirmation_code,
)
from app.stores.database import create_db_engine, init_schema
from app.stores.outbox import OutboxPolicy, OutboxStore, Route

NY = ZoneInfo("America/New_York")
TEN_AM = datetime(2031, 5, 6, 10, 0, tzinfo=NY)
CALLER = "+12125550199"


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = create_db_engine(db_url)
    init_schema(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def store(engine: Engine) -> BookingStore:
    return BookingStore(engine)


def test_book_and_get(store: BookingStore) -> None:
    booking = store.book("maple", "in_person", TEN_AM, CALLER, "Dana", "dana@example.com")
    assert booking.status == "booked"
    assert booking.property_id == "maple"
    assert booking.tour_type == "in_person"
    assert booking.start == TEN_AM
    assert len(booking.confirmation_code) == 4
    assert set(booking.confirmation_code) <= set(CODE_ALPHABET)
    assert store.get(booking.confirmation_code) == booking
    assert store.get("0000") is None  # 0 is not in the alphabet: no booking can have it


def test_start_comes_back_aware_in_property_timezone(store: BookingStore) -> None:
    start_utc = datetime(2031, 1, 15, 19, 30, tzinfo=UTC)  # 14:30 in New York (EST)
    booking = store.book("maple", "virtual", start_utc, CALLER)
    fetched = store.get(booking.confirmation_code)
    assert fetched is not None
    for value in (booking.start, fetched.start):
        assert value.tzinfo is not None
        assert value.tzinfo == NY
        assert (value.hour, value.minute) == (14, 30)
        assert value == start_utc


def test_same_slot_cannot_be_booked_twice(store: BookingStore) -> None:
    store.book("maple", "in_person", TEN_AM, CALLER)
    with pytest.raises(SlotTaken):
        store.book("maple", "in_person", TEN_AM, "+12125550100")
    with pytest.raises(SlotTaken):  # the slot is the property's, whatever the tour type
        store.book("maple", "virtual", TEN_AM.astimezone(UTC), "+12125550100")


def test_other_property_same_time_is_fine(store: BookingStore) -> None:
    a = store.book("maple", "in_person", TEN_AM, CALLER)
    b = store.book("oak", "in_person", TEN_AM, "+12125550100")
    assert a.confirmation_code != b.confirmation_code
    assert not store.is_free("maple", TEN_AM)
    assert not store.is_free("oak", TEN_AM)
    assert store.is_free("elm", TEN_AM)


def test_cancel_frees_the_slot(store: BookingStore) -> None:
    booking = store.book("maple", "in_person", TEN_AM, CALLER)
    cancelled = store.cancel(booking.confirmation_code)
    assert cancelled.status == "cancelled"
    assert cancelled.confirmation_code == booking.confirmation_code
    assert store.is_free("maple", TEN_AM)
    assert store.cancel(booking.confirmation_code).status == "cancelled"  # idempotent
    again = store.book("maple", "virtual", TEN_AM, "+12125550100")
    assert again.status == "booked"
    with pytest.raises(BookingNotFound):
        store.cancel("NOPE")


def test_reschedule_moves_and_keeps_code(store: BookingStore) -> None:
    booking = store.book("maple", "in_person", TEN_AM, CALLER)
    later = TEN_AM + timedelta(hours=2)
    moved = store.reschedule(booking.confirmation_code, later)
    assert moved.confirmation_code == booking.confirmation_code
    assert moved.start == later
    assert moved.status == "booked"
    assert store.is_free("maple", TEN_AM)
    assert not store.is_free("maple", later)
    assert store.get(booking.confirmation_code) == moved
    other = store.book("maple", "virtual", TEN_AM, "+12125550100")  # the old slot is free
    assert other.start == TEN_AM


def test_reschedule_onto_taken_slot_leaves_original(store: BookingStore) -> None:
    mine = store.book("maple", "in_person", TEN_AM, CALLER)
    later = TEN_AM + timedelta(hours=1)
    store.book("maple", "virtual", later, "+12125550100")
    with pytest.raises(SlotTaken):
        store.reschedule(mine.confirmation_code, later)
    assert store.get(mine.confirmation_code) == mine
    assert not store.is_free("maple", TEN_AM)


def test_reschedule_unknown_or_cancelled(store: BookingStore) -> None:
    with pytest.raises(BookingNotFound):
        store.reschedule("NOPE", TEN_AM)
    booking = store.book("maple", "in_person", TEN_AM, CALLER)
    store.cancel(booking.confirmation_code)
    with pytest.raises(BookingCancelled):
        store.reschedule(booking.confirmation_code, TEN_AM + timedelta(hours=1))


def test_code_lookup_ignores_case_spaces_and_dashes(store: BookingStore) -> None:
    booking = store.book("maple", "in_person", TEN_AM, CALLER)
    code = booking.confirmation_code
    spoken = " ".join(code.lower())  # "4 r z 8"
    dashed = f"{code[:2]}-{code[2:]}".lower()
    assert store.get(spoken) == booking
    assert store.get(dashed) == booking
    assert store.reschedule(dashed, TEN_AM).confirmation_code == code
    assert store.cancel(spoken).status == "cancelled"


def test_upcoming_for_caller(store: BookingStore) -> None:
    now = TEN_AM - timedelta(days=1)
    assert store.upcoming_for_caller(CALLER, now) is None
    past = store.book("maple", "in_person", now - timedelta(days=2), CALLER)
    later = store.book("oak", "virtual", TEN_AM + timedelta(days=3), CALLER)
    soon = store.book("maple", "in_person", TEN_AM, CALLER)
    store.book("maple", "in_person", TEN_AM + timedelta(hours=1), "+12125550100")
    assert past.start < now
    assert store.upcoming_for_caller(CALLER, now) == soon
    store.cancel(soon.confirmation_code)
    assert store.upcoming_for_caller(CALLER, now) == later
    assert store.upcoming_for_caller(CALLER, later.start) == later  # "at or after now"
    assert store.cancel_all_for_caller(CALLER) == 2  # past and later were still active
    assert store.upcoming_for_caller(CALLER, now) is None
    assert store.cancel_all_for_caller(CALLER) == 0


def test_taken_between(store: BookingStore) -> None:
    store.book("maple", "in_person", TEN_AM, CALLER)
    store.book("maple", "virtual", TEN_AM + timedelta(hours=1), "+12125550100")
    store.book("maple", "virtual", TEN_AM + timedelta(hours=2), "+12125550101")
    cancelled = store.book("maple", "virtual", TEN_AM + timedelta(hours=3), "+12125550102")
    store.cancel(cancelled.confirmation_code)
    store.book("oak", "virtual", TEN_AM, "+12125550103")
    taken = store.taken_between("maple", TEN_AM, TEN_AM + timedelta(hours=2))
    assert taken == {TEN_AM, TEN_AM + timedelta(hours=1)}  # end is exclusive
    assert all(t.tzinfo == NY for t in taken)


def test_naive_datetimes_are_refused(store: BookingStore) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        store.book("maple", "in_person", datetime(2031, 5, 6, 10, 0), CALLER)


def test_schema_has_the_partial_unique_index(engine: Engine) -> None:
    indexes = {ix["name"]: ix for ix in inspect(engine).get_indexes("bookings")}
    index = indexes["uq_bookings_active_slot"]
    assert index["unique"]
    assert index["column_names"] == ["property_id", "start"]
    where = index.get("dialect_options", {}).get(f"{engine.dialect.name}_where")
    assert where is not None and "booked" in str(where)


def test_sqlite_engine_settings(sqlite_url: str) -> None:
    engine = create_db_engine(sqlite_url)  # the data folder does not exist yet
    try:
        with engine.connect() as conn:
            pragmas = {
                name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "synchronous", "busy_timeout", "foreign_keys")
            }
    finally:
        engine.dispose()
    assert pragmas == {
        "journal_mode": "wal",
        "synchronous": 1,
        "busy_timeout": 5000,
        "foreign_keys": 1,
    }


def test_concurrent_bookings_of_one_slot_have_one_winner(db_url: str, engine: Engine) -> None:
    BookingStore(engine)  # table exists before the racers start
    racers = 8
    barrier = threading.Barrier(racers)
    wins: list[str] = []
    losses: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def race(i: int) -> None:
        own_engine = create_db_engine(db_url)
        try:
            own_store = BookingStore(own_engine)
            barrier.wait(timeout=30)
            booking = own_store.book("maple", "in_person", TEN_AM, f"+1212555{i:04d}")
            with lock:
                wins.append(booking.confirmation_code)
        except SlotTaken:
            with lock:
                losses.append(i)
        except BaseException as exc:
            with lock:
                errors.append(exc)
        finally:
            own_engine.dispose()

    threads = [threading.Thread(target=race, args=(i,)) for i in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert len(wins) == 1
    assert len(losses) == racers - 1
    assert not BookingStore(engine).is_free("maple", TEN_AM)


def test_confirmation_codes_avoid_look_alikes() -> None:
    codes = {new_confirmation_code() for _ in range(500)}
    assert all(len(c) == 4 for c in codes)
    assert not set("".join(codes)) & set("01OIL")


def test_a_forgotten_callers_bookings_keep_no_trace_of_them(store: BookingStore) -> None:
    booked = store.book("maple", "in_person", TEN_AM, CALLER, "Dana Lee", "dana@example.com")
    store.cancel(booked.confirmation_code)
    store.book("oak", "virtual", TEN_AM + timedelta(days=1), CALLER, "Dana Lee")
    assert store.cancel_all_for_caller(CALLER) == 1
    with store._engine.connect() as conn:
        rows = conn.execute(select(BookingRow)).all()
    assert rows and all(r.caller_id == "forgotten" for r in rows)
    assert not any(r.caller_name or r.email for r in rows)
    assert store.upcoming_for_caller(CALLER, TEN_AM - timedelta(days=1)) is None


LONG_CALLER = ("kiosk " + "lobby-tablet-" * 23)[:299] + "7"  # 300 characters: a device id


def test_a_300_character_caller_id_books_a_tour(store: BookingStore) -> None:
    assert len(LONG_CALLER) == 300
    booked = store.book("maple", "virtual", TEN_AM, LONG_CALLER, "Dana Lee")
    assert store.upcoming_for_caller(LONG_CALLER, TEN_AM - timedelta(days=1)) == booked
    assert store.cancel_all_for_caller(LONG_CALLER) == 1


def test_a_bookings_table_from_an_older_version_takes_long_caller_ids(db_url: str) -> None:
    """A database made when caller_id was VARCHAR(64) keeps its bookings and is widened."""
    old = MetaData()
    table = cast(Table, BookingRow.__table__).to_metadata(old)
    table.c.caller_id.type = String(64)
    engine = create_db_engine(db_url)
    try:
        old.create_all(engine)
        now = datetime.now(UTC)
        with engine.begin() as conn:
            conn.execute(
                insert(table).values(
                    confirmation_code="K7QX",
                    property_id="oak",
                    tour_type="in_person",
                    start=TEN_AM,
                    caller_id=CALLER,
                    status="booked",
                    created_at=now,
                    updated_at=now,
                )
            )
        init_schema(engine)  # what opening memory on this database does
        store = BookingStore(engine)
        booked = store.book("maple", "virtual", TEN_AM, LONG_CALLER)
        assert store.upcoming_for_caller(LONG_CALLER, TEN_AM - timedelta(days=1)) == booked
        assert store.upcoming_for_caller(CALLER, TEN_AM - timedelta(days=1)) == store.get("K7QX")
        if engine.dialect.name == "postgresql":  # SQLite does not enforce lengths at all
            columns = {c["name"]: c["type"] for c in inspect(engine).get_columns("bookings")}
            assert columns["caller_id"].length == 320
    finally:
        engine.dispose()


# ---------------------------------------------------------------- writes in the same transaction


class Crash(Exception):
    """Stands in for a process dying after the booking row changed, before the commit."""


def _crash(conn: Connection, booking: Booking) -> None:
    conn.execute(insert(_probe(conn)).values(code=booking.confirmation_code))
    raise Crash


def _probe(conn: Connection) -> Table:
    """A scratch table written by ``also``: it must roll back with the booking."""
    table = Table("also_probe", MetaData(), Column("code", String(16)))
    table.create(conn, checkfirst=True)
    return table


def _probe_rows(engine: Engine) -> list[str]:
    if not inspect(engine).has_table("also_probe"):
        return []
    with engine.connect() as conn:
        return list(conn.scalars(select(_probe(conn).c.code)))


def test_a_write_in_the_bookings_transaction_commits_with_it(
    store: BookingStore, engine: Engine
) -> None:
    seen: list[str] = []

    def also(conn: Connection, booking: Booking) -> None:
        seen.append(booking.confirmation_code)

    booking = store.book("hudson-360", "in_person", TEN_AM, CALLER, "Dana", also=also)
    moved = store.reschedule(booking.confirmation_code, TEN_AM + timedelta(hours=2), also=also)
    store.cancel(booking.confirmation_code, also=also)
    store.cancel(booking.confirmation_code, also=also)  # cancelling twice: no second write
    assert seen == [booking.confirmation_code] * 3
    assert moved.start == TEN_AM + timedelta(hours=2)


def test_a_failing_write_in_the_transaction_undoes_the_booking_change(
    store: BookingStore, engine: Engine
) -> None:
    with pytest.raises(Crash):
        store.book("hudson-360", "in_person", TEN_AM, CALLER, "Dana", also=_crash)
    assert store.is_free("hudson-360", TEN_AM)

    booking = store.book("hudson-360", "in_person", TEN_AM, CALLER, "Dana")
    code = booking.confirmation_code
    with pytest.raises(Crash):
        store.reschedule(code, TEN_AM + timedelta(hours=1), also=_crash)
    with pytest.raises(Crash):
        store.cancel(code, also=_crash)
    assert store.get(code) == booking  # neither moved nor cancelled
    assert _probe_rows(engine) == []


def test_forgetting_a_caller_deletes_the_messages_owed_to_them(
    store: BookingStore, engine: Engine
) -> None:
    outbox = OutboxStore(engine, OutboxPolicy(frozenset({"sms"})))

    def queue(conn: Connection, booking: Booking) -> None:
        outbox.on_booked(conn, booking, CALLER, Route("sms", CALLER, final=True))

    store.book("maple", "in_person", TEN_AM, CALLER, "Dana", also=queue)
    other = "+12125550111"
    outbox.queue("confirmation", "sms", other, caller_id=other, body="hi")
    assert len(outbox.for_caller(CALLER)) == 1
    store.cancel_all_for_caller(CALLER)
    assert outbox.for_caller(CALLER) == []
    assert len(outbox.for_caller(other)) == 1


def test_reschedule_can_change_the_tour_type(store: BookingStore) -> None:
    """ "Sunday? A virtual one then": the moved booking is virtual, in the database too."""
    booking = store.book("maple", "in_person", TEN_AM, CALLER)
    moved = store.reschedule(
        booking.confirmation_code, TEN_AM + timedelta(days=1), tour_type="virtual"
    )
    assert moved.tour_type == "virtual"
    stored = store.get(booking.confirmation_code)
    assert stored is not None and stored.tour_type == "virtual"
