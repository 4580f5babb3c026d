"""Self-play caller simulator: hundreds of simulated callers try to book a tour (issue 10).

Why: scripted dialogue tests encode the order the planner asks things in; callers don't know
that order. Each simulated caller has a persona (a name of many origins, a goal: building,
unit size, tour type, day and time, optional details) and a strategy (leads with a time,
asks questions first, says it all in one breath, never volunteers anything, says "not sure",
corrects itself, won't give a name, changes its mind about one thing - building, tour type
or time - when the agent reads the booking back, or calls back days later from a differently
formatted number). Callers who call back do one of five things (assigned in turn): "booked"
books, then checks the tour and keeps it; "reschedules" books, then moves the tour to another
day (taking an offered time close to its wish if that is taken); "cancels" books, then
cancels; "started" and "anonymous" leave the first call half done (the latter without a
name) and finish on the second. It reacts to what the agent actually said, recognising the
kind of question from the agent's words, never from a question order, and phrases its
answers from a paraphrase bank (bench/caller_sim/paraphrases.yaml) kept apart from the
dialogue tests. A caller succeeds when the store ends up as it wanted: its tour booked (at
its final choice, for one that changed its mind), moved (one booked tour, at the new time),
or cancelled (none booked, one cancelled).

Three strategies test what the others never do. "asks_repeat" callers, at one or two points,
ask the agent to say again what it just asked or offered ("could you say the times again?",
"come again?") before answering: the agent's reply must carry that content (the times, the
buildings, the read-back, or the same question), not a generic reprompt. "gives_contact"
callers volunteer an email address and/or a cell number (said the way a recognizer writes
it: "maria dot lopez at gmail dot com", "nine one seven ...") before or after the booking:
the state must keep exactly what they gave. "hangs_up_mid_confirm" callers hang up when asked
"Shall I book it?" and call straight back from the same phone ("sorry, we got cut off"): the
agent must still have the tour pending, so that the caller repeats none of building, tour
type and time. These checks are part of their task success.

Text mode drives the real ``AgentPlanner`` (``PlannerKit`` with a fixed clock: next Monday
9 AM) on a real SQLite booking store shared by all callers (so some slots are taken and the
agent has to offer others), with the real ``MemoryService`` on a temporary data dir: every
call starts from ``load_context``; callers who will call back have their calls recorded
(exchanges, snapshots, end of call) as every channel does, and their callback's greeting
comes from what ``load_context`` really returns for the other number format, days later.

Voice mode phones the real server (``tourline serve``) over ``POST /twilio/voice`` +
``WS /twilio/media`` with the Twilio simulator in sim/twilio/, speaking in
espeak-ng voices or a re-pitched Piper with 15-25 dB of line noise, and hears the agent
through Whisper; the same caller policy reacts. It needs espeak-ng (``apt-get install -y
espeak-ng sox``) and takes minutes per caller: keep runs small on a shared machine.

    python bench/caller_sim.py --text [--callers 300] [--seed 7] [--show-failures 5]
    python bench/caller_sim.py --voice [--callers 12] [--concurrency 2] [--show-failures 3]

Add ``--no-report`` to leave docs/benchmarks.md alone. ``--bank PATH`` swaps the phrasing
bank, e.g. bench/caller_sim/held_out.yaml (phrasings the planner was never tuned against);
runs on another bank than the default never write docs/benchmarks.md, whose sections are
about the default bank.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import re
import statistics
import sys
import tempfile
import time
import unicodedata
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import yaml

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from app.domain.catalog import Catalog  # noqa: E402
from app.domain.tour_rules import HOURS  # noqa: E402

NY = ZoneInfo("America/New_York")
BANK_PATH = Path(__file__).resolve().parent / "caller_sim" / "paraphrases.yaml"
PROPERTIES = ROOT / "prompts" / "properties.yaml"

STRATEGIES: tuple[str, ...] = (
    "leads_with_time",
    "questions_first",
    "all_in_one",
    "minimal",
    "not_sure",
    "corrects_self",
    "no_name",
    "changes_mind",
    "callback",
    "asks_repeat",
    "gives_contact",
    "hangs_up_mid_confirm",
)
# The strategies of the issue-10 goals; the later ones measure what was never tuned for.
NEW_STRATEGIES = frozenset({"asks_repeat", "gives_contact", "hangs_up_mid_confirm"})
CALLBACK_VARIANTS = ("booked", "started", "anonymous", "reschedules", "cancels")
BOOKS_FIRST = frozenset({"booked", "reschedules", "cancels"})  # the first call books
CHANGES = ("building", "tour_type", "time")  # what a changes_mind caller says wrong first
QUESTION_TOPICS = ("price", "pets", "parking", "address", "hours", "availability")
OPTIONAL_KINDS = frozenset({"unit_size", "move_in", "pets", "pet_details", "budget"})
# Questions that lead to booking a tour: a caller cancelling its tour answers them by asking
# again to cancel.
NOT_CANCELLING = frozenset(
    {"confirm", "pick_slot", "book_today", "tour_type", "tour_time", "building", "choices",
     "resume", "manage", "other"}
)  # fmt: skip
DONE_REASONS = {"reschedule": "moved", "cancel": "cancelled"}  # a managing call's end_reason
MAX_TURNS = 20  # caller turns per call before giving up
MAX_SAME_QUESTION = 3  # the same question this many times in a row: hang up
MAX_SAME_TOPIC = 6  # one thing asked this many turns running, however phrased: hang up
# Questions about one thing, asked in other words (a change of tack, not a new question).
TOPICS = {"choices": "building", "spell": "name", "readback": "name", "pick_slot": "tour_time"}
_KEYPAD = re.compile(r"^\(keypad (?P<digits>[0-9*#]+)\)$")
# The facts of a tour each phrasing key says (a cut-off caller counts what it says again).
_ALL_FACTS = ("building", "tour_type", "time")
FACT_KEYS: dict[str, tuple[str, ...]] = {
    "building": ("building",), "building_with_size": ("building",),
    "fix_building": ("building",), "callback_remind": ("building",),
    "tour_in_person": ("tour_type",),
    "tour_virtual": ("tour_type",), "fix_tour": ("tour_type",), "time": ("time",),
    "fix_time": ("time",), "leads_with_time": ("time",), "restate": _ALL_FACTS,
    "all_in_one": _ALL_FACTS,
}  # fmt: skip


def keypad(digits: str) -> str:
    """A caller "line" that is a key press (text mode: respond_dtmf; voice: a dtmf message)."""
    return f"(keypad {digits})"


def keypad_digits(line: str) -> str | None:
    match = _KEYPAD.match(line)
    return match["digits"] if match else None


AFTER_BOOKING_TURNS = 2  # optional questions answered after the confirmation code

# Faker locales that give latin-script names (ja_JP / zh_CN through their romanized names).
LOCALES: tuple[str, ...] = (
    "en_US", "en_GB", "en_IE", "en_IN", "en_NG", "yo_NG", "ig_NG", "sw", "zu_ZA", "es_MX",
    "es_ES", "es_CO", "pt_BR", "fr_FR", "de_DE", "it_IT", "nl_NL", "pl_PL", "tr_TR", "cs_CZ",
    "hu_HU", "ro_RO", "fi_FI", "sv_SE", "ga_IE", "id_ID", "en_PH", "ja_JP", "zh_CN",
)  # fmt: skip
ROMANIZED = frozenset({"ja_JP", "zh_CN"})
_LATIN_NAME = re.compile(r"[A-Za-zÀ-ÖØ-öø-ž][A-Za-zÀ-ÖØ-öø-ž' -]*")
AREA_CODES = ("212", "646", "917", "718", "347", "201", "551", "415")
EMAIL_DOMAINS = ("gmail.com", "yahoo.com", "outlook.com", "icloud.com", "hotmail.com", "aol.com")
REPEAT_CHANCES = 4  # asks_repeat: the repeat requests fall among the first this many chances
CUT_OFF_MINUTES = (1, 2, 3, 5)  # hangs_up_mid_confirm: how soon the caller rings back


# ============================================================== personas


@dataclass(frozen=True)
class Goal:
    """A tour as the caller asks for it at one point of its calls."""

    building: str  # property id
    tour_type: str
    start: datetime


@dataclass(frozen=True)
class Persona:
    """One simulated caller: who they are, what they want, how they talk."""

    index: int
    first: str
    last: str
    locale: str
    strategy: str
    style: str  # "words" (lowercase, numbers spelled out) or "digits"
    phone: str  # E.164, what the first call comes from
    building: str  # property id
    unit_size: str  # what they settle for
    asked_size: str  # what they ask for first (differs when the building lacks that size)
    tour_type: str
    start: datetime  # the tour they want, property local time
    move_in: date
    pets: str | None
    budget: int
    contact: str  # "text" or "email"
    full_name: bool  # gives first and last name, or the first name only
    volunteers_size: bool
    questions: tuple[str, ...]
    # corrects_self: "building" or "time" is said wrong first (and put right the next turn);
    # changes_mind: "building", "tour_type" or "time" is asked for first and changed to the
    # goal's when the agent reads the booking back.
    wrong: str | None = None
    wrong_building: str = ""
    wrong_start: datetime | None = None
    callback: str | None = None  # callback: one of CALLBACK_VARIANTS
    callback_days: int = 0
    callback_number: str = ""
    new_start: datetime | None = None  # callback "reschedules": the time the tour moves to
    # asks_repeat: which of its chances to ask (agent turns that ask or offer something, in
    # order from 0) it takes to ask the agent to say it again.
    repeat_points: tuple[int, ...] = ()
    # gives_contact: the email and/or cell number it volunteers (E.164; not the number it
    # calls from), and on which caller turn (0: its first line; -1: after the booking).
    contact_email: str | None = None
    contact_phone: str | None = None
    contact_at: int = -1
    callback_minutes: int = 0  # hangs_up_mid_confirm: minutes until it rings back

    @property
    def calls_back(self) -> bool:
        """Makes (or may make) a second call: callbacks, and callers cut off mid-confirm."""
        return self.callback is not None or self.strategy == "hangs_up_mid_confirm"

    @property
    def goal(self) -> Goal:
        """The tour the caller wants in the end (a rescheduled one at its new time)."""
        return Goal(self.building, self.tour_type, self.new_start or self.start)

    @property
    def first_goal(self) -> Goal:
        """What the caller asks for at first: a changes_mind caller's one thing is off."""
        goal = Goal(self.building, self.tour_type, self.start)
        if self.strategy != "changes_mind":
            return goal
        if self.wrong == "building":
            return replace(goal, building=self.wrong_building)
        if self.wrong == "tour_type":
            return replace(goal, tour_type=_OTHER_TOUR[self.tour_type])
        assert self.wrong_start is not None
        return replace(goal, start=self.wrong_start)

    @property
    def name(self) -> str:
        """The name as the caller gives it."""
        return f"{self.first} {self.last}" if self.full_name else self.first

    @property
    def declines_name(self) -> bool:
        return self.strategy == "no_name" or self.callback == "anonymous"

    @property
    def label(self) -> str:
        extra = f"/{self.callback}" if self.callback else ""
        return f"#{self.index} {self.first} {self.last} ({self.locale}, {self.strategy}{extra})"

    @property
    def group(self) -> str:
        """Its row in the table: the strategy, callbacks by variant ("callback/cancels")."""
        return f"{self.strategy}/{self.callback}" if self.callback else self.strategy


def groups() -> list[str]:
    """Every table row, in order."""
    return [
        g
        for s in STRATEGIES
        for g in ([f"{s}/{v}" for v in CALLBACK_VARIANTS] if s == "callback" else [s])
    ]


def sim_now(today: datetime | None = None) -> datetime:
    """Next Monday 9 AM (New York): weekday structure is the same every run, and every tour
    booked is still upcoming for memory, which judges "upcoming" by the real clock."""
    today = today or datetime.now(NY)
    days = (7 - today.weekday()) % 7 or 7
    return (today + timedelta(days=days)).replace(hour=9, minute=0, second=0, microsecond=0)


@cache
def _faker(locale: str) -> Any:
    from faker import Faker

    return Faker(locale)


def _draw_name(rng: random.Random, taken: set[tuple[str, str]]) -> tuple[str, str, str]:
    """(first, last, locale): a latin-script name no earlier persona has."""
    while True:
        locale = rng.choice(LOCALES)
        fake = _faker(locale)
        fake.seed_instance(rng.randrange(1 << 30))
        if locale in ROMANIZED:
            first, last = fake.first_romanized_name(), fake.last_romanized_name()
        else:
            first, last = fake.first_name(), fake.last_name()
        first, last = first.strip(), last.strip()
        if " " in first or not _LATIN_NAME.fullmatch(first) or not _LATIN_NAME.fullmatch(last):
            continue
        if (first, last) in taken:
            continue
        taken.add((first, last))
        return first, last, locale


def _goal_start(rng: random.Random, tour_type: str, now: datetime, min_days: int) -> datetime:
    """A start the tour rules allow, within the next two weeks (after ``min_days``)."""
    slots = [
        s
        for offset in range(min_days, 14)
        for s in HOURS[tour_type].starts_on(now.date() + timedelta(days=offset), NY)  # type: ignore[index]
        if s > now + timedelta(hours=2)
    ]
    return rng.choice(slots)


def _phone(index: int, rng: random.Random) -> str:
    return f"+1{rng.choice(AREA_CODES)}555{1000 + index:04d}"


def reformat_number(e164: str, rng: random.Random) -> str:
    """The same phone written another way, as another carrier or handset shows it."""
    area, mid, last = e164[2:5], e164[5:8], e164[8:]
    return rng.choice(
        [
            f"({area}) {mid}-{last}",
            f"+1 {area} {mid} {last}",
            f"{area}-{mid}-{last}",
            f"1{area}{mid}{last}",
            f"{area}.{mid}.{last}",
        ]
    )


SIZE_FALLBACK = {"studio": "1br", "3br": "2br"}
PETS = (None, None, None, "a cat", "two cats", "a dog", "a small dog", "a cat and a dog")


