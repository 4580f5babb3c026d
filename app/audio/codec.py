"""Phone audio plumbing: G.711 μ-law, PCM16 helpers, streaming resampling, 20 ms framing.

Why numpy tables: ``audioop`` is gone in Python 3.13, and a 64 Ki-entry encode table plus a
256-entry decode table turn both directions into one vectorised lookup (microseconds per
Twilio frame). The tables follow the ITU-T G.711 μ-law segment definition on 14-bit linear
input, bit-exact with the classic Sun ``g711.c`` / CPython ``audioop.lin2ulaw`` code.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

import numpy as np
import numpy.typing as npt

__all__ = [
    "FRAME_MS",
    "PHONE_SAMPLE_RATE",
    "ULAW_FRAME_BYTES",
    "Framer",
    "Resampler",
    "array_to_pcm16",
    "decode_from_phone",
    "encode_for_phone",
    "float32_to_int16",
    "frame_bytes",
    "int16_to_float32",
    "iter_frames",
    "pcm16_to_array",
    "pcm16_to_ulaw",
    "ulaw_decode",
    "ulaw_encode",
    "ulaw_to_pcm16",
]

PHONE_SAMPLE_RATE: Final = 8000
"""Twilio Media Streams carry μ-law mono at 8 kHz."""
FRAME_MS: Final = 20
"""Twilio sends (and expects) 20 ms media frames."""
ULAW_FRAME_BYTES: Final = PHONE_SAMPLE_RATE * FRAME_MS // 1000  # 160 bytes = 160 samples

Int16Array = npt.NDArray[np.int16]
UInt8Array = npt.NDArray[np.uint8]
Float32Array = npt.NDArray[np.float32]

# --- G.711 μ-law -------------------------------------------------------------------------

_BIAS: Final = 0x84  # 132, the μ-law bias in 16-bit scale (33 in 14-bit scale)
_CLIP_14: Final = 8159  # 14-bit magnitude clip of the reference code (32635 >> 2)
# Segment end points in the 14-bit biased domain (ITU-T G.711 Table 2a, column "decision").
_SEG_END_14: Final = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF], np.int32)


def _build_encode_table() -> UInt8Array:
    """μ-law code for every int16 value, indexed by the value's uint16 bit pattern."""
    pcm = np.arange(-32768, 32768, dtype=np.int32) >> 2  # 16-bit -> 14-bit (arithmetic)
    negative = pcm < 0
    magnitude = np.minimum(np.where(negative, -pcm, pcm), _CLIP_14) + (_BIAS >> 2)
    segment = np.searchsorted(_SEG_END_14, magnitude, side="left").astype(np.int32)
    mantissa = (magnitude >> (segment + 1)) & 0x0F
    # Magnitudes past the last segment end (|x| >= 32636 after the bias) take the top code.
    code = np.where(segment >= 8, 0x7F, (segment << 4) | mantissa)
    mask = np.where(negative, 0x7F, 0xFF)
    table = (code ^ mask).astype(np.uint8)
    # Index by the uint16 view of the int16 sample: -32768 (0x8000) ... -1 (0xFFFF), 0 ... 32767.
    return np.roll(table, -32768)


def _build_decode_table() -> Int16Array:
    """Linear int16 value for each of the 256 μ-law codes."""
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    t = (((u & 0x0F) << 3) + _BIAS) << ((u & 0x70) >> 4)
    return np.where(u & 0x80, _BIAS - t, t - _BIAS).astype(np.int16)


_ENCODE_TABLE: Final = _build_encode_table()
_DECODE_TABLE: Final = _build_decode_table()


def ulaw_encode(samples: npt.ArrayLike) -> UInt8Array:
    """Encode int16 PCM samples to μ-law codes (one byte per sample)."""
    pcm = np.asarray(samples)
    if pcm.dtype != np.int16:
        raise TypeError(f"ulaw_encode needs int16 samples, got {pcm.dtype}")
    return _ENCODE_TABLE.take(pcm.view(np.uint16))  # take: half the time of [] indexing


