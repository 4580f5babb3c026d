"""The LiveKit STT/TTS adapters on real synthesized audio, and the speech selection.

Piper renders the caller's words; the audio reaches the STT adapter the way a LiveKit
room delivers it (48 kHz, 10 ms frames), alone or cut into utterances by Silero VAD
through LiveKit's ``StreamAdapter``; the TTS adapter's frames go back through Whisper.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
import soxr
from livekit import rtc
from livekit.agents import stt
from livekit.plugins import openai, silero

from app.audio.stt import WhisperSTT
from app.audio.tts import PiperTTS
from app.audio.wer import normalize_words, word_error_rate
from app.channels.livekit.local_stt import LocalSTT, to_stt_pcm16
from app.channels.livekit.local_tts import LocalTTS
from app.channels.livekit.speech import select_speech, uses_openai
from app.settings import Settings

pytestmark = pytest.mark.slow

BOOKING = "I would like to book a tour at Hudson 360 on Saturday at 11 AM."
ROOM_RATE = 48000


@pytest.fixture(scope="module")
def piper() -> PiperTTS:
    """Sampling noise off: the same audio every run, so what Whisper hears is repeatable."""
    return PiperTTS(noise_scale=0.0, noise_w_scale=0.0)


@pytest.fixture(scope="module")
def whisper() -> WhisperSTT:
    return WhisperSTT(encoder_window_s=10.0)


def room_frames(samples: npt.NDArray[np.int16], rate: int, ms: int = 10) -> list[rtc.AudioFrame]:
    """Audio as a LiveKit room delivers it: 48 kHz mono, ``ms`` per frame."""
    up = soxr.resample(samples.astype(np.float32), rate, ROOM_RATE)
    pcm = np.clip(np.rint(up), -32768, 32767).astype(np.int16)
    step = ROOM_RATE * ms // 1000
    pcm = np.concatenate([pcm, np.zeros(-len(pcm) % step, dtype=np.int16)])
    return [
        rtc.AudioFrame(pcm[i : i + step].tobytes(), ROOM_RATE, 1, step)
        for i in range(0, len(pcm), step)
    ]


def spoken(piper: PiperTTS, text: str) -> npt.NDArray[np.int16]:
    return np.frombuffer(b"".join(piper.synthesize(text)), dtype="<i2").astype(np.int16)


async def test_tts_adapter_streams_piper_audio_as_frames(piper: PiperTTS):
    adapter = LocalTTS(piper)
    assert adapter.sample_rate == 22050 and adapter.num_channels == 1
    text = "Welcome back, Dana! Shall we pick up there?"
    events = [ev async for ev in adapter.synthesize(text)]
    assert events and events[-1].is_final
    frames = [ev.frame for ev in events]
    assert {(f.sample_rate, f.num_channels) for f in frames} == {(22050, 1)}
    audio = np.concatenate([np.frombuffer(f.data, dtype=np.int16) for f in frames])
    direct = spoken(piper, text)
    assert abs(len(audio) - len(direct)) < 22050 * 0.05  # the same speech, give or take padding
    assert np.sqrt(np.mean(audio.astype(np.float64) ** 2)) > 500  # not silence


async def test_tts_adapter_pushes_a_breath_of_silence_for_unspeakable_text(piper: PiperTTS):
    frame = await LocalTTS(piper).synthesize("...").collect()
    assert frame.samples_per_channel > 0


async def test_stt_adapter_hears_room_audio(piper: PiperTTS, whisper: WhisperSTT):
    frames = room_frames(spoken(piper, BOOKING), piper.sample_rate)
    event = await LocalSTT(whisper).recognize(frames)
    assert event.type == stt.SpeechEventType.FINAL_TRANSCRIPT
    heard = event.alternatives[0].text
    assert word_error_rate(BOOKING, heard) < 0.25, heard
    assert {"book", "tour", "saturday", "11"} <= set(normalize_words(heard))


async def test_stt_adapter_through_vad_stream_adapter(piper: PiperTTS, whisper: WhisperSTT):
    """What LiveKit does with a non-streaming STT: Silero VAD cuts the utterance."""
    speech = spoken(piper, BOOKING)
    quiet = np.zeros(piper.sample_rate, dtype=np.int16)
    frames = room_frames(np.concatenate([quiet[: len(quiet) // 2], speech, quiet]), 22050)
    adapter = stt.StreamAdapter(stt=LocalSTT(whisper), vad=silero.VAD.load())
    finals: list[str] = []
    async with adapter.stream() as stream:
        for frame in frames:
            stream.push_frame(frame)
        stream.end_input()
        async for ev in stream:
            if ev.type == stt.SpeechEventType.FINAL_TRANSCRIPT:
                finals.append(ev.alternatives[0].text)
    await adapter.aclose()
    heard = " ".join(finals)
    assert {"book", "tour", "saturday"} <= set(normalize_words(heard)), finals


async def test_tts_adapter_output_is_understood_by_the_stt_adapter(
    piper: PiperTTS, whisper: WhisperSTT
):
    text = "Riverview Lofts has a one bedroom for three thousand dollars."
    frame = await LocalTTS(piper).synthesize(text).collect()
    heard = (await LocalSTT(whisper).recognize(frame)).alternatives[0].text
    assert {"1", "bedroom", "3000"} <= set(normalize_words(heard)), heard  # numbers as digits


def test_room_audio_is_mixed_down_and_resampled_for_whisper():
    stereo = np.tile(np.array([1000, 3000], dtype=np.int16), 4800)  # 0.1 s at 48 kHz
    frame = rtc.AudioFrame(stereo.tobytes(), 48000, 2, 4800)
    pcm = to_stt_pcm16(frame)
    assert pcm.dtype == np.int16
    assert abs(len(pcm) - 1600) <= 2  # 0.1 s at 16 kHz
    assert abs(int(np.median(pcm)) - 2000) <= 20  # the two channels averaged


def test_openai_key_selects_livekit_openai_plugins(tmp_path):
    settings = Settings(data_dir=tmp_path, openai_api_key="sk-test", openai_base_url=None)
    assert uses_openai("auto", settings) and not uses_openai("local", settings)
    speech = select_speech(settings, warm_up=False)
    assert isinstance(speech.stt, openai.STT)
    assert isinstance(speech.tts, openai.TTS)
    assert isinstance(speech.vad, silero.VAD)


def test_offline_default_selects_the_bundled_models(tmp_path, piper: PiperTTS):
    settings = Settings(data_dir=tmp_path, openai_api_key=None, openai_base_url=None)
    speech = select_speech(settings, warm_up=False)
    assert isinstance(speech.stt, LocalSTT) and isinstance(speech.stt.recognizer, WhisperSTT)
    assert isinstance(speech.tts, LocalTTS) and isinstance(speech.tts.voice, PiperTTS)
    assert not speech.stt.capabilities.streaming  # LiveKit wraps it with the VAD
