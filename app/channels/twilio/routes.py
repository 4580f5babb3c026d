"""Twilio's HTTP side: the incoming-call webhook, status callbacks and call timelines."""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from app.channels.api_key import require_api_key
from app.channels.deps import RuntimeDep
from app.channels.twilio.twilio_http import (
    busy_twiml,
    connect_twiml,
    public_base,
    signature_checker,
)
from app.domain.identity import masked
from app.logging.flight_recorder import FlightRecorder, read_timeline
from app.settings import Settings

log = logging.getLogger("tourline.twilio")
router = APIRouter()


def _path_and_query(request: Request) -> str:
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


async def _signed_form(request: Request, settings: Settings) -> dict[str, str] | None:
    """The POSTed form if its signature checks out (or checks are off), else None."""
    checker = signature_checker(settings)
    form = {k: str(v) for k, v in (await request.form()).items()}
    signature = request.headers.get("x-twilio-signature")
    if not checker.webhook_ok(_path_and_query(request), form, signature):
        log.warning("refused %s: bad or missing X-Twilio-Signature", request.url.path)
        return None
    return form


@router.post("/twilio/voice")
async def incoming_call(request: Request, runtime: RuntimeDep) -> Response:
    """Answer with <Connect><Stream> so Twilio opens the media WebSocket."""
    settings = runtime.settings
    form = await _signed_form(request, settings)
    if form is None:
        return Response("invalid signature", status_code=403, media_type="text/plain")
    if runtime.draining:  # stopping: this call should have gone to another replica
        log.info("draining: turned away call %s", form.get("CallSid"))
        return Response(busy_twiml(), media_type="application/xml")
    base = public_base(settings.public_url, request.headers.get("host"))
    log.info("incoming call %s from %s", form.get("CallSid"), masked(form.get("From")))
    checker = signature_checker(settings)
    twiml = connect_twiml(base, form, token=checker.call_token(form))
    return Response(twiml, media_type="application/xml")


@router.post("/twilio/status")
async def call_status(request: Request, runtime: RuntimeDep) -> Response:
    """Record Twilio's call status callbacks in the call's timeline."""
    form = await _signed_form(request, runtime.settings)
    if form is None:
        return Response("invalid signature", status_code=403, media_type="text/plain")
    call_sid = form.get("CallSid")
    if call_sid:
        recorder = FlightRecorder(runtime.settings.data_dir, call_sid)
        recorder.event(
            "twilio_status",
            status=form.get("CallStatus"),
            duration_s=form.get("CallDuration"),
            sequence=form.get("SequenceNumber"),
        )
        recorder.close()
    return Response(status_code=204)


@router.get("/calls/{call_sid}/timeline", dependencies=[Depends(require_api_key)])
async def call_timeline(call_sid: str, runtime: RuntimeDep) -> JSONResponse:
    """What happened on a call (it holds what the caller said: protected by the API key)."""
    # Off the loop: reading waits for the timeline writer to drain, and the file may be long.
    events = await asyncio.to_thread(read_timeline, runtime.settings.data_dir, call_sid)
    if events is None:
        return JSONResponse({"error": f"no call {call_sid!r}"}, status_code=404)
    return JSONResponse({"call_sid": call_sid, "events": events})
