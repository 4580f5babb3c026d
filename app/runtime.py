"""The one composition root: what a process builds once, from settings, for all its calls.

The server, ``tourline chat``, the LiveKit worker and ``demo_memory.py`` all start here, so
the catalog is read once, memory and the planner share one database engine, and a change to
how the parts fit together is made in one place.

Memory comes first and alone (``open_memory``): if another process owns the data dir, a
server must refuse to start before it binds. The planner and the voice models load after
(``load_planners``, ``load_voice``); the server does that in the background while
``/healthz`` says "loading". ``open`` does all three in order.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from app.domain.catalog import Catalog
from app.memory.mem0_engine import VectorBackendUnavailableError
from app.memory.service import MemoryService
from app.messaging.sender import OutboxSender
from app.planner.agent_planner import PlannerKit
from app.settings import Settings
from app.stores.call_tokens import CallTokenStore
from app.voice.voice_kit import VoiceKit

log = logging.getLogger("tourline.runtime")


class NotLoadedError(RuntimeError):
    """A part was used before the runtime loaded it."""


@dataclass
class Runtime:
    """Settings, catalog, memory, planner kit and voice kit: one of each per process."""

    settings: Settings
    catalog: Catalog
    memory: MemoryService | None
    """None when the vector store is down and memory is optional: calls go on, unremembered."""
    _planners: PlannerKit | None = field(default=None, repr=False)
    _voice: VoiceKit | None = field(default=None, repr=False)
    ready: bool = False
    """Every part a call needs is loaded (the server's ``/healthz``)."""
    warm: bool = False
    """Every fixed phrase is rendered too (calls work before this)."""
    draining: bool = False
    """Stopping (SIGTERM): the calls in progress go on, no new call is taken."""
    _sender: OutboxSender | None = field(default=None, repr=False)
    _sending: bool = field(default=False, repr=False)  # a background sender ran here
    _stop_sending: bool = field(default=False, repr=False)
    _call_tokens: CallTokenStore | None = field(default=None, repr=False)

    @classmethod
    def open(
        cls, settings: Settings, *, voice: bool = True, memory_optional: bool = True
    ) -> Runtime:
        """Memory, the planner and (unless ``voice=False``: text only) the voice models."""
        runtime = cls.open_memory(settings, optional=memory_optional)
        try:
            runtime.load_planners()
            if voice:
                runtime.load_voice()
        except BaseException:
            runtime.close()
            raise
        runtime.ready = True
        return runtime

    @classmethod
    def open_memory(cls, settings: Settings, *, optional: bool = True) -> Runtime:
        """The catalog and memory only. ``EmbeddedStoreLockedError`` is raised as is; a
        vector store that can't be reached is too, unless memory is ``optional``."""
        catalog = Catalog.load(settings.prompts_dir / "properties.yaml")
        try:
            memory: MemoryService | None = MemoryService.open(settings, catalog=catalog)
        except VectorBackendUnavailableError as exc:
            if not optional:
                raise
            log.error("caller memory is unavailable, calls will go on without it: %s", exc)
            memory = None
        return cls(settings, catalog, memory)

    def load_planners(self) -> PlannerKit:
        """The planner kit, on memory's database engine when there is one."""
        started = time.perf_counter()
        engine = self.memory.engine if self.memory is not None else None
        self._planners = PlannerKit.build(self.settings, engine=engine, catalog=self.catalog)
        log.info("planner ready in %.0f ms", (time.perf_counter() - started) * 1000)
        return self._planners

    def load_voice(self) -> VoiceKit:
        """STT, TTS, VAD and the compute pool (a few seconds)."""
        self._voice = VoiceKit.load(self.settings)
        return self._voice

    def _flush_messages(self) -> None:
        try:
            sender = self.outbox_sender()
            if sender is not None:
                sender.flush()
        except Exception:
            log.warning("sending the outbox at exit failed; a server sends it later", exc_info=True)

    @property
    def planners(self) -> PlannerKit:
        if self._planners is None:
            raise NotLoadedError("the planner is not loaded yet")
        return self._planners

    @property
    def voice(self) -> VoiceKit:
        if self._voice is None:
            raise NotLoadedError("the voice models are not loaded yet")
        return self._voice

    def call_tokens(self) -> CallTokenStore | None:
        """Twilio call tokens spent, in memory's database (shared by replicas); None
        without memory (each process then remembers its own only)."""
        if self._call_tokens is None and self.memory is not None:
            self._call_tokens = CallTokenStore(self.memory.engine)
        return self._call_tokens

    def outbox_sender(self) -> OutboxSender | None:
        """The sender of confirmations and reminders, once the planners are loaded; None
        when no channel is configured (the agent then offers none)."""
        if self._sender is None and self._planners is not None and self.settings.message_channels:
            outbox = self._planners.desk.outbox
            if outbox is not None:
                self._sender = OutboxSender.build(self.settings, outbox, self.catalog)
                self._planners.desk.on_queued = self._sender.wake
        return self._sender

    async def send_messages(self) -> None:
        """The server's background sender: waits for the planners, then sends until
        ``stop_messages``."""
        self._sending = True
        while self._planners is None and not self._stop_sending:
            await asyncio.sleep(0.2)
        sender = None if self._stop_sending else self.outbox_sender()
        if sender is not None:
            await sender.run()

    async def stop_messages(self, task: asyncio.Task[None], timeout_s: float = 30.0) -> None:
        """SIGTERM: let the sender finish the message in flight, then stop it."""
        self._stop_sending = True
        if self._sender is not None:
            self._sender.stop()
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout_s)
        except Exception:
            task.cancel()
            log.warning("the outbox sender did not stop in %.0f s", timeout_s, exc_info=True)

    def close(self) -> None:
        """Send the messages due (when no background sender ran: ``tourline chat``), stop
        the voice workers and close memory (flushing what is queued)."""
        self.ready = False
        if not self._sending:
            self._flush_messages()
        if self._voice is not None:
            self._voice.close()
            self._voice = None
        if self.memory is not None:
            self.memory.close()
