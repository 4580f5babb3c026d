"""The ASGI application: health now; Twilio, avatar and memory routes plug in here."""

from __future__ import annotations

import logging
import time
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from app.services.agent_planner import PlannerKit
from app.settings import Settings
from app.telephony.twilio_http import SignatureChecker
from app.web import twilio_routes

log = logging.getLogger("tourline.server")


def create_app(settings: Settings) -> FastAPI:
    """Build the app; heavy things load once in the lifespan, before traffic."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        started = time.perf_counter()
        app.state.planner_kit = PlannerKit.build(settings)
        log.info("planner ready in %.0f ms", (time.perf_counter() - started) * 1000)
        app.state.ready = True
        yield
        app.state.ready = False

    app = FastAPI(title="Tourline", lifespan=lifespan)
    app.state.ready = False
    app.state.settings = settings
    app.state.signatures = SignatureChecker(settings.twilio_auth_token, settings.public_url)
    if not settings.twilio_auth_token:
        log.warning(
            "TWILIO_AUTH_TOKEN is not set: Twilio signatures are NOT checked. "
            "Anyone who finds this server can place calls into it."
        )
    elif not settings.public_url:
        log.warning(
            "TWILIO_AUTH_TOKEN is set but TOURLINE_PUBLIC_URL is not: "
            "every Twilio request will be refused."
        )
    app.include_router(twilio_routes.router)

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        if not app.state.ready:
            return JSONResponse({"status": "loading"}, status_code=503)
        return JSONResponse({"status": "ok"})

    return app
