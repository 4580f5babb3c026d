"""Fixtures for MemoryService tests: real SQLite files or the real PostgreSQL, real mem0.

``open_service`` opens a MemoryService on the test's database (``db_url``: once on SQLite,
once on PostgreSQL) and a data dir in ``tmp_path`` (Qdrant Edge shards, mem0's history
DB); everything opened is closed at teardown, so the owner lock never leaks into the next
test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from app.memory.service import MemoryService
from app.settings import Settings
from app.stores.database import create_db_engine

OpenService = Callable[..., MemoryService]


def offline_settings(data_dir: Path, **overrides: Any) -> Settings:
    """Settings that ignore the developer's environment (no cloud, no DATABASE_URL)."""
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "memory_mode": "persistent",
        "database_url": None,
        "qdrant_url": None,
        "openai_api_key": None,
        "openai_base_url": None,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def settings(data_dir: Path) -> Settings:
    return offline_settings(data_dir)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = create_db_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def open_service(settings: Settings, engine: Engine) -> Iterator[OpenService]:
    opened: list[MemoryService] = []

    def _open(**overrides: Any) -> MemoryService:
        chosen = settings.model_copy(update=overrides) if overrides else settings
        service = MemoryService.open(chosen, engine=engine)
        opened.append(service)
        return service

    yield _open
    for service in opened:
        service.close()


@pytest.fixture
def service(open_service: OpenService) -> MemoryService:
    return open_service()
