"""The incoming-call webhook over real HTTP, signed exactly as Twilio signs it."""

import xml.etree.ElementTree as ET

import httpx
import pytest
from twilio.request_validator import RequestValidator

from sim.server import running_server

TOKEN = "12345678901234567890123456789012"
PUBLIC = "https://tourline-test.example.com"
CALL = "CA5bd2bd8ba0c3d3ab8b9d2ad4c1c1f0a7"
FORM = {
    "AccountSid": "AC00000000000000000000000000000000",
    "CallSid": CALL,
    "From": "+14155550101",
    "To": "+12125550100",
    "CallStatus": "ringing",
    "Direction": "inbound",
}


def sign(path: str, params: dict[str, str]) -> str:
    return RequestValidator(TOKEN).compute_signature(PUBLIC + path, params)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data = tmp_path_factory.mktemp("webhook")
    with running_server(data, TWILIO_AUTH_TOKEN=TOKEN, TOURLINE_PUBLIC_URL=PUBLIC) as running:
        yield running


def test_signed_webhook_connects_a_media_stream(server) -> None:
    response = httpx.post(
        f"{server.base_url}/twilio/voice",
        data=FORM,
        headers={"X-Twilio-Signature": sign("/twilio/voice", FORM)},
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/xml")
    stream = ET.fromstring(response.text).find("./Connect/Stream")
    assert stream is not None
    assert stream.get("url") == "wss://tourline-test.example.com/twilio/media"
    params = {p.get("name"): p.get("value") for p in stream.findall("Parameter")}
    token = params.pop("Token")  # binds the stream's start to this call and number
    assert params == {"From": "+14155550101", "To": "+12125550100", "CallSid": CALL}
    expires, _, mac = token.partition(".")
    assert expires.isdigit() and len(mac) == 64


@pytest.mark.parametrize("signature", [None, "bm90IGEgc2lnbmF0dXJl", "tampered"])
def test_bad_or_missing_signature_is_refused(server, signature) -> None:
    headers = {"X-Twilio-Signature": signature} if signature else {}
    if signature == "tampered":
        headers["X-Twilio-Signature"] = sign("/twilio/voice", {**FORM, "From": "+19999999999"})
    response = httpx.post(f"{server.base_url}/twilio/voice", data=FORM, headers=headers)
    assert response.status_code == 403
    assert "Stream" not in response.text


def test_status_callback_lands_in_the_call_timeline(server) -> None:
    form = {**FORM, "CallStatus": "completed", "CallDuration": "42"}
    response = httpx.post(
        f"{server.base_url}/twilio/status",
        data=form,
        headers={"X-Twilio-Signature": sign("/twilio/status", form)},
    )
    assert response.status_code == 204
    timeline = httpx.get(f"{server.base_url}/calls/{CALL}/timeline").json()
    assert timeline["events"][-1]["status"] == "completed"
    assert httpx.get(f"{server.base_url}/calls/CAnope/timeline").status_code == 404
