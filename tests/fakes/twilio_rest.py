"""A loopback fake of Twilio's REST Messages endpoint, for tests and benchmarks.

A real HTTP server (stdlib ``ThreadingHTTPServer`` in a background thread, 127.0.0.1, an
ephemeral port) so the official ``twilio`` client runs unmodified against it, with
``TWILIO_API_BASE_URL`` pointed at ``fake.url``. It speaks the one call Tourline makes,
``POST /2010-04-01/Accounts/{sid}/Messages.json`` (form fields ``To``, ``From`` or
``MessagingServiceSid``, ``Body``; HTTP basic auth sid:token), answering 201 with Twilio's
message JSON, or Twilio's error JSON when told to fail::

    with FakeTwilioRest(account_sid, auth_token) as twilio:
        twilio.fail_next(2, status=500)       # then succeed
        ...
        assert [m.to for m in twilio.messages] == ["+14155550101"]
"""

from __future__ import annotations

import base64
import itertools
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

PATH = "/2010-04-01/Accounts/{sid}/Messages.json"


@dataclass(frozen=True)
class SentMessage:
    """One accepted message, as Twilio would have queued it."""

    sid: str
    to: str
    from_: str | None
    messaging_service_sid: str | None
    body: str


@dataclass(frozen=True)
class Request:
    """Every request received, accepted or not."""

    method: str
    path: str
    form: dict[str, str]
    authorized: bool
    status: int


class FakeTwilioRest:
    def __init__(self, account_sid: str, auth_token: str) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.messages: list[SentMessage] = []
        self.requests: list[Request] = []
        self.arrived = 0
        """Requests that reached the server, answered or still held."""
        self._failures: list[tuple[int, int, str]] = []  # (status, twilio code, message)
        self._always: tuple[int, int, str] | None = None
        self._lock = threading.Lock()
        self._sids = itertools.count(1)
        self._arrived = threading.Condition(self._lock)
        self._gate: threading.Event | None = None
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> FakeTwilioRest:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
        self._server.shutdown()
        self._server.server_close()

    # -- scripting ---------------------------------------------------------------------

    def fail_next(
        self,
        count: int,
        status: int = 500,
        code: int = 20500,
        message: str = "Internal Server Error",
    ) -> None:
        """The next ``count`` message requests get this Twilio error."""
        with self._lock:
            self._failures.extend([(status, code, message)] * count)

    def fail_always(
        self, status: int = 500, code: int = 20500, message: str = "Internal Server Error"
    ) -> None:
        with self._lock:
            self._always = (status, code, message)

    def hold(self) -> None:
        """Hold every request until ``release`` (a provider that hangs mid-send)."""
        self._gate = threading.Event()

    def release(self) -> None:
        if self._gate is not None:
            self._gate.set()

    def wait_for(self, count: int, timeout_s: float = 10.0) -> bool:
        """Until ``count`` requests arrived (accepted or not)."""
        with self._arrived:
            return self._arrived.wait_for(lambda: len(self.requests) >= count, timeout_s)

    def wait_for_arrivals(self, count: int, timeout_s: float = 10.0) -> bool:
        """Until ``count`` requests reached the server (held ones too)."""
        with self._arrived:
            return self._arrived.wait_for(lambda: self.arrived >= count, timeout_s)

    def wait_for_messages(self, count: int, timeout_s: float = 10.0) -> bool:
        """Until ``count`` messages were accepted."""
        with self._arrived:
            return self._arrived.wait_for(lambda: len(self.messages) >= count, timeout_s)

    def bodies(self) -> Iterator[str]:
        return (m.body for m in self.messages)

    # -- the server ----------------------------------------------------------------------

    def _answer(
        self, path: str, form: dict[str, str], authorized: bool
    ) -> tuple[int, dict[str, Any]]:
        expected = PATH.format(sid=self.account_sid)
        if not authorized:
            return 401, _error(401, 20003, "Authenticate")
        if path != expected:
            return 404, _error(404, 20404, f"The requested resource {path} was not found")
        if not form.get("To") or not form.get("Body"):
            return 400, _error(400, 21604, "A 'To' phone number and a 'Body' are required.")
        if not (form.get("From") or form.get("MessagingServiceSid")):
            return 400, _error(400, 21603, "A 'From' phone number is required.")
        if self._failures:
            status, code, message = self._failures.pop(0)
            return status, _error(status, code, message)
        if self._always is not None:
            status, code, message = self._always
            return status, _error(status, code, message)
        sid = f"SM{next(self._sids):032x}"
        sent = SentMessage(
            sid, form["To"], form.get("From"), form.get("MessagingServiceSid"), form["Body"]
        )
        self.messages.append(sent)
        return 201, {
            "sid": sid,
            "account_sid": self.account_sid,
            "to": sent.to,
            "from": sent.from_,
            "messaging_service_sid": sent.messaging_service_sid,
            "body": sent.body,
            "status": "queued",
            "num_segments": "1",
            "direction": "outbound-api",
            "api_version": "2010-04-01",
            "date_created": "Tue, 24 Nov 2026 14:00:00 +0000",
            "uri": f"{expected[:-5]}/{sid}.json",
        }

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode()
                form = {k: v[-1] for k, v in parse_qs(raw, keep_blank_values=True).items()}
                wanted = (
                    "Basic "
                    + base64.b64encode(f"{fake.account_sid}:{fake.auth_token}".encode()).decode()
                )
                authorized = self.headers.get("Authorization") == wanted
                with fake._arrived:
                    fake.arrived += 1
                    fake._arrived.notify_all()
                if fake._gate is not None:
                    fake._gate.wait(30)
                with fake._arrived:
                    status, payload = fake._answer(self.path, form, authorized)
                    fake.requests.append(Request("POST", self.path, form, authorized, status))
                    fake._arrived.notify_all()
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet

        return Handler


def _error(status: int, code: int, message: str) -> dict[str, Any]:
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
