"""``TOURLINE_API_KEY`` on the avatar side: the socket takes the key in the hello (browsers
can't set headers) or as a header, and refuses everyone else with a reason."""

from __future__ import annotations

import json

import httpx
import pytest
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import InvalidStatus

from sim.avatar import AvatarClient, avatar_url, errors_of, fresh_user, raw_session
from sim.server import RunningServer
from tests.avatar.conftest import API_KEY

pytestmark = pytest.mark.slow


def hello(**extra: str) -> str:
    return json.dumps({"type": "hello", "user": {"device_id": fresh_user()}, **extra})


async def test_no_key_or_a_wrong_key_in_hello_is_refused(keyed_server: RunningServer) -> None:
    for message in (hello(), hello(api_key="guess")):
        received, code, reason = await raw_session(keyed_server.base_url, message)
        assert errors_of(received) == ["unauthorized"], received
        assert code == 1008 and "API key" in reason
        assert not [m for m in received if m["type"] == "ready"]


async def test_the_key_in_hello_or_in_a_header_opens_a_session(
    keyed_server: RunningServer,
) -> None:
    async with AvatarClient.connect(keyed_server.base_url, fresh_user(), api_key=API_KEY) as one:
        assert one.ready is not None
        await one.listen(timeout_s=60)
    async with AvatarClient.connect(keyed_server.base_url, fresh_user(), header_key=API_KEY) as two:
        assert two.ready is not None
    assert (one.close_code, two.close_code) == (1000, 1000)


async def test_a_wrong_key_header_is_refused_before_the_upgrade(
    keyed_server: RunningServer,
) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with ws_connect(
            avatar_url(keyed_server.base_url), additional_headers={"X-API-Key": "guess"}
        ):
            pass
    assert refused.value.response.status_code == 403


async def test_the_memory_api_and_caller_list_need_the_key(keyed_server: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=keyed_server.base_url, timeout=30) as http:
        assert (await http.get("/callers")).status_code == 401
        listed = await http.get("/callers", headers={"Authorization": f"Bearer {API_KEY}"})
    assert listed.status_code == 200 and "callers" in listed.json()
    assert "avatar socket (/avatar) and the dashboard are OPEN" not in keyed_server.log()
