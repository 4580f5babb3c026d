"""``POST /twilio/sms``: texts to the number (SMS and WhatsApp), answered by the planner.

Twilio posts each inbound message (``From``, ``To``, ``Body``, ``MessageSid``, ``NumMedia``;
a WhatsApp sender is ``whatsapp:+1…``), signed like the voice webhook over
``TOURLINE_PUBLIC_URL`` + ``/twilio/sms`` (403 otherwise). The answer is TwiML
``<Response><Message>…</Message></Response>``, or an empty ``<Response/>`` when nothing may
or should be sent (an opted-out number, a sender that floods, a sender we can't text back).

Before the planner: carrier keywords (:mod:`.sms_keywords`: STOP and its kin opt out, START
opts in, HELP), opt-outs (``OptOutStore``: an opted-out number gets nothing more until it
texts START), a per-sender rate limit, and bad input (empty, media only, over 1600
characters, only emoji) answered from ``prompts/sms.yaml``. Then one turn of the sender's
text session (:mod:`app.channels.text_session`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import yaml
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from twilio.twiml.messaging_response import MessagingResponse

from app.channels.deps import RuntimeDep
from app.channels.rate_limit import TokenBucket
from app.channels.text_session import SenderBusyError, TextSessions
from app.channels.twilio.sms_keywords import MAX_BODY_CHARS, keyword, readable
from app.channels.twilio.twilio_http import signed_form, xml_safe
from app.domain.identity import InvalidCallerId, is_phone, masked, normalize_caller_id
from app.runtime import NotLoadedError, Runtime
from app.stores.database import create_db_engine
from app.stores.opt_outs import OptOutStore

log = logging.getLogger("tourline.sms")

SMS_PATH = "/twilio/sms"
WHATSAPP_PREFIX = "whatsapp:"
SWEEP_EVERY_S = 60.0
"""How often idle text sessions are looked for and ended (their summaries queued)."""
RATE_BURST = 10
RATE_PER_SECOND = 0.5
"""Per sender (per process): 10 messages at once, then one every 2 s on average, more than
anyone types; past it, no reply (a reply costs a message)."""
MAX_SENDERS_TRACKED = 10_000


class SmsPrompts:
    """``prompts/sms.yaml``: the texts sent outside the dialogue."""

    def __init__(self, templates: dict[str, Any]) -> None:
        self._templates = templates
        pairs = templates.get("reading") or []
        self.reading: tuple[tuple[str, str], ...] = tuple((str(a), str(b)) for a, b in pairs)

    @classmethod
    def load(cls, prompts_dir: Path) -> SmsPrompts:
        return cls(yaml.safe_load((prompts_dir / "sms.yaml").read_text()))

    def say(self, key: str) -> str:
        return str(self._templates[key]).format(
            office=self._templates.get("office", "the leasing office"),
            max_chars=MAX_BODY_CHARS,
        )


class SmsInbox:
    """Everything an inbound text needs, built once per server from its runtime."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.prompts = SmsPrompts.load(runtime.settings.prompts_dir)
        memory = runtime.memory
        engine = (
            memory.engine
            if memory is not None
            else create_db_engine(runtime.settings.resolved_database_url)
        )
        self.opt_outs = OptOutStore(engine)
        self.sessions = TextSessions(
            lambda: runtime.planners, memory, replacements=self.prompts.reading
        )
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    async def answer(self, form: dict[str, str]) -> str | None:
        """The reply to one inbound message, or None for no reply at all."""
        sender = form.get("From", "")
        channel = "sms"
        if sender.lower().startswith(WHATSAPP_PREFIX):
            channel, sender = "whatsapp", sender[len(WHATSAPP_PREFIX) :]
        try:
            caller_id = normalize_caller_id(sender)
        except InvalidCallerId:
            caller_id = ""
        if not is_phone(caller_id):  # a short code, an alphanumeric sender, nothing
            log.info("text from %s: not a phone number, not answered", masked(sender))
            return None
        body = form.get("Body", "")
        word = keyword(body) if len(body) <= MAX_BODY_CHARS else None
        opted_out = await asyncio.to_thread(self.opt_outs.is_opted_out, caller_id)
        if word == "opt_out":
            if not await asyncio.to_thread(self.opt_outs.opt_out, caller_id, channel):
                return None  # confirmed once already
            log.info("text from %s: opted out", masked(caller_id))
            bare_cancel = body.strip(" .!\n\t").upper() == "CANCEL"
            return self.prompts.say("opted_out_cancel" if bare_cancel else "opted_out")
        if word == "opt_in" or (word == "yes" and opted_out):
            await asyncio.to_thread(self.opt_outs.opt_in, caller_id)
            log.info("text from %s: opted in", masked(caller_id))
            return self.prompts.say("opted_in")
        if opted_out:
            return None  # nothing more for an opted-out number, HELP included
        if word == "help":
            return self.prompts.say("help")
        if not self._allow(caller_id):
            log.warning("text from %s: over the rate limit, not answered", masked(caller_id))
            return None
        return await self._converse(caller_id, channel, body, form)

    async def _converse(self, caller_id: str, channel: str, body: str, form: dict[str, str]) -> str:
        if len(body) > MAX_BODY_CHARS:
            return self.prompts.say("too_long")
        if not body.strip():
            media = form.get("NumMedia", "0").strip()
            return self.prompts.say("media_only" if media not in ("", "0") else "empty")
        text = readable(body)
        if not text:
            return self.prompts.say("symbols_only")
        try:
            turn = await self.sessions.exchange(
                caller_id,
                channel,
                text,
                message_id=form.get("MessageSid"),
                fallback=self.prompts.say("fallback"),
            )
        except SenderBusyError:
            return self.prompts.say("busy")
        except NotLoadedError:
            return self.prompts.say("starting")
        except Exception:
            log.exception("text from %s could not be answered", masked(caller_id))
            return self.prompts.say("fallback")
        log.info(
            "text %s from %s answered (%s)",
            turn.call_id,
            masked(caller_id),
            "resumed" if turn.resumed else "new session",
        )
        return turn.reply

    def _allow(self, caller_id: str) -> bool:
        bucket = self._buckets.pop(caller_id, None) or TokenBucket(RATE_BURST, RATE_PER_SECOND)
        self._buckets[caller_id] = bucket  # most recent last
        while len(self._buckets) > MAX_SENDERS_TRACKED:
            self._buckets.popitem(last=False)
        return bucket.allow()