def ulaw_decode(codes: bytes | bytearray | memoryview | npt.ArrayLike) -> Int16Array:
    """Decode μ-law codes (bytes or uint8 array) to int16 PCM samples."""
    if isinstance(codes, bytes | bytearray | memoryview):
        arr = np.frombuffer(codes, dtype=np.uint8)
    else:
        arr = np.asarray(codes, dtype=np.uint8)
    return _DECODE_TABLE.take(arr)


def pcm16_to_ulaw(pcm: bytes | bytearray | memoryview) -> bytes:
    """PCM16 little-endian bytes -> μ-law bytes (what Twilio's outbound ``media`` wants)."""
    return ulaw_encode(pcm16_to_array(pcm)).tobytes()


def ulaw_to_pcm16(ulaw: bytes | bytearray | memoryview) -> bytes:
    """μ-law bytes (Twilio's inbound ``media`` payload) -> PCM16 little-endian bytes."""
    return array_to_pcm16(ulaw_decode(ulaw))


# --- PCM16 <-> numpy ----------------------------------------------------------------------


def pcm16_to_array(pcm: bytes | bytearray | memoryview) -> Int16Array:
    """View PCM16 little-endian bytes as an int16 array (a copy only on big-endian hosts)."""
    if len(pcm) % 2:
        raise ValueError(f"PCM16 needs an even number of bytes, got {len(pcm)}")
    return np.frombuffer(pcm, dtype="<i2").astype(np.int16, copy=False)


def array_to_pcm16(samples: npt.ArrayLike) -> bytes:
    """int16 array (or float array in [-1, 1]) -> PCM16 little-endian bytes."""
    arr = np.asarray(samples)
    if arr.dtype.kind == "f":
        arr = float32_to_int16(arr)
    elif arr.dtype != np.int16:
        raise TypeError(f"array_to_pcm16 needs int16 or float samples, got {arr.dtype}")
    return arr.astype("<i2", copy=False).tobytes()


def int16_to_float32(samples: npt.ArrayLike) -> Float32Array:
    """int16 -> float32 in [-1, 1), the input format of Whisper and Silero."""
    return np.asarray(samples, dtype=np.int16).astype(np.float32) / 32768.0


def float32_to_int16(samples: npt.ArrayLike) -> Int16Array:
    """float in [-1, 1] -> int16, clipped so loud TTS peaks never wrap around."""
    arr = np.asarray(samples, dtype=np.float32)
    out: Int16Array = np.clip(np.rint(arr * 32767.0), -32768, 32767).astype(np.int16)
    return out


# --- Streaming resampling -----------------------------------------------------------------


class Resampler:
    """Streaming int16 mono resampler over ``soxr.ResampleStream``.

    Why a stream and not ``soxr.resample`` per chunk: one-shot calls on 20 ms chunks restart
    the filter each time and click at every boundary; a stream keeps filter state across
    chunks. The price is latency: libsoxr emits output in blocks, so with 20 ms input chunks
    output lags the input by tens of ms (measured at 8k->16k: HQ ~64 ms mean / 115 ms max,
    LQ ~34/61 ms, QQ <1 ms). Call ``flush()`` at the end of an utterance to get the tail.

    One instance per direction per call: it holds filter state and is not thread-safe.
    """

    def __init__(self, in_rate: int, out_rate: int, quality: str = "HQ") -> None:
        if in_rate <= 0 or out_rate <= 0:
            raise ValueError("sample rates must be positive")
        self.in_rate = in_rate
        self.out_rate = out_rate
        self.quality = quality
        self._stream = None
        if in_rate != out_rate:
            import soxr  # local: keep `import app.audio.codec` cheap for μ-law-only users

            self._stream = soxr.ResampleStream(in_rate, out_rate, 1, dtype="int16", quality=quality)

    @property
    def passthrough(self) -> bool:
        """True when rates match and samples are returned untouched."""
        return self._stream is None

    def process(
        self, samples: Int16Array | bytes | bytearray | memoryview, last: bool = False
    ) -> Int16Array:
        """Feed the next chunk; returns whatever output is ready (may be empty)."""
        if isinstance(samples, bytes | bytearray | memoryview):
            samples = pcm16_to_array(samples)
        arr = np.ascontiguousarray(samples, dtype=np.int16)
        if self._stream is None:
            return arr.copy()
        out: Int16Array = self._stream.resample_chunk(arr, last=last)  # soxr is untyped
        return out

    def flush(self) -> Int16Array:
        """Drain the filter tail at the end of a continuous stream, then reset."""
        if self._stream is None:
            return np.zeros(0, dtype=np.int16)
        tail: Int16Array = self._stream.resample_chunk(np.zeros(0, dtype=np.int16), last=True)
        self._stream.clear()
        return tail

    def reset(self) -> None:
        """Forget buffered input (e.g. after a barge-in) without rebuilding the filter."""
        if self._stream is not None:
            self._stream.clear()

    @property
    def delay(self) -> float:
        """Output samples currently pending inside libsoxr."""
        return 0.0 if self._stream is None else float(self._stream.delay())


