"""One signed Tourline server per test worker for the telephony modules, started for real on
loopback. Session-scoped: five modules use it with the same settings, and each start costs a
few CPU-seconds and seconds of wall time; every test uses its own caller and call ids."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sim.server import RunningServer, running_server
from sim.twilio import TEST_PUBLIC_URL, TEST_TOKEN


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """The server with Twilio signature checks on; a module may override this fixture."""
    data = tmp_path_factory.mktemp("telephony")
    env = {"TWILIO_AUTH_TOKEN": TEST_TOKEN, "TOURLINE_PUBLIC_URL": TEST_PUBLIC_URL}
    with running_server(data, **env) as running:
        yield running