@contextlib.asynccontextmanager
async def _with_inbox(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
    """The inbox for the requests (``request.state.sms_inbox``), and the idle-session
    sweep beside it. Runs inside ``create_app``'s lifespan, once the runtime is open."""
    runtime = app.state.runtime
    if not isinstance(runtime, Runtime):
        raise TypeError("the app has no Runtime: build it with app.web.server.create_app")
    inbox = SmsInbox(runtime)
    sweeping = asyncio.create_task(_sweep(inbox.sessions))
    try:
        yield {"sms_inbox": inbox}
    finally:
        sweeping.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sweeping


async def _sweep(sessions: TextSessions) -> None:
    while True:
        await asyncio.sleep(SWEEP_EVERY_S)
        try:
            ended = await sessions.end_idle()
        except Exception:
            log.warning("ending idle text sessions failed", exc_info=True)
        else:
            if ended:
                log.info("ended %d idle text session(s)", ended)


router = APIRouter(lifespan=_with_inbox)


@router.post(SMS_PATH)
async def incoming_text(request: Request, runtime: RuntimeDep) -> Response:
    """One inbound SMS or WhatsApp message; the reply as TwiML ``<Message>``."""
    form = await signed_form(request, runtime.settings)
    if form is None:
        return Response("invalid signature", status_code=403, media_type="text/plain")
    inbox: SmsInbox = request.state.sms_inbox
    reply = await inbox.answer(form)
    response = MessagingResponse()
    if reply:
        response.message(xml_safe(reply))
    return Response(str(response), media_type="application/xml")
