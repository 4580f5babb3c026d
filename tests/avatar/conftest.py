"""Two real servers for the avatar tests: one open (no admin key, no avatar secret, so its
avatar clients can only be devices), one with ``TOURLINE_API_KEY`` and
``TOURLINE_AVATAR_SECRET`` (phone and email callers come with a token).

Session-scoped: every avatar test module on a test worker shares them, so models load twice
per worker, not per module. (Package scope restarted them whenever ``--dist loadscope`` gave
a worker a module from another folder in between: six starts in one run instead of four.)
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.channels.avatar.tokens import mint_token
from sim.server import RunningServer, running_server

API_KEY = "avatar-test-key-41c7"
SECRET = "avatar-test-secret-5f0c8e2a9b7d4c61a3e8"  # >= 32 bytes, as HS256 wants
SCREENSHOTS: list[str] = []  # folders the browser tests wrote, printed at the end of the run


@pytest.fixture(scope="session")
def open_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with running_server(tmp_path_factory.mktemp("avatar_open")) as server:
        yield server


@pytest.fixture(scope="session")
def keyed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    data = tmp_path_factory.mktemp("avatar_keyed")
    with running_server(data, TOURLINE_API_KEY=API_KEY, TOURLINE_AVATAR_SECRET=SECRET) as server:
        yield server


def token_for(sub: str, ttl_s: float = 600.0) -> str:
    """A token the keyed server takes: what an integrator's back end would hand its app."""
    return mint_token(SECRET, sub, ttl_s)


@pytest.fixture(scope="session")
def screenshots() -> Path:
    """Where the browser tests leave their screenshots (kept after the run, for people)."""
    folder = Path(tempfile.mkdtemp(prefix="tourline-browser-"))
    SCREENSHOTS.append(str(folder))
    print(f"browser screenshots: {folder}")
    return folder


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for folder in SCREENSHOTS:
        terminalreporter.write_line(f"avatar browser screenshots: {folder}")
