"""The server as deployed: a real `tourline serve` process on loopback."""

import httpx

from sim.server import running_server


def test_health_turns_ready_after_start_up(tmp_path) -> None:
    with running_server(tmp_path) as server:
        response = httpx.get(f"{server.base_url}/healthz")
        assert response.status_code == 200
        assert response.json()["status"] == "ok"
    assert "planner ready" in server.log()
