"""Two real servers for the avatar tests: one open, one with ``TOURLINE_API_KEY``.

Package-scoped: every avatar test module shares them, so models load twice, not per module.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from sim.server import RunningServer, running_server

API_KEY = "avatar-test-key-41c7"
SCREENSHOTS: list[str] = []  # folders the browser tests wrote, printed at the end of the run


@pytest.fixture(scope="package")
def open_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with running_server(tmp_path_factory.mktemp("avatar_open")) as server:
        yield server


@pytest.fixture(scope="package")
def keyed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    data = tmp_path_factory.mktemp("avatar_keyed")
    with running_server(data, TOURLINE_API_KEY=API_KEY) as server:
        yield server


@pytest.fixture(scope="package")
def screenshots() -> Path:
    """Where the browser tests leave their screenshots (kept after the run, for people)."""
    folder = Path(tempfile.mkdtemp(prefix="tourline-browser-"))
    SCREENSHOTS.append(str(folder))
    print(f"browser screenshots: {folder}")
    return folder


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for folder in SCREENSHOTS:
        terminalreporter.write_line(f"avatar browser screenshots: {folder}")