def make_personas(count: int, seed: int, now: datetime) -> list[Persona]:
    """``count`` distinct personas, strategies spread evenly; the same for the same seed."""
    rng = random.Random(f"personas-{seed}")
    catalog = Catalog.load(PROPERTIES)
    buildings = sorted(catalog.properties)
    taken: set[tuple[str, str]] = set()
    personas = []
    for index in range(count):
        strategy = STRATEGIES[index % len(STRATEGIES)]
        first, last, locale = _draw_name(rng, taken)
        building = rng.choice(buildings)
        sizes = sorted(catalog.get(building).units)
        missing = [s for s in SIZE_FALLBACK if s not in sizes]
        if missing and rng.random() < 0.1:
            asked = rng.choice(missing)
            size = SIZE_FALLBACK[asked]
        else:
            asked = size = rng.choice(sizes)
        rent = catalog.get(building).units[size]  # type: ignore[index]
        tour_type = rng.choice(["in_person", "virtual"])
        # Round-robin over the variants: the n-th callback persona gets the n-th variant.
        turn = index // len(STRATEGIES)
        callback = (
            CALLBACK_VARIANTS[turn % len(CALLBACK_VARIANTS)] if strategy == "callback" else None
        )
        callback_days = rng.randint(2, 4) if callback else 0
        start = _goal_start(rng, tour_type, now, callback_days + 1 if callback else 0)
        wrong = rng.choice(["building", "time"]) if strategy == "corrects_self" else None
        if strategy == "changes_mind":
            wrong = _change_of_mind(rng, tour_type, start)
        new_start = None
        if callback == "reschedules":
            new_start = _other_day_start(rng, tour_type, start, now, callback_days + 1)
            gone = _taken_by_others(personas, building, tour_type, start, now, callback_days)
            if gone and rng.random() < 0.5:  # half wish for a time that is gone by then
                new_start = rng.choice(gone)
        if strategy == "questions_first":
            questions = tuple(rng.sample(QUESTION_TOPICS, 2))
        else:
            questions = (rng.choice(QUESTION_TOPICS),) if rng.random() < 0.3 else ()
        phone = _phone(index, rng)
        contact = rng.choice(["text", "text", "email"])
        extra = _new_strategy_fields(strategy, first, last, random.Random(f"{seed}-{index}"))
        if extra.get("contact_email") and not extra.get("contact_phone"):
            contact = "email"
        elif extra.get("contact_phone") and not extra.get("contact_email"):
            contact = "text"
        personas.append(
            Persona(
                index=index,
                first=first,
                last=last,
                locale=locale,
                strategy=strategy,
                style=rng.choice(["words", "digits"]),
                phone=phone,
                building=building,
                unit_size=size,
                asked_size=asked,
                tour_type=tour_type,
                start=start,
                move_in=now.date() + timedelta(days=rng.randint(20, 100)),
                pets=rng.choice(PETS),
                budget=int(round((rent.rent_min + rent.rent_max) / 2, -2)),
                contact=contact,
                full_name=rng.random() < 0.7,
                volunteers_size=strategy not in ("minimal", "not_sure") and rng.random() < 0.5,
                questions=questions,
                wrong=wrong,
                wrong_building=rng.choice([b for b in buildings if b != building]),
                wrong_start=_wrong_start(rng, tour_type, start, now),
                callback=callback,
                callback_days=callback_days,
                callback_number=reformat_number(phone, rng),
                new_start=new_start,
                **extra,
            )
        )
    return personas


def _new_strategy_fields(
    strategy: str, first: str, last: str, rng: random.Random
) -> dict[str, Any]:
    """What asks_repeat, gives_contact and hangs_up_mid_confirm personas need, drawn from
    their own generator so that the other personas' draws stay what they were."""
    if strategy == "asks_repeat":
        points = rng.sample(range(REPEAT_CHANCES), rng.randint(1, 2))
        return {"repeat_points": tuple(sorted(points))}
    if strategy == "gives_contact":
        gives = rng.choice(["email", "phone", "both"])
        return {
            "contact_email": make_email(first, last, rng) if gives != "phone" else None,
            "contact_phone": _other_phone(rng) if gives != "email" else None,
            "contact_at": rng.choice([0, 1, 2, 3, -1, -1, -1]),
        }
    if strategy == "hangs_up_mid_confirm":
        return {"callback_minutes": rng.choice(CUT_OFF_MINUTES)}
    return {}


def make_email(first: str, last: str, rng: random.Random) -> str:
    """An address such a person might have: "maria.lopez87@gmail.com", "mlopez@aol.com"."""
    given, family = fold(first).replace(" ", ""), fold(last).replace(" ", "")
    n = rng.randint(1, 99)
    user = rng.choice(
        [f"{given}.{family}", f"{given}{family}", f"{given}_{family}", f"{given[0]}{family}",
         f"{given}.{family}{n}", f"{given}{n}"]
    )  # fmt: skip
    return f"{user}@{rng.choice(EMAIL_DOMAINS)}"


def _other_phone(rng: random.Random) -> str:
    """A cell number (E.164): 555-0100 to 555-0199, never a caller's own (555-1000 on)."""
    return f"+1{rng.choice(AREA_CODES)}5550{rng.randrange(100, 200)}"


_OTHER_TOUR = {"in_person": "virtual", "virtual": "in_person"}


def _change_of_mind(rng: random.Random, tour_type: str, start: datetime) -> str:
    """What a changes_mind caller gets wrong first: the tour type only when the goal's time
    is a valid start for the other type too (so the first summary is a bookable one)."""
    change = rng.choice(CHANGES)
    other = HOURS[_OTHER_TOUR[tour_type]]  # type: ignore[index]
    if change == "tour_type" and start not in other.starts_on(start.date(), NY):
        change = rng.choice(["building", "time"])
    return change


def _taken_by_others(
    earlier: Sequence[Persona],
    building: str,
    tour_type: str,
    start: datetime,
    now: datetime,
    callback_days: int,
) -> list[datetime]:
    """Tours earlier callers book (and keep) on their first call at this building, on other
    days than ``start``, late enough to move to on a callback ``callback_days`` later: a
    rescheduling caller who wishes for one of these hears it is taken and picks another."""
    after = (now + timedelta(days=callback_days + 1)).date()
    return sorted(
        {
            p.start
            for p in earlier
            if p.building == building
            and p.tour_type == tour_type
            and p.callback not in ("reschedules", "cancels", "started", "anonymous")
            and p.strategy != "changes_mind"
            and p.start.date() >= after
            and p.start.date() != start.date()
        }
    )


def _other_day_start(
    rng: random.Random, tour_type: str, start: datetime, now: datetime, min_days: int
) -> datetime:
    """Where a rescheduling caller moves its tour: an allowed start on another day than the
    booked one (so no time accepted on the first call can be mistaken for the new one)."""
    while True:
        moved = _goal_start(rng, tour_type, now, min_days)
        if moved.date() != start.date():
            return moved


def _wrong_start(rng: random.Random, tour_type: str, start: datetime, now: datetime) -> datetime:
    """Another allowed start on the same day (or any other day if the day has one slot)."""
    starts = HOURS[tour_type].starts_on(start.date(), NY)  # type: ignore[index]
    same_day = [s for s in starts if s != start and s > now]
    return rng.choice(same_day) if same_day else _goal_start(rng, tour_type, now, 0)


# ============================================================== saying things


_ONES = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
    "nineteen",
)  # fmt: skip
_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
_ORDINAL_ENDS = {"one": "first", "two": "second", "three": "third", "five": "fifth"}
_ORDINAL_ENDS |= {"eight": "eighth", "nine": "ninth", "twelve": "twelfth"}


def number_words(n: int) -> str:
    """4500 -> "four thousand five hundred": how a recognizer in words style writes it."""
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else f" {_ONES[n % 10]}")
    if n < 1000:
        rest = n % 100
        return f"{_ONES[n // 100]} hundred" + (f" {number_words(rest)}" if rest else "")
    thousands, rest = divmod(n, 1000)
    return f"{number_words(thousands)} thousand" + (f" {number_words(rest)}" if rest else "")


def ordinal_words(n: int) -> str:
    words = number_words(n).split()
    last = words[-1]
    words[-1] = _ORDINAL_ENDS.get(last) or (
        last[:-1] + "ieth" if last.endswith("y") else last + "th"
    )
    return " ".join(words)


def ordinal_digits(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


_NO_DECOMPOSITION = str.maketrans(
    {"Ł": "L", "ł": "l", "ß": "ss", "Ø": "O", "ø": "o", "Æ": "AE", "æ": "ae", "Đ": "D", "đ": "d",
     "ı": "i", "Œ": "OE", "œ": "oe", "Þ": "Th", "þ": "th", "Ð": "D", "ð": "d"}
)  # fmt: skip


def fold(text: str) -> str:
    """Lowercase ASCII without accents or punctuation: how names are compared."""
    text = text.translate(_NO_DECOMPOSITION)
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"\s+", " ", re.sub(r"[^a-z ]+", " ", ascii_text.lower())).strip()


class Renderer:
    """Values as one persona says them, in its recognizer style, varied per use."""

    SIZE_DIGITS: ClassVar[dict[str, list[str]]] = {
        "studio": ["studio"],
        "1br": ["1-bedroom", "one-bedroom", "1 bedroom"],
        "2br": ["2-bedroom", "two-bedroom", "2 bedroom"],
        "3br": ["3-bedroom", "three-bedroom", "3 bedroom"],
    }
    SIZE_WORDS: ClassVar[dict[str, list[str]]] = {
        "studio": ["studio"],
        "1br": ["one bedroom"],
        "2br": ["two bedroom"],
        "3br": ["three bedroom"],
    }

    def __init__(self, style: str, rng: random.Random, now: datetime, bank: dict[str, Any]):
        self.style = style
        self.rng = rng
        self.now = now
        self.building_names = bank["building_names"]

    @property
    def words(self) -> bool:
        return self.style == "words"

    def clock(self, t: datetime) -> str:
        h12, pm, half = t.hour % 12 or 12, t.hour >= 12, t.minute == 30
        if not self.words:
            base = f"{h12}:30" if half else self.rng.choice([str(h12), str(h12), f"{h12}:00"])
            return (
                f"{base}{self.rng.choice([' PM', 'pm', ' p.m.'] if pm else [' AM', 'am', ' a.m.'])}"
            )
        hour = number_words(h12)
        if t.hour == 12 and not half:
            return self.rng.choice(["noon", "twelve noon", "twelve pm"])
        part = (
            "in the morning" if not pm else "in the afternoon" if t.hour < 17 else "in the evening"
        )
        options = [f"{hour}{' thirty' if half else ''} {'pm' if pm else 'am'}"]
        options.append(f"{hour}{' thirty' if half else ''} {part}")
        if half:
            options.append(f"half past {hour} {part}")
        return self.rng.choice(options)

    def day(self, d: date) -> str:
        offset = (d - self.now.date()).days
        nth = ordinal_words(d.day) if self.words else ordinal_digits(d.day)
        options = [f"{d:%A} the {nth}", f"{d:%B} {nth}", f"{d:%A}, {d:%B} {nth}"]
        if offset == 0:
            return "today"
        if offset == 1:
            options += ["tomorrow"] * 3
        elif offset == 2:
            options += ["the day after tomorrow", f"{d:%A}"]
        week = (d - (self.now.date() - timedelta(days=self.now.weekday()))).days // 7
        if 1 < offset < 7 and week == 0:
            options += [f"{d:%A}", f"this {d:%A}"] * 2
        if offset == 7:
            options += ["a week from today"]
        if week == 1:
            options += [f"next {d:%A}"] * 2  # the next calendar week's, as the agent reads it
        return self.rng.choice(options)

    def time(self, t: datetime) -> str:
        day, clock = self.day(t.date()), self.clock(t)
        options = [f"{day} at {clock}", f"{day} at {clock}"]
        options.append(f"{clock} {day}" if day in ("today", "tomorrow") else f"{clock} on {day}")
        return self.rng.choice(options)

    def size(self, size: str) -> str:
        return self.rng.choice((self.SIZE_WORDS if self.words else self.SIZE_DIGITS)[size])

    def building(self, property_id: str) -> str:
        return self.rng.choice(self.building_names[property_id][self.style])

    def tour(self, tour_type: str) -> str:
        return {"in_person": "in person", "virtual": "virtual"}[tour_type]

    def tour_a(self, tour_type: str) -> str:
        return {"in_person": "an in-person", "virtual": "a virtual"}[tour_type]

    def budget(self, amount: int) -> str:
        if not self.words:
            return self.rng.choice([f"${amount:,}", f"{amount} dollars", f"${amount}"])
        hundreds = f"{number_words(amount // 100)} hundred" if amount % 1000 else ""
        return self.rng.choice(
            [number_words(amount) + " dollars", hundreds or number_words(amount)]
        )

    def move_in(self, d: date) -> str:
        nth = ordinal_words(d.day) if self.words else ordinal_digits(d.day)
        part = "early" if d.day <= 10 else "mid" if d.day <= 20 else "late"
        return self.rng.choice([f"{part} {d:%B}", f"{d:%B} {nth}", f"{part} {d:%B}"])

    def email(self, first: str, last: str) -> str:
        user = f"{fold(first).replace(' ', '')}.{fold(last).replace(' ', '')}"
        return (
            f"{user.replace('.', ' dot ')} at example dot com"
            if self.words
            else f"{user}@example.com"
        )

    def address_forms(self, address: str) -> list[str]:
        """Every way this persona's recognizer may write ``address``: as typed (digits style
        only), or said with "at" and "dot", the user name sometimes letter by letter."""
        user, domain = address.split("@")
        host = domain.replace(".", " dot ")

        def spoken(part: str, spell: bool) -> str:
            words = []
            for token in re.findall(r"[a-z]+|\d+|[._]", part):
                if token in "._":
                    words.append({".": "dot", "_": "underscore"}[token])
                elif token.isdigit():
                    words.append(" ".join(_ONES[int(d)] for d in token) if self.words else token)
                elif spell:
                    words.append(" ".join(token) if self.words else "-".join(token.upper()))
                else:
                    words.append(token)
            return " ".join(words)

        forms = [f"{spoken(user, False)} at {host}", f"{spoken(user, True)} at {host}"]
        if not self.words:
            forms += [address, f"{user} at {domain}"]
        return forms

    def address(self, address: str) -> str:
        forms = self.address_forms(address)
        weights = [3, 1] + [3, 2] * (len(forms) > 2)
        return self.rng.choices(forms, weights)[0]

    def phone_forms(self, e164: str) -> list[str]:
        """Every way this persona's recognizer may write a (US) number, without the +1."""
        area, mid, last = e164[2:5], e164[5:8], e164[8:]
        if not self.words:
            return [f"{area}-{mid}-{last}", f"({area}) {mid}-{last}", f"{area} {mid} {last}",
                    f"{area}{mid}{last}", f"{area}.{mid}.{last}"]  # fmt: skip
        forms = [" ".join(_ONES[int(d)] for d in area + mid + last)]
        forms.append(" ".join("oh" if d == "0" else _ONES[int(d)] for d in area + mid + last))
        pairs = [last[:2], last[2:]]
        if "00" not in pairs:  # "twelve thirty four", "oh five"; never "oh oh"
            said = [
                f"oh {_ONES[int(x[1])]}" if x[0] == "0" else number_words(int(x)) for x in pairs
            ]
            forms.append(" ".join(_ONES[int(d)] for d in area + mid) + " " + " ".join(said))
        return forms

    def phone_number(self, e164: str) -> str:
        return self.rng.choice(self.phone_forms(e164))

    def spelled(self, first: str, last: str | None) -> str:
        """Letter by letter, first name then last, sometimes "double l" or "m as in mary"."""
        parts = [self._spell_part(first)]
        if last:
            link = self.rng.choice(["last name", "and then", "surname"])
            parts.append(f"{link} {self._spell_part(last)}")
        return ", ".join(parts)

    def _spell_part(self, part: str) -> str:
        words = []
        for word in fold(part).split():
            letters: list[str] = []
            i = 0
            while i < len(word):
                if i + 1 < len(word) and word[i] == word[i + 1] and self.rng.random() < 0.5:
                    letters.append(f"double {word[i]}")
                    i += 2
                    continue
                letters.append(word[i])
                i += 1
            if self.rng.random() < 0.25:
                letters[0] = f"{letters[0]} as in {_AS_IN.get(letters[0][-1], 'mary')}"
            if self.words:
                words.append(" ".join(letters))
            else:
                joiner = self.rng.choice([", ", "-", " "])
                words.append(joiner.join(x.upper() if len(x) == 1 else x for x in letters))
        return ", ".join(words)


