"""Which ears, voice and voice-activity detector the worker uses: one selection, from settings.

Offline by default: the bundled Whisper and Piper models behind LiveKit's STT/TTS
interfaces, and Silero VAD from ``livekit-plugins-silero`` (its ONNX model ships inside
the package). With an OpenAI key, LiveKit's OpenAI plugins take over, following the same
``TOURLINE_STT_BACKEND`` / ``TOURLINE_TTS_BACKEND`` rules ("auto", "local", "openai") as the
phone server. Whisper is non-streaming: LiveKit wraps it with the VAD (``stt.StreamAdapter``)
to cut utterances, so the VAD is always loaded.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from livekit.agents import stt, tts, vad
from livekit.agents.types import NOT_GIVEN
from livekit.plugins import silero

from app.audio.stt import load_stt
from app.audio.tts import load_tts
from app.channels.livekit.local_stt import LocalSTT
from app.channels.livekit.local_tts import LocalTTS
from app.settings import Settings

__all__ = ["Speech", "select_speech", "uses_openai"]

log = logging.getLogger("tourline.livekit")


@dataclass(frozen=True)
class Speech:
    """The STT, TTS and VAD every session in this process shares."""

    stt: stt.STT
    tts: tts.TTS
    vad: vad.VAD


def uses_openai(backend: str, settings: Settings) -> bool:
    """The phone server's rule: "openai", or "auto" with ``OPENAI_API_KEY`` set."""
    return backend == "openai" or (backend == "auto" and bool(settings.openai_api_key))


def select_speech(settings: Settings, *, warm_up: bool = True) -> Speech:
    """Load the speech stack named by ``settings`` (models load here, not mid-call)."""
    return Speech(
        stt=_select_stt(settings, warm_up),
        tts=_select_tts(settings, warm_up),
        vad=silero.VAD.load(),
    )


def _select_stt(settings: Settings, warm_up: bool) -> stt.STT:
    if uses_openai(settings.stt_backend, settings):
        from livekit.plugins import openai

        log.info("speech to text: OpenAI %s (LiveKit plugin)", settings.stt_model)
        return openai.STT(
            model=settings.stt_model,
            language="en",
            api_key=settings.openai_api_key or NOT_GIVEN,
            base_url=settings.openai_base_url or NOT_GIVEN,
        )
    recognizer = load_stt(settings)
    if warm_up and hasattr(recognizer, "warmup"):
        recognizer.warmup()
    log.info("speech to text: bundled Whisper tiny.en")
    return LocalSTT(recognizer)


def _select_tts(settings: Settings, warm_up: bool) -> tts.TTS:
    if uses_openai(settings.tts_backend, settings):
        from livekit.plugins import openai

        log.info("text to speech: OpenAI %s (LiveKit plugin)", settings.tts_model)
        return openai.TTS(
            model=settings.tts_model,
            voice=settings.tts_voice,
            api_key=settings.openai_api_key or NOT_GIVEN,
            base_url=settings.openai_base_url or NOT_GIVEN,
        )
    voice = load_tts(settings)
    if warm_up and hasattr(voice, "warmup"):
        voice.warmup()
    log.info("text to speech: bundled Piper voice at %d Hz", voice.sample_rate)
    return LocalTTS(voice)
