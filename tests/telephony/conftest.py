"""One signed Tourline server per telephony test module, started for real on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sim.server import RunningServer, running_server
from sim.twilio import TEST_PUBLIC_URL, TEST_TOKEN


@pytest.fixture(scope="module")
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """The server with Twilio signature checks on; a module may override this fixture."""
    data = tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1])
    env = {"TWILIO_AUTH_TOKEN": TEST_TOKEN, "TOURLINE_PUBLIC_URL": TEST_PUBLIC_URL}
    with running_server(data, **env) as running:
        yield running
