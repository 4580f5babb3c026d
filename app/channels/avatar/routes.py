"""Plugs the avatar side into the app: ``WS /avatar`` (the pages are the web layer's)."""

from __future__ import annotations

import logging

from fastapi import FastAPI

from app.channels.avatar.secret import SECRET_FILE
from app.channels.avatar.session import avatar_socket
from app.channels.avatar.tokens import MIN_SECRET_BYTES
from app.settings import Settings

log = logging.getLogger("tourline.avatar")


def avatar_identity_note(settings: Settings) -> tuple[int, str]:
    """What the server says at start-up about who avatar clients may be (level, message)."""
    secret = settings.avatar_secret
    if not secret:
        return logging.INFO, (
            "TOURLINE_AVATAR_SECRET is not set: avatar clients (/avatar) without a token are "
            "anonymous devices, and tokens are signed with the data dir's own secret "
            f"({SECRET_FILE}), which only tools on this data dir (tourline chat, tourline "
            "token) can use. Set TOURLINE_AVATAR_SECRET to mint tokens elsewhere."
        )
    if len(secret.encode()) < MIN_SECRET_BYTES:
        return logging.WARNING, (
            f"TOURLINE_AVATAR_SECRET is shorter than {MIN_SECRET_BYTES} bytes: avatar tokens "
            "signed with it can be forged by guessing it. Use a long random value "
            "(e.g. `openssl rand -hex 32`)."
        )
    return logging.INFO, "avatar clients (/avatar) prove phone and email ids with tokens"


def install(app: FastAPI, settings: Settings) -> None:
    """Register the routes (one call from ``create_app``) and say who may use them."""
    app.add_api_websocket_route("/avatar", avatar_socket)
    level, note = avatar_identity_note(settings)
    log.log(level, note)
