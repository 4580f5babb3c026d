"""The ASGI application: health now; Twilio, avatar and memory routes plug in here."""

from __future__ import annotations

import logging
import time
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from app.services.agent_planner import PlannerKit
from app.settings import Settings

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

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        if not app.state.ready:
            return JSONResponse({"status": "loading"}, status_code=503)
        return JSONResponse({"status": "ok"})

    return app
