"""Avatar tokens: how a client proves it may speak as a phone number, email or user id.

A token is a JWT signed with HS256 under ``TOURLINE_AVATAR_SECRET``; its ``sub`` is the
caller id and its ``exp`` says until when. Whoever holds the secret (the integrator's own
back end, or ``tourline chat`` on the operator's machine) mints tokens for the users it has
already signed in; the server only checks them. Without a token an avatar client is an
anonymous device and never hears a phone or email caller's memory.
Without the setting, the data dir's own secret is used (``secret.py``).
"""

from __future__ import annotations

import time
from typing import Final

import jwt

__all__ = [
    "ALGORITHM",
    "MIN_SECRET_BYTES",
    "TokenError",
    "mint_token",
    "verify_token",
]

ALGORITHM: Final = "HS256"
MIN_SECRET_BYTES: Final = 32
"""RFC 7518 asks for an HS256 key at least as long as its hash; pyjwt warns below it."""
LEEWAY_S: Final = 10.0
"""Clock skew forgiven between the machine that minted a token and this server."""


class TokenError(ValueError):
    """A token we can't accept, with one sentence the client can act on."""


def mint_token(secret: str, sub: str, ttl_s: float = 3600.0) -> str:
    """A token for ``sub`` that expires ``ttl_s`` seconds from now."""
    if not secret:
        raise TokenError("no secret to sign with: set TOURLINE_AVATAR_SECRET")
    if not sub or not sub.strip():
        raise TokenError("a token needs a subject (the caller id it stands for)")
    if ttl_s <= 0:
        raise TokenError(f"a token's lifetime must be positive, not {ttl_s}")
    now = int(time.time())
    claims = {"sub": sub.strip(), "iat": now, "exp": now + max(1, round(ttl_s))}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify_token(secret: str | None, token: str) -> str:
    """The ``sub`` of a good token; raises ``TokenError`` saying what is wrong with it."""
    if not secret:
        raise TokenError(
            "this server has no TOURLINE_AVATAR_SECRET, so it takes no tokens: "
            "connect with a device_id, or ask its operator to set the secret"
        )
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],  # never "none", never an algorithm the token picks
            options={"require": ["exp", "sub"]},
            leeway=LEEWAY_S,
        )
    except jwt.ExpiredSignatureError:
        raise TokenError("the token has expired: get a new one") from None
    except jwt.InvalidSignatureError:
        raise TokenError(
            "the token's signature is wrong: it was not signed with this server's secret"
        ) from None
    except jwt.MissingRequiredClaimError as exc:
        raise TokenError(f"the token has no '{exc.claim}' claim") from None
    except jwt.InvalidTokenError as exc:
        raise TokenError(f"the token can't be read: {exc}") from None
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub.strip():
        raise TokenError("the token's 'sub' must be the caller id, a non-empty string")
    return sub.strip()