_AS_IN = dict(zip("abcdefghijklmnopqrstuvwxyz", (
    "apple", "boy", "charlie", "david", "edward", "frank", "george", "henry", "ivan", "john",
    "kilo", "larry", "mary", "nancy", "oscar", "peter", "queen", "robert", "sam", "tom", "uncle",
    "victor", "william", "x-ray", "yellow", "zebra",
), strict=True))  # fmt: skip


@cache
def load_bank(path: Path = BANK_PATH) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def bank_label(path: Path) -> str:
    """The bank as a report names it: relative to the repo when it lives there."""
    path = path.resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


class Phrasebook:
    """Picks a phrasing for each thing the caller says (seeded), never the same twice running."""

    def __init__(self, persona: Persona, rng: random.Random, now: datetime, bank: dict[str, Any]):
        self.persona = persona
        self.rng = rng
        self.bank = bank
        self.render = Renderer(persona.style, rng, now, bank)
        self.goal = persona.first_goal  # what {building}, {tour}, {time}... say
        self._last: dict[str, str] = {}
        self.said: list[str] = []  # every key said, in order

    def template(self, key: str) -> str:
        entries = self.bank[key] if "." not in key else self.bank["questions"][key.split(".")[1]]
        options = [e for e in entries if e != self._last.get(key)] or entries
        chosen = self.rng.choice(options)
        self._last[key] = chosen
        self.said.append(key)
        return chosen

    def say(self, key: str, **values: str) -> str:
        """One line for ``key``, its placeholders filled from the persona unless given."""
        text = self.template(key)
        for name in dict.fromkeys(re.findall(r"{(\w+)}", text)):
            value = values[name] if name in values else self._value(name)
            text = text.replace("{" + name + "}", value)
        return self.styled(text)

    def styled(self, text: str) -> str:
        text = re.sub(r"\s+", " ", text).strip()
        text = re.sub(r"\.(?:\s*\.)+", ".", re.sub(r"\.\s*([?!])", r"\1", text))
        if self.persona.style == "words":
            return re.sub(r"[.,!?;:]", "", text.lower()).strip()
        return text[:1].upper() + text[1:]

    def _value(self, name: str) -> str:
        p, r, g = self.persona, self.render, self.goal
        values: dict[str, Callable[[], str]] = {
            "name": lambda: p.name,
            "first": lambda: p.first,
            "building": lambda: r.building(g.building),
            "tour": lambda: r.tour(g.tour_type),
            "tour_a": lambda: r.tour_a(g.tour_type),
            "time": lambda: r.time(g.start),
            "day": lambda: r.day(g.start.date()),
            "size": lambda: r.size(p.unit_size),
            "move_in": lambda: r.move_in(p.move_in),
            "pets": lambda: p.pets or "no pets",
            "budget": lambda: r.budget(p.budget),
            "email": lambda: (
                r.address(p.contact_email) if p.contact_email else r.email(p.first, p.last)
            ),
            "phone": lambda: r.phone_number(p.contact_phone or p.phone),
            "spelled": lambda: r.spelled(p.first, p.last if p.full_name else None),
        }
        return values[name]()


# ============================================================== hearing the agent

_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_MONTHS = (
    "january", "february", "march", "april", "may", "june", "july", "august", "september",
    "october", "november", "december",
)  # fmt: skip
_DAY_OR_CLOCK = re.compile(
    r"\b(?P<rel>today|tomorrow)\b"
    rf"|\b(?P<wd>{'|'.join(_WEEKDAYS)})\b(?:,?\s+(?:the\s+)?(?:(?P<m1>{'|'.join(_MONTHS)})\s+)?"
    r"(?P<d1>\d{1,2})(?:st|nd|rd|th)?\b)?"
    rf"|\b(?P<m2>{'|'.join(_MONTHS)})\s+(?P<d2>\d{{1,2}})(?:st|nd|rd|th)?\b"
    r"|\b(?P<h>\d{1,2})(?:[:.](?P<min>\d{2}))?\s*(?P<ap>[ap])\.?\s?m\b\.?"
    r"|\b(?P<noon>noon)\b",
    re.IGNORECASE,
)
_OFFER_CUES = re.compile(
    r"\bi (?:also )?have\b|closest|how about|would .{0,40} work|\bopen\b|available|"
    r"nearest|instead|\bor\b.{0,30}\b[ap]\.?\s?m\b",
    re.IGNORECASE,
)
_CODE = re.compile(r"confirmation (?:code|number)", re.IGNORECASE)
# The agent saying it moved or cancelled a tour ("Done! Your tour is now on ...").
_MOVED = re.compile(
    r"tour is now (?:on|at|for)\b|code is still|\b(?:i've|i have) (?:moved|rescheduled)\b|"
    r"\b(?:has been|is) (?:moved|rescheduled)\b",
    re.IGNORECASE,
)
_CANCELLED = re.compile(r"\b(?:is|has been|was|i've|i have) (?:now )?cancell?ed\b", re.IGNORECASE)
_MISMATCH = re.compile(
    r"(?:doesn't|does not|don't|do not) (?:have|offer) (?:any )?"
    r"(?:studios?|one[- ]bedrooms?|two[- ]bedrooms?|three[- ]bedrooms?|[123][- ]bedrooms?)",
    re.IGNORECASE,
)
_NUMBER = r"(?:[1-3]|one|two|three)"
# "press 1 for 21 West End" / "1 for ..." and "for Hudson 360, press 2".
_CHOICE_AFTER = re.compile(
    rf"\b(?P<n>{_NUMBER})\b\s*(?:for|is|:|-|=)\s*(?P<what>[^,.;?]+)", re.IGNORECASE
)
_CHOICE_BEFORE = re.compile(
    rf"(?P<what>[^,.;?]+?),?\s+(?:press|say|dial)\s+(?P<n>{_NUMBER})\b", re.IGNORECASE
)
_READBACK = re.compile(
    r"\b(?:was that|did you say|did i hear|i heard|is that|is it|is your name|"
    r"did i get that right,?|just to check,?|do you mean|you said)\s+(?P<what>[^?]+)\?",
    re.IGNORECASE,
)
_AM_PM = re.compile(r"\b([ap])\.\s?m\.", re.IGNORECASE)
_CLOCK = re.compile(r"\b\d{1,2}(?:[:.]\d{2})?\s*[ap]\.?\s?m\b|\bnoon\b", re.IGNORECASE)

# What the agent asks, from the words of its question: specific kinds first.
_KINDS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (kind, re.compile(pattern, re.IGNORECASE))
    for kind, pattern in (
        ("still_there", r"still there"),
        ("email", r"email address|spell out your email|your email"),
        ("phone", r"(?:phone|cell|mobile|best|callback|contact) number|number (?:to|where) "
         r"(?:we|i) can (?:reach|text)|what number should"),
        ("spell", r"\bspell"),
        ("cancel_confirm", r"(?:shall|should|can) i (?:go ahead and )?cancel|"
         r"(?:want|like) me to cancel|(?:sure|confirm).{0,30}\bcancel\b.{0,80}\?"),
        ("confirm", r"shall i book|should i book|book (?:it|that|this)\b.{0,20}\?|"
         r"(?:shall|should|can) i (?:move|change|switch|reschedule)\b|"
         r"(?:want|like) me to (?:move|change|switch|reschedule)\b|"
         r"go ahead and book|"
         r"(?:want|like) me to (?:book|go ahead)|shall i go ahead|should i go ahead|"
         r"(?:ok|okay) to book|can i book|shall i confirm|should i confirm|want to confirm|"
         r"to book .{0,60}(?:say yes|press 1)|press 1 to book"),
        ("readback", _READBACK.pattern),
        ("choices", r"\bpress\b|\b(?:1|one) for\b|\bsay (?:1|one)\b|\bkeypad\b"),
        ("manage", r"keep it|reschedule,? or cancel"),
        ("contact", r"text or|by text|by email|send (?:you )?(?:your|the) confirmation|"
         r"how should we (?:send|reach|contact)"),
        ("anything_else", r"anything else"),
        ("resume", r"pick up (?:there|where)|where we left off|continue where|carry on"),
        ("pick_slot", r"which (?:one|of those|time|would you)|does either|would either|"
         r"do either|which works|either of those|one of those"),
        ("book_today", r"book a tour today|shall we book|would you like to (?:book|schedule)|"
         r"want to (?:book|schedule)|like to set up"),
        ("tour_type", r"in[- ]person.{0,40}virtual|virtual.{0,40}in[- ]person|"
         r"(?:what|which) (?:kind|type) of tour"),
        ("tour_time", r"what day|what time|which day|when would|day and (?:a )?time|when works|"
         r"when (?:can|could|do) you|come by|what date|when are you (?:free|available)|"
         r"when is good|good time|what times? (?:would|works)"),
        ("budget", r"budget|spend|price range"),
        ("pet_details", r"kind of pets?|which pets|what pets|what kind of animal"),
        ("pets", r"\bpets?\b|animals?"),
        ("move_in", r"move[- ]?in|moving|move\b"),
        ("unit_size", r"what size|bedrooms?|studio|how big|unit size|size"),
        ("building", r"which building|which property|what building|which of (?:our|the) "
         r"buildings|west end.{0,30}hudson.{0,30}riverview|which one would you like to see"),
        ("name", r"\bname\b|who am i speaking|who's calling|who is calling|call you"),
    )
)  # fmt: skip
_ANSWERS: dict[str, re.Pattern[str]] = {
    "price": re.compile(r"\$\s?\d|\d[\d,]* dollars|thousand|hundred", re.IGNORECASE),
    "pets": re.compile(r"\bpets?\b|\bcats?\b|\bdogs?\b", re.IGNORECASE),
    "parking": re.compile(r"parking|garage", re.IGNORECASE),
    "address": re.compile(r"\d+ [\w ]+(?:street|avenue|st\b|ave\b)|hoboken", re.IGNORECASE),
    "hours": _CLOCK,
    "availability": _CLOCK,
}


@dataclass
class Heard:
    """What one agent turn means to the caller."""

    text: str
    kind: str  # a _KINDS name, or "other"
    question: str  # the sentence the kind was read from
    booked: bool
    slots: list[datetime]  # times the agent offered (empty unless it offered)
    times: list[datetime]  # every day+time the agent mentioned
    refused_days: set[date]  # days the agent said were taken or closed
    buildings: list[str]  # property ids named, in order
    choices: dict[str, str]  # property id -> the number to say for it
    readback: str | None
    mismatch: bool
    moved: bool = False  # the agent said the tour was moved
    cancelled: bool = False  # the agent said the tour was cancelled

    @property
    def key(self) -> str:
        """What counts as "the same question": its kind, or its words when unclassified.

        A read-back with another time or building is a new question to the caller: it
        shows the correction was heard ("...at 12 PM?" "No, 3 PM." "...at 3 PM?")."""
        if self.kind in ("confirm", "readback"):
            said = [t.isoformat() for t in self.times] + self.buildings
            return f"{self.kind} {' '.join(said)}".strip()
        return self.kind if self.kind != "other" else fold(self.question)[:80]


def sentences(text: str) -> list[str]:
    return [s.strip() for s in re.findall(r"[^.!?]+[.!?]*", text) if s.strip()]


def question_sentence(text: str) -> str:
    """The last sentence that asks something (ends in "?"), else the last sentence."""
    parts = sentences(text)
    asked = [s for s in parts if s.endswith("?")]
    return asked[-1] if asked else (parts[-1] if parts else "")


def classify(question: str) -> str:
    for kind, pattern in _KINDS:
        if pattern.search(question):
            return kind
    return "other"


def statement_part(text: str) -> str:
    """The agent's words minus its questions: where answers live."""
    return " ".join(s for s in sentences(text) if not s.endswith("?"))


@cache
def _building_patterns() -> tuple[tuple[str, re.Pattern[str]], ...]:
    """Each building's names and its telling words ("hudson", "360", "riverview", "west end"),
    so a misheard "Hobson 360" or "Riverview Loss" from the caller's own Whisper still counts."""
    catalog = Catalog.load(PROPERTIES)
    bank = load_bank()
    telling = {
        "21-west-end": ["west end"],
        "hudson-360": ["hudson", "three sixty"],
        "riverview-lofts": ["riverview", "river view"],
    }
    pairs = []
    for pid, prop in catalog.properties.items():
        names = {prop.name, *bank["building_names"][pid]["digits"], *telling.get(pid, [])}
        names |= set(bank["building_names"][pid]["words"])
        for name in names:
            words = [re.escape(w) for w in fold(name.replace("360", " three sixty ")).split()]
            if words[:1] == ["the"]:
                words = words[1:]
            pairs.append((pid, re.compile(r"\b" + r"\W*".join(words) + r"\b", re.IGNORECASE)))
    return tuple(pairs)


def buildings_in(text: str) -> list[str]:
    """Property ids named in ``text``, in order of first mention."""
    spoken = " " + fold(text.replace("360", " three sixty ").replace("21", " twenty one ")) + " "
    found: list[tuple[int, str]] = []
    for pid, pattern in _building_patterns():
        match = pattern.search(spoken)
        if match:
            found.append((match.start(), pid))
    ordered = []
    for _, pid in sorted(found):
        if pid not in ordered:
            ordered.append(pid)
    return ordered


def named_buildings(text: str) -> list[str]:
    """Buildings the agent names, leaving out sentences that list all of them (a menu)."""
    everything = len(_building_ids())
    named: list[str] = []
    for sentence in sentences(text):
        found = buildings_in(sentence)
        if len(found) < everything:
            named += [pid for pid in found if pid not in named]
    return named


@cache
def _building_ids() -> frozenset[str]:
    return frozenset(Catalog.load(PROPERTIES).properties)


def times_in(text: str, now: datetime, default_day: date | None = None) -> list[datetime]:
    """Every day + clock time mentioned, a clock taking the last day said before it."""
    return _scan(text, now, default_day)[0]


def _scan(
    text: str, now: datetime, day: date | None
) -> tuple[list[datetime], set[date], date | None]:
    """(times, days named, the day in force at the end) for one stretch of text."""
    found: list[datetime] = []
    days: set[date] = set()
    for m in _DAY_OR_CLOCK.finditer(text):
        if m["rel"]:
            day = now.date() + timedelta(days=0 if m["rel"].lower() == "today" else 1)
            days.add(day)
        elif m["wd"]:
            day = _resolve_day(now, m["wd"], m["m1"], m["d1"])
            days.add(day)
        elif m["m2"]:
            day = _resolve_day(now, None, m["m2"], m["d2"])
            days.add(day)
        elif day is not None:
            hour = 12 if m["noon"] else int(m["h"]) % 12 + (12 if m["ap"].lower() == "p" else 0)
            minute = int(m["min"] or 0) if not m["noon"] else 0
            if hour < 24 and minute < 60:
                found.append(datetime(day.year, day.month, day.day, hour, minute, tzinfo=NY))
    return found, days, day


_REFUSAL = re.compile(
    r"taken|not available|isn't available|unavailable|already booked|no longer|passed|"
    r"(?:don't|do not) have|can't|cannot|closed|only run|start on the",
    re.IGNORECASE,
)


