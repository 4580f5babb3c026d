"""``GET /metrics``: Prometheus text for a scraper, behind ``TOURLINE_API_KEY`` like the
other admin routes (the figures are not personal, but call volume is business data)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response

from app.channels.api_key import require_api_key
from app.channels.deps import RuntimeDep
from app.logging.metrics import CONTENT_TYPE, METRICS
from app.voice.realtime_loop import RealtimeLoop
from app.web.loop_lag import LoopLag


def router(loop_lag: LoopLag) -> APIRouter:
    """The route, reading the app's event-loop lag watcher at each scrape."""
    routes = APIRouter()

    @routes.get("/metrics", dependencies=[Depends(require_api_key)])
    async def metrics(runtime: RuntimeDep) -> Response:
        seconds = loop_lag.by_second()
        METRICS.set_load(
            active_calls=RealtimeLoop.active(),
            capacity=runtime.settings.call_capacity,
            loop_lag_ms=seconds[-1][1] if seconds else 0.0,
            memory_backlog=runtime.memory.backlog if runtime.memory is not None else 0,
        )
        return Response(METRICS.render(), media_type=CONTENT_TYPE)

    return routes
