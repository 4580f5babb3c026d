"""A NUL character in what a caller said (bad STT output, a crafted message) is dropped at
the store boundary: PostgreSQL refuses NUL in text and ``\\u0000`` in JSONB, and one such
character must not fail the write and lose the exchange, the snapshot or the memories.
The same happens on SQLite, so a backup moves between the two."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.memory.service import MemoryService
from app.stores.conversations import exchanges
from tests.memory.conftest import OpenService
from tests.memory.seeding import DANA, dana_state

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_nul_characters_are_dropped_not_the_exchange(
    open_service: OpenService, db_url: str
) -> None:
    vectors = "postgres" if db_url.startswith("postgresql") else "embedded"
    memory: MemoryService = open_service(vector_store=vectors)
    memory.start_call(DANA, "CA-nul", "phone")
    said = memory.record_exchange(DANA, "CA-nul", "phone", "user", "my name is Dana\x00 Nul\x00ll")
    memory.record_exchange(
        DANA, "CA-nul", "phone", "agent", "Nice to meet you", interrupted=True, heard="Ni\x00ce"
    )
    state = dana_state()
    state.update(caller_name="Dana\x00 Nulll")  # a name heard with a NUL in it
    memory.save_snapshot(DANA, "CA-nul", state)  # its facts go to the vector store (JSONB)
    memory.end_call(DANA, "CA-nul", state)
    assert memory.flush(60)

    with memory.engine.connect() as conn:
        rows = conn.execute(
            select(exchanges.c.id, exchanges.c.text, exchanges.c.heard)
            .where(exchanges.c.call_id == "CA-nul")
            .order_by(exchanges.c.id)
        ).all()
    assert [(r.text, r.heard) for r in rows] == [
        ("my name is Dana Nulll", None),
        ("Nice to meet you", "Nice"),
    ]
    assert rows[0].id == said
    call = memory.store.get_call("CA-nul")
    assert call is not None and call.consolidated and "Dana Nulll" in (call.summary or "")
    context = memory.load_context(DANA)
    assert context.name == "Dana Nulll"
    assert any("Dana Nulll" in m for m in memory.memories.list(DANA) for m in [m.text])
