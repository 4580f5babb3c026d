"""The ASGI application: health now; Twilio, avatar and memory routes plug in here."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from app.channels.api_key import open_api_warning
from app.channels.avatar.routes import install as install_avatar
from app.channels.twilio import routes as twilio_routes
from app.channels.twilio.media_socket import media_stream
from app.channels.twilio.twilio_http import SignatureChecker
from app.memory.mem0_engine import VectorBackendUnavailableError
from app.memory.owner_lock import EmbeddedStoreLockedError
from app.memory.service import MemoryService
from app.planner.agent_planner import PlannerKit
from app.settings import Settings
from app.voice.compute_pool import URGENT
from app.voice.voice_kit import VoiceKit
from app.web import memory_routes, pages

log = logging.getLogger("tourline.server")
ESSENTIAL_PHRASE_WORDS = 4


def create_app(settings: Settings) -> FastAPI:
    """Build the app; heavy things load once in the lifespan, before traffic."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # Memory first: if another process owns this data dir, refuse to start at all.
        app.state.memory = await asyncio.to_thread(_open_memory, settings)
        # Then bind, and load models in the background so /healthz can say "loading".
        loading = asyncio.create_task(_load(app, settings))
        yield
        app.state.ready = False
        loading.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await loading
        voice = getattr(app.state, "voice", None)
        if voice is not None:
            voice.close()
        if app.state.memory is not None:
            await asyncio.to_thread(app.state.memory.close)

    app = FastAPI(title="Tourline", lifespan=lifespan)
    app.state.ready = False
    app.state.warm = False
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
    if (warning := open_api_warning(settings)) is not None:
        log.warning(warning)
    app.include_router(twilio_routes.router)
    app.include_router(memory_routes.router)
    app.add_api_websocket_route("/twilio/media", media_stream)
    install_avatar(app, settings)  # WS /avatar
    app.include_router(pages.router)  # GET / and GET /dashboard

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        if not app.state.ready:
            return JSONResponse({"status": "loading"}, status_code=503)
        voice: VoiceKit = app.state.voice
        return JSONResponse(
            {
                "status": "ok",
                "models_ms": voice.load_ms,
                "phrases_cached": len(voice.renderer.cache),
                "warm": app.state.warm,  # every fixed phrase rendered (calls work before this)
            }
        )

    return app


def _open_memory(settings: Settings) -> MemoryService | None:
    """The caller memory; None (calls go on, unremembered) when its vector store is down."""
    try:
        return MemoryService.open(settings)
    except EmbeddedStoreLockedError as exc:
        log.error("%s", exc)
        raise
    except VectorBackendUnavailableError as exc:
        log.error("caller memory is unavailable, calls will go on without it: %s", exc)
        return None


async def _load(app: FastAPI, settings: Settings) -> None:
    """Every model and store, once, before the first call; then warm the phrase cache."""
    try:
        started = time.perf_counter()
        memory: MemoryService | None = app.state.memory
        engine = memory.engine if memory is not None else None
        app.state.planner_kit = await asyncio.to_thread(PlannerKit.build, settings, engine)
        log.info("planner ready in %.0f ms", (time.perf_counter() - started) * 1000)
        app.state.voice = await asyncio.to_thread(VoiceKit.load, settings)
    except Exception:
        log.exception("start-up failed; the server stays unhealthy")
        raise
    voice: VoiceKit = app.state.voice
    # The greeting and the short openings most replies start with ("Got it:", "Nice to meet
    # you,") are rendered before the first call (~2 s on both workers); the rest meanwhile.
    phrases = app.state.planner_kit.fixed_phrases()
    greeting = set(app.state.planner_kit.greeting())
    essential = [p for p in phrases if p in greeting or len(p.split()) <= ESSENTIAL_PHRASE_WORDS]
    warmed = await voice.renderer.prewarm(essential, rate=8000, priority=URGENT)
    total = (time.perf_counter() - started) * 1000
    log.info("all models loaded, %d phrases pre-rendered, in %.0f ms: ready", warmed, total)
    app.state.ready = True
    warmed = await voice.renderer.prewarm(phrases, rate=8000)
    app.state.warm = True
    log.info("pre-rendered %d more fixed phrases: fully warm", warmed)
