"""The one settings object, read from the environment.

Every knob Tourline has lives here so the README table, the CLI and the server agree.
Names without a prefix (``OPENAI_API_KEY``, ``DATABASE_URL``...) keep the names their
ecosystems already use.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent
CALLS_PER_CORE = 5
"""Simultaneous noisy phone calls per core with p95 voice-to-voice under 1 s (measured on 2
cores: 10 calls p95 0.69 s, 20 calls 1.09 s; bench/call_latency.py)."""


def _env(*names: str) -> AliasChoices:
    return AliasChoices(*names)


class Settings(BaseSettings):
    """Runtime configuration. Construct with keyword overrides in tests."""

    model_config = SettingsConfigDict(populate_by_name=True, extra="ignore")

    data_dir: Path = Field(Path("./data"), validation_alias=_env("TOURLINE_DATA_DIR", "data_dir"))
    prompts_dir: Path = Field(
        REPO_ROOT / "prompts", validation_alias=_env("TOURLINE_PROMPTS_DIR", "prompts_dir")
    )
    public_url: str | None = Field(None, validation_alias=_env("TOURLINE_PUBLIC_URL", "public_url"))
    api_key: str | None = Field(None, validation_alias=_env("TOURLINE_API_KEY", "api_key"))
    avatar_origins: str = Field(
        "", validation_alias=_env("TOURLINE_AVATAR_ORIGINS", "avatar_origins")
    )
    """Web pages (comma-separated origins, e.g. ``https://app.example.com``) allowed to open
    ``WS /avatar`` besides the server's own; clients that send no Origin (apps) always may."""
    avatar_secret: str | None = Field(
        None, validation_alias=_env("TOURLINE_AVATAR_SECRET", "avatar_secret")
    )
    """The HS256 key that signs avatar tokens (a JWT whose ``sub`` is the caller id). Unset,
    avatar clients can only use anonymous device ids."""
    max_connections: int = Field(
        1000, validation_alias=_env("TOURLINE_MAX_CONNECTIONS", "max_connections")
    )
    """Open connections (HTTP and WebSocket) the server holds at once; past it, new ones
    are refused with 503 so the calls already answered stay fast."""
    idle_timeout_s: float = Field(
        10.0, validation_alias=_env("TOURLINE_IDLE_TIMEOUT_S", "idle_timeout_s")
    )
    """How long an HTTP connection may sit idle or dribble its headers (or a request body
    pause between two chunks) before it is closed."""
    max_body_bytes: int = Field(
        1_048_576, validation_alias=_env("TOURLINE_MAX_BODY_BYTES", "max_body_bytes")
    )
    """The largest request body accepted (413 past it); Twilio's webhooks are a few KB."""
    timezone: str = Field(
        "America/New_York", validation_alias=_env("TOURLINE_TIMEZONE", "timezone")
    )

    # Telephony
    twilio_auth_token: str | None = Field(
        None, validation_alias=_env("TWILIO_AUTH_TOKEN", "twilio_auth_token")
    )

    # Cloud options: unset means the offline default.
    openai_api_key: str | None = Field(
        None, validation_alias=_env("OPENAI_API_KEY", "openai_api_key")
    )
    openai_base_url: str | None = Field(
        None, validation_alias=_env("OPENAI_BASE_URL", "openai_base_url")
    )
    llm_model: str = Field("gpt-4o-mini", validation_alias=_env("TOURLINE_LLM_MODEL", "llm_model"))
    llm_timeout_s: float = Field(
        8.0, validation_alias=_env("TOURLINE_LLM_TIMEOUT", "llm_timeout_s")
    )

    # Speech. "auto" uses OpenAI when OPENAI_API_KEY is set (a base URL alone usually
    # points at a local LLM server without audio), else the bundled offline models.
    stt_backend: Literal["auto", "local", "openai"] = Field(
        "auto", validation_alias=_env("TOURLINE_STT_BACKEND", "stt_backend")
    )
    tts_backend: Literal["auto", "local", "openai"] = Field(
        "auto", validation_alias=_env("TOURLINE_TTS_BACKEND", "tts_backend")
    )
    stt_model: str = Field(
        "gpt-4o-mini-transcribe", validation_alias=_env("TOURLINE_STT_MODEL", "stt_model")
    )
    tts_model: str = Field(
        "gpt-4o-mini-tts", validation_alias=_env("TOURLINE_TTS_MODEL", "tts_model")
    )
    tts_voice: str = Field("alloy", validation_alias=_env("TOURLINE_TTS_VOICE", "tts_voice"))
    stt_cpu_threads: int = Field(
        2, validation_alias=_env("TOURLINE_STT_CPU_THREADS", "stt_cpu_threads")
    )
    tts_cpu_threads: int = Field(
        2, validation_alias=_env("TOURLINE_TTS_CPU_THREADS", "tts_cpu_threads")
    )
    stt_encoder_window_s: float | None = Field(
        10.0, validation_alias=_env("TOURLINE_STT_ENCODER_WINDOW_S", "stt_encoder_window_s")
    )

    # Turn-taking on a call (milliseconds)
    turn_silence_ms: int = Field(
        600, validation_alias=_env("TOURLINE_TURN_SILENCE_MS", "turn_silence_ms")
    )
    turn_quick_silence_ms: int = Field(
        240, validation_alias=_env("TOURLINE_TURN_QUICK_SILENCE_MS", "turn_quick_silence_ms")
    )
    turn_incomplete_silence_ms: int = Field(
        1200,
        validation_alias=_env("TOURLINE_TURN_INCOMPLETE_SILENCE_MS", "turn_incomplete_silence_ms"),
    )
    turn_hold_ms: int = Field(400, validation_alias=_env("TOURLINE_TURN_HOLD_MS", "turn_hold_ms"))
    """Silence before the reply's first sound. The turn may end sooner (the reply is worked
    out meanwhile), but a caller pausing between two sentences goes on within ~400 ms, and a
    reply not yet heard is taken back without a sound."""
    turn_quick_hold_ms: int = Field(
        300, validation_alias=_env("TOURLINE_TURN_QUICK_HOLD_MS", "turn_quick_hold_ms")
    )
    """The same hold after words that read as a finished answer (the planner moves on with
    them, or a question): such callers wait for the agent. At most ``turn_hold_ms``; a caller
    seen to go on after a pause gets the longer, grown hold for the rest of the call."""
    barge_in_ms: int = Field(250, validation_alias=_env("TOURLINE_BARGE_IN_MS", "barge_in_ms"))
    barge_in_early_ms: int = Field(
        160, ge=0, validation_alias=_env("TOURLINE_BARGE_IN_EARLY_MS", "barge_in_early_ms")
    )
    """Talking over the agent this long gets a first, quick judgement (app/audio/
    interruption_probe.py): a sure interruption stops the agent at once, anything else waits
    for the check at ``barge_in_ms``. 0 turns the early judgement off."""
    context_timeout_ms: int = Field(
        500, validation_alias=_env("TOURLINE_CONTEXT_TIMEOUT_MS", "context_timeout_ms")
    )
    """The longest a call's greeting waits for the caller's memory; past it the caller is
    greeted as a stranger (and the log says so) rather than kept waiting in silence."""
    no_input_timeout_s: float = Field(
        8.0, validation_alias=_env("TOURLINE_NO_INPUT_TIMEOUT_S", "no_input_timeout_s")
    )
    twilio_stream_window_s: float = Field(
        60.0,
        validation_alias=_env("TOURLINE_TWILIO_STREAM_WINDOW_S", "twilio_stream_window_s"),
    )
    """How long after the signed webhook its media stream may start (Twilio starts it
    within seconds); with TWILIO_AUTH_TOKEN set, a later start is refused."""
    compute_workers: int = Field(
        2, validation_alias=_env("TOURLINE_COMPUTE_WORKERS", "compute_workers")
    )
    max_calls: int | None = Field(None, validation_alias=_env("TOURLINE_MAX_CALLS", "max_calls"))
    """Calls this process serves at once while keeping p95 voice-to-voice under 1 s; unset,
    ``CALLS_PER_CORE`` per core (measured: docs/benchmarks.md, noisy phone lines). Past it,
    a phone caller is put on hold and redirected, an avatar is told the line is busy."""
    drain_s: float = Field(20.0, validation_alias=_env("TOURLINE_DRAIN_S", "drain_s"))
    """On SIGTERM, how long calls in progress may go on before they hear a goodbye; meanwhile
    ``/readyz`` says "draining" and new callers hear that the line is busy."""
    phrase_cache_dir: Path | None = Field(
        None, validation_alias=_env("TOURLINE_PHRASE_CACHE_DIR", "phrase_cache_dir")
    )
    """Where the agent's rendered fixed phrases are kept across restarts; unset, a
    ``phrases`` folder in the data dir. Servers with the same voice may share one."""

    # Memory
    memory_mode: Literal["persistent", "in_memory"] = Field(
        "persistent", validation_alias=_env("TOURLINE_MEMORY_MODE", "memory_mode")
    )

    # Messaging: confirmations and reminders (SMS/WhatsApp through Twilio, email via SMTP)
    twilio_account_sid: str | None = Field(
        None, validation_alias=_env("TWILIO_ACCOUNT_SID", "twilio_account_sid")
    )
    twilio_from_number: str | None = Field(
        None, validation_alias=_env("TWILIO_FROM_NUMBER", "twilio_from_number")
    )
    twilio_messaging_service_sid: str | None = Field(
        None,
        validation_alias=_env("TWILIO_MESSAGING_SERVICE_SID", "twilio_messaging_service_sid"),
    )
    twilio_api_base_url: str = Field(
        "https://api.twilio.com",
        validation_alias=_env("TWILIO_API_BASE_URL", "twilio_api_base_url"),
    )
    twilio_whatsapp_from: str | None = Field(
        None, validation_alias=_env("TWILIO_WHATSAPP_FROM", "twilio_whatsapp_from")
    )
    smtp_url: str | None = Field(None, validation_alias=_env("SMTP_URL", "smtp_url"))
    """``smtp://user:pass@host:587?starttls=true``, ``smtps://…:465`` (implicit TLS), or
    ``smtp://host:25`` (plain, for a relay on the same host)."""
    smtp_from: str | None = Field(None, validation_alias=_env("SMTP_FROM", "smtp_from"))
    reminders: str = Field("24h,2h", validation_alias=_env("TOURLINE_REMINDERS", "reminders"))
    """Reminders before each tour, e.g. ``24h,2h`` or ``90m``; empty: none."""

    # Stores
    database_url: str | None = Field(None, validation_alias=_env("DATABASE_URL", "database_url"))
    replica_lease_s: float = Field(
        30.0, gt=0, validation_alias=_env("TOURLINE_REPLICA_LEASE_S", "replica_lease_s")
    )
    """On a shared ``DATABASE_URL``, each process renews a heartbeat every third of this;
    one silent this long is dead, and a live replica closes the calls it left open (at
    once for a process on the same host that no longer exists)."""
    qdrant_url: str | None = Field(None, validation_alias=_env("QDRANT_URL", "qdrant_url"))
    qdrant_api_key: str | None = Field(
        None, validation_alias=_env("QDRANT_API_KEY", "qdrant_api_key")
    )
    vector_store: Literal["auto", "embedded", "qdrant", "postgres"] = Field(
        "auto", validation_alias=_env("TOURLINE_VECTOR_STORE", "vector_store")
    )
    """Where memory vectors live: ``embedded`` (Qdrant Edge, one process per data dir),
    ``qdrant`` (the server at ``QDRANT_URL``), ``postgres`` (the ``DATABASE_URL`` database,
    for a fleet on PostgreSQL alone); ``auto``: qdrant if ``QDRANT_URL`` is set, else
    embedded."""

    @property
    def llm_enabled(self) -> bool:
        """The planner talks to an LLM only when the user configured one."""
        return bool(self.openai_api_key or self.openai_base_url)

    @property
    def sms_configured(self) -> bool:
        """Texts can go out: an account, its token, and a from-number or messaging service."""
        sender = self.twilio_from_number or self.twilio_messaging_service_sid
        return bool(self.twilio_account_sid and self.twilio_auth_token and sender)

    @property
    def whatsapp_configured(self) -> bool:
        sender = self.twilio_whatsapp_from
        return bool(self.twilio_account_sid and self.twilio_auth_token and sender)

    @property
    def email_configured(self) -> bool:
        return bool(self.smtp_url and self.smtp_from)

    @property
    def message_channels(self) -> frozenset[str]:
        """The outbox channels this process can really send on (``sms``, ``whatsapp``,
        ``email``): the agent offers only these."""
        found = {
            ("sms", self.sms_configured),
            ("whatsapp", self.whatsapp_configured),
            ("email", self.email_configured),
        }
        return frozenset(name for name, ok in found if ok)

    @property
    def call_capacity(self) -> int:
        return self.max_calls or CALLS_PER_CORE * (os.cpu_count() or 1)

    @property
    def resolved_phrase_cache_dir(self) -> Path:
        return self.phrase_cache_dir or self.data_dir / "phrases"

    @property
    def resolved_database_url(self) -> str:
        """``DATABASE_URL`` if set, else SQLite in the data dir."""
        if self.database_url:
            url = self.database_url
            # Plain postgres:// URLs (Heroku style) mean the psycopg 3 driver here.
            for prefix in ("postgres://", "postgresql://"):
                if url.startswith(prefix):
                    return "postgresql+psycopg://" + url[len(prefix) :]
            return url
        return f"sqlite:///{(self.data_dir / 'tourline.db').resolve()}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings from the process environment, read once."""
    return Settings()
