"""A call's HTTP side: the signed voice webhook, its TwiML, the signed socket upgrade (and
an inbound text, signed the same way).

Also the server's call timeline (``GET /calls/{sid}/timeline``), which tests and benchmarks
check a call against: it is the only place the server says what it heard and when.
"""

from __future__ import annotations

import asyncio
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

import httpx
from twilio.request_validator import RequestValidator

DEFAULT_FROM: Final = "+14155550123"
DEFAULT_TO: Final = "+12125550100"
TWILIO_API_VERSION: Final = "2010-04-01"
MEDIA_PATH: Final = "/twilio/media"

TEST_TOKEN = "test-token"
"""The Twilio auth token test servers are started with (signatures are checked)."""
TEST_PUBLIC_URL = "https://tourline.example"
"""The public URL test servers sign against (TOURLINE_PUBLIC_URL)."""


def new_sid(prefix: str) -> str:
    """A Twilio-shaped id: two-letter prefix + 32 hex digits (CA..., MZ..., AC...)."""
    return prefix + uuid.uuid4().hex


def fresh_number() -> str:
    """A caller id no earlier call used, so no test meets a "returning caller" greeting."""
    return "+1415555" + f"{uuid.uuid4().int % 10_000:04d}"


def twilio_form(
    call_sid: str,
    from_number: str = DEFAULT_FROM,
    to_number: str = DEFAULT_TO,
    account_sid: str | None = None,
) -> dict[str, str]:
    """The fields Twilio POSTs to the voice webhook when a call rings (a realistic subset)."""
    return {
        "AccountSid": account_sid or "AC" + "0" * 32,
        "ApiVersion": TWILIO_API_VERSION,
        "CallSid": call_sid,
        "CallStatus": "ringing",
        "Called": to_number,
        "CalledCountry": "US",
        "Caller": from_number,
        "CallerCountry": "US",
        "Direction": "inbound",
        "From": from_number,
        "FromCountry": "US",
        "To": to_number,
        "ToCountry": "US",
    }


async def post_voice_webhook(
    base_url: str,
    public_url: str,
    auth_token: str | None,
    form: dict[str, str],
    *,
    path: str = "/twilio/voice",
) -> str:
    """POST the incoming-call webhook signed as Twilio signs it; returns the TwiML text.

    Twilio signs over the public URL it called (not our loopback address) plus the POST
    params, which is why ``public_url`` and ``base_url`` are separate.
    """
    headers = {"User-Agent": "TwilioProxy/1.1"}
    if auth_token:
        url = public_url.rstrip("/") + path
        headers["X-Twilio-Signature"] = RequestValidator(auth_token).compute_signature(url, form)
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.post(base_url.rstrip("/") + path, data=form, headers=headers)
    response.raise_for_status()
    return response.text


def post_sms(
    base_url: str,
    sender: str,
    body: str,
    *,
    auth_token: str | None = TEST_TOKEN,
    public_url: str = TEST_PUBLIC_URL,
    timeout_s: float = 30.0,
) -> httpx.Response:
    """An inbound text as Twilio POSTs it to ``/twilio/sms``; signed unless ``auth_token``
    is None. The caller reads the reply's TwiML (``<Message>``) itself."""
    form = {
        "AccountSid": "AC" + "0" * 32,
        "MessageSid": new_sid("SM"),
        "From": sender,
        "To": DEFAULT_TO,
        "Body": body,
        "NumMedia": "0",
    }
    headers = {}
    if auth_token:
        url = public_url.rstrip("/") + "/twilio/sms"
        headers["X-Twilio-Signature"] = RequestValidator(auth_token).compute_signature(url, form)
    return httpx.post(
        base_url.rstrip("/") + "/twilio/sms", data=form, headers=headers, timeout=timeout_s
    )


@dataclass(frozen=True)
class StreamInstruction:
    """What ``<Connect><Stream>`` told Twilio to do."""

    url: str
    parameters: dict[str, str]
    twiml: str


def parse_twiml(twiml: str) -> StreamInstruction:
    """The ``<Stream url>`` and its ``<Parameter>``s; raises ValueError if there is none."""
    root = ET.fromstring(twiml)
    stream = root.find("./Connect/Stream")
    if stream is None or not stream.get("url"):
        raise ValueError(f"TwiML has no <Connect><Stream url=...>: {twiml}")
    params = {
        str(p.get("name")): str(p.get("value", ""))
        for p in stream.findall("Parameter")
        if p.get("name")
    }
    return StreamInstruction(str(stream.get("url")), params, twiml)


def upgrade_signature(auth_token: str, stream_url: str) -> str:
    """X-Twilio-Signature of the WebSocket upgrade: over the wss:// URL, no params."""
    return RequestValidator(auth_token).compute_signature(stream_url, {})


def local_socket_url(base_url: str, stream_url: str) -> str:
    """ws://127.0.0.1:port/path: where the public wss:// stream URL really lands in a test."""
    base = urlsplit(base_url)
    path = urlsplit(stream_url).path or MEDIA_PATH
    return f"ws://{base.netloc}{path}"


async def fetch_timeline(base_url: str, call_sid: str) -> list[dict[str, Any]] | None:
    """``GET /calls/{sid}/timeline`` events, or None on 404."""
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(f"{base_url.rstrip('/')}/calls/{call_sid}/timeline")
    if response.status_code == 404:
        return None
    response.raise_for_status()
    return list(response.json()["events"])


async def wait_for_timeline(
    base_url: str,
    call_sid: str,
    predicate: Callable[[list[dict[str, Any]]], bool],
    timeout_s: float = 10.0,
    poll_s: float = 0.05,
) -> list[dict[str, Any]]:
    """Poll the timeline until ``predicate(events)`` holds (the server offers no push).

    Raises TimeoutError with the last events seen.
    """
    deadline = time.monotonic() + timeout_s
    events: list[dict[str, Any]] = []
    while True:
        events = await fetch_timeline(base_url, call_sid) or []
        if predicate(events):
            return events
        if time.monotonic() > deadline:
            names = [e.get("event") for e in events]
            raise TimeoutError(f"timeline of {call_sid} never matched; events: {names}")
        await asyncio.sleep(poll_s)  # polling a condition, with a deadline