def encode_for_phone(samples: Int16Array | bytes, sample_rate: int) -> bytes:
    """One-shot: a whole PCM16 clip (e.g. one TTS sentence) -> μ-law 8 kHz bytes."""
    resampler = Resampler(sample_rate, PHONE_SAMPLE_RATE)
    pcm8k = np.concatenate([resampler.process(samples), resampler.flush()])
    return ulaw_encode(pcm8k).tobytes()


def decode_from_phone(ulaw: bytes, sample_rate: int = 16000) -> Int16Array:
    """One-shot: μ-law 8 kHz bytes -> PCM16 samples at ``sample_rate`` (16 kHz for STT/VAD)."""
    resampler = Resampler(PHONE_SAMPLE_RATE, sample_rate)
    return np.concatenate([resampler.process(ulaw_decode(ulaw)), resampler.flush()])


# --- Framing ------------------------------------------------------------------------------


def frame_bytes(buf: bytes, frame_len: int = ULAW_FRAME_BYTES) -> tuple[list[bytes], bytes]:
    """Split ``buf`` into whole ``frame_len`` frames; return (frames, leftover).

    Prepend the leftover to the next call's ``buf`` so no sample is lost or padded mid-stream.
    """
    if frame_len <= 0:
        raise ValueError("frame_len must be positive")
    whole = len(buf) - len(buf) % frame_len
    frames = [bytes(buf[i : i + frame_len]) for i in range(0, whole, frame_len)]
    return frames, bytes(buf[whole:])


def iter_frames(buf: bytes, frame_len: int = ULAW_FRAME_BYTES) -> Iterator[bytes]:
    """All frames of a complete buffer; the last one padded with μ-law silence (0xFF)."""
    frames, rest = frame_bytes(buf, frame_len)
    yield from frames
    if rest:
        yield rest + b"\xff" * (frame_len - len(rest))


class Framer:
    """Stateful ``frame_bytes``: push arbitrary-sized byte chunks, get whole frames out."""

    def __init__(self, frame_len: int = ULAW_FRAME_BYTES) -> None:
        if frame_len <= 0:
            raise ValueError("frame_len must be positive")
        self.frame_len = frame_len
        self._pending = b""

    def push(self, buf: bytes) -> list[bytes]:
        """Add bytes; return the frames now complete."""
        frames, self._pending = frame_bytes(self._pending + buf, self.frame_len)
        return frames

    def flush(self, pad: bytes | None = b"\xff") -> list[bytes]:
        """Return the partial last frame, padded with ``pad`` (None: unpadded), and reset."""
        rest, self._pending = self._pending, b""
        if not rest:
            return []
        if pad is not None:
            rest = rest + pad[:1] * (self.frame_len - len(rest))
        return [rest]

    def clear(self) -> None:
        """Drop pending bytes (barge-in: what was not sent is not heard)."""
        self._pending = b""

    @property
    def pending(self) -> int:
        """Bytes waiting for a full frame."""
        return len(self._pending)