@dataclass
class TimesHeard:
    mentioned: list[datetime]
    offered: list[datetime]  # in sentences that offer, not in ones that refuse
    refused_days: set[date]  # days named where the agent said no


def times_heard(text: str, now: datetime, default_day: date | None) -> TimesHeard:
    """Sentence by sentence (the day carries over): which times are offered, which refused."""
    heard = TimesHeard([], [], set())
    day = default_day
    for sentence in sentences(text):
        if _CODE.search(sentence):
            continue  # a code like "5AM2" is not a time
        times, days, day = _scan(sentence, now, day)
        heard.mentioned += times
        if _REFUSAL.search(sentence):
            heard.refused_days |= days | {t.date() for t in times}
        elif _OFFER_CUES.search(sentence):
            heard.offered += times
    return heard


def _resolve_day(now: datetime, weekday: str | None, month: str | None, dom: str | None) -> date:
    today = now.date()
    if dom and int(dom) <= 31:
        month_no = _MONTHS.index(month.lower()) + 1 if month else today.month
        for year in (today.year, today.year + 1):
            try:
                candidate = date(year, month_no, int(dom))
            except ValueError:
                continue
            if candidate >= today - timedelta(days=31):
                if not month and candidate < today:
                    continue
                return candidate
    if weekday:
        target = _WEEKDAYS.index(weekday.lower())
        return today + timedelta(days=(target - today.weekday()) % 7)
    return today


_TOUR_TYPE_CHOICE = {"in_person": re.compile(r"in[- ]person"), "virtual": re.compile(r"virtual")}


def _choices(text: str) -> dict[str, str]:
    """Building id (or tour type: "in_person", "virtual") -> the number the agent said to
    choose it with ("say or press 1 for an in-person tour, or 2 for a virtual tour")."""
    out: dict[str, str] = {}
    for pattern in (_CHOICE_AFTER, _CHOICE_BEFORE):
        for m in pattern.finditer(text):
            named = buildings_in(m["what"]) or [
                kind for kind, said in _TOUR_TYPE_CHOICE.items() if said.search(m["what"].lower())
            ]
            if named and named[0] not in out:
                out[named[0]] = m["n"]
        if out:
            break
    return out


def hear(text: str, now: datetime, default_day: date | None = None) -> Heard:
    """Read one agent turn the way a caller would: what is asked, offered, read back."""
    text = _AM_PM.sub(lambda m: f"{m[1].upper()}M", text)
    question = question_sentence(text)
    kind = classify(question)
    times = times_heard(text, now, default_day)
    readback = _READBACK.search(question)
    return Heard(
        text=text,
        kind=kind,
        question=question,
        booked=bool(_CODE.search(text)),
        slots=times.offered if kind != "confirm" else [],
        times=times.mentioned,
        refused_days=times.refused_days,
        buildings=named_buildings(text),
        choices=_choices(text) if kind == "choices" else {},
        readback=readback["what"].strip() if readback else None,
        mismatch=bool(_MISMATCH.search(text)),
        moved=bool(_MOVED.search(statement_part(text))),
        cancelled=bool(_CANCELLED.search(statement_part(text))),
    )


# Agent turns a caller may ask to hear again: ones that ask or offer something.
REPEAT_KEYS = {"times": "repeat_times", "buildings": "repeat_buildings",
               "read-back": "repeat_summary"}  # fmt: skip
REPEATABLE = frozenset(kind for kind, _ in _KINDS) - {"still_there", "anything_else"}
_CLOCK_PARTS = re.compile(
    r"\b(?P<h>\d{1,2})(?:[:.](?P<min>\d{2}))?\s*(?P<ap>[ap])\.?\s?m\b|\b(?P<noon>noon)\b",
    re.IGNORECASE,
)


def clocks_in(text: str) -> set[tuple[int, int]]:
    """Every clock time said, as (hour, minute): "2 PM", "2:30 p.m.", "noon"."""
    found = set()
    for m in _CLOCK_PARTS.finditer(_AM_PM.sub(lambda m: f"{m[1].upper()}M", text)):
        if m["noon"]:
            found.add((12, 0))
        elif int(m["h"]) <= 12:
            hour = int(m["h"]) % 12 + (12 if m["ap"].lower() == "p" else 0)
            found.add((hour, int(m["min"] or 0)))
    return found


def repeat_topic(heard: Heard) -> str:
    """What a caller asking to hear ``heard`` again wants to hear: "times" (offered ones),
    "read-back" (a summary's buildings and times, or a name read back), "buildings" (a
    list of them), or "question" (the same question again)."""
    if heard.slots:
        return "times"
    summary = heard.times or heard.buildings or heard.readback
    if heard.kind in ("confirm", "readback", "cancel_confirm") and summary:
        return "read-back"
    if len(buildings_in(heard.text)) >= 2:
        return "buildings"
    return "question"


def repeat_honoured(before: Heard, reply: Heard) -> bool:
    """Does ``reply`` (to "sorry, what was that?") carry what ``before`` asked or offered,
    rather than a generic reprompt?"""
    topic = repeat_topic(before)
    if topic == "times":
        return {(t.hour, t.minute) for t in before.slots} <= clocks_in(reply.text)
    if topic == "read-back":
        clocks = {(t.hour, t.minute) for t in before.times}
        if not clocks <= clocks_in(reply.text):
            return False
        if not set(before.buildings) <= set(buildings_in(reply.text)):
            return False
        said = fold(before.readback or "") if not (before.times or before.buildings) else ""
        return said in fold(reply.text)
    if topic == "buildings":
        return set(buildings_in(before.text)) <= set(buildings_in(reply.text))
    if before.choices and set(before.choices) <= set(_TOUR_TYPE_CHOICE):
        text = reply.text.lower()  # a numbered tour-type menu: both types said again
        return all(said.search(text) for said in _TOUR_TYPE_CHOICE.values())
    if reply.kind == before.kind:
        return True
    return reply.kind != "other" and TOPICS.get(reply.kind, reply.kind) == TOPICS.get(
        before.kind, before.kind
    )


# ============================================================== the caller


@dataclass
class AskedQuestion:
    topic: str
    text: str
    named_building: bool
    clarified: bool = False


@dataclass
class Stats:
    """What one persona's calls measured."""

    questions_asked: int = 0
    questions_answered: int = 0
    unanswered: list[str] = field(default_factory=list)
    question_keys: list[str] = field(default_factory=list)  # per agent turn, across calls
    longest_repeat: int = 0
    turns_to_book: int | None = None
    recall: bool | None = None
    end_reason: str = ""
    stuck_on: str = ""  # the agent's question when the caller gave up
    changed_mind: bool = False  # changes_mind: it changed its one thing at a read-back
    # asks_repeat: how many times it asked the agent to say something again, and for each
    # request not honoured, (what it wanted again, 'request -> reply').
    repeat_requests: int = 0
    repeat_misses: list[tuple[str, str]] = field(default_factory=list)
    contact_given: bool = False  # gives_contact: it has said its email / cell number
    cut_off: bool = False  # hangs_up_mid_confirm: it hung up at "Shall I book it?"
    # hangs_up_mid_confirm: what it had to say again on its second call ("building",
    # "tour_type", "time"), in the order it did.
    facts_repeated: list[str] = field(default_factory=list)


