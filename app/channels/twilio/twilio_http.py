"""TwiML for incoming calls and Twilio signature checks.

Twilio signs the webhook over the public URL it called (plus POST params) and the media
stream's WebSocket upgrade over the ``wss://`` URL with no params. Behind a tunnel the
Host header is the tunnel's, so we sign-check against ``TOURLINE_PUBLIC_URL``.

The upgrade's signature is the same for every call, so whoever captured one could open a
socket and claim any caller's number in its ``start`` message. So the signed webhook hands
the stream a call token as a ``<Parameter>``: an HMAC (keyed by the auth token) over the
call's sid and the caller's number, with an expiry (``TOURLINE_TWILIO_STREAM_WINDOW_S``).
``start`` must carry it back, for that call and that number, once: once per process here,
and once across replicas through the database (``app/stores/call_tokens.py``).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import re
import threading
import time
from collections.abc import Mapping
from urllib.parse import urlsplit

from starlette.requests import Request
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import Connect, VoiceResponse

from app.domain.identity import MAX_CALLER_ID_LENGTH
from app.settings import Settings

MEDIA_PATH = "/twilio/media"
FORWARDED_PARAMS = ("From", "To", "CallSid")
TOKEN_PARAM = "Token"
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
"""Characters XML 1.0 can't hold, even escaped (NUL, most control characters, surrogates)."""


log = logging.getLogger("tourline.twilio")


def xml_safe(text: str) -> str:
    """``text`` without the characters no XML document can hold (escaping is TwiML's job)."""
    return _NOT_XML.sub("", text)


async def signed_form(request: Request, settings: Settings) -> dict[str, str] | None:
    """The POSTed form if its signature checks out (or checks are off), else None.

    Signed over ``TOURLINE_PUBLIC_URL`` + the path (and query) Twilio called."""
    checker = signature_checker(settings)
    form = {k: str(v) for k, v in (await request.form()).items()}
    signature = request.headers.get("x-twilio-signature")
    query = request.url.query
    path_and_query = request.url.path + (f"?{query}" if query else "")
    if not checker.webhook_ok(path_and_query, form, signature):
        log.warning("refused %s: bad or missing X-Twilio-Signature", request.url.path)
        return None
    return form


def public_base(public_url: str | None, host_header: str | None) -> str:
    """The https base URL Twilio uses to reach us."""
    if public_url:
        return public_url.rstrip("/")
    return f"https://{host_header or 'localhost'}"


def stream_url(base: str) -> str:
    """wss://host/twilio/media: no query string, Twilio drops it."""
    parts = urlsplit(base)
    return f"wss://{parts.netloc}{parts.path.rstrip('/')}{MEDIA_PATH}"


def forwarded(params: Mapping[str, str]) -> dict[str, str]:
    """The webhook fields the stream gets back as <Parameter>s: those TwiML can carry.

    Why: a value with a NUL or another control character would make the whole answer
    malformed XML (Twilio then fails the call), and one longer than any caller id is no use
    to the stream. Such a field is left out, as if Twilio had not sent it: a call without a
    usable ``From`` goes on without memory.
    """
    return {
        name: value
        for name in FORWARDED_PARAMS
        if (value := params.get(name, ""))
        and len(value) <= MAX_CALLER_ID_LENGTH
        and not _NOT_XML.search(value)
    }


BUSY_MESSAGE = "Sorry, this line is busy right now. Please call back in a minute."


def busy_twiml() -> str:
    """What a caller hears when this server takes no new calls (it is stopping)."""
    response = VoiceResponse()
    response.say(BUSY_MESSAGE)
    response.hangup()
    return str(response)


HOLD_MESSAGE = "All our lines are busy right now. Please hold a moment."
HOLD_AGAIN_MESSAGE = "Thanks for holding."
FULL_MESSAGE = (
    "Sorry, all our lines are still busy. Please call back in a few minutes, "
    "and we'll be glad to help you then. Goodbye."
)
HOLD_PAUSE_S = 8
"""Silence between two tries while a caller holds (Twilio's <Pause>, whole seconds)."""
HOLD_ATTEMPTS = 4
"""Tries before the caller is asked to call back: about half a minute on hold."""
ATTEMPT_PARAM = "attempt"


