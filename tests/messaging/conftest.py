"""Loopback stand-ins for what this machine can't reach: Twilio's REST API and an SMTP server.

Both are real servers on 127.0.0.1 (``tests/fakes/twilio_rest.py``; aiosmtpd), so the real
``twilio`` client and ``smtplib`` talk to them over TCP.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from datetime import datetime
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from app.planner.agent_planner import PlannerKit
from app.settings import Settings
from tests.fakes.twilio_rest import FakeTwilioRest

NY = ZoneInfo("America/New_York")
ACCOUNT_SID = "AC" + "1" * 32
AUTH_TOKEN = "test-auth-token"
FROM_NUMBER = "+12125550100"
SMTP_FROM = "Leasing office <tours@example.com>"
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=NY)  # a Monday, like tests/fixtures/dialogues.yaml


class SmtpSink:
    """aiosmtpd handler that keeps every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self._arrived = threading.Condition()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self._arrived:
            raw = envelope.content if isinstance(envelope.content, bytes) else b""
            self.messages.append(message_from_bytes(raw))
            self.envelopes.append((str(envelope.mail_from), list(envelope.rcpt_tos)))
            self._arrived.notify_all()
        return "250 Message accepted for delivery"

    def wait_for(self, count: int, timeout_s: float = 10.0) -> bool:
        with self._arrived:
            return self._arrived.wait_for(lambda: len(self.messages) >= count, timeout_s)


def free_port() -> int:
    """A port nobody listens on now (aiosmtpd checks its own start by connecting to it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def twilio() -> Iterator[FakeTwilioRest]:
    with FakeTwilioRest(ACCOUNT_SID, AUTH_TOKEN) as fake:
        yield fake


@pytest.fixture
def smtp() -> Iterator[tuple[SmtpSink, int]]:
    sink = SmtpSink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield sink, int(controller.port)
    finally:
        controller.stop()


def messaging_settings(
    data_dir: Path,
    twilio: FakeTwilioRest | None = None,
    smtp_port: int | None = None,
    **overrides: Any,
) -> Settings:
    """Settings with texts through the fake Twilio and/or email through the local SMTP."""
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "openai_api_key": None,
        "openai_base_url": None,
        "database_url": None,
        "twilio_auth_token": None,
        "twilio_account_sid": None,
        "twilio_from_number": None,
        "twilio_messaging_service_sid": None,
        "twilio_whatsapp_from": None,
        "smtp_url": None,
        "smtp_from": None,
    }
    if twilio is not None:
        values |= {
            "twilio_account_sid": ACCOUNT_SID,
            "twilio_auth_token": AUTH_TOKEN,
            "twilio_from_number": FROM_NUMBER,
            "twilio_api_base_url": twilio.url,
        }
    if smtp_port is not None:
        values |= {"smtp_url": f"smtp://127.0.0.1:{smtp_port}", "smtp_from": SMTP_FROM}
    return Settings(**(values | overrides))


def planner_kit(settings: Settings, now: datetime = NOW, **kwargs: Any) -> PlannerKit:
    return PlannerKit.build(settings, clock=lambda: now, **kwargs)
