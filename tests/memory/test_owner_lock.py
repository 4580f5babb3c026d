"""The owner lock names its holder and what it advertised, and can be read without taking it."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.memory.owner_lock import EmbeddedStoreLockedError, OwnerLock, advertise, read_owner


@pytest.fixture
def lock_path(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "memory" / "mem0.lock"
    advertise(server=None)  # what this process advertises outlives a test


def test_nobody_holds_a_missing_or_released_lock(lock_path: Path) -> None:
    assert read_owner(lock_path) is None
    with OwnerLock(lock_path, store=lock_path.parent):
        pass
    assert read_owner(lock_path) is None


def test_a_held_lock_names_its_holder_and_the_server_it_advertised(lock_path: Path) -> None:
    advertise(server="http://127.0.0.1:8123")
    with OwnerLock(lock_path, store=lock_path.parent):
        owner = read_owner(lock_path)
        assert owner is not None
        assert owner.holder is not None and owner.holder.startswith(f"pid {os.getpid()} on ")
        assert owner.server_url == "http://127.0.0.1:8123"
        # The second opener's sentence names the holder only, as before the metadata lines.
        with pytest.raises(EmbeddedStoreLockedError) as refused:
            OwnerLock(lock_path, store=lock_path.parent).acquire()
        assert refused.value.holder == owner.holder
        assert re.search(rf"already open by pid {os.getpid()} on \S+\. One ", str(refused.value))
        assert read_owner(lock_path) == owner  # reading never takes the lock away
    assert read_owner(lock_path) is None


def test_an_owner_that_advertised_nothing_is_no_server(lock_path: Path) -> None:
    with OwnerLock(lock_path, store=lock_path.parent):
        owner = read_owner(lock_path)
        assert owner is not None and owner.holder is not None
        assert owner.server_url is None


def test_advertised_fields_are_single_lines(lock_path: Path) -> None:
    with pytest.raises(ValueError):
        advertise(server="http://a\nother http://b")
    with pytest.raises(ValueError):
        advertise(**{"two words": "x"})
