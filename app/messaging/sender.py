"""The outbox sender: claims due messages, sends them, settles each one.

Any number of senders may run against one database (replicas of the server): a row is
claimed by exactly one of them (``OutboxStore.claim``), so no message goes out twice while
senders live. The edge that is left, honestly: a sender killed after the provider accepted
a message but before it wrote ``sent`` leaves the row ``sending``; once its lease runs out
another sender claims it and sends it again. Twilio's Messages API has no idempotency key to
stop that; emails keep one Message-ID across attempts, which some mail systems collapse.
The lease (2 minutes) is much longer than a send (15 s timeout), so a slow sender is never
overtaken by a second one: only a killed one is. That is at-least-once, never lost.

Before each send the caller's opt-out is checked (``OptOutStore.is_opted_out``): a STOP
that lands between the booking and the send still wins.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta

from app.domain.catalog import Catalog
from app.domain.identity import masked
from app.messaging.texts import MessageTexts
from app.messaging.transports import Outgoing, SendError, SmtpMailer, Transport, TwilioTexter
from app.settings import Settings
from app.stores.opt_outs import OptOutStore
from app.stores.outbox import OutboxMessage, OutboxStore

log = logging.getLogger("tourline.messaging")

MAX_ATTEMPTS = 5
BACKOFF = timedelta(seconds=30)
"""The wait before the second attempt; it doubles each time (30 s, 1, 2, 4 min)."""
MAX_BACKOFF = timedelta(hours=1)
LEASE = timedelta(minutes=2)
BATCH = 10
POLL_S = 1.0


def transports_for(settings: Settings) -> dict[str, Transport]:
    """A transport per configured channel (none configured: an empty dict)."""
    found: dict[str, Transport] = {}
    if settings.sms_configured:
        found["sms"] = TwilioTexter(settings)
    if settings.whatsapp_configured:
        found["whatsapp"] = TwilioTexter(settings, whatsapp=True)
    if settings.email_configured:
        found["email"] = SmtpMailer(settings)
    return found


def backoff_after(attempts: int, base: timedelta = BACKOFF) -> timedelta:
    """How long to wait after the ``attempts``-th failed attempt."""
    wait: timedelta = base * (2 ** max(attempts - 1, 0))
    return min(wait, MAX_BACKOFF)


class OutboxSender:
    """Works through the outbox; ``run_once`` for one pass, ``run`` as a background task."""

    def __init__(
        self,
        store: OutboxStore,
        opt_outs: OptOutStore,
        texts: MessageTexts,
        transports: Mapping[str, Transport],
        *,
        max_attempts: int = MAX_ATTEMPTS,
        backoff: timedelta = BACKOFF,
        lease: timedelta = LEASE,
        batch: int = BATCH,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.store = store
        self.opt_outs = opt_outs
        self.texts = texts
        self.transports = dict(transports)
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.lease = lease
        self.batch = batch
        self._clock = clock or (lambda: datetime.now(UTC))
        self._stopping = threading.Event()
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.sent = 0

    @classmethod
    def build(cls, settings: Settings, store: OutboxStore, catalog: Catalog) -> OutboxSender:
        return cls(
            store,
            OptOutStore(store.engine),
            MessageTexts.load(settings.prompts_dir, catalog),
            transports_for(settings),
        )

    # ------------------------------------------------------------------ one pass

    def run_once(self, now: datetime | None = None, deadline: float | None = None) -> int:
        """Release held messages whose hold ran out, then send what is due; returns how
        many rows were settled. Stops between two messages when asked to stop, or past
        ``deadline`` (``time.monotonic()``)."""
        now = now or self._clock()
        self.store.release(now=now)
        done = 0

        def must_stop() -> bool:
            return self._stopping.is_set() or (deadline is not None and time.monotonic() > deadline)

        while not must_stop():
            claimed = self.store.claim(self.batch, self.lease, now=now)
            if not claimed:
                break
            for index, message in enumerate(claimed):
                if must_stop():
                    for rest in claimed[index:]:
                        self.store.unclaim(rest)  # another replica takes them at once
                    break
                self._deliver(message, now)
                done += 1
        return done

    def _deliver(self, message: OutboxMessage, now: datetime) -> None:
        transport = self.transports.get(message.channel or "")
        address = message.address
        if transport is None or not address:
            self.store.mark_failed(message, f"channel {message.channel!r} is not configured")
            return
        if self._opted_out(address):
            self.store.mark_skipped(message, "opted out")
            return
        rendered = self.texts.render(message)
        outgoing = Outgoing(address, rendered.subject, rendered.body, message.dedupe_key)
        try:
            provider_id = transport.send(outgoing)
        except SendError as exc:
            self._failed(message, exc, now, rendered.body)
            return
        if self.store.mark_sent(message, provider_id, rendered.body):
            self.sent += 1
            log.info(
                "sent %s %s to %s (%s)", message.kind, message.channel, masked(address), provider_id
            )
        else:
            log.warning("message %d was sent, but its claim had lapsed", message.id)

    def _failed(self, message: OutboxMessage, exc: SendError, now: datetime, body: str) -> None:
        reason = str(exc)
        if exc.opted_out:
            self.store.mark_skipped(message, f"opted out at the provider: {reason}")
        elif exc.permanent or message.attempts >= self.max_attempts:
            self.store.mark_failed(message, reason, body)
            log.warning(
                "message %d failed for good after %d attempts: %s",
                message.id,
                message.attempts,
                reason,
            )
        else:
            at = now + backoff_after(message.attempts, self.backoff)
            self.store.mark_retry(message, reason, at, body)
            log.info(
                "message %d: attempt %d failed (%s), next at %s",
                message.id,
                message.attempts,
                reason,
                at,
            )

    def _opted_out(self, address: str) -> bool:
        bare = address.removeprefix("whatsapp:")
        return self.opt_outs.is_opted_out(address) or (
            bare != address and self.opt_outs.is_opted_out(bare)
        )

    # ------------------------------------------------------------------ in the background

    def wake(self) -> None:
        """Look at the outbox now rather than at the next poll (e.g. right after a booking)."""
        if self._loop is not None and self._wake is not None:
            with contextlib.suppress(RuntimeError):  # the loop has closed: nothing to wake
                self._loop.call_soon_threadsafe(self._wake.set)

    async def run(self, poll_s: float = POLL_S) -> None:
        """Send until ``stop``; each pass runs in a worker thread, off the event loop."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        while not self._stopping.is_set():
            self._wake.clear()  # before the pass: a wake during it means "look again"
            try:
                await asyncio.to_thread(self.run_once)
            except Exception:
                log.exception("outbox pass failed; trying again shortly")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=poll_s)

    def stop(self) -> None:
        """Finish the message in flight, then stop (SIGTERM drain)."""
        self._stopping.set()
        self.wake()

    def flush(self, deadline_s: float = 10.0) -> int:
        """Send what is due now, for a process without a background sender (``tourline
        chat`` on its own); returns how many rows were settled."""
        ends = time.monotonic() + deadline_s
        total = 0
        while time.monotonic() < ends:
            done = self.run_once(deadline=ends)
            total += done
            if done == 0:
                break
        return total
