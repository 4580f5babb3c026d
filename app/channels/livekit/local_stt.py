"""LiveKit STT over the bundled Whisper model (``app.audio.stt.WhisperSTT``).

Whisper transcribes whole utterances, not a live stream, so this is a non-streaming
``stt.STT``: LiveKit cuts the caller's audio into utterances with the VAD
(``stt.StreamAdapter``) and hands each one to :meth:`recognize`. Audio arrives at the
room's rate (48 or 24 kHz, sometimes stereo) and is mixed down and resampled to the
16 kHz mono Whisper expects; the decode runs in a worker thread, off the event loop.
"""

from __future__ import annotations

import asyncio

import numpy as np
import numpy.typing as npt
import soxr
from livekit import rtc
from livekit.agents import LanguageCode, stt
from livekit.agents.types import NOT_GIVEN, APIConnectOptions, NotGivenOr
from livekit.agents.utils import AudioBuffer, shortuuid

from app.audio.stt import STT_SAMPLE_RATE, SpeechToText

__all__ = ["LocalSTT", "to_stt_pcm16"]

LANGUAGE = LanguageCode("en")  # tiny.en only knows English


class LocalSTT(stt.STT):
    """``stt.STT`` for any Tourline ``SpeechToText`` (the offline Whisper by default)."""

    def __init__(self, recognizer: SpeechToText, *, model: str = "whisper-tiny.en") -> None:
        super().__init__(capabilities=stt.STTCapabilities(streaming=False, interim_results=False))
        self.recognizer = recognizer
        self._model = model

    @property
    def model(self) -> str:
        return self._model

    @property
    def provider(self) -> str:
        return "tourline-local"

    async def _recognize_impl(
        self,
        buffer: AudioBuffer,
        *,
        language: NotGivenOr[str] = NOT_GIVEN,
        conn_options: APIConnectOptions,
    ) -> stt.SpeechEvent:
        pcm = to_stt_pcm16(buffer)
        text = await asyncio.to_thread(self.recognizer.transcribe, pcm) if pcm.size else ""
        return stt.SpeechEvent(
            type=stt.SpeechEventType.FINAL_TRANSCRIPT,
            request_id=shortuuid("whisper_"),
            alternatives=[stt.SpeechData(language=LANGUAGE, text=text.strip())],
        )


def to_stt_pcm16(buffer: AudioBuffer) -> npt.NDArray[np.int16]:
    """LiveKit frames (any rate, any channel count) as 16 kHz mono int16 samples."""
    frames = buffer if isinstance(buffer, list) else [buffer]
    if not frames:
        return np.zeros(0, dtype=np.int16)
    frame = rtc.combine_audio_frames(frames)
    samples = np.frombuffer(frame.data, dtype=np.int16)
    if frame.num_channels > 1:
        samples = samples.reshape(-1, frame.num_channels).mean(axis=1)
    if frame.sample_rate != STT_SAMPLE_RATE and samples.size:
        samples = soxr.resample(samples.astype(np.float32), frame.sample_rate, STT_SAMPLE_RATE)
    return np.clip(np.rint(samples), -32768, 32767).astype(np.int16)
