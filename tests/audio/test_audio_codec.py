"""μ-law tables, PCM16 helpers, streaming resampler and 20 ms framing (no models needed)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import soxr

from app.audio.codec import (
    ULAW_FRAME_BYTES,
    Framer,
    Resampler,
    array_to_pcm16,
    decode_from_phone,
    encode_for_phone,
    float32_to_int16,
    frame_bytes,
    int16_to_float32,
    iter_frames,
    pcm16_to_array,
    pcm16_to_ulaw,
    ulaw_decode,
    ulaw_encode,
    ulaw_to_pcm16,
)

ALL_INT16 = np.arange(-32768, 32768, dtype=np.int16)


# --- μ-law --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "linear"),
    [
        (0xFF, 0),  # +0
        (0x7F, 0),  # -0
        (0x80, 32124),  # largest positive
        (0x00, -32124),  # largest negative
        (0xFE, 8),
        (0x7E, -8),
        (0xF0, 120),  # top of segment 0: 15 * 8
        (0xEF, 132),  # bottom of segment 1
        (0xE0, 372),
        (0xDF, 396),
        (0x8F, 16764),  # bottom of segment 7
        (0x0F, -16764),
    ],
)
def test_ulaw_decode_known_values(code: int, linear: int) -> None:
    assert int(ulaw_decode(bytes([code]))[0]) == linear


@pytest.mark.parametrize(
    ("linear", "code"),
    [
        (0, 0xFF),
        (-1, 0x7E),  # -1 >> 2 is -1 in 14 bits: first negative level (-8)
        (-4, 0x7E),
        (3, 0xFF),
        (-5, 0x7E),
        (4, 0xFE),
        (-8, 0x7E),
        (32767, 0x80),
        (-32768, 0x00),
        (32124, 0x80),
        (-32124, 0x00),
        (1000, 0xCE),
        (-1000, 0x4E),
    ],
)
def test_ulaw_encode_known_values(linear: int, code: int) -> None:
    assert int(ulaw_encode(np.array([linear], dtype=np.int16))[0]) == code


def test_decode_table_is_monotonic_and_symmetric() -> None:
    decoded = ulaw_decode(np.arange(256, dtype=np.uint8)).astype(np.int32)
    positive = decoded[0x80:][::-1]  # codes 0xFF..0x80: 0 .. 32124
    assert np.all(np.diff(positive) > 0)
    assert np.array_equal(decoded[:0x80], -decoded[0x80:])


def test_every_code_survives_decode_encode() -> None:
    codes = np.arange(256, dtype=np.uint8)
    again = ulaw_encode(ulaw_decode(codes))
    # 0x7F (-0) decodes to 0, which encodes as 0xFF (+0): the only code that is not a fixpoint.
    assert np.array_equal(np.delete(again, 0x7F), np.delete(codes, 0x7F))
    assert again[0x7F] == 0xFF


def test_round_trip_error_is_bounded_by_the_quantisation_step() -> None:
    decoded = ulaw_decode(ulaw_encode(ALL_INT16)).astype(np.int32)
    linear = ALL_INT16.astype(np.int32)
    error, magnitude = np.abs(decoded - linear), np.abs(linear)
    # Segment s covers biased magnitudes 2**(s+7) .. 2**(s+8) with steps of 2**(s+3).
    step = np.where(magnitude < 124, 8, 2 ** (np.floor(np.log2(magnitude + 132)) - 4))
    in_range = magnitude <= 32124
    positive = in_range & (linear >= 0)
    assert np.all(error[positive] <= step[positive] / 2)  # rounds to the nearest level
    # G.711 quantises 14-bit input: the arithmetic >> 2 floors negatives by up to 3 units,
    # which can tip a value into the next segment (e.g. -121 -> -132).
    negative = in_range & (linear < 0)
    assert np.all(error[negative] <= step[negative] + 3)
    loud = in_range & (magnitude > 256)
    assert (error[loud] / magnitude[loud]).max() < 0.051
    # Past the top decision level the code saturates at ±32124.
    assert np.all(np.abs(decoded[~in_range]) == 32124)


def test_bit_exact_with_audioop_where_available() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        audioop = pytest.importorskip("audioop")  # removed in Python 3.13
    ours = ulaw_encode(ALL_INT16).tobytes()
    assert ours == audioop.lin2ulaw(ALL_INT16.tobytes(), 2)
    codes = bytes(range(256))
    assert ulaw_to_pcm16(codes) == audioop.ulaw2lin(codes, 2)


def test_bytes_helpers_round_trip() -> None:
    pcm = array_to_pcm16(np.array([0, 1000, -1000, 32767, -32768], dtype=np.int16))
    ulaw = pcm16_to_ulaw(pcm)
    assert len(ulaw) == 5
    assert ulaw == bytes([0xFF, 0xCE, 0x4E, 0x80, 0x00])
    assert pcm16_to_array(ulaw_to_pcm16(ulaw)).tolist() == [0, 988, -988, 32124, -32124]


def test_encode_rejects_non_int16() -> None:
    with pytest.raises(TypeError):
        ulaw_encode(np.zeros(4, dtype=np.float32))


# --- PCM16 helpers ------------------------------------------------------------------------


def test_pcm16_array_conversions() -> None:
    samples = np.array([0, 1, -1, 32767, -32768], dtype=np.int16)
    raw = array_to_pcm16(samples)
    assert raw == b"\x00\x00\x01\x00\xff\xff\xff\x7f\x00\x80"  # little-endian
    assert np.array_equal(pcm16_to_array(raw), samples)
    with pytest.raises(ValueError):
        pcm16_to_array(b"\x00")


def test_float_conversions_clip_and_scale() -> None:
    assert float32_to_int16(np.array([0.0, 1.0, -1.0, 2.0, -2.0])).tolist() == [
        0, 32767, -32767, 32767, -32768,
    ]  # fmt: skip
    assert int16_to_float32(np.array([-32768, 16384], dtype=np.int16)).tolist() == [-1.0, 0.5]
    assert array_to_pcm16(np.array([0.5], dtype=np.float32)) == array_to_pcm16(
        np.array([16384], dtype=np.int16)
    )


# --- Resampler ----------------------------------------------------------------------------


def _tone(rate: int, seconds: float, hz: float = 440.0, amp: float = 8000.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return np.rint(amp * np.sin(2 * np.pi * hz * t)).astype(np.int16)


@pytest.mark.parametrize(
    ("src", "dst"), [(22050, 8000), (8000, 16000), (16000, 8000), (24000, 8000)]
)
def test_streaming_resampler_length_and_continuity(src: int, dst: int) -> None:
    signal = _tone(src, 1.0)
    resampler = Resampler(src, dst)
    chunk = src // 50  # 20 ms chunks, like a media stream
    parts = [resampler.process(signal[i : i + chunk]) for i in range(0, len(signal), chunk)]
    parts.append(resampler.flush())
    out = np.concatenate(parts)
    assert out.dtype == np.int16
    assert abs(len(out) - len(signal) * dst / src) <= 1
    # Streaming matches one-shot resampling: no clicks or restarts at chunk boundaries.
    reference = soxr.resample(signal, src, dst)
    n = min(len(out), len(reference))
    assert np.abs(out[:n].astype(int) - reference[:n].astype(int)).max() <= 2
    # And the waveform is still a clean 440 Hz tone: smooth sample-to-sample steps.
    core = out[dst // 10 : -dst // 10].astype(float)
    max_step = 8000 * 2 * np.pi * 440 / dst
    assert np.abs(np.diff(core)).max() <= max_step * 1.05


def test_resampler_accepts_bytes_and_passthrough() -> None:
    same = Resampler(8000, 8000)
    assert same.passthrough
    samples = np.array([1, 2, 3], dtype=np.int16)
    assert same.process(array_to_pcm16(samples)).tolist() == [1, 2, 3]
    assert same.flush().size == 0


def test_resampler_flush_resets_for_next_stream() -> None:
    resampler = Resampler(16000, 8000)
    signal = _tone(16000, 0.5)
    first = np.concatenate([resampler.process(signal), resampler.flush()])
    second = np.concatenate([resampler.process(signal), resampler.flush()])
    # libsoxr dithers int16 output (TPDF), so runs differ by a couple of LSBs at most.
    assert len(first) == len(second) == 4000
    assert np.abs(first.astype(int) - second.astype(int)).max() <= 2


def test_phone_helpers_round_trip_a_tone() -> None:
    tone = _tone(22050, 0.5, hz=1000)
    ulaw = encode_for_phone(tone, 22050)
    assert len(ulaw) == 4000  # 0.5 s at 8 kHz, one byte per sample
    back = decode_from_phone(ulaw, 16000)
    assert len(back) == 8000
    spectrum = np.abs(np.fft.rfft(back.astype(float)))
    assert abs(np.argmax(spectrum) * 16000 / len(back) - 1000) < 5


# --- Framing ------------------------------------------------------------------------------


def test_frame_bytes_carries_leftover() -> None:
    data = bytes(range(256)) * 2  # 512 bytes
    frames, rest = frame_bytes(data, ULAW_FRAME_BYTES)
    assert [len(f) for f in frames] == [160, 160, 160]
    assert rest == data[480:]
    frames2, rest2 = frame_bytes(rest + data[:128], 160)
    assert frames2 == [data[480:] + data[:128]] and rest2 == b""
    assert b"".join(frames) + rest == data


def test_framer_streams_and_pads_last_frame() -> None:
    framer = Framer(160)
    out: list[bytes] = []
    for size in (1, 50, 200, 7, 300, 42):
        out += framer.push(b"\x01" * size)
    assert all(len(f) == 160 for f in out)
    assert len(out) == 600 // 160 and framer.pending == 600 % 160
    tail = framer.flush()
    assert len(tail) == 1 and len(tail[0]) == 160 and tail[0].endswith(b"\xff")
    assert framer.pending == 0 and framer.flush() == []
    assert list(iter_frames(b"\x01" * 170))[-1] == b"\x01" * 10 + b"\xff" * 150
