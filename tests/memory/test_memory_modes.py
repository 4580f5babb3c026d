"""Memory modes: in-memory keeps nothing (and says so); an LLM adds mem0's own extraction."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from app.domain.state import Pet, PlannerState
from app.memory.service import MemoryService
from tests.fakes.openai_server import FakeOpenAIServer
from tests.memory.conftest import offline_settings

CALLER = "+14155550101"


def remembered_state() -> PlannerState:
    state = PlannerState()
    state.update(caller_name="Dana Zyxwarble", pets=[Pet(kind="cat", count=2)])
    return state


def test_in_memory_mode_warns_loudly_and_keeps_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data_dir = tmp_path / "data"
    settings = offline_settings(data_dir, memory_mode="in_memory")
    with caplog.at_level(logging.WARNING):
        service = MemoryService.open(settings)
    assert "NOT PERSISTENT" in caplog.text and "nobody will be remembered" in caplog.text
    scratch = service.data_dir
    try:
        assert service.health()["persistent"] is False
        service.record_exchange(CALLER, "call-1", "chat", "user", "hi, I'm Dana")
        service.end_call(CALLER, "call-1", remembered_state())
        service.flush()
        assert service.load_context(CALLER).name == "Dana Zyxwarble"  # works while open
    finally:
        service.close()
    assert not scratch.exists()
    assert not data_dir.exists()

    again = MemoryService.open(settings)
    try:
        assert not again.load_context(CALLER).is_returning
    finally:
        again.close()


def test_with_an_llm_consolidation_also_runs_mem0_extraction(tmp_path: Path) -> None:
    with FakeOpenAIServer() as llm:
        llm.reply_text(json.dumps({"memory": [{"text": "Works night shifts at the hospital"}]}))
        settings = offline_settings(
            tmp_path / "data", openai_base_url=llm.url, openai_api_key="test"
        )
        service = MemoryService.open(settings)
        try:
            service.record_exchange(CALLER, "call-1", "phone", "agent", "How can I help?")
            service.record_exchange(
                CALLER, "call-1", "phone", "user", "I work nights at the hospital"
            )
            service.end_call(CALLER, "call-1", remembered_state())
            assert service.flush(60)
            rows = {r.text: r for r in service.memories.list(CALLER)}
            assert rows["Works night shifts at the hospital"].kind == "llm"
            assert rows["Has two cats"].kind == "fact"
            assert "I work nights at the hospital" in str(llm.requests[0].messages)
            assert service.stats(CALLER)["unsynced"] == 0
        finally:
            service.close()


def test_a_failing_llm_keeps_the_deterministic_memories(tmp_path: Path) -> None:
    with FakeOpenAIServer() as llm:
        for _ in range(5):  # the client retries
            llm.reply_error(500)
        settings = offline_settings(
            tmp_path / "data", openai_base_url=llm.url, openai_api_key="test"
        )
        service = MemoryService.open(settings)
        try:
            service.record_exchange(CALLER, "call-1", "phone", "user", "hello")
            service.end_call(CALLER, "call-1", remembered_state())
            assert service.flush(60)
            assert "Has two cats" in service.load_context(CALLER).memories
            call = service.store.get_call("call-1")
            assert call is not None and call.consolidated
        finally:
            service.close()
