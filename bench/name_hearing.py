"""Callers' names over the phone, in minutes: the name turns alone, through the real parts.

The voice self-play (bench/caller_sim.py --voice) takes ~100 s a caller; names go wrong in
most of its calls. This bench plays only the part of a call where the agent learns the
name, with the parts a call uses:

- callers' voices that are not the agent's: espeak-ng voices and Piper's joe re-pitched and
  re-paced (as bench/caller_sim.py's voice mode), phone-line noise at 15-25 dB SNR
  (sim/line_noise.py), 8 kHz G.711 μ-law and back to 16 kHz as the server hears it;
- the recognizer calls use (Whisper tiny.en, the settings' encoder window), given
  ``AgentPlanner.recognition_hints()`` and reporting its unsure words;
- the real planner (understanding, names, the dialogue rules and prompts).

Names are drawn like the self-play personas' (Faker, 29 locales) but from another seed,
and any name a self-play persona has (seeds 7 and 11, 300 callers) is left out.

Three parts:

1. one line: "My name is <full name>." and "It's <full name>." heard once, what the planner
   takes from it (exact, first name right, sounds alike, nothing);
2. spelled: the name spelled as self-play callers spell it, what the planner takes from it;
3. the name dialogue: the greeting asks the name; the caller answers as the self-play
   caller does (a read-back: yes when the first name is right, else "No, it's <name>";
   spell when asked; say it again when asked again) until the agent moves on. Scores the
   name kept, the turns it took, read-backs and spell requests, and how many callers heard
   right on the first line got an extra turn anyway.

Run:  flock /tmp/bench.lock .venv/bin/python bench/name_hearing.py [--names 40] [--seed 3]
      add --parts dialogue to skip parts 1-2; --show 10 prints the worst dialogues.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from app.audio.codec import decode_from_phone, pcm16_to_ulaw  # noqa: E402
from app.audio.stt import Transcript, WhisperSTT  # noqa: E402
from bench.caller_sim import (  # noqa: E402
    ESPEAK_VOICES,
    Renderer,
    VoiceRenderer,
    VoiceStyle,
    _draw_name,
    fold,
    load_bank,
    make_personas,
    sim_now,
)
from sim.line_noise import LineNoise, active_level_dbfs, draw_snr, noise_level_for  # noqa: E402

INTROS = ("My name is {name}.", "It's {name}.", "{name}.", "This is {name}.", "I'm {name}.")
MAX_NAME_TURNS = 6
TOUR_LINE = "An in-person tour of Hudson 360 on Wednesday at 11 AM."
NAME_QUESTIONS = frozenset({"name", "spell_name", "confirm_name"})


Voice = VoiceStyle  # one caller's voice and line, as the self-play callers have them


def draw_voice(index: int, seed: int) -> Voice:
    rng = random.Random(f"name-voice-{seed}-{index}")
    snr = draw_snr(rng, 15.0, 25.0)
    if index % 2 == 0:
        voice = rng.choice(ESPEAK_VOICES)
        return Voice("espeak", voice, rng.uniform(140, 175), rng.uniform(30, 70), 0.0, snr)
    factor = rng.choice([0.84, 0.89, 1.12, 1.19])
    return Voice("piper", "joe", rng.uniform(0.9, 1.2) * factor, factor, rng.uniform(0.3, 0.8), snr)


@dataclass(frozen=True)
class Caller:
    index: int
    first: str
    last: str
    locale: str
    voice: Voice

    @property
    def full(self) -> str:
        return f"{self.first} {self.last}"


def draw_callers(count: int, seed: int) -> list[Caller]:
    """Names of many origins, none of them a self-play persona's (seeds 7 and 11)."""
    now = sim_now()
    personas = [p for s in (7, 11) for p in make_personas(300, s, now)]
    taken = {(p.first, p.last) for p in personas}
    persona_firsts = {p.first for p in personas}
    rng = random.Random(f"name-hearing-{seed}")
    callers: list[Caller] = []
    seen = set(taken)
    while len(callers) < count:
        first, last, locale = _draw_name(rng, seen)
        if first in persona_firsts:
            continue  # apart from the personas: not even a first name in common
        callers.append(Caller(len(callers), first, last, locale, draw_voice(len(callers), seed)))
    return callers


class Mouth:
    """A caller's lines as the server hears them: voice, line noise, μ-law, 16 kHz."""

    def __init__(self, voice: Voice, seed: int) -> None:
        self.voice = voice
        self.seed = seed
        self._render = VoiceRenderer(voice)

    def say(self, text: str) -> npt.NDArray[np.int16]:
        clean = self._render.pcm8k(text)
        lead = int(0.15 * 8000)  # the silence either side: not part of the speech level
        level = noise_level_for(active_level_dbfs(clean[lead:-lead], 8000), self.voice.snr_db)
        line = LineNoise(8000, level, seed=self.seed)
        noisy = line.mix(np.clip(np.rint(clean), -32768, 32767).astype(np.int16))
        return decode_from_phone(pcm16_to_ulaw(noisy.tobytes()), 16000)