def hold_twiml(redirect_url: str, attempt: int) -> str:
    """This process is full: ask the caller to hold, then try again by POSTing the webhook
    to ``redirect_url`` (the public URL: behind a load balancer it may reach another
    replica). The first try says why; later ones only thank the caller."""
    response = VoiceResponse()
    response.say(HOLD_MESSAGE if attempt <= 1 else HOLD_AGAIN_MESSAGE)
    response.pause(length=HOLD_PAUSE_S)
    response.redirect(redirect_url, method="POST")
    return str(response)


def full_twiml() -> str:
    """Still full after ``HOLD_ATTEMPTS`` tries: a polite goodbye, asking to call back."""
    response = VoiceResponse()
    response.say(FULL_MESSAGE)
    response.hangup()
    return str(response)


def connect_twiml(base: str, params: Mapping[str, str], token: str | None = None) -> str:
    """<Connect><Stream> with the caller's number, call id and call token as <Parameter>s."""
    response = VoiceResponse()
    connect = Connect()
    stream = connect.stream(url=stream_url(base))
    for name, value in forwarded(params).items():
        stream.parameter(name=name, value=value)
    if token:
        stream.parameter(name=TOKEN_PARAM, value=token)
    response.append(connect)
    return str(response)


def token_expiry(params: Mapping[str, str]) -> int | None:
    """When the call token among a ``start``'s parameters expires (epoch s), if it has one."""
    expires_text = params.get(TOKEN_PARAM, "").partition(".")[0]
    return int(expires_text) if expires_text.isascii() and expires_text.isdigit() else None


def _token_mac(auth_token: str, call_sid: str, caller: str, expires: int) -> str:
    message = f"{call_sid}|{caller}|{expires}".encode()
    return hmac.new(auth_token.encode(), message, hashlib.sha256).hexdigest()


def signature_checker(settings: Settings) -> SignatureChecker:
    """The checker for these settings, built once: it remembers which call tokens were spent."""
    return _checker(
        settings.twilio_auth_token, settings.public_url, settings.twilio_stream_window_s
    )


@functools.lru_cache(maxsize=8)
def _checker(auth_token: str | None, public_url: str | None, window_s: float) -> SignatureChecker:
    return SignatureChecker(auth_token, public_url, window_s)


class SignatureChecker:
    """Checks X-Twilio-Signature; with no auth token everything passes (and we said so)."""

    def __init__(
        self, auth_token: str | None, public_url: str | None, window_s: float = 60.0
    ) -> None:
        self.enabled = bool(auth_token)
        self.window_s = window_s  # a stream must start this soon after its webhook
        self._auth_token = auth_token or None
        self._validator = RequestValidator(auth_token) if auth_token else None
        self._used: dict[str, int] = {}  # call sids whose token was spent -> its expiry
        self._lock = threading.Lock()
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

    def call_token(self, params: Mapping[str, str], now: float | None = None) -> str | None:
        """The token for the stream of the call this (signed) webhook announced."""
        if self._auth_token is None:
            return None
        expires = int((time.time() if now is None else now) + self.window_s)
        # The number the stream will carry back: ``forwarded`` may leave a bad one out.
        call_sid, caller = params.get("CallSid", ""), forwarded(params).get("From", "")
        return f"{expires}.{_token_mac(self._auth_token, call_sid, caller, expires)}"

    def start_ok(self, call_sid: str, params: Mapping[str, str], now: float | None = None) -> bool:
        """Does ``start`` carry this call's token, for the number it claims, for the first
        time? (Always, with signatures off.)"""
        if self._auth_token is None:
            return True
        expires_text, _, mac = params.get(TOKEN_PARAM, "").partition(".")
        if not expires_text.isdigit() or params.get("CallSid", call_sid) != call_sid:
            return False
        expires = int(expires_text)
        clock = time.time() if now is None else now
        expected = _token_mac(self._auth_token, call_sid, params.get("From", ""), expires)
        fresh = clock <= expires <= clock + self.window_s + 1
        if not hmac.compare_digest(mac, expected) or not fresh:
            return False
        with self._lock:
            self._used = {sid: t for sid, t in self._used.items() if t >= clock}
            if call_sid in self._used:
                return False  # a replay of a start that already ran
            self._used[call_sid] = expires
        return True

    def upgrade_ok(self, signature: str | None) -> bool:
        if self._validator is None:
            return True
        if not signature or not self.public_url:
            return False
        return bool(self._validator.validate(stream_url(self.public_url), {}, signature))