class Caller:
    """A caller policy: reacts to each agent turn from its persona's goal and strategy."""

    def __init__(self, persona: Persona, now: datetime, seed: int, bank: dict[str, Any]):
        self.p = persona
        self.now = now
        self.rng = random.Random(f"caller-{seed}-{persona.index}")
        self.book = Phrasebook(persona, self.rng, now, bank)
        self.stats = Stats()
        self.accepted: list[datetime] = []
        self.told: set[str] = set()
        self.questions = list(persona.questions)
        self.pending: AskedQuestion | None = None
        self.correction: str | None = None
        self.size_settled = persona.asked_size == persona.unit_size
        self.repeat_chances = 0  # asks_repeat: agent turns it could have asked to hear again
        self.call = 0
        self.new_call(1)

    @property
    def goal(self) -> Goal:
        """What the caller asks for now (what its phrasings say, what it checks read-backs by)."""
        return self.book.goal

    @goal.setter
    def goal(self, goal: Goal) -> None:
        self.book.goal = goal

    @property
    def managing(self) -> str | None:
        """ "reschedule" or "cancel" on the second call of a caller who moves or cancels."""
        if self.call != 2:
            return None
        return {"reschedules": "reschedule", "cancels": "cancel"}.get(self.p.callback or "")

    # -- call bookkeeping

    def new_call(self, number: int, now: datetime | None = None) -> None:
        """Start call ``number``; ``now`` is the day it is made (days later, for a callback)."""
        self.call = number
        if now is not None:
            self.now = self.book.render.now = now
        if self.managing == "reschedule":
            self.goal = self.p.goal  # the new time
            self.accepted = []  # times taken on the first call were for the old one
        self.stats.end_reason = self.stats.stuck_on = ""
        self.turns = 0
        self.streak_key = ""
        self.streak = 0
        self.topic = ""
        self.topic_streak = 0
        self.booked_at: int | None = None
        self.after_booking = 0
        self.finished = False  # the caller said goodbye (or hung up): no more turns
        self.pending = None
        self.repeat_asked: Heard | None = None  # asks_repeat: the turn it asked to hear again
        self.said_on_call = len(self.book.said)  # where this call's keys start

    @property
    def is_first_call_of_callback(self) -> bool:
        return self.p.callback is not None and self.call == 1

    def _turn(self, line: str) -> str:
        self.turns += 1
        if self.p.strategy == "hangs_up_mid_confirm" and self.call == 2:
            self._count_repeated_facts()
        return line

    def _count_repeated_facts(self, *chosen: str) -> None:
        """A cut-off caller's second call: the facts it had to say again (by what it said)."""
        facts = [f for key in self.book.said[self.said_on_call :] for f in FACT_KEYS.get(key, ())]
        self.said_on_call = len(self.book.said)
        for fact in (*facts, *chosen):
            if fact not in self.stats.facts_repeated:
                self.stats.facts_repeated.append(fact)

    def _hang_up(self, reason: str, heard: Heard | None = None) -> None:
        self.finished = True
        self.stats.end_reason = reason
        if heard is not None:
            self.stats.stuck_on = heard.question or heard.text

    # -- opening lines

    def opening(self, greeting: str) -> str | None:
        """The caller's first line, from the strategy (callers lead; they don't wait)."""
        heard = self.observe(greeting)
        if self.call == 2 and self.p.strategy == "hangs_up_mid_confirm":
            return self._turn(self._cut_off_opening(heard))
        if self.call == 2:
            return self._turn(self._callback_opening(heard))
        return self._turn(self._with_contact(self._first_line(heard)))

    def _first_line(self, heard: Heard) -> str:
        s = self.p.strategy if self.p.callback is None else "callback"
        if s == "all_in_one":
            self.told |= {"name", "building", "tour_type", "time"}
            return self.book.say("all_in_one")
        if s == "leads_with_time":
            self.told.add("time")
            return self.book.say("leads_with_time")
        if s == "questions_first":
            return self._ask_question(prefix="Hi! ")
        if s == "corrects_self":
            return self._wrong_opening()
        if s == "changes_mind" and self.rng.random() < 0.5:
            self.told |= {"name", "building", "tour_type", "time"}
            return self.book.say("all_in_one")
        if s == "minimal" and heard.kind != "other":
            return self.answer(heard)
        return self.book.say("greeting_intent") + " " + self._building_line()

    def _wrong_opening(self) -> str:
        """corrects_self: one detail wrong; the next turn corrects it."""
        r = self.book.render
        if self.p.wrong == "building":
            self.correction = r.building(self.p.building)
            wrong = self.book.say("building", building=r.building(self.p.wrong_building))
            self.told.add("building")
            return f"{self.book.say('greeting_intent')} {wrong}"
        assert self.p.wrong_start is not None
        right = r.time(self.p.start) if self.rng.random() < 0.5 else r.clock(self.p.start)
        self.correction = right
        self.told |= {"building", "tour_type", "time"}
        wrong_time = r.time(self.p.wrong_start)
        line = f"I'd like {r.tour_a(self.p.tour_type)} tour of {r.building(self.p.building)} "
        return self.book.styled(f"{self.book.say('greeting_intent')} {line}{wrong_time}.")

    def _callback_opening(self, heard: Heard) -> str:
        """A returning caller: continue from what the agent remembered, or remind it."""
        remembered = self.p.building in heard.buildings or bool(heard.times)
        self.stats.recall = remembered
        if heard.kind in ("manage", "resume") and remembered:
            return self.answer(heard)
        if self.managing:
            return self.book.say("callback_open") + " " + self._request()
        if self.p.callback == "booked":
            return self.book.say("callback_open")
        if remembered:
            return self.book.say("callback_same") + " " + self.book.say("time")
        return self.book.say("callback_open") + " " + self.book.say("callback_remind")

    def _cut_off_opening(self, heard: Heard) -> str:
        """hangs_up_mid_confirm, ringing back: "sorry, we got cut off", and a yes at once if
        the agent greets it with the tour it was about to book."""
        self.stats.recall = self._names_pending_tour(heard)
        line = self.book.say("cut_off")
        if heard.kind == "confirm" and self._summary_problem(heard) is None:
            return f"{line} {self.book.say('yes')}"
        if heard.kind == "resume":
            return f"{line} {self.book.say('yes')}"
        return line

    def _names_pending_tour(self, heard: Heard) -> bool:
        wanted = [self.goal.start, *self.accepted]
        return self.goal.building in heard.buildings or any(t in wanted for t in heard.times)

    # -- every later turn

    def observe(self, text: str) -> Heard:
        """Hear an agent turn and keep the question-repeat bookkeeping (an agent saying
        again what the caller asked to hear again is not asking the same thing twice)."""
        heard = hear(text, self.now, self.goal.start.date())
        if self.repeat_asked is not None:
            if heard.kind != "other" or heard.question.endswith("?"):
                self.stats.question_keys.append(heard.key)
            return heard
        topic = TOPICS.get(heard.kind, heard.kind)
        self.topic_streak = self.topic_streak + 1 if topic == self.topic else 1
        self.topic = topic
        if heard.kind != "other" or heard.question.endswith("?"):
            key = heard.key
            self.streak = self.streak + 1 if key == self.streak_key else 1
            self.streak_key = key
            self.stats.question_keys.append(key)
            self.stats.longest_repeat = max(self.stats.longest_repeat, self.streak)
        else:
            self.streak_key, self.streak = "", 0
        return heard

    def next_line(self, agent_text: str) -> str | None:
        """The caller's next line, or None when it hangs up."""
        heard = self.observe(agent_text)
        self._check_pending_question(heard)
        question = heard  # what the caller answers
        repeated = self.repeat_asked is not None  # the agent was asked to say it again
        if repeated:
            question = self._judge_repeat(heard)
        elif (
            self.p.strategy == "hangs_up_mid_confirm"
            and self.call == 1
            and self.booked_at is None
            and heard.kind == "confirm"
            and self._summary_problem(heard) is None
        ):
            self.finished = self.stats.cut_off = True  # the line drops: no answer
            self.stats.end_reason = "hung up at 'Shall I book it?'"
            return None
        if (
            self.p.strategy == "hangs_up_mid_confirm"
            and self.call == 2
            and self.turns == 1
            and not self.stats.recall
        ):
            self.stats.recall = self._names_pending_tour(heard)  # after "we got cut off"
        if self._done(heard) and self.booked_at is None:
            self.booked_at = self.turns
            if self.managing:
                self.stats.end_reason = DONE_REASONS[self.managing]
            elif self.stats.turns_to_book is None:
                self.stats.turns_to_book = self.turns
        if self.booked_at is not None:
            return self._after_booking(heard)
        if (
            self.is_first_call_of_callback
            and self.p.callback not in BOOKS_FIRST
            and self._may_leave()
        ):
            self.finished = True
            self.stats.end_reason = "planned hang-up"
            return self._turn(self.book.say("hang_up_later"))
        if self.streak >= MAX_SAME_QUESTION:
            self._hang_up(f"same question {MAX_SAME_QUESTION}x: {heard.key}", heard)
            return None
        if self.topic_streak >= MAX_SAME_TOPIC and self.topic != "other":
            self._hang_up(f"stuck {MAX_SAME_TOPIC} turns on one thing: {self.topic}", heard)
            return None
        if self.turns >= MAX_TURNS:
            self._hang_up(f"{MAX_TURNS} turns without a booking", heard)
            return None
        if not repeated and self._wants_repeat(heard):
            return self._turn(self._ask_repeat(heard))
        line = self.answer(question)
        if keypad_digits(line):
            return self._turn(line)  # a key press carries nothing else
        if self.correction:
            line = self.book.say("correction", value=self.correction) + " " + line
            self.correction = None
        return self._turn(self._with_contact(self._maybe_ask(line).strip()))

    # -- asks_repeat

    def _wants_repeat(self, heard: Heard) -> bool:
        """asks_repeat: is this one of the agent turns it asks to hear again?"""
        if self.p.strategy != "asks_repeat" or self.booked_at is not None or self.managing:
            return False
        if not (heard.slots or heard.kind in REPEATABLE):
            return False
        chance = self.repeat_chances
        self.repeat_chances += 1
        return chance in self.p.repeat_points

    def _ask_repeat(self, heard: Heard) -> str:
        """Ask for what was just said again, by what it was (or just "come again?")."""
        self.repeat_asked = heard
        self.stats.repeat_requests += 1
        topic = repeat_topic(heard)
        key = REPEAT_KEYS.get(topic, "repeat_generic")
        if topic == "read-back" and not (heard.times or heard.buildings):
            key = "repeat_generic"  # a name read back: "sorry, what was that?"
        if self.rng.random() < 0.3:
            key = "repeat_generic"
        return self.book.say(key)

    def _judge_repeat(self, reply: Heard) -> Heard:
        """Was the repeat request honoured? Returns what the caller now answers: the reply,
        or, when it asks nothing (a generic "sorry?"), the turn it had asked to hear again."""
        before, self.repeat_asked = self.repeat_asked, None
        assert before is not None
        if repeat_honoured(before, reply):
            return reply
        asked = self.book.said[-1] if self.book.said else "repeat"
        self.stats.repeat_misses.append(
            (repeat_topic(before), f'{asked}: "{before.question}" -> "{reply.text}"')
        )
        return reply if reply.kind != "other" or reply.slots or self._done(reply) else before

    # -- gives_contact

    def _with_contact(self, line: str) -> str:
        """gives_contact, on its turn for it: the email / cell number after what it says."""
        p = self.p
        if p.strategy != "gives_contact" or self.stats.contact_given or p.contact_at < 0:
            return line
        if self.turns < p.contact_at or self.booked_at is not None or keypad_digits(line):
            return line
        return f"{line} {self._volunteer()}".strip()

    def _volunteer(self) -> str:
        """Its email and/or cell number, each from its own key (sometimes asking for the
        confirmation there)."""
        self.stats.contact_given = True
        parts = []
        if self.p.contact_email:
            parts.append(self.book.say("volunteer_email"))
        if self.p.contact_phone:
            parts.append(self.book.say("volunteer_phone"))
        self.rng.shuffle(parts)
        return " ".join(parts)

    def _done(self, heard: Heard) -> bool:
        """Has the agent done what this call is for (booked, moved or cancelled the tour)?

        A caller moving its tour also takes a new booking for done: it would leave thinking
        the tour was moved, and the store then shows two tours."""
        if self.managing == "cancel":
            return heard.cancelled
        if self.managing == "reschedule":
            return heard.moved or heard.booked
        return heard.booked

    def _request(self) -> str:
        """A caller who moves or cancels its tour says so (again, in other words)."""
        assert self.managing
        return self.book.say(self.managing)

    def _may_leave(self) -> bool:
        """A "started" first call leaves once its building (and name) are out."""
        return "building" in self.told and ("name" in self.told or self.p.declines_name)

    def _after_booking(self, heard: Heard) -> str | None:
        """Answer how to send the confirmation and a couple of optional questions, then go
        (a gives_contact caller who has not given its contact yet gives it first)."""
        if heard.kind in ("contact", "email", "phone"):
            return self._turn(self.answer(heard))
        if self.p.strategy == "gives_contact" and not self.stats.contact_given:
            return self._turn(self._volunteer())
        self.after_booking += 1
        if heard.kind in OPTIONAL_KINDS and self.after_booking <= AFTER_BOOKING_TURNS:
            return self._turn(self.answer(heard))
        self.finished = True
        self.stats.end_reason = self.stats.end_reason or "booked"
        return self._turn(self.book.say("goodbye"))

    def _maybe_ask(self, line: str) -> str:
        """Some callers slip a question in once the call is under way."""
        if not self.questions or self.pending or self.turns < 1:
            return line
        if self.p.strategy == "questions_first" or self.rng.random() < 0.4:
            question = self._ask_question()
            return question if self.p.strategy == "questions_first" else f"{line} {question}"
        return line

    def _ask_question(self, prefix: str = "") -> str:
        topic = self.questions.pop(0)
        text = self.book.say(f"questions.{topic}")
        named = bool(buildings_in(text)) or topic == "hours"
        self.pending = AskedQuestion(topic, text, named)
        self.stats.questions_asked += 1
        return self.book.styled(prefix + text) if prefix else text

    def _check_pending_question(self, heard: Heard) -> None:
        """Was the caller's question answered in this reply (one "which building?" allowed)?"""
        asked = self.pending
        if asked is None:
            return
        if _ANSWERS[asked.topic].search(statement_part(heard.text)):
            self.stats.questions_answered += 1
            self.pending = None
            return
        if heard.kind == "building" and not asked.named_building and not asked.clarified:
            asked.clarified = True
            return
        self.stats.unanswered.append(f"({asked.topic}) {asked.text} -> {heard.text}")
        self.pending = None

    # -- answering what was asked

    def answer(self, heard: Heard) -> str:
        """A line for what the agent just said, from the goal; never from a question order."""
        if self.managing == "cancel" and heard.kind in NOT_CANCELLING:
            return self._request()  # it wants the tour gone, not another time or building
        if heard.mismatch and not self.size_settled:
            self.size_settled = True
            self.told.add("size")
            return self.book.say("size_fallback", size=self.book.render.size(self.p.unit_size))
        if heard.slots and heard.kind not in ("confirm", "readback"):
            return self._pick_slot(heard)
        handler = getattr(self, f"_on_{heard.kind}", None)
        return handler(heard) if handler else self.restate()

    def restate(self, _: Heard | None = None) -> str:
        """Repeat the most important thing not yet said, or the whole request, newly phrased."""
        if self.managing:
            return self._request()
        if "building" not in self.told:
            return self._building_line()
        if "time" not in self.told:
            self.told.add("time")
            return self.book.say("time")
        if "tour_type" not in self.told:
            self.told.add("tour_type")
            return self._tour_line()
        return self.book.say("restate")

    def _building_line(self) -> str:
        self.told.add("building")
        if self.p.volunteers_size and "size" not in self.told:
            self.told.add("size")
            return self.book.say("building_with_size", size=self._size_word())
        return self.book.say("building")

    def _size_word(self) -> str:
        return self.book.render.size(self.p.unit_size if self.size_settled else self.p.asked_size)

    def _tour_line(self) -> str:
        return self.book.say(f"tour_{self.goal.tour_type}")

    def _on_name(self, heard: Heard) -> str:
        if self.p.declines_name:
            return self.book.say("decline_name")
        self.told.add("name")
        return self.book.say("name_intro")

    def _on_spell(self, heard: Heard) -> str:
        if self.p.declines_name:
            return self.book.say("decline_name")
        return self.book.say("spell")

    def _on_building(self, heard: Heard) -> str:
        return self._building_line()

    def _on_choices(self, heard: Heard) -> str:
        """Say the building's (or the tour type's) number, or press it on the keypad."""
        number = heard.choices.get(self.goal.building) or heard.choices.get(self.goal.tour_type)
        if number is None:
            return self._building_line()
        if self.p.strategy == "hangs_up_mid_confirm" and self.call == 2:
            chosen = "building" if self.goal.building in heard.choices else "tour_type"
            self._count_repeated_facts(chosen)
        digit = number if number.isdigit() else str(_ONES.index(number.lower()))
        if self.rng.random() < 0.4:
            return keypad(digit)
        spoken = number_words(int(digit)) if self.p.style == "words" else digit
        return self.book.say("number_choice", number=spoken)

    def _on_tour_type(self, heard: Heard) -> str:
        self.told.add("tour_type")
        return self._tour_line()

    def _on_tour_time(self, heard: Heard) -> str:
        self.told.add("time")
        return self.book.say("time")

    def _on_pick_slot(self, heard: Heard) -> str:
        return self._pick_slot(heard) if heard.slots else self.book.say("time")

    def _pick_slot(self, heard: Heard) -> str:
        """Take the offered time closest to the one wanted: on the day wanted if there is one,
        on another day only when the agent said the day wanted is full (else say it again)."""
        goal = self.goal.start
        goal_day = goal.date()
        same_day = [s for s in heard.slots if s.date() == goal_day]
        if not same_day and goal_day not in heard.refused_days:
            if "tour_type" in self.told:
                return self.book.say("fix_time")
            self.told.add("tour_type")  # the day may depend on it: say it now
            return f"{self._tour_line()} {self.book.say('fix_time')}"
        choices = same_day or heard.slots
        best = min(choices, key=lambda s: (abs((s - goal).total_seconds()), s))
        self.accepted.append(best)
        r = self.book.render
        if len(heard.slots) == 2 and self.rng.random() < 0.25:  # "the first one", "the later one"
            first = "the first one" if heard.slots[0] == best else "the second one"
            earlier = "the earlier one" if best == min(heard.slots) else "the later one"
            line = self.book.say("pick_slot", slot=self.rng.choice([first, earlier]))
            if not re.search(r"\bthe the\b|\bone one\b", line, re.IGNORECASE):
                return line  # not "The the first one one, please." from "The {slot} one"
        if best.date() == goal_day and self.rng.random() < 0.6:
            slot = r.clock(best)
        else:
            slot = r.time(best)
        return self.book.say("pick_slot", slot=slot)

    def _on_confirm(self, heard: Heard) -> str:
        """Yes when the summary matches the goal; otherwise say what's wrong."""
        if (
            self.p.strategy == "changes_mind"
            and not self.stats.changed_mind
            and heard.kind == "confirm"
        ):
            return self._change_mind()
        problem = self._summary_problem(heard)
        if problem:
            return self.book.say(problem)
        if self.correction:
            return ""  # the correction itself is the answer
        if re.search(r"\bpress 1\b", heard.text.lower()) and self.rng.random() < 0.7:
            return keypad("1")  # offered the keypad after being misheard: most callers use it
        return self.book.say("yes")

    def _summary_problem(self, heard: Heard) -> str | None:
        """What is wrong in a read-back ("fix_building", "fix_tour", "fix_time"), or None."""
        goal = self.goal
        wrong_building = [b for b in heard.buildings if b != goal.building]
        if wrong_building and goal.building not in heard.buildings:
            return "fix_building"
        text = heard.text.lower()
        says_virtual = "virtual" in text
        says_in_person = bool(re.search(r"in[- ]person", text))
        if says_virtual != says_in_person and says_virtual != (goal.tour_type == "virtual"):
            return "fix_tour"
        wanted = [goal.start, *self.accepted]
        if heard.times and not any(t in wanted for t in heard.times):
            return "fix_time"
        return None

    def _change_mind(self) -> str:
        """changes_mind, at the first read-back: the one thing it asked for first becomes its
        real goal ("Actually, can we make it virtual instead?")."""
        self.stats.changed_mind = True
        before, self.goal = self.goal, self.p.goal
        self.accepted = []  # times taken for the first choice are not the goal's
        r, goal = self.book.render, self.goal
        if self.p.wrong == "building":
            value = r.building(goal.building)
        elif self.p.wrong == "tour_type":
            value = self.rng.choice([r.tour(goal.tour_type), f"{r.tour_a(goal.tour_type)} tour"])
        elif goal.start.date() == before.start.date() and self.rng.random() < 0.6:
            value = r.clock(goal.start)
        else:
            value = r.time(goal.start)
        key = "change_mind" if self.rng.random() < 0.7 else "correction"
        return self.book.say(key, value=value)

    def _on_cancel_confirm(self, heard: Heard) -> str:
        """ "Should I cancel your tour ...?": yes from a caller cancelling it, else no."""
        if self.managing == "cancel":
            return self.book.say("cancel_yes")
        return self.book.say("no") + " " + self.restate()

    def _on_readback(self, heard: Heard) -> str:
        what = heard.readback or ""
        if heard.buildings or heard.times or fold(what) in ("right", "correct", "ok", "okay"):
            return self._on_confirm(heard)
        said = fold(what)
        names = {fold(self.p.first), fold(self.p.name), fold(f"{self.p.first} {self.p.last}")}
        if said in names or said.split()[:1] == fold(self.p.first).split()[:1]:
            return self.book.say("readback_yes")
        if self.p.declines_name:
            return self.book.say("no")
        return self.book.say("readback_no")

    def _on_unit_size(self, heard: Heard) -> str:
        if self.p.strategy == "not_sure" and self.size_settled:
            return self.book.say("not_sure")
        self.told.add("size")
        return self.book.say("unit_size", size=self._size_word())

    def _optional(self, key: str) -> str:
        if self.p.strategy == "not_sure":
            return self.book.say("not_sure")
        return self.book.say(key)

    def _on_move_in(self, heard: Heard) -> str:
        return self._optional("move_in")

    def _on_pets(self, heard: Heard) -> str:
        return self._optional("pets" if self.p.pets else "no_pets")

    _on_pet_details = _on_pets

    def _on_budget(self, heard: Heard) -> str:
        return self._optional("budget")

    def _on_contact(self, heard: Heard) -> str:
        line = self.book.say(f"contact_{self.p.contact}")
        if self.p.strategy == "gives_contact" and not self.stats.contact_given:
            return f"{line} {self._volunteer()}"
        return line

    def _on_email(self, heard: Heard) -> str:
        return self.book.say("email")

    def _on_phone(self, heard: Heard) -> str:
        return self.book.say("volunteer_phone")

    def _on_still_there(self, heard: Heard) -> str:
        return self.book.say("still_there") + " " + self.restate()

    def _on_resume(self, heard: Heard) -> str:
        if self.managing:
            return self._request()
        return self.book.say("callback_same")

    def _on_book_today(self, heard: Heard) -> str:
        if self.managing:
            return self._request()
        return self.book.say("yes") + " " + self.restate()

    def _on_manage(self, heard: Heard) -> str:
        """ "Keep it, reschedule, or cancel?" """
        if self.managing:
            return self._request()
        return self.book.say("keep_booking")

    def _on_anything_else(self, heard: Heard) -> str:
        if self.managing:
            return self._request()  # not done yet (done is handled before any question)
        if self.p.callback == "booked" and self.call == 2:
            self.finished = True
            self.stats.end_reason = "checked booking"
            return self.book.say("goodbye")
        return self.restate()

    def agent_hung_up(self) -> None:
        if not self.finished:
            self.finished = True
            if self.booked_at is None:
                self.stats.end_reason = self.stats.end_reason or "agent ended the call"


