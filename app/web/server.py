"""The ASGI application: health now; Twilio, avatar and memory routes plug in here."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from app.channels.admission import ADMISSIONS
from app.channels.api_key import open_api_warning
from app.channels.avatar.routes import install as install_avatar
from app.channels.deps import RuntimeDep
from app.channels.twilio import routes as twilio_routes
from app.channels.twilio import sms_routes
from app.channels.twilio.media_socket import media_stream
from app.memory.owner_lock import EmbeddedStoreLockedError
from app.runtime import Runtime
from app.settings import Settings
from app.stores.database import StoreSetupError
from app.voice.compute_pool import URGENT
from app.voice.realtime_loop import RealtimeLoop
from app.web import memory_routes, metrics_route, pages
from app.web.loop_lag import LoopLag

log = logging.getLogger("tourline.server")
ESSENTIAL_PHRASE_WORDS = 4
SHUTDOWN_GOODBYE = "Sorry, I have to go now. Please call back in a minute."
"""What a call in progress hears when the server is stopped (SIGTERM); rendered at start-up."""


def create_app(settings: Settings) -> FastAPI:
    """Build the app; heavy things load once in the lifespan, before traffic."""
    loop_lag = LoopLag()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Memory first: if another process owns this data dir, refuse to start at all.
        try:
            runtime = await asyncio.to_thread(Runtime.open_memory, settings)
        except (EmbeddedStoreLockedError, StoreSetupError) as exc:
            log.error("%s", exc)
            raise
        app.state.runtime = runtime
        # Then bind, and load models in the background so /healthz can say "loading".
        loading = asyncio.create_task(_load(runtime))
        watching = asyncio.create_task(loop_lag.watch())
        sending = asyncio.create_task(runtime.send_messages())  # the outbox sender
        yield
        runtime.ready = False
        await runtime.stop_messages(sending)  # finish the message in flight
        for task in (loading, watching):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await asyncio.to_thread(runtime.close)

    app = FastAPI(title="Tourline", lifespan=lifespan)
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
    if (warning := open_api_warning(settings)) is not None:
        log.warning(warning)
    app.include_router(twilio_routes.router)
    app.include_router(sms_routes.router)  # POST /twilio/sms (texts, and their sessions)
    app.include_router(memory_routes.router)
    app.add_api_websocket_route("/twilio/media", media_stream)
    install_avatar(app, settings)  # WS /avatar
    app.include_router(pages.router)  # GET / and GET /dashboard
    app.include_router(metrics_route.router(loop_lag))  # GET /metrics (Prometheus)

    @app.get("/healthz")
    async def healthz(runtime: RuntimeDep) -> JSONResponse:
        if not runtime.ready:
            return JSONResponse({"status": "loading"}, status_code=503)
        voice = runtime.voice
        active, capacity = RealtimeLoop.active(), runtime.settings.call_capacity
        return JSONResponse(
            {
                "status": "ok",
                "models_ms": voice.load_ms,
                "phrases_cached": len(voice.renderer.cache),
                "warm": runtime.warm,  # every fixed phrase rendered (calls work before this)
                # The event loop's worst lateness per second, last minute: [unix second, ms].
                "loop_lag_ms": loop_lag.by_second(),
                # Past capacity, calls still work but every call slows (a fleet's cue).
                "calls": {"active": active, "capacity": capacity, "full": active >= capacity},
            }
        )

    @app.get("/readyz")
    async def readyz(runtime: RuntimeDep) -> JSONResponse:
        """Whether this process takes new calls (for a load balancer): not while loading, not
        when full. ``/healthz`` stays liveness: a full server is healthy. Calls admitted whose
        stream has not started yet count (``app.channels.admission``)."""
        active, capacity = ADMISSIONS.occupied(), runtime.settings.call_capacity
        reason = _not_ready_because(runtime, active, capacity)
        body = {"ready": reason is None, "calls": {"active": active, "capacity": capacity}}
        if reason is not None:
            body["reason"] = reason
        return JSONResponse(body, status_code=503 if reason else 200)

    return app


def _not_ready_because(runtime: Runtime, active: int, capacity: int) -> str | None:
    """Why this process should get no new call right now, if it should not."""
    if runtime.draining:
        return "draining"
    if not runtime.ready:
        return "loading"
    return "full" if active >= capacity else None


async def _load(runtime: Runtime) -> None:
    """Every model and store, once, before the first call; then warm the phrase cache."""
    try:
        started = time.perf_counter()
        planners = await asyncio.to_thread(runtime.load_planners)
        voice = await asyncio.to_thread(runtime.load_voice)
    except Exception:
        log.exception("start-up failed; the server stays unhealthy")
        raise
    # The greeting and the short openings most replies start with ("Got it:", "Nice to meet
    # you,") are rendered before the first call (~2 s on both workers); the rest meanwhile.
    phrases = planners.fixed_phrases()
    greeting = set(planners.greeting())
    essential = [p for p in phrases if p in greeting or len(p.split()) <= ESSENTIAL_PHRASE_WORDS]
    essential.append(SHUTDOWN_GOODBYE)  # a stop must not wait for the synthesizer
    warmed = await voice.renderer.prewarm(essential, rate=8000, priority=URGENT)
    # What start-up built (models, stores, routes: ~175k objects) lives as long as the
    # process. Frozen, the collector stops walking it: a full collection took 40-55 ms of
    # the event loop, and a burst of call starts triggers one. Once, before any call.
    gc.collect()
    gc.freeze()
    total = (time.perf_counter() - started) * 1000
    log.info("all models loaded, %d phrases pre-rendered, in %.0f ms: ready", warmed, total)
    runtime.ready = True
    warmed = await voice.renderer.prewarm(phrases, rate=8000)
    runtime.warm = True
    log.info("pre-rendered %d more fixed phrases: fully warm", warmed)