# --------------------------------------------------------------------------- scoring


def grade(kept: str | None, caller: Caller, full: bool = True) -> str:
    """exact / first (first name right only) / close (sounds alike) / wrong / none."""
    from app.planner.names import sounds_like

    truth = caller.full if full else caller.first
    if not kept:
        return "none"
    if fold(kept) == fold(truth):
        return "exact"
    if fold(kept).split()[:1] == fold(caller.first).split()[:1]:
        return "first"
    return "close" if sounds_like(kept, truth) else "wrong"


GRADES = ("exact", "first", "close", "wrong", "none")


@dataclass
class Dialogue:
    caller: Caller
    lines: list[str] = field(default_factory=list)
    kept: str | None = None
    turns: int = 0
    readbacks: int = 0
    spells: int = 0
    first_line_right: bool = False

    def show(self) -> str:
        return f"#{self.caller.index} {self.caller.full} ({self.caller.voice.describe()})\n" + (
            "\n".join(f"   {line}" for line in self.lines)
        )


class Bench:
    def __init__(self, seed: int, data_dir: Path) -> None:
        from app.planner.agent_planner import PlannerKit
        from app.settings import Settings

        settings = Settings(
            data_dir=data_dir, database_url=None, openai_api_key=None, openai_base_url=None
        )
        self.now = sim_now()
        self.kit = PlannerKit.build(settings, clock=lambda: self.now)
        window = settings.stt_encoder_window_s
        self.stt = WhisperSTT(
            cpu_threads=settings.stt_cpu_threads, encoder_window_s=float(window) if window else None
        )
        self.stt.warmup()
        self.seed = seed
        self.bank = load_bank()
        self.stt_seconds: list[float] = []

    def hear(self, mouth: Mouth, text: str, hints: Sequence[str]) -> Transcript:
        audio = mouth.say(text)
        started = time.perf_counter()
        heard = self.stt.transcribe_detailed(audio, hints)
        self.stt_seconds.append(time.perf_counter() - started)
        return heard

    def spelled(self, caller: Caller, rng: random.Random) -> str:
        style = "words" if rng.random() < 0.5 else "digits"
        return Renderer(style, rng, self.now, self.bank).spelled(caller.first, caller.last)

    # ---------------------------------------------------------------- parts 1 and 2

    def one_line(self, caller: Caller, mouth: Mouth) -> dict[str, str]:
        from app.planner.understanding import understand

        grades = {}
        hints = self._fresh_planner(caller).recognition_hints()
        for key, template in (("my name is", INTROS[0]), ("it's", INTROS[1])):
            heard = self.hear(mouth, template.format(name=caller.full), hints)
            u = understand(heard.text, self.now, self.kit.catalog, "name")
            grades[key] = grade(u.name, caller)
        rng = random.Random(f"spell-{self.seed}-{caller.index}")
        heard = self.hear(mouth, self.spelled(caller, rng), hints)
        u = understand(heard.text, self.now, self.kit.catalog, "spell_name")
        grades["spelled"] = grade(u.spelled_name, caller)
        return grades

    def _fresh_planner(self, caller: Caller) -> Any:
        planner = self.kit.conversation(f"+1212555{caller.index:04d}", None)
        asyncio.run(_collect(planner.greet()))
        return planner

    # ---------------------------------------------------------------- part 3

    def dialogue(self, caller: Caller, mouth: Mouth) -> Dialogue:
        rng = random.Random(f"dialogue-{self.seed}-{caller.index}")
        planner = self.kit.conversation(f"+1212555{caller.index:04d}", None)
        run = Dialogue(caller)
        reply = asyncio.run(_collect(planner.greet()))
        run.lines.append(f"AGENT: {reply}")
        line: str | None = rng.choice(INTROS).format(name=caller.full)
        told_tour = False
        while line is not None and run.turns < MAX_NAME_TURNS:
            if line == TOUR_LINE:  # not a name turn: given as text, the planner moves on
                run.lines.append(f"CALLER (as text): {line}")
                reply = asyncio.run(_collect(planner.respond(line)))
                told_tour = True
            else:
                heard = self.hear(mouth, line, planner.recognition_hints())
                unsure = f"  [unsure: {' '.join(heard.unsure_words)}]" if heard.unsure_words else ""
                run.lines.append(f"CALLER: {line}  -> heard {heard.text!r}{unsure}")
                reply = asyncio.run(_collect(planner.respond(heard.text, heard.unsure_words)))
                run.turns += 1
                if run.turns == 1:
                    run.first_line_right = fold(caller.full) in fold(heard.text)
            run.lines.append(f"AGENT: {reply}   [{planner.state.awaiting}]")
            if planner.ended:
                break
            line = self._answer(planner.state, caller, run, rng, told_tour)
        run.kept = planner.state.caller_name
        return run

    def _answer(
        self, state: Any, caller: Caller, run: Dialogue, rng: random.Random, told_tour: bool
    ) -> str | None:
        """The self-play caller's policy for the name questions. Once the agent asks about
        the tour, the tour in one line (as text, once); None at "Shall I book it?"."""
        awaiting = state.awaiting
        if awaiting not in NAME_QUESTIONS | {"confirm_spelling"}:
            return None if told_tour or awaiting == "confirm" else TOUR_LINE
        if awaiting == "confirm_name":
            run.readbacks += 1
            said = fold(state.pending_name or "")
            if said.split()[:1] == fold(caller.first).split()[:1]:
                return rng.choice(["Yes, that's right.", "Yes.", "Correct.", "That's it."])
            return rng.choice(["No, it's {name}.", "No, {name}."]).format(name=caller.full)
        if awaiting == "confirm_spelling":
            run.readbacks += 1
            said = fold(state.pending_name or "")
            if said == fold(caller.full) or said.split()[:1] == fold(caller.first).split()[:1]:
                return rng.choice(["Yes, that's right.", "Yes.", "Correct."])
            return "No. " + self.spelled(caller, rng)
        if awaiting == "spell_name":
            run.spells += 1
            return rng.choice(["Sure, {s}.", "{s}.", "It's spelled {s}."]).format(
                s=self.spelled(caller, rng)
            )
        if awaiting == "name":
            return rng.choice(INTROS).format(name=caller.full)
        return None