# ============================================================== outcomes


@dataclass
class CallLog:
    number: str
    lines: list[str] = field(default_factory=list)
    cut_turns: int = 0

    def add(self, who: str, text: str) -> None:
        self.lines.append(f"{who}: {text}")


@dataclass
class BookingSeen:
    property_id: str
    tour_type: str
    start: datetime
    caller_name: str | None


@dataclass
class Outcome:
    """One persona's result: what the metrics are made of."""

    persona: Persona
    calls: list[CallLog]
    stats: Stats
    bookings: list[BookingSeen]
    final_name: str | None
    accepted: list[datetime]
    seconds: float = 0.0
    voice: str = ""  # voice mode: how the caller sounded
    cancelled: list[BookingSeen] = field(default_factory=list)  # the caller's cancelled tours
    final_email: str | None = None  # what the agent's state kept at the end of the last call
    final_phone: str | None = None

    @property
    def success(self) -> bool:
        """The store holds what the caller wanted, and its strategy's own checks hold."""
        return self.store_ok and not self.checks

    @property
    def checks(self) -> list[tuple[str, str]]:
        """(cause, example) for each check of asks_repeat, gives_contact or
        hangs_up_mid_confirm that failed: a repeat request not honoured, a contact kept
        otherwise than given, a cut-off caller who had to say its tour again."""
        p, stats = self.persona, self.stats
        if p.strategy == "asks_repeat":
            return [
                (f"repeat request not honoured ({what})", mask(example, p))
                for what, example in stats.repeat_misses
            ]
        if p.strategy == "gives_contact":
            return self._contact_checks()
        if p.strategy != "hangs_up_mid_confirm":
            return []
        if not stats.cut_off:
            return [("no 'Shall I book it?' to hang up on", "")] if self.bookings else []
        if stats.facts_repeated:
            n = len(stats.facts_repeated)
            return [(f"cut-off caller had to repeat {n} fact{'s' * (n > 1)} on call 2",
                     ", ".join(stats.facts_repeated))]  # fmt: skip
        return []

    def _contact_checks(self) -> list[tuple[str, str]]:
        p = self.persona
        if not self.stats.contact_given:
            return []
        out = []
        kept = (self.final_email or "").strip().lower()
        if p.contact_email and kept != p.contact_email:
            how = "email not kept" if not kept else "email kept wrong"
            out.append((f"contact kept differs: {how}", f"gave {p.contact_email}, kept {kept!r}"))
        phone = _last_ten(self.final_phone)
        if p.contact_phone and phone != _last_ten(p.contact_phone):
            how = (
                "phone not kept" if not phone
                else "caller ID kept, not the number given" if phone == _last_ten(p.phone)
                else "phone kept wrong"
            )  # fmt: skip
            out.append(
                (
                    f"contact kept differs: {how}",
                    f"gave {p.contact_phone}, kept {self.final_phone!r}",
                )
            )
        return out

    @property
    def store_ok(self) -> bool:
        """The store holds what the caller wanted in the end: its tour booked (at its final
        choice), moved (one booked tour, at the new time) or cancelled (none booked)."""
        p = self.persona
        if p.callback == "cancels":
            return not self.bookings and bool(self.cancelled)
        goal = p.goal
        wanted = {goal.start, *self.accepted}
        matching = [
            b
            for b in self.bookings
            if (b.property_id, b.tour_type) == (goal.building, goal.tour_type) and b.start in wanted
        ]
        if p.callback == "reschedules":
            return len(self.bookings) == 1 and bool(matching)
        return bool(matching)

    @property
    def name_ok(self) -> bool:
        """The name heard is the name given (no name at all for callers who refuse one)."""
        p = self.persona
        names = [n for n in (self.final_name, *(b.caller_name for b in self.bookings)) if n]
        if p.declines_name:
            return all(re.search(r"\d", n) for n in names)  # none, or the caller ID
        if not names:
            return False
        return all(fold(n) in {fold(p.name), fold(f"{p.first} {p.last}")} for n in names)

    @property
    def cut_turns(self) -> int:
        return sum(c.cut_turns for c in self.calls)

    def transcript(self) -> str:
        p = self.persona
        goal = (
            f"goal: {p.tour_type} tour of {p.building} at {p.start:%a %b %d %H:%M}, "
            f"{p.asked_size}->{p.unit_size}, style {p.style}"
        )
        first = p.first_goal
        if p.strategy == "changes_mind":
            goal += (
                f"; asks first for {first.tour_type} tour of {first.building} at "
                f"{first.start:%a %b %d %H:%M}"
            )
        if p.new_start:
            goal += f"; moves it to {p.new_start:%a %b %d %H:%M}"
        parts = [f"--- {p.label}: {goal}" + (f"; voice: {self.voice}" if self.voice else "")]
        for n, call in enumerate(self.calls, 1):
            parts.append(f"  [call {n} from {call.number}]")
            parts += [f"  {line}" for line in call.lines]
        got = ", ".join(
            f"{b.property_id} {b.tour_type} {b.start:%a %b %d %H:%M}" for b in self.bookings
        )
        gone = ", ".join(
            f"{b.property_id} {b.tour_type} {b.start:%a %b %d %H:%M}" for b in self.cancelled
        )
        parts.append(
            f"  => {self.stats.end_reason}; bookings: {got or 'none'}"
            + (f"; cancelled: {gone}" if gone else "")
        )
        return "\n".join(parts)


# ============================================================== text mode


class SimClock:
    """The planner's clock: fixed, moved forward for callbacks "days later"."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def _collect(stream: AsyncIterator[str]) -> str:
    return " ".join([s async for s in stream]).strip()


class TextBench:
    """Runs personas through the real planner and MemoryService on a temporary data dir."""

    def __init__(
        self, data_dir: Path, now: datetime, seed: int, bank_path: Path = BANK_PATH
    ) -> None:
        from app.memory.service import MemoryService
        from app.planner.agent_planner import PlannerKit
        from app.settings import Settings

        settings = Settings(
            data_dir=data_dir,
            memory_mode="persistent",
            database_url=None,
            qdrant_url=None,
            openai_api_key=None,
            openai_base_url=None,
        )
        self.now = now
        self.seed = seed
        self.clock = SimClock(now)
        self.memory = MemoryService.open(settings)
        self.kit = PlannerKit.build(settings, engine=self.memory.engine, clock=self.clock)
        self.bank = load_bank(bank_path)

    def close(self) -> None:
        self.memory.flush()
        self.memory.close(timeout_s=30)

    async def run(self, personas: Sequence[Persona]) -> list[Outcome]:
        """First calls for everyone, then (memory flushed) the callbacks days later."""
        callers = {p.index: Caller(p, self.now, self.seed, self.bank) for p in personas}
        logs: dict[int, list[CallLog]] = {p.index: [] for p in personas}
        finals: dict[int, Any] = {}  # the planner state at the end of each one's last call
        seconds: dict[int, float] = {}
        for p in personas:
            started = time.perf_counter()
            caller = callers[p.index]
            log, finals[p.index] = await self.call(
                caller, p.phone, f"sim-{p.index}-1", remember=p.calls_back
            )
            logs[p.index].append(log)
            if caller.stats.cut_off:  # rings straight back, minutes later
                self.memory.flush()  # as the phone channel has closed the call by then
                self.clock.now = self.now + timedelta(minutes=p.callback_minutes)
                caller.new_call(2, now=self.clock.now)
                log, finals[p.index] = await self.call(
                    caller, p.callback_number, f"sim-{p.index}-2"
                )
                logs[p.index].append(log)
                self.clock.now = self.now
            seconds[p.index] = time.perf_counter() - started
        self.memory.flush()
        for p in personas:
            if p.callback is None:
                continue
            started = time.perf_counter()
            self.clock.now = self.now + timedelta(days=p.callback_days, hours=1)
            callers[p.index].new_call(2, now=self.clock.now)
            log, finals[p.index] = await self.call(
                callers[p.index], p.callback_number, f"sim-{p.index}-2"
            )
            logs[p.index].append(log)
            seconds[p.index] += time.perf_counter() - started
        self.clock.now = self.now
        return [
            Outcome(
                p,
                logs[p.index],
                callers[p.index].stats,
                self.bookings_of(p.phone),
                finals[p.index].caller_name,
                callers[p.index].accepted,
                seconds[p.index],
                cancelled=bookings_of(self.memory.engine, p.phone, "cancelled"),
                final_email=getattr(finals[p.index], "email", None),
                final_phone=getattr(finals[p.index], "phone", None),
            )
            for p in personas
        ]

    async def call(
        self, caller: Caller, number: str, call_id: str, *, remember: bool = True
    ) -> tuple[CallLog, Any]:
        """One conversation; with ``remember``, recorded in memory as every channel does.

        Only callers who call back need their first call remembered: recording the rest
        would only queue background memory work (embeddings) that no figure depends on.
        """
        context = self.memory.load_context(number)
        planner = self.kit.conversation(context.caller_id, context)
        recorder = _Recorder(self.memory, context.caller_id, call_id, remember)
        log = CallLog(number)

        def agent(text: str) -> None:
            log.add("AGENT", text)
            recorder.exchange("agent", text, planner.state)

        greeting = await _collect(planner.greet())
        agent(greeting)
        line = caller.opening(greeting)
        while line is not None:
            log.add("CALLER", line)
            recorder.exchange("user", line, None)
            digits = keypad_digits(line)
            reply = await _collect(
                planner.respond_dtmf(digits) if digits else planner.respond(line)
            )
            agent(reply)
            if planner.ended:
                caller.agent_hung_up()
            if caller.finished:
                break
            line = caller.next_line(reply)
        recorder.end(planner.state)
        return log, planner.state

    def bookings_of(self, number: str) -> list[BookingSeen]:
        return active_bookings(self.memory.engine, number)


class _Recorder:
    """Writes one call to MemoryService the way the phone channel does (or does nothing)."""

    def __init__(self, memory: Any, caller_id: str, call_id: str, on: bool) -> None:
        self.memory, self.cid, self.call_id, self.on = memory, caller_id, call_id, on
        if on:
            memory.start_call(caller_id, call_id, "phone")

    def exchange(self, role: str, text: str, state: Any) -> None:
        if not self.on:
            return
        self.memory.record_exchange(self.cid, self.call_id, "phone", role, text)
        if state is not None and state.changed:
            self.memory.save_snapshot(self.cid, self.call_id, state)

    def end(self, state: Any) -> None:
        if self.on:
            self.memory.end_call(self.cid, self.call_id, state)


def active_bookings(engine: Any, number: str) -> list[BookingSeen]:
    """Every active booking the store holds for this caller (the source of truth)."""
    return bookings_of(engine, number, "booked")


def bookings_of(engine: Any, number: str, status: str) -> list[BookingSeen]:
    """The caller's bookings with ``status`` ("booked" or "cancelled") in the store."""
    from sqlalchemy import select

    from app.domain.identity import normalize_caller_id
    from app.stores.bookings import BookingRow

    table = BookingRow.__table__
    with engine.connect() as conn:
        rows = conn.execute(
            select(table).where(
                table.c.caller_id == normalize_caller_id(number), table.c.status == status
            )
        ).all()
    return [
        BookingSeen(r.property_id, r.tour_type, r.start.astimezone(NY), r.caller_name) for r in rows
    ]


def run_text(
    count: int, seed: int, now: datetime | None = None, bank_path: Path = BANK_PATH
) -> list[Outcome]:
    """The whole text run on a throwaway data dir, callers phrasing from ``bank_path``."""
    now = now or sim_now()
    personas = make_personas(count, seed, now)
    with tempfile.TemporaryDirectory(prefix="tourline-callers-", ignore_cleanup_errors=True) as tmp:
        bench = TextBench(Path(tmp), now, seed, bank_path)
        try:
            return asyncio.run(bench.run(personas))
        finally:
            bench.close()


# ============================================================== figures


@dataclass
class Figures:
    """Metrics over a group of outcomes."""

    callers: int
    success: int
    name_ok: int
    asked: int
    answered: int
    longest_repeat: int
    over_two: int  # runs where one question came more than twice in a row
    turns_to_book: list[int]
    recall_hits: int
    recall_tries: int
    cut_turns: int

    @classmethod
    def of(cls, outcomes: Sequence[Outcome]) -> Figures:
        recalls = [o.stats.recall for o in outcomes if len(o.calls) > 1]
        return cls(
            callers=len(outcomes),
            success=sum(o.success for o in outcomes),
            name_ok=sum(o.name_ok for o in outcomes),
            asked=sum(o.stats.questions_asked for o in outcomes),
            answered=sum(o.stats.questions_answered for o in outcomes),
            longest_repeat=max((o.stats.longest_repeat for o in outcomes), default=0),
            over_two=sum(o.stats.longest_repeat > 2 for o in outcomes),
            turns_to_book=[
                o.stats.turns_to_book
                for o in outcomes
                if o.success and o.stats.turns_to_book is not None
            ],
            recall_hits=sum(bool(r) for r in recalls),
            recall_tries=len(recalls),
            cut_turns=sum(o.cut_turns for o in outcomes),
        )

    def row(self, name: str, voice: bool) -> str:
        pct = lambda a, b: f"{100 * a / b:.1f}%".replace(".0%", "%") if b else "–"  # noqa: E731
        median = f"{statistics.median(self.turns_to_book):g}" if self.turns_to_book else "–"
        cells = [
            name,
            str(self.callers),
            f"{pct(self.success, self.callers)} ({self.success})",
            pct(self.name_ok, self.callers),
            f"{self.answered}/{self.asked}" if self.asked else "–",
            f"{self.longest_repeat} ({self.over_two})",
            median,
            f"{self.recall_hits}/{self.recall_tries}" if self.recall_tries else "–",
        ]
        if voice:
            cells.append(str(self.cut_turns))
        return "| " + " | ".join(cells) + " |"


def table(outcomes: Sequence[Outcome], voice: bool = False) -> list[str]:
    header = [
        "strategy", "callers", "task success", "name right", "questions answered",
        "longest repeat (runs > 2)", "median turns to book", "return-call recall",
    ]  # fmt: skip
    if voice:
        header.append("cut turns")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name in groups():
        group = [o for o in outcomes if o.persona.group == name]
        if group:
            lines.append(Figures.of(group).row(name, voice))
    lines.append(Figures.of(outcomes).row("**all**", voice))
    return lines


