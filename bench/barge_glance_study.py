"""Offline study: Whisper's barge-in glance on many voices and words, at many moments.

Why: bench/barge_in.py plays one interruption line and three backchannels in one Piper
voice, and saw no false clear in 64 sounds. Callers are more varied than that. This study
takes bench/barge_detector_study.py's corpus (40 interruption openings, 31 backchannel
words and coughs, Piper and espeak-ng voices, 15-25 dB phone lines through μ-law), walks
each clip through Silero and the loop's ``TurnDetector``, and runs ``WhisperSTT.glance`` on
the loop's audio when the caller's talking run reaches each of 160-448 ms. Then it replays
check policies (first look at F ms, another look every S ms while the caller talks, one
glance at a time) and counts, per policy:

- interruptions cleared within 300 ms of the onset (decision moment + the glance's own
  measured time), and by 448 ms;
- false clears: backchannels or coughs whose glance read as a turn (``is_backchannel``).

Run:  python bench/barge_glance_study.py            (~6 min on 2 cores; prints the table)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soxr

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from app.audio.stt import WhisperSTT  # noqa: E402
from app.audio.vad import SileroVAD  # noqa: E402
from app.voice.turn_taking import Cue, TurnDetector, is_backchannel  # noqa: E402
from bench import barge_detector_study as corpus  # noqa: E402

POINTS = (160, 192, 224, 256, 288, 320, 384, 448)
POLICIES = ((256, 250), (256, 64), (224, 64), (192, 64), (160, 32))  # today's is the first


@dataclass
class Looked:
    kind: str
    text: str
    at_ms: dict[int, float] = field(default_factory=dict)  # onset -> run_ms reaching D
    heard: dict[int, str] = field(default_factory=dict)
    cost_ms: dict[int, float] = field(default_factory=dict)


def moments(clip: corpus.Clip, vad: SileroVAD) -> dict[int, int]:
    """Sample index where the first talking run reaches each point (while still talking)."""
    vad.reset()
    detector = TurnDetector(window_ms=32.0)
    started, found = False, dict[int, int]()
    for i, probability in enumerate(vad.process(clip.audio)):
        cue = detector.push(probability)
        end = (i + 1) * corpus.WINDOW
        started = started or cue is Cue.SPEECH_START
        if not started:
            continue
        if not detector.talking:
            if found:
                break
            continue
        for point in POINTS:
            if point not in found and detector.run_ms >= point:
                found[point] = end
    return found


def look(clips: list[corpus.Clip]) -> list[Looked]:
    vad = SileroVAD(corpus.RATE)
    stt = WhisperSTT(encoder_window_s=10, cpu_threads=2)
    stt.glance(np.zeros(8000, dtype=np.int16))
    out = []
    for clip in clips:
        seen = Looked(clip.kind, clip.text)
        for point, end in moments(clip, vad).items():
            start = max(0, clip.onset - corpus.PREROLL - 2 * corpus.WINDOW)
            audio16 = soxr.resample(clip.audio[start:end].astype(np.float32), corpus.RATE, 16000)
            pcm = np.clip(np.rint(audio16), -32768, 32767).astype(np.int16)
            began = time.perf_counter()
            seen.heard[point] = stt.glance(pcm)
            seen.cost_ms[point] = (time.perf_counter() - began) * 1000
            seen.at_ms[point] = (end - clip.onset) / corpus.RATE * 1000
        out.append(seen)
    return out


def cleared_at(seen: Looked, first: int, step: int) -> float | None:
    """When the loop would send `clear` under this policy, or None."""
    busy_until, last = -1.0, None
    for point in POINTS:
        if point < first or point not in seen.at_ms or seen.at_ms[point] < busy_until:
            continue
        if last is not None and point < last + step:
            continue
        last, busy_until = point, seen.at_ms[point] + seen.cost_ms[point]
        if not is_backchannel(seen.heard[point]):
            return busy_until
    return None


def table(looked: list[Looked]) -> None:
    talk = [s for s in looked if s.kind == "interruption"]
    other = [s for s in looked if s.kind != "interruption"]
    print(
        "\n| first look / then every (ms) | cleared ≤ 300 ms | cleared by 448 ms of talk "
        "| p50 onset → clear (ms) | false clears (backchannel + cough) |"
    )
    print("|---|---|---|---|---|")
    for first, step in POLICIES:
        times = [cleared_at(s, first, step) for s in talk]
        fast = sum(t is not None and t <= 300 for t in times)
        caught = sum(t is not None for t in times)
        median = statistics.median(t if t is not None else float("inf") for t in times)
        false = [s for s in other if cleared_at(s, first, step) is not None]
        label = f"{first} / {step}" + (" (today)" if (first, step) == POLICIES[0] else "")
        print(
            f"| {label} | {fast} of {len(talk)} ({fast / len(talk):.0%}) "
            f"| {caught} of {len(talk)} | {median:.0f} "
            f"| {len(false)} of {len(other)} ({len(false) / len(other):.1%}) |"
        )
    misreads = Counter(
        (s.text, text.strip())
        for s in other
        for text in s.heard.values()
        if not is_backchannel(text)
    )
    print("\nbackchannels read as a turn (sound -> reading, any moment):")
    print("  " + ", ".join(f"{k!r}->{v!r} ×{n}" for (k, v), n in misreads.most_common(15)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1, help="noise draws per utterance")
    args = parser.parse_args()
    began = time.perf_counter()
    speakers = corpus.Speakers()
    clips = corpus.build(
        corpus.TRAIN_INTERRUPTIONS,
        corpus.TRAIN_BACKCHANNELS,
        corpus.TRAIN_VOICES,
        1,
        speakers,
        args.repeats,
    ) + corpus.build(
        corpus.HELD_OUT_INTERRUPTIONS,
        corpus.HELD_OUT_BACKCHANNELS,
        corpus.HELD_OUT_VOICES,
        2,
        speakers,
        args.repeats,
    )
    looked = look(clips)
    costs = [c for s in looked for c in s.cost_ms.values()]
    print(
        f"{len(looked)} clips, {len(costs)} glances, glance p50 {statistics.median(costs):.0f} ms; "
        f"{time.perf_counter() - began:.0f} s; load {corpus.load()}"
    )
    table(looked)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
