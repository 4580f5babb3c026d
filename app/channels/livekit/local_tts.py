"""LiveKit TTS over the bundled Piper voice (``app.audio.tts.PiperTTS``).

Piper renders one piece of text at a time, so this is a non-streaming ``tts.TTS`` whose
``ChunkedStream`` pushes Piper's PCM16 chunks (22.05 kHz mono) to LiveKit's audio
emitter as they come; LiveKit splits a reply into sentences itself (``tts.StreamAdapter``)
so the first sentence plays while the next renders. Piper runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

from livekit.agents import tts
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, APIConnectOptions
from livekit.agents.utils import shortuuid

from app.audio.tts import TextToSpeech

__all__ = ["LocalTTS"]

_SILENCE_S = 0.02
"""Pushed when a piece of text renders to nothing (e.g. only punctuation), because LiveKit
treats a synthesis with no audio as a failure and retries it."""


class LocalTTS(tts.TTS):
    """``tts.TTS`` for any Tourline ``TextToSpeech`` (the offline Piper voice by default)."""

    def __init__(self, voice: TextToSpeech, *, model: str = "piper-en_US-joe-medium") -> None:
        super().__init__(
            capabilities=tts.TTSCapabilities(streaming=False),
            sample_rate=int(voice.sample_rate),
            num_channels=1,
        )
        self.voice = voice
        self._model = model

    @property
    def model(self) -> str:
        return self._model

    @property
    def provider(self) -> str:
        return "tourline-local"

    def synthesize(
        self, text: str, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> LocalChunkedStream:
        return LocalChunkedStream(tts=self, input_text=text, conn_options=conn_options)


class LocalChunkedStream(tts.ChunkedStream):
    """One piece of text rendered chunk by chunk."""

    _tts: LocalTTS

    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        output_emitter.initialize(
            request_id=shortuuid("piper_"),
            sample_rate=self._tts.sample_rate,
            num_channels=1,
            mime_type="audio/pcm",
        )
        chunks: Iterator[bytes] = iter(self._tts.voice.synthesize(self.input_text))
        pushed = 0
        try:
            while (chunk := await asyncio.to_thread(next, chunks, None)) is not None:
                if chunk:
                    output_emitter.push(chunk)
                    pushed += len(chunk)
        finally:
            close = getattr(chunks, "close", None)
            # Cancelled mid-chunk, the generator may still be running in its thread.
            with contextlib.suppress(ValueError):
                if close is not None:
                    close()
        if not pushed and self.input_text.strip():
            output_emitter.push(bytes(2 * int(self._tts.sample_rate * _SILENCE_S)))
        output_emitter.flush()
