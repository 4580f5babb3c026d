"""Twilio's HTTP side: the incoming-call webhook, status callbacks and call timelines."""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from app.channels.admission import ADMISSIONS
from app.channels.api_key import require_api_key
from app.channels.deps import RuntimeDep
from app.channels.twilio.twilio_http import (
    ATTEMPT_PARAM,
    HOLD_ATTEMPTS,
    busy_twiml,
    connect_twiml,
    full_twiml,
    hold_twiml,
    public_base,
    signature_checker,
)
from app.channels.twilio.twilio_http import signed_form as _signed_form
from app.domain.identity import masked
from app.logging.flight_recorder import FlightRecorder, read_timeline
from app.logging.metrics import call_held, call_rejected

log = logging.getLogger("tourline.twilio")
router = APIRouter()


@router.post("/twilio/voice")
async def incoming_call(request: Request, runtime: RuntimeDep) -> Response:
    """Answer with <Connect><Stream> so Twilio opens the media WebSocket."""
    settings = runtime.settings
    form = await _signed_form(request, settings)
    if form is None:
        return Response("invalid signature", status_code=403, media_type="text/plain")
    if runtime.draining:  # stopping: this call should have gone to another replica
        log.info("draining: turned away call %s", form.get("CallSid"))
        call_rejected("draining")
        return Response(busy_twiml(), media_type="application/xml")
    base = public_base(settings.public_url, request.headers.get("host"))
    call_sid = form.get("CallSid", "")
    if not ADMISSIONS.try_admit(call_sid, settings.call_capacity):  # full: hold, or goodbye
        return Response(_turned_away(base, call_sid, request), media_type="application/xml")
    log.info("incoming call %s from %s", form.get("CallSid"), masked(form.get("From")))
    checker = signature_checker(settings)
    twiml = connect_twiml(base, form, token=checker.call_token(form))
    return Response(twiml, media_type="application/xml")


def _turned_away(base: str, call_sid: str, request: Request) -> str:
    """TwiML for a caller this process has no room for: hold and try again (the attempt
    count rides in the redirect's query, which Twilio signs), or after ``HOLD_ATTEMPTS``,
    a polite goodbye."""
    raw = request.query_params.get(ATTEMPT_PARAM, "1")
    small = raw.isascii() and raw.isdigit() and len(raw) <= 3
    attempt = min(max(int(raw), 1), HOLD_ATTEMPTS) if small else 1
    if attempt >= HOLD_ATTEMPTS:
        log.info("full: call %s asked to call back after %d tries", call_sid, attempt)
        call_rejected("full")
        return full_twiml()
    log.info("full: call %s asked to hold (try %d)", call_sid, attempt)
    call_held()
    return hold_twiml(f"{base}/twilio/voice?{ATTEMPT_PARAM}={attempt + 1}", attempt)


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