_MASK_CLOCK = re.compile(r"\b\d{1,2}(?::\d{2})?\s*[AP]\.?M\.?", re.IGNORECASE)
_MASK_DAY = re.compile(
    rf"\b(?:{'|'.join(_WEEKDAYS)})(?:,? (?:{'|'.join(_MONTHS)}) \d{{1,2}})?", re.IGNORECASE
)


def mask(text: str, persona: Persona) -> str:
    """An agent line with names, days and times masked, so like failures group together."""
    for part in (persona.first, persona.last):
        text = re.sub(re.escape(part), "<name>", text, flags=re.IGNORECASE)
    text = _MASK_CLOCK.sub("<time>", _MASK_DAY.sub("<day>", text))
    return re.sub(r"\$[\d,]+", "<$>", text)


def failure_patterns(outcomes: Sequence[Outcome], top: int = 5) -> list[tuple[int, str]]:
    """Failures grouped by cause, most common first, each with one example.

    A caller without a booking is grouped by the agent's last question before it gave up;
    a wrong booking by what differed; a wrong name by how it went wrong.
    """
    counts: Counter[str] = Counter()
    examples: dict[str, str] = {}
    for o in outcomes:
        for cause, example in _causes(o):
            counts[cause] += 1
            examples.setdefault(cause, example)
    return [
        (n, f"{cause}{f' (e.g. {examples[cause]})' if examples[cause] else ''}")
        for cause, n in counts.most_common(top)
    ]


def _causes(o: Outcome) -> list[tuple[str, str]]:
    causes = []
    managed = _managed_cause(o) if not o.store_ok else None
    if managed:
        stuck = o.stats.stuck_on or _last_agent_line(o)
        reason = o.stats.end_reason.split(":")[0] or "no end"
        causes.append((f'{managed} ({reason}): "{mask(stuck, o.persona)}"', ""))
    elif not o.store_ok and o.bookings:
        causes.append((f"booked {_booking_diff(o)}", ""))
    elif not o.store_ok:
        stuck = o.stats.stuck_on or _last_agent_line(o)
        reason = o.stats.end_reason.split(":")[0] or "no booking"
        causes.append((f'{reason}: "{mask(stuck, o.persona)}"', ""))
    causes += o.checks
    if not o.name_ok:
        causes.append(_name_cause(o))
    return causes


def _last_ten(number: str | None) -> str:
    """A US number's last ten digits, however written ("" for none)."""
    return re.sub(r"\D", "", number or "")[-10:]


def check_patterns(outcomes: Sequence[Outcome]) -> list[tuple[int, str]]:
    """Every failed check of the asks_repeat, gives_contact and hangs_up_mid_confirm
    callers, grouped by cause, most common first, each with one example."""
    counts: Counter[str] = Counter()
    examples: dict[str, str] = {}
    for o in outcomes:
        for cause, example in o.checks:
            counts[cause] += 1
            examples.setdefault(cause, example)
    return [
        (n, f"{cause}{f' (e.g. {examples[cause]})' if examples[cause] else ''}")
        for cause, n in counts.most_common()
    ]


def check_summary(outcomes: Sequence[Outcome]) -> list[str]:
    """One line per new strategy: what its own check measured over the run."""
    lines = []
    asking = [o for o in outcomes if o.persona.strategy == "asks_repeat"]
    if asking:
        asked = sum(o.stats.repeat_requests for o in asking)
        missed = Counter(what for o in asking for what, _ in o.stats.repeat_misses)
        by_what = ", ".join(f"{what} {n}" for what, n in missed.most_common()) or "none"
        lines.append(
            f"asks_repeat: {asked - sum(missed.values())}/{asked} repeat requests honoured "
            f"(not honoured, by what was asked again: {by_what})"
        )
    giving = [o for o in outcomes if o.persona.strategy == "gives_contact"]
    if giving:
        given = [o for o in giving if o.stats.contact_given]
        emails = [o for o in given if o.persona.contact_email]
        phones = [o for o in given if o.persona.contact_phone]
        bad = Counter(c.split(": ")[1].split()[0] for o in given for c, _ in o._contact_checks())
        lines.append(
            f"gives_contact: {len(given)}/{len(giving)} gave a contact; email kept as given "
            f"{len(emails) - bad['email']}/{len(emails)}, cell number kept as given "
            f"{len(phones) - bad['phone'] - bad['caller']}/{len(phones)}"
        )
    cut = [o for o in outcomes if o.persona.strategy == "hangs_up_mid_confirm"]
    if cut:
        rang = [o for o in cut if o.stats.cut_off]
        facts = Counter(len(o.stats.facts_repeated) for o in rang)
        spread = ", ".join(f"{n} fact{'s' * (n != 1)}: {facts[n]}" for n in sorted(facts))
        total = sum(len(o.stats.facts_repeated) for o in rang)
        lines.append(
            f"hangs_up_mid_confirm: {len(rang)}/{len(cut)} cut off at 'Shall I book it?' and "
            f"rang back; facts repeated on call 2: {total} in all ({spread or 'none'})"
        )
    return lines


def _managed_cause(o: Outcome) -> str | None:
    """Why a caller who moves or cancels its tour failed (None for other callers)."""
    p = o.persona
    if p.callback not in ("reschedules", "cancels"):
        return None
    if not o.bookings and not o.cancelled:
        return "no tour booked on the first call"
    if p.callback == "cancels":
        return "a tour cancelled, another still booked" if o.cancelled else "tour not cancelled"
    if not o.bookings:
        return "tour cancelled instead of moved"
    if len(o.bookings) > 1:
        return "a second tour booked instead of the tour moved"
    if o.bookings[0].start.date() == p.start.date():
        return "tour not moved"
    return f"tour moved to {_booking_diff(o)}"


def _booking_diff(o: Outcome) -> str:
    goal, b = o.persona.goal, o.bookings[0]
    if b.property_id != goal.building:
        return "the wrong building"
    if b.tour_type != goal.tour_type:
        return "the wrong tour type"
    if b.start.date() != goal.start.date():
        return "the wrong day"
    return "a time the caller didn't ask for"


def _name_cause(o: Outcome) -> tuple[str, str]:
    """How the kept name differs from the one given."""
    p = o.persona
    kept = next((n for n in (o.final_name, *(b.caller_name for b in o.bookings)) if n), None)
    example = f"{p.name!r} kept as {kept!r}"
    if p.declines_name:
        return "name invented for a caller who gave none", example
    if kept is None:
        return "no name kept", f"{p.name!r}"
    given = [fold(p.name), fold(f"{p.first} {p.last}")]
    ascii_only = fold("".join(ch for ch in p.name if ch.isascii()))
    if fold(kept) == fold(p.first) and p.full_name:
        return "first name only", example
    if fold(kept).replace(" ", "") in (g.replace(" ", "") for g in given):
        return "name's words run together (spelled)", example
    if fold(kept) == ascii_only or ascii_only.startswith(fold(kept)):
        return "cut at or dropped an accented letter", example
    if any(g.startswith(fold(kept)) for g in given):
        return "name cut short", example
    return "a different name", example


def _last_agent_line(o: Outcome) -> str:
    lines = [line for call in o.calls for line in call.lines if line.startswith("AGENT")]
    return question_sentence(lines[-1].split(": ", 1)[1]) if lines else ""


def end_reasons(outcomes: Sequence[Outcome]) -> Counter[str]:
    return Counter(
        o.stats.end_reason.split(":")[0] or "(caller still talking)"
        for o in outcomes
        if not o.success
    )


def pick_failures(outcomes: Sequence[Outcome], count: int) -> list[Outcome]:
    """A few failing runs, one per strategy first, so the transcripts cover different paths."""
    failed = [o for o in outcomes if not o.success or not o.name_ok or o.cut_turns]
    chosen: list[Outcome] = []
    for name in groups():
        chosen += [o for o in failed if o.persona.group == name][:1]
    chosen += [o for o in failed if o not in chosen]
    return chosen[:count]


def report_text(
    outcomes: Sequence[Outcome], command: str, seconds: float, bank_path: Path = BANK_PATH
) -> str:
    from bench.report import machine_line

    names = {o.persona.first for o in outcomes}, {o.persona.last for o in outcomes}
    lines = [
        "## Self-play callers: text",
        "",
        f"Command: `{command}` — {machine_line()}. Phrasing bank: `{bank_label(bank_path)}`.",
        "",
        f"{len(outcomes)} simulated callers ({len(names[0])} distinct first names, "
        f"{len(names[1])} last names, from {len({o.persona.locale for o in outcomes})} "
        "Faker locales) talk to the real planner (rule brain, fixed clock) with a real SQLite "
        "booking store and the real MemoryService; callbacks come days later from a differently "
        f"formatted number. Planner at {planner_version()}. Run time {seconds:.0f} s "
        f"({1000 * seconds / max(len(outcomes), 1):.0f} ms per caller).",
        "",
        *table(outcomes),
        "",
        *_legend(voice=False),
        "",
        "Goals (issue 10): task success ≥ 99%, return-call recall 100%, no question more than "
        "twice in a row, median turns to book ≤ 6.",
        "",
        "Most common failures, by cause (a caller left without a booking: the agent's last "
        "question before it gave up):",
        "",
        *[f"- {n}× {text}" for n, text in failure_patterns(outcomes)],
        "",
        f"Unanswered caller questions by topic: {_unanswered_topics(outcomes) or 'none'}.",
    ]
    checks = check_summary(outcomes)
    if checks:
        lines += ["", "Checks of the callers who ask for a repeat, give a contact or get cut off:"]
        lines += ["", *[f"- {line}" for line in checks]]
        lines += [f"- {n}× {text}" for n, text in check_patterns(outcomes)]
    return "\n".join(lines)


def _unanswered_topics(outcomes: Sequence[Outcome]) -> str:
    topics = Counter(
        line.split(")", 1)[0].lstrip("(") for o in outcomes for line in o.stats.unanswered
    )
    return ", ".join(f"{topic} {n}" for topic, n in topics.most_common())


def planner_version() -> str:
    """Which planner the figures are about: the commit, and whether app/ had local edits."""
    import subprocess

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--", "app", "prompts")
    return f"{commit}{' + uncommitted app/prompts changes' if dirty else ''}"


def _legend(voice: bool) -> list[str]:
    lines = [
        "- task success: the store holds a booking for the persona's building, tour type and "
        "time, or an offered slot the caller accepted (changes_mind: its final choice, not "
        "the first; callback/reschedules: exactly one booked tour, at the new time or an "
        "offered one near it; callback/cancels: no booked tour, one cancelled); and for "
        'asks_repeat, every reply to "say that again" carries what was asked or offered (the '
        "times, buildings, read-back, or the same question); for gives_contact, the state "
        'keeps the email and cell number given; for hangs_up_mid_confirm, cut off at "Shall '
        'I book it?", its call back books the tour without its repeating building, tour '
        "type or time;",
        "- name right: the name the agent kept (state and booking) is the name given; callers "
        "who refuse a name count when none was invented;",
        "- questions answered: caller questions whose answer (a $ figure, pets, parking, an "
        'address, times) is in the next reply (one "which building?" allowed);',
        "- longest repeat: the most times one question came in a row (in brackets: runs where "
        "it came 3+ times);",
        "- turns to book: caller turns until the confirmation code, successful callers only;",
        "- return-call recall: the callback's greeting names the building or the booked time "
        '(a cut-off caller\'s: the greeting or the reply to "we got cut off" names the '
        "building or time of the tour it was about to book).",
    ]
    if voice:
        lines.append(
            "- cut turns: agent turns cut by a clear (barge-in) or heard in more than one piece."
        )
    return lines


def print_run(outcomes: Sequence[Outcome], show_failures: int, voice: bool = False) -> None:
    print("\n".join(table(outcomes, voice)))
    print("\nwhy failed callers stopped:", dict(end_reasons(outcomes).most_common()))
    print("\nmost common failure patterns:")
    for n, text in failure_patterns(outcomes):
        print(f"  {n:3d}× {text}")
    checks = check_summary(outcomes)
    if checks:
        print("\nthe asks_repeat / gives_contact / hangs_up_mid_confirm checks:")
        for line in checks:
            print(f"  {line}")
        for n, text in check_patterns(outcomes):
            print(f"  {n:3d}× {text}")
    print("\nunanswered caller questions (question -> the agent's next reply):")
    for o in outcomes:
        for line in o.stats.unanswered:
            print(f"  [{o.persona.style} #{o.persona.index}] {line}")
    for outcome in pick_failures(outcomes, show_failures):
        print()
        print(outcome.transcript())


def print_transcripts(outcomes: Sequence[Outcome], wanted: str) -> None:
    """The transcripts of chosen personas (by number), e.g. to follow one fix."""
    chosen = {int(n) for n in wanted.split(",") if n.strip()}
    for outcome in outcomes:
        if outcome.persona.index in chosen:
            print()
            print(outcome.transcript())


# ============================================================== voice mode

TOKEN = "caller-sim-token"
PUBLIC = "https://tourline.example"
# espeak-ng voices and variants (none is the agent's Piper "joe").
# espeak-ng voices and variants (none is the agent's Piper "joe"); Scottish and Caribbean
# English were left out: Whisper tiny.en understood under 70% of their words, half as well.
ESPEAK_VOICES = (
    "en-us", "en-us+f2", "en-us+m3", "en-us+m7", "en-us+f3", "en-gb-x-rp", "en-gb+m3",
    "en-gb-x-rp+f4",
)  # fmt: skip
ESPEAK_MISSING = (
    "voice mode speaks the callers with espeak-ng, which is not installed here. "
    "Install it (bench only, not CI): apt-get update && apt-get install -y espeak-ng sox"
)


@dataclass(frozen=True)
class VoiceStyle:
    """How one persona sounds: an espeak-ng voice, or Piper pitch-shifted off the agent's."""

    engine: str  # "espeak" or "piper"
    voice: str  # espeak voice name; "joe" for Piper
    speed: float  # espeak words per minute, or Piper length_scale
    pitch: float  # espeak pitch 0-99, or Piper pitch factor (resampling)
    noise: float  # Piper noise_scale (0 for espeak)
    snr_db: float  # phone-line noise, signal to noise

    def describe(self) -> str:
        if self.engine == "espeak":
            how = f"espeak-ng {self.voice} {self.speed:.0f} wpm pitch {self.pitch:.0f}"
        else:
            how = f"piper joe x{self.pitch:.2f} pitch, length {self.speed:.2f}"
        return f"{how}, SNR {self.snr_db:.0f} dB"


def voice_style(persona: Persona, seed: int) -> VoiceStyle:
    """A seeded voice per persona: half espeak-ng, half Piper at another pitch and pace."""
    rng = random.Random(f"voice-{seed}-{persona.index}")
    snr = rng.uniform(15, 25)
    if persona.index % 2 == 0:
        return VoiceStyle(
            "espeak", rng.choice(ESPEAK_VOICES), rng.uniform(140, 175), rng.uniform(30, 70), 0, snr
        )
    factor = rng.choice([0.84, 0.89, 1.12, 1.19])  # about 2-3 semitones down or up
    return VoiceStyle(
        "piper", "joe", rng.uniform(0.9, 1.2) * factor, factor, rng.uniform(0.3, 0.8), snr
    )


