"""How a message leaves: Twilio's REST API for SMS and WhatsApp, SMTP for email.

Each transport sends one message synchronously (the sender runs it in a worker thread) and
returns the provider's id, or raises ``SendError`` saying whether a retry could help.
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from app.settings import Settings

SEND_TIMEOUT_S = 15.0
TWILIO_UNSUBSCRIBED = 21610
"""Twilio's "Attempt to send to unsubscribed recipient": the number texted STOP to the carrier."""


class SendError(Exception):
    """A message did not go out. ``permanent``: trying again would fail the same way;
    ``opted_out``: the provider says the recipient unsubscribed."""

    def __init__(self, reason: str, *, permanent: bool = False, opted_out: bool = False) -> None:
        super().__init__(reason)
        self.permanent = permanent
        self.opted_out = opted_out


@dataclass(frozen=True)
class Outgoing:
    """One message, ready for a transport."""

    to: str
    subject: str
    body: str
    key: str
    """Stable across retries of the same message (email Message-ID)."""


class Transport(Protocol):
    def send(self, message: Outgoing) -> str: ...


class TwilioTexter:
    """SMS or WhatsApp through ``twilio``'s REST client: ``POST /2010-04-01/Accounts/{sid}/
    Messages.json`` with ``To``, ``From`` (or ``MessagingServiceSid``) and ``Body``.

    ``TWILIO_API_BASE_URL`` replaces the client's ``api.twilio.com`` (staging, tests).
    Twilio's Messages API takes no idempotency key: see the sender for what that means.
    """

    def __init__(self, settings: Settings, *, whatsapp: bool = False) -> None:
        if not (settings.twilio_account_sid and settings.twilio_auth_token):
            raise ValueError("TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are needed to text")
        self._client = Client(
            settings.twilio_account_sid,
            settings.twilio_auth_token,
            http_client=TwilioHttpClient(timeout=SEND_TIMEOUT_S),
        )
        self._client.api.base_url = settings.twilio_api_base_url.rstrip("/")
        self._whatsapp = whatsapp
        if whatsapp:
            if not settings.twilio_whatsapp_from:
                raise ValueError("TWILIO_WHATSAPP_FROM is needed for WhatsApp")
            self._from: str | None = _whatsapp(settings.twilio_whatsapp_from)
            self._service: str | None = None
        else:
            self._from = settings.twilio_from_number
            self._service = None if self._from else settings.twilio_messaging_service_sid

    def send(self, message: Outgoing) -> str:
        to = _whatsapp(message.to) if self._whatsapp else message.to
        kwargs: dict[str, str] = {"to": to, "body": message.body}
        if self._service:
            kwargs["messaging_service_sid"] = self._service
        elif self._from:
            kwargs["from_"] = self._from
        try:
            sent = self._client.api.v2010.account.messages.create(**kwargs)
        except TwilioRestException as exc:
            code = exc.code if isinstance(exc.code, int) else None
            reason = f"twilio {exc.status} {code or ''}: {exc.msg}".strip()
            retry = exc.status == 429 or exc.status >= 500
            raise SendError(
                reason, permanent=not retry, opted_out=code == TWILIO_UNSUBSCRIBED
            ) from exc
        except Exception as exc:  # connection refused, timeout: the provider may come back
            raise SendError(f"twilio unreachable: {type(exc).__name__}: {exc}") from exc
        return str(sent.sid)


def _whatsapp(address: str) -> str:
    return address if address.startswith("whatsapp:") else f"whatsapp:{address}"


@dataclass(frozen=True)
class SmtpTarget:
    """``SMTP_URL`` taken apart."""

    host: str
    port: int
    implicit_tls: bool
    starttls: bool
    user: str | None
    password: str | None

    @classmethod
    def parse(cls, url: str) -> SmtpTarget:
        """``smtp://user:pass@host:587?starttls=true``, ``smtps://host:465``, ``smtp://host``."""
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError("SMTP_URL must look like smtp://user:pass@host:587?starttls=true")
        implicit = parts.scheme == "smtps"
        query = {k: v[-1].lower() for k, v in parse_qs(parts.query).items()}
        starttls = not implicit and query.get("starttls", "false") in ("1", "true", "yes")
        return cls(
            host=parts.hostname,
            port=parts.port or (465 if implicit else 587 if starttls else 25),
            implicit_tls=implicit,
            starttls=starttls,
            user=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
        )


class SmtpMailer:
    """Email through SMTP: implicit TLS, STARTTLS or plain as the URL says."""

    def __init__(self, settings: Settings, *, tls_context: ssl.SSLContext | None = None) -> None:
        if not (settings.smtp_url and settings.smtp_from):
            raise ValueError("SMTP_URL and SMTP_FROM are needed to email")
        self._target = SmtpTarget.parse(settings.smtp_url)
        self._from = settings.smtp_from
        self._domain = settings.smtp_from.rpartition("@")[2].strip("> ") or "tourline"
        self._tls = tls_context or ssl.create_default_context()

    def send(self, message: Outgoing) -> str:
        mail = EmailMessage()
        mail["From"] = self._from
        mail["To"] = message.to
        mail["Subject"] = message.subject
        # The same id on every retry: a receiving server or client that already has it
        # may drop the second copy (best effort; SMTP has no idempotency).
        mail["Message-ID"] = make_msgid(idstring=message.key.replace(":", "."), domain=self._domain)
        mail.set_content(message.body)
        target = self._target
        try:
            smtp: smtplib.SMTP
            if target.implicit_tls:
                smtp = smtplib.SMTP_SSL(
                    target.host, target.port, timeout=SEND_TIMEOUT_S, context=self._tls
                )
            else:
                smtp = smtplib.SMTP(target.host, target.port, timeout=SEND_TIMEOUT_S)
            with smtp:
                if target.starttls:
                    smtp.starttls(context=self._tls)
                if target.user:
                    smtp.login(target.user, target.password or "")
                refused = smtp.send_message(mail)
        except smtplib.SMTPRecipientsRefused as exc:
            raise SendError(
                f"smtp refused the recipient: {exc.recipients}", permanent=True
            ) from exc
        except smtplib.SMTPResponseException as exc:
            text = (
                exc.smtp_error.decode(errors="replace")
                if isinstance(exc.smtp_error, bytes)
                else str(exc.smtp_error)
            )
            raise SendError(
                f"smtp {exc.smtp_code}: {text}", permanent=500 <= exc.smtp_code < 600
            ) from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise SendError(f"smtp unreachable: {type(exc).__name__}: {exc}") from exc
        if refused:
            raise SendError(f"smtp refused: {refused}", permanent=True)
        return str(mail["Message-ID"])
