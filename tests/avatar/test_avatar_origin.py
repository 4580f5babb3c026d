"""A page on another site can't open ``WS /avatar`` as its visitor's browser."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import InvalidStatus

from app.channels.avatar.session import origin_allowed
from sim.avatar import avatar_url
from sim.server import RunningServer


@pytest.mark.parametrize(
    ("origin", "allowed", "ok"),
    [
        (None, "", True),  # a native app sends no Origin
        ("http://127.0.0.1:8000", "", True),  # the server's own page
        ("https://evil.example", "", False),
        ("https://app.example.com", "https://app.example.com, https://b.example", True),
        ("https://app.example.com/", "https://app.example.com", True),
        ("https://evil.example", "*", True),
    ],
)
def test_which_pages_may_connect(origin: str | None, allowed: str, ok: bool) -> None:
    assert origin_allowed(origin, "127.0.0.1:8000", allowed) is ok


@pytest.mark.slow
async def test_a_foreign_page_is_refused_before_the_upgrade(open_server: RunningServer) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with ws_connect(
            avatar_url(open_server.base_url),
            origin="https://evil.example",  # type: ignore[arg-type]
        ):
            pass
    assert refused.value.response.status_code == 403


@pytest.mark.slow
async def test_the_servers_own_page_may_connect(open_server: RunningServer) -> None:
    own = f"http://{urlsplit(open_server.base_url).netloc}"
    async with ws_connect(avatar_url(open_server.base_url), origin=own) as socket:  # type: ignore[arg-type]
        await socket.send('{"type": "ping"}')  # accepted: the session waits for a hello
