"""TwiML for incoming calls and Twilio signature checks.

Twilio signs the webhook over the public URL it called (plus POST params) and the media
stream's WebSocket upgrade over the ``wss://`` URL with no params. Behind a tunnel the
Host header is the tunnel's, so we sign-check against ``TOURLINE_PUBLIC_URL``.
"""

from __future__ import annotations

import functools
from urllib.parse import urlsplit

from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import Connect, VoiceResponse

MEDIA_PATH = "/twilio/media"
FORWARDED_PARAMS = ("From", "To", "CallSid")


def public_base(public_url: str | None, host_header: str | None) -> str:
    """The https base URL Twilio uses to reach us."""
    if public_url:
        return public_url.rstrip("/")
    return f"https://{host_header or 'localhost'}"


def stream_url(base: str) -> str:
    """wss://host/twilio/media: no query string, Twilio drops it."""
    parts = urlsplit(base)
    return f"wss://{parts.netloc}{parts.path.rstrip('/')}{MEDIA_PATH}"


def connect_twiml(base: str, params: dict[str, str]) -> str:
    """<Connect><Stream> with the caller's number and call id as <Parameter>s."""
    response = VoiceResponse()
    connect = Connect()
    stream = connect.stream(url=stream_url(base))
    for name in FORWARDED_PARAMS:
        if params.get(name):
            stream.parameter(name=name, value=params[name])
    response.append(connect)
    return str(response)


@functools.lru_cache(maxsize=8)
def signature_checker(auth_token: str | None, public_url: str | None) -> SignatureChecker:
    """The checker for these settings, built once."""
    return SignatureChecker(auth_token, public_url)


class SignatureChecker:
    """Checks X-Twilio-Signature; with no auth token everything passes (and we said so)."""

    def __init__(self, auth_token: str | None, public_url: str | None) -> None:
        self.enabled = bool(auth_token)
        self._validator = RequestValidator(auth_token) if auth_token else None
        self.public_url = public_url

    def webhook_ok(
        self, path_and_query: str, params: dict[str, str], signature: str | None
    ) -> bool:
        if self._validator is None:
            return True
        if not signature or not self.public_url:
            return False
        url = self.public_url.rstrip("/") + path_and_query
        return bool(self._validator.validate(url, params, signature))  # twilio is untyped

    def upgrade_ok(self, signature: str | None) -> bool:
        if self._validator is None:
            return True
        if not signature or not self.public_url:
            return False
        return bool(self._validator.validate(stream_url(self.public_url), {}, signature))