async def _collect(stream: AsyncIterator[str]) -> str:
    return " ".join([s async for s in stream])


# --------------------------------------------------------------------------- report


def percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f}% ({part})" if whole else "-"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--names", type=int, default=40)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--parts", default="line,spelled,dialogue")
    parser.add_argument("--show", type=int, default=0, help="print this many failed dialogues")
    args = parser.parse_args(argv)
    parts = set(args.parts.split(","))

    started = time.perf_counter()
    load = Path("/proc/loadavg").read_text().split()[0]
    callers = draw_callers(args.names, args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        bench = Bench(args.seed, Path(tmp))
        one: dict[str, Counter[str]] = {k: Counter() for k in ("my name is", "it's", "spelled")}
        runs: list[Dialogue] = []
        for caller in callers:
            mouth = Mouth(caller.voice, seed=args.seed * 1000 + caller.index)
            if parts & {"line", "spelled"}:
                for key, g in bench.one_line(caller, mouth).items():
                    one[key][g] += 1
            if "dialogue" in parts:
                runs.append(bench.dialogue(caller, mouth))
    n = len(callers)
    print(f"{n} names, seed {args.seed}, 1-min load at start {load}")
    if parts & {"line", "spelled"}:
        print("\n| line | " + " | ".join(GRADES) + " |")
        print("|---|" + "---|" * len(GRADES))
        for key, counts in one.items():
            print(f"| {key} | " + " | ".join(percent(counts[g], n) for g in GRADES) + " |")
    if runs:
        grades = Counter(grade(r.kept, r.caller) for r in runs)
        turns = [r.turns for r in runs]
        heard_right = [r for r in runs if r.first_line_right]
        extra = sum(1 for r in heard_right if r.turns > 1)
        print("\n| dialogue | " + " | ".join(GRADES) + " | turns median / max | read-backs |")
        print("|---|" + "---|" * len(GRADES) + "---|---|")
        print(
            "| name kept | "
            + " | ".join(percent(grades[g], n) for g in GRADES)
            + f" | {statistics.median(turns):.0f} / {max(turns)} | "
            + f"{sum(r.readbacks for r in runs)} |"
        )
        print(
            f"\nspell requests: {sum(r.spells for r in runs)} in {sum(1 for r in runs if r.spells)}"
            f" calls; heard right on the first line: {len(heard_right)}, of them given an extra"
            f" name turn: {extra}"
        )
        bad = [r for r in runs if grade(r.kept, r.caller) != "exact"]
        for r in bad[: args.show]:
            print("\n" + r.show() + f"\n   => kept {r.kept!r}")
    stt = sorted(bench.stt_seconds)
    print(
        f"\n{len(stt)} decodes, STT p50 {1000 * statistics.median(stt):.0f} ms; "
        f"run {time.perf_counter() - started:.0f} s; 1-min load at end "
        f"{Path('/proc/loadavg').read_text().split()[0]}"
    )


if __name__ == "__main__":
    main()
