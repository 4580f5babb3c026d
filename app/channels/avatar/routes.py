"""Plugs the avatar side into the app: ``WS /avatar`` (the pages are the web layer's)."""

from __future__ import annotations

import logging

from fastapi import FastAPI

from app.channels.avatar.session import avatar_socket
from app.settings import Settings

log = logging.getLogger("tourline.avatar")


def open_avatar_warning(settings: Settings) -> str | None:
    """The start-up warning when the avatar socket and dashboard are open to anyone."""
    if settings.api_key:
        return None
    return (
        "TOURLINE_API_KEY is not set: the avatar socket (/avatar) and the dashboard are OPEN. "
        "Anyone who can reach this server can talk to the agent as any user and see what it "
        "remembers about them. Set TOURLINE_API_KEY before exposing it."
    )


def install(app: FastAPI, settings: Settings) -> None:
    """Register the routes (one call from ``create_app``) and say if they are unprotected."""
    app.add_api_websocket_route("/avatar", avatar_socket)
    if (warning := open_avatar_warning(settings)) is not None:
        log.warning(warning)