class VoiceRenderer:
    """A voice that is not the agent's, as raw audio: an espeak-ng voice, or Piper's joe
    pitch-shifted (rendered slower, then played back faster)."""

    def __init__(self, style: VoiceStyle) -> None:
        self.style = style
        self._piper: Any = None

    def pcm8k(self, text: str) -> npt.NDArray[np.float32]:
        """``text`` spoken, at 8 kHz, with 150 ms of silence either side (float32)."""
        import soxr

        pcm, rate = self._espeak(text) if self.style.engine == "espeak" else self._piper_pcm(text)
        pcm8k = soxr.resample(pcm.astype(np.float32), rate, 8000)
        lead = np.zeros(int(0.15 * 8000), dtype=np.float32)
        return np.concatenate([lead, pcm8k, lead])

    def _espeak(self, text: str) -> tuple[npt.NDArray[np.float32], int]:
        import subprocess
        import wave
        from io import BytesIO

        s = self.style
        args = ["espeak-ng", "-v", s.voice, "-s", str(int(s.speed)), "-p", str(int(s.pitch))]
        wav = subprocess.run([*args, "--stdout", text], capture_output=True, check=True).stdout
        with wave.open(BytesIO(wav)) as w:
            rate = w.getframerate()
            pcm = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
        return pcm.astype(np.float32), rate

    def _piper_pcm(self, text: str) -> tuple[npt.NDArray[np.float32], int]:
        if self._piper is None:
            from app.audio.tts import PiperTTS

            self._piper = PiperTTS(
                threads=1,
                length_scale=self.style.speed,
                noise_scale=self.style.noise,
                noise_w_scale=self.style.noise,
            )
        raw = b"".join(self._piper.synthesize(text))
        pcm = np.frombuffer(raw, dtype=np.int16).astype(np.float32)
        return pcm, int(self._piper.sample_rate * self.style.pitch)


class CallerMouth:
    """Renders a persona's lines as phone frames: its voice, then line noise at its SNR."""

    def __init__(self, style: VoiceStyle, seed: int) -> None:
        from sim.twilio import CallerVoice

        self.style = style
        self.rng = np.random.default_rng(seed)
        self.frames = CallerVoice(seed=seed)  # μ-law framing and the idle line's noise
        self.voice = VoiceRenderer(style)

    def render(self, text: str) -> Any:
        """Text -> ``Speech`` (CPU-bound: call it in a thread)."""
        noisy = add_line_noise(self.voice.pcm8k(text), self.style.snr_db, self.rng)
        return self.frames.from_pcm8k(noisy, text=text)


def add_line_noise(
    pcm: npt.NDArray[np.float32], snr_db: float, rng: np.random.Generator
) -> npt.NDArray[np.int16]:
    """Mix in band-limited hiss at ``snr_db`` below the speech level (active samples only)."""
    speech = pcm[np.abs(pcm) > 0.05 * (np.max(np.abs(pcm)) or 1.0)]
    level = float(np.sqrt(np.mean(speech**2))) if speech.size else 1000.0
    hiss = np.convolve(rng.normal(0.0, 1.0, pcm.size), np.ones(3) / 3, mode="same")
    hiss *= level / 10 ** (snr_db / 20) / (float(np.sqrt(np.mean(hiss**2))) or 1.0)
    return np.clip(np.rint(pcm + hiss), -32768, 32767).astype(np.int16)


async def _hear_agent(call: Any, log: CallLog, timeout_s: float = 20.0) -> str:
    """The agent's next turn as the caller hears it (through Whisper).

    A turn the agent cut itself (a ``clear``: it heard the caller go on) is not what it
    answers with: the caller keeps listening for the reply that follows. Either that, or a
    reply arriving in pieces, is a cut turn.
    """
    from sim.twilio import NoReply, transcribe

    turn = await call.listen(timeout_s=timeout_s)
    cut = False
    while turn.cleared and not call.closed.is_set():
        cut = True
        try:
            turn = await call.listen(timeout_s=8.0)
        except NoReply:
            break
    pieces = [turn]
    while call.unheard_media():  # more audio before the caller spoke: a reply in pieces
        pieces.append(await call.listen(timeout_s=2.0))
    cut = cut or len(pieces) > 1
    log.cut_turns += cut
    heard = " ".join([t for t in [await transcribe(p) for p in pieces] if t])
    log.add("AGENT", heard + (" [cut]" if cut else ""))
    return heard


@contextlib.asynccontextmanager
async def phone_call(base_url: str, number: str, mouth: CallerMouth) -> AsyncIterator[Any]:
    """``TwilioCall.connect`` with a hang-up that cannot hang.

    Why not ``connect`` itself: its shutdown awaits the player task after one ``cancel()``,
    and on Python 3.11 ``asyncio.wait_for`` can swallow a cancellation that lands as its
    awaitable completes (the player waits on one), so a call could hang the run for good.
    Here tasks are cancelled until they are really done.
    """
    from sim.twilio import (
        MediaStream,
        TwilioCall,
        local_socket_url,
        new_sid,
        parse_twiml,
        post_voice_webhook,
        twilio_form,
        upgrade_signature,
    )

    form = twilio_form(new_sid("CA"), number)
    instruction = parse_twiml(await post_voice_webhook(base_url, PUBLIC, TOKEN, form))
    stream = await MediaStream.open(
        local_socket_url(base_url, instruction.url),
        signature=upgrade_signature(TOKEN, instruction.url),
        call_sid=instruction.parameters.get("CallSid", form["CallSid"]),
        account_sid=form["AccountSid"],
    )
    call = TwilioCall(stream, base_url=base_url, instruction=instruction, voice=mouth.frames)
    try:
        await call.begin(instruction.parameters)
        yield call
    finally:
        await call.hang_up()
        await _cancel_until_done(call._tasks)  # the harness's own tasks (see above)
        await stream.close()


async def _cancel_until_done(tasks: Sequence[asyncio.Task[Any]], tries: int = 20) -> None:
    for _ in range(tries):
        pending = [t for t in tasks if not t.done()]
        if not pending:
            return
        for task in pending:
            task.cancel()
        await asyncio.wait(pending, timeout=0.25)


async def voice_call(base_url: str, caller: Caller, mouth: CallerMouth, number: str) -> CallLog:
    """One phone call: the caller speaks, hears the agent through Whisper, and reacts."""
    log = CallLog(number)
    try:
        async with asyncio.timeout(MAX_TURNS * 45):
            await _talk(base_url, caller, mouth, number, log)
    except TimeoutError:
        caller._hang_up("harness: the call overran its time")
    return log


async def _talk(
    base_url: str, caller: Caller, mouth: CallerMouth, number: str, log: CallLog
) -> None:
    from sim.twilio import CallEnded, NoReply, fetch_timeline

    sid = ""
    try:
        async with phone_call(base_url, number, mouth) as call:
            sid = call.call_sid
            line = caller.opening(await _hear_agent(call, log))
            while line is not None:
                log.add("CALLER", line)
                digits = keypad_digits(line)
                if digits:
                    await call.press(digits)
                else:
                    await call.queue_speech(await asyncio.to_thread(mouth.render, line))
                try:
                    reply = await _hear_agent(call, log)
                except NoReply:
                    log.add("AGENT", "(no reply)")
                    reply = ""
                if call.closed.is_set():
                    caller.agent_hung_up()
                if caller.finished:
                    break
                line = caller.next_line(reply)
    except CallEnded:
        caller.agent_hung_up()
    except Exception as exc:  # a bench reports a broken call; it does not stop
        caller._hang_up(f"harness error: {type(exc).__name__}: {exc}")
    if sid:
        with contextlib.suppress(Exception):
            log.lines += _server_view(await fetch_timeline(base_url, sid) or [])


def _server_view(events: list[dict[str, Any]]) -> list[str]:
    """What the server heard and said, to tell recognition errors from dialogue ones."""
    shown = {"caller_said": "server heard", "agent_said": "agent said", "barge_in": "barge-in"}
    return [
        f"  ({shown[e['event']]}: {e.get('text', e.get('caller_so_far', ''))})"
        for e in events
        if e.get("event") in shown
    ]


async def _voice_persona(
    base_url: str,
    persona: Persona,
    now: datetime,
    seed: int,
    gate: asyncio.Semaphore,
    bank_path: Path = BANK_PATH,
) -> tuple[Persona, Caller, list[CallLog], float, str]:
    caller = Caller(persona, now, seed, load_bank(bank_path))
    style = voice_style(persona, seed)
    mouth = CallerMouth(style, seed * 1000 + persona.index)
    async with gate:
        started = time.monotonic()
        logs = [await voice_call(base_url, caller, mouth, persona.phone)]
        if persona.callback or caller.stats.cut_off:
            await asyncio.sleep(2.0)  # the server closes the first call's memory
            caller.new_call(2)
            logs.append(await voice_call(base_url, caller, mouth, persona.callback_number))
        print(f"  {persona.label}: {caller.stats.end_reason} ({time.monotonic() - started:.0f} s)")
        return persona, caller, logs, time.monotonic() - started, style.describe()


def run_voice(
    count: int, seed: int, concurrency: int, bank_path: Path = BANK_PATH
) -> list[Outcome]:
    """Phone the real server with ``count`` personas (voice needs the real clock)."""
    import shutil

    if shutil.which("espeak-ng") is None:
        raise SystemExit(ESPEAK_MISSING)
    from sim.server import running_server

    now = datetime.now(NY).replace(second=0, microsecond=0)
    personas = make_personas(count, seed, now)
    with tempfile.TemporaryDirectory(prefix="tourline-voice-callers-") as tmp:
        data_dir = Path(tmp)
        env = {"TWILIO_AUTH_TOKEN": TOKEN, "TOURLINE_PUBLIC_URL": PUBLIC}
        with running_server(data_dir, **env) as server:
            print(f"server up at {server.base_url}", flush=True)
            results = asyncio.run(
                _run_voice(server.base_url, personas, now, seed, concurrency, bank_path)
            )
        return _voice_outcomes(results, data_dir)


async def _run_voice(
    base_url: str,
    personas: Sequence[Persona],
    now: datetime,
    seed: int,
    concurrency: int,
    bank_path: Path = BANK_PATH,
) -> list[tuple[Persona, Caller, list[CallLog], float, str]]:
    from bench.call_latency import wait_until_warm
    from sim.twilio import preload_models

    await wait_until_warm(base_url)
    await preload_models(voice=False)
    gate = asyncio.Semaphore(concurrency)
    return await asyncio.gather(
        *(_voice_persona(base_url, p, now, seed, gate, bank_path) for p in personas)
    )


def _voice_outcomes(
    results: Sequence[tuple[Persona, Caller, list[CallLog], float, str]], data_dir: Path
) -> list[Outcome]:
    """Judge each caller by what the server's store holds, after the server has stopped."""
    from app.domain.identity import normalize_caller_id
    from app.stores.conversations import ConversationStore
    from app.stores.database import create_db_engine

    engine = create_db_engine(f"sqlite:///{data_dir / 'tourline.db'}")
    store = ConversationStore(engine)
    outcomes = []
    for persona, caller, logs, seconds, voice in results:
        snapshot = store.latest_snapshot(normalize_caller_id(persona.phone))
        state = _snapshot_state(snapshot.state_json) if snapshot else None
        bookings = active_bookings(engine, persona.phone)
        cancelled = bookings_of(engine, persona.phone, "cancelled")
        outcomes.append(
            Outcome(
                persona,
                logs,
                caller.stats,
                bookings,
                getattr(state, "caller_name", None),
                caller.accepted,
                seconds,
                voice,
                cancelled,
                getattr(state, "email", None),
                getattr(state, "phone", None),
            )
        )
    engine.dispose()
    return outcomes


def _snapshot_state(state_json: str) -> Any:
    from app.domain.state import PlannerState

    return PlannerState.from_json(state_json)


def report_voice(
    outcomes: Sequence[Outcome], command: str, seconds: float, bank_path: Path = BANK_PATH
) -> str:
    from bench.report import machine_line

    per_call = [o.seconds / len(o.calls) for o in outcomes]
    styles = Counter(o.voice.split()[0] for o in outcomes)
    lines = [
        "## Self-play callers: voice",
        "",
        f"Command: `{command}` — {machine_line()}. Phrasing bank: `{bank_label(bank_path)}`.",
        "",
        f"{len(outcomes)} of the same personas phone the real server (`POST /twilio/voice` + "
        "`WS /twilio/media`, the Twilio simulator in sim/twilio/) in voices "
        f"other than the agent's ({styles['espeak-ng']} espeak-ng voices and speeds, "
        f"{styles['piper']} Piper joe re-pitched with varied length and noise scales), with "
        "phone-line noise at 15–25 dB SNR; the caller hears the agent through Whisper tiny.en "
        f"and reacts with the same policy as by text. Planner at {planner_version()}. "
        f"Run time {seconds:.0f} s; {statistics.median(per_call):.0f} s per call (median).",
        "",
        *table(outcomes, voice=True),
        "",
        *_legend(voice=True),
        "",
        "Goals (issue 10): task success ≥ 95% by voice, return-call recall 100%, 0 cut turns.",
        "",
        "Most common failures, by cause:",
        "",
        *[f"- {n}× {text}" for n, text in failure_patterns(outcomes)],
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--text", action="store_true", help="through the planner, by text")
    mode.add_argument("--voice", action="store_true", help="phoning the real server")
    parser.add_argument("--callers", type=int, default=None)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--show-failures", type=int, default=3)
    parser.add_argument(
        "--transcripts", default="", help="persona numbers whose transcripts to print: 3,11"
    )
    parser.add_argument(
        "--bank",
        type=Path,
        default=BANK_PATH,
        help=f"phrasing bank (default {bank_label(BANK_PATH)}); others never write the docs",
    )
    parser.add_argument("--no-report", action="store_true", help="don't write docs/benchmarks.md")
    args = parser.parse_args(argv)
    bank: Path = args.bank.resolve()
    default_bank = bank == BANK_PATH.resolve()
    bank_flag = "" if default_bank else f" --bank {bank_label(bank)}"
    print(f"phrasing bank: {bank_label(bank)}", flush=True)
    report = not args.no_report and default_bank
    if not args.no_report and not default_bank:
        print("(not writing docs/benchmarks.md: its sections are about the default bank)")
    if args.text:
        count = args.callers or 300
        started = time.perf_counter()
        outcomes = run_text(count, args.seed, bank_path=bank)
        seconds = time.perf_counter() - started
        print_run(outcomes, args.show_failures)
        print_transcripts(outcomes, args.transcripts)
        print(f"\n{count} callers in {seconds:.1f} s")
        command = (
            f"python bench/caller_sim.py --text --callers {count} --seed {args.seed}{bank_flag}"
        )
        if report:
            from bench.report import write_section

            write_section("caller_sim_text", report_text(outcomes, command, seconds, bank))
    else:
        count = args.callers or 12
        started = time.perf_counter()
        outcomes = run_voice(count, args.seed, args.concurrency, bank)
        seconds = time.perf_counter() - started
        print_run(outcomes, args.show_failures, voice=True)
        print_transcripts(outcomes, args.transcripts)
        print(f"\n{count} callers in {seconds:.1f} s")
        command = (
            f"python bench/caller_sim.py --voice --callers {count} --seed {args.seed} "
            f"--concurrency {args.concurrency}{bank_flag}"
        )
        if report:
            from bench.report import write_section

            write_section("caller_sim_voice", report_voice(outcomes, command, seconds, bank))


if __name__ == "__main__":
    main()
