"""A load balancer asks /readyz whether this server takes another call; /healthz stays 200.

A real server with room for one call: while that call is on the line the server says it is
full (503, "full"), and once the caller hangs up it takes calls again.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from sim.server import running_server
from sim.twilio import TwilioCall

PUBLIC = "https://tourline.example"


async def test_a_full_server_says_so_and_takes_calls_again_after_a_hang_up(
    tmp_path: Path,
) -> None:
    with running_server(tmp_path, TOURLINE_MAX_CALLS="1") as server:
        async with httpx.AsyncClient(base_url=server.base_url) as http:
            ready = await http.get("/readyz")
            assert ready.status_code == 200, ready.text
            assert ready.json()["calls"] == {"active": 0, "capacity": 1}

            async with TwilioCall.connect(
                server.base_url, public_url=PUBLIC, auth_token=None, from_number="+14155550142"
            ) as call:
                await call.listen(timeout_s=20)  # the greeting: the call is live
                full = await http.get("/readyz")
                assert full.status_code == 503
                assert full.json()["reason"] == "full"
                assert (await http.get("/healthz")).status_code == 200  # alive, just full
            await call.stream.wait_closed(timeout_s=10)

            async def ready_again() -> bool:
                return (await http.get("/readyz")).status_code == 200

            for _ in range(100):  # poll: the server ends the call on its own schedule
                if await ready_again():
                    break
                await asyncio.sleep(0.05)  # the poll's pace, not a synchronization
            assert await ready_again()
