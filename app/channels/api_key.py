"""``TOURLINE_API_KEY``: one check for every route that exposes what callers said.

The memory API, the dashboard and the avatar socket all hand out personal data, so with a key
configured they all require it, sent as ``Authorization: Bearer <key>`` or
``X-API-Key: <key>``. Without a key they are open, which is fine on a laptop and dangerous
anywhere else: :func:`open_api_warning` is what the server logs at start-up then.

The check works on any ``HTTPConnection``, so a WebSocket route can use
:func:`api_key_ok` before accepting, and HTTP routes use :func:`require_api_key` as a
dependency (401 with ``WWW-Authenticate: Bearer`` otherwise).
"""

from __future__ import annotations

import hmac

from fastapi import HTTPException, Request, status
from starlette.requests import HTTPConnection

from app.channels.deps import runtime_of
from app.settings import Settings

__all__ = ["api_key_ok", "open_api_warning", "presented_key", "require_api_key"]

HEADER = "x-api-key"


def presented_key(connection: HTTPConnection) -> str | None:
    """The key the client sent, from ``Authorization: Bearer`` or ``X-API-Key``."""
    auth = connection.headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    key = connection.headers.get(HEADER, "").strip()
    return key or None


def api_key_ok(connection: HTTPConnection) -> bool:
    """True when no key is configured, or the client presented the configured one."""
    expected = runtime_of(connection).settings.api_key
    if not expected:
        return True
    given = presented_key(connection)
    # Constant-time: how much of a guess matched must not show in the response time.
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


async def require_api_key(request: Request) -> None:
    """FastAPI dependency: 401 unless the request carries ``TOURLINE_API_KEY``."""
    if api_key_ok(request):
        return
    detail = (
        "missing or wrong API key: send 'Authorization: Bearer <TOURLINE_API_KEY>' "
        "or 'X-API-Key: <TOURLINE_API_KEY>'"
    )
    raise HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail=detail, headers={"WWW-Authenticate": "Bearer"}
    )


def open_api_warning(settings: Settings) -> str | None:
    """The start-up warning when the memory API is open to anyone, else None."""
    if settings.api_key:
        return None
    return (
        "TOURLINE_API_KEY is not set: the memory API (/memory/*, /callers/*) is OPEN. "
        "Anyone who can reach this server can read and delete what callers said. "
        "Set TOURLINE_API_KEY before exposing it."
    )
