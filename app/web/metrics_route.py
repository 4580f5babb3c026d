"""``GET /metrics``: Prometheus text for a scraper; ``GET /metrics/summary`` and
``GET /calls/{call_sid}/waterfall``: the same figures as JSON for the dashboard. All behind
``TOURLINE_API_KEY`` like the other admin routes (the figures are not personal, but call
volume is business data; a waterfall holds what the caller said)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Response
from fastapi.responses import JSONResponse

from app.channels.admission import ADMISSIONS
from app.channels.api_key import require_api_key
from app.channels.deps import RuntimeDep
from app.logging.flight_recorder import read_timeline
from app.logging.metrics import CONTENT_TYPE, METRICS
from app.logging.waterfall import waterfall
from app.runtime import Runtime
from app.web.loop_lag import LoopLag

RECENT_CALLS = 12
"""Calls the dashboard offers a waterfall of: the latest timelines written."""
_COUNTERS = {
    "barge_ins": "tourline_barge_ins_total",
    "replies_cut": "tourline_replies_cut_total",
    "clears": "tourline_clears_total",
    "turns_taken_back": "tourline_turns_taken_back_total",
    "backchannels_ignored": "tourline_backchannels_ignored_total",
    "stt_dropped": "tourline_stt_dropped_total",
}


def router(loop_lag: LoopLag) -> APIRouter:
    """The routes, reading the app's event-loop lag watcher at each request."""
    routes = APIRouter()

    def refresh(runtime: Runtime) -> None:
        """Set the figures read at request time rather than from events."""
        seconds = loop_lag.by_second()
        METRICS.set_load(
            active_calls=ADMISSIONS.by_channel(),
            capacity=runtime.settings.call_capacity,
            loop_lag_ms=seconds[-1][1] if seconds else 0.0,
            memory_backlog=runtime.memory.backlog if runtime.memory is not None else 0,
        )

    @routes.get("/metrics", dependencies=[Depends(require_api_key)])
    async def metrics(runtime: RuntimeDep) -> Response:
        refresh(runtime)
        return Response(METRICS.render(), media_type=CONTENT_TYPE)

    @routes.get("/metrics/summary", dependencies=[Depends(require_api_key)])
    async def metrics_summary(runtime: RuntimeDep) -> JSONResponse:
        """What the dashboard's operations panel shows (p50/p95 over the latest turns)."""
        refresh(runtime)
        body = summary(runtime, loop_lag)
        body["recent_calls"] = await asyncio.to_thread(recent_calls, runtime.settings.data_dir)
        return JSONResponse(body)

    @routes.get("/calls/{call_sid}/waterfall", dependencies=[Depends(require_api_key)])
    async def call_waterfall(call_sid: str, runtime: RuntimeDep) -> JSONResponse:
        """Each turn of a call: end-of-turn wait, STT, planner, TTS, first audio (ms)."""
        events = await asyncio.to_thread(read_timeline, runtime.settings.data_dir, call_sid)
        if events is None:
            return JSONResponse({"error": f"no call {call_sid!r}"}, status_code=404)
        return JSONResponse({"call_sid": call_sid, "turns": waterfall(events)})

    return routes


def summary(runtime: Runtime, loop_lag: LoopLag) -> dict[str, Any]:
    """The ``/metrics`` figures as one JSON object (call :func:`router`'s refresh first)."""
    by_channel = ADMISSIONS.by_channel()
    active, capacity = ADMISSIONS.occupied(), runtime.settings.call_capacity
    lags = [ms for _, ms in loop_lag.by_second()]
    return {
        "calls": {
            "active": sum(by_channel.values()),
            "by_channel": by_channel,
            "admitted": active,  # in progress plus admitted and on their way
            "capacity": capacity,
            "full": active >= capacity,
            "draining": runtime.draining,
        },
        "voice_to_voice": METRICS.recent(METRICS.voice_to_voice),
        "stages": {
            "end_of_turn_wait": METRICS.recent(METRICS.end_of_turn_wait),
            "stt": METRICS.recent(METRICS.stt),
            "planner": METRICS.recent(METRICS.planner),
            "tts_first_audio": METRICS.recent(METRICS.tts_first_audio),
            "memory_context_load": METRICS.recent(METRICS.context_load),
        },
        "turns": {name: int(METRICS.value(sample)) for name, sample in _COUNTERS.items()},
        "rejected": {
            reason: int(
                sum(
                    METRICS.value("tourline_calls_rejected_total", reason=reason, channel=ch)
                    for ch in by_channel
                )
            )
            for reason in ("full", "draining")
        },
        "held": int(METRICS.value("tourline_calls_held_total")),
        "ws_error_closes": int(METRICS.total("tourline_ws_error_closes_total")),
        "memory_backlog": int(METRICS.value("tourline_memory_backlog")),
        "loop_lag_ms": {
            "latest": lags[-1] if lags else 0.0,
            "worst_minute": max(lags, default=0.0),
        },
    }


def recent_calls(data_dir: Path, limit: int = RECENT_CALLS) -> list[dict[str, Any]]:
    """The latest call timelines (id and last write, unix seconds), newest first."""
    files = []
    for path in (data_dir / "calls").glob("*.jsonl"):
        try:
            files.append((path.stat().st_mtime, path.stem))
        except OSError:
            continue  # forgotten (deleted) meanwhile
    files.sort(reverse=True)
    return [{"call_id": stem, "updated": round(mtime, 1)} for mtime, stem in files[:limit]]
