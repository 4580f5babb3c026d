"""The server as deployed: a real `tourline serve` process on loopback."""

import httpx

from sim.server import running_server

FORM = {
    "AccountSid": "AC00000000000000000000000000000000",
    "CallSid": "CA5bd2bd8ba0c3d3ab8b9d2ad4c1c1f0a7",
    "From": "+14155550101",
    "To": "+12125550100",
    "CallStatus": "ringing",
    "Direction": "inbound",
}


def test_health_turns_ready_and_an_unsigned_server_warns_loudly(tmp_path) -> None:
    """One start-up, two checks: /healthz says ok once loaded, and a server without
    TWILIO_AUTH_TOKEN answers unsigned webhooks but says so in its log."""
    with running_server(tmp_path, TOURLINE_MAX_CALLS="12") as server:
        response = httpx.get(f"{server.base_url}/healthz")
        assert response.status_code == 200
        health = response.json()
        assert health["status"] == "ok"
        # What a load balancer or a fleet reads: no calls yet, room for the configured 12.
        assert health["calls"] == {"active": 0, "capacity": 12, "full": False}
        assert all(ms >= 0 for _second, ms in health["loop_lag_ms"])
        unsigned = httpx.post(f"{server.base_url}/twilio/voice", data=FORM)
        assert unsigned.status_code == 200 and "<Stream" in unsigned.text
    assert "planner ready" in server.log()
    assert "signatures are NOT checked" in server.log()
