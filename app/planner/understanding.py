"""Understanding one caller utterance: what they told us and what they want.

Each extractor is a small pure function over prepared text (see ``numbers.prepare``), so it
can be tested alone with tricky inputs. ``understand`` runs them all and returns one
``Understanding``; the dialogue decides what to do with it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

import dateparser
import phonenumbers

from app.planner.catalog import Catalog, normalize_words
from app.planner.numbers import prepare, to_int
from app.planner.state import ContactPreference, Pet, TourType, UnitSize

# ---------------------------------------------------------------- result


@dataclass
class Understanding:
    """Everything one utterance said. ``None`` means "not mentioned"."""

    text: str
    name: str | None = None
    property_ids: list[str] = field(default_factory=list)
    unit_size: UnitSize | None = None
    pets: list[Pet] | None = None
    budget: int | None = None
    move_in: date | None = None
    tour_type: TourType | None = None
    tour_day: date | None = None
    tour_clock: time | None = None
    tour_period: str | None = None
    email: str | None = None
    phone: str | None = None
    contact_preference: ContactPreference | None = None
    affirm: bool | None = None
    correction: bool = False
    questions: list[str] = field(default_factory=list)
    intents: set[str] = field(default_factory=set)

    @property
    def mentions_time(self) -> bool:
        return any(x is not None for x in (self.tour_day, self.tour_clock, self.tour_period))

    @property
    def has_facts(self) -> bool:
        """Did the caller give us any information at all?"""
        return bool(
            self.name
            or self.property_ids
            or self.mentions_time
            or any(
                x is not None
                for x in (
                    self.unit_size,
                    self.pets,
                    self.budget,
                    self.move_in,
                    self.tour_type,
                    self.email,
                    self.phone,
                    self.contact_preference,
                )
            )
        )


# ---------------------------------------------------------------- yes / no, intents


def _any(*patterns: str) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in patterns))


_YES = _any(
    r"^(?:oh |um |uh |well )?(?:yes|yeah|yea|yep|yup|sure|ok|okay|correct|right|absolutely|"
    r"definitely|certainly|perfect|great|sounds good|sounds great|please|exactly|of course|"
    r"affirmative|alright|all right|go ahead|that works|works for me|do it|book it)\b",
    r"\bthat(?:'s| is) (?:right|correct|perfect|great|fine)\b",
    r"\b(?:please )?(?:go ahead|book it|confirm it|lock it in)\b",
    r"\bthat works\b",
)
_NO = _any(
    r"^(?:oh |um |uh |well )?(?:no|nope|nah|negative|not really|not quite|wrong)\b(?! (?:pets?|animals))",
    r"\bthat(?:'s| is) (?:not right|wrong|incorrect)\b",
    r"\bdon't book\b",
)
_CORRECTION = _any(
    r"\bactually\b",
    r"\bi meant\b",
    r"\bi mean\b",
    r"\bmake (?:that|it)\b",
    r"\bchange (?:that|it)\b",
    r"\binstead\b",
    r"\bscratch that\b(?! .*start)",
    r"\bwait\b",
    r"\bsorry\b.*\b(?:meant|mean|not)\b",
    r"\brather\b",
)
_INTENTS: dict[str, re.Pattern[str]] = {
    "goodbye": _any(
        r"\b(?:good ?bye|bye bye|bye|see you|see ya|have a (?:good|great|nice) (?:day|one|night))\b",
        r"^(?:no )?that(?:'s| is| will be) (?:all|it|everything)\b",
        r"\bnothing else\b",
        r"\bi(?:'m| am) (?:all set|done|good)\b(?! with)",
        r"\bhang(?:ing)? up\b",
    ),
    "repeat": _any(
        r"\b(?:repeat|say (?:that|it) again|come again|pardon|what did you say|"
        r"didn't (?:catch|hear|get) (?:that|you)|one more time)\b",
        r"^(?:sorry|what|huh)\s?\??$",
    ),
    "start_over": _any(r"\b(?:start (?:over|again|from scratch)|from the (?:top|beginning)|reset)\b"),
    "cancel": _any(r"\bcancel\b"),
    "reschedule": _any(
        r"\breschedule\b",
        r"\b(?:move|change|switch) (?:my|the) (?:tour|appointment|booking|visit)\b",
    ),
    "book": _any(
        r"\b(?:book|schedule|set up|arrange|make|get) (?:a |an |me |us )*(?:tour|visit|viewing|showing|appointment)\b",
        r"\b(?:tour|see|visit|view|look at) (?:the |an |a |your )?(?:apartment|unit|place|building|property)\b",
        r"\b(?:take|do) a tour\b",
        r"\btour\b",
    ),
    "human": _any(r"\b(?:speak|talk) (?:to|with) (?:a |an )?(?:human|person|agent|someone|manager)\b"),
}


def detect_affirm(s: str) -> bool | None:
    """True for yes, False for no, None when the caller said neither."""
    if _NO.search(s):
        return False
    if _YES.search(s):
        return True
    return None


def detect_intents(s: str) -> set[str]:
    return {name for name, pattern in _INTENTS.items() if pattern.search(s)}


def detect_correction(s: str) -> bool:
    return bool(_CORRECTION.search(s))


# ---------------------------------------------------------------- questions

_TOPICS: dict[str, re.Pattern[str]] = {
    "parking": _any(r"\bpark(?:ing)?\b", r"\bgarage\b", r"\bmy car\b"),
    "pets": _any(
        r"\b(?:pets?|dogs?|cats?|animals?)\b.*\b(?:allow(?:ed)?|ok|okay|welcome|permitted|policy|friendly)\b",
        r"\b(?:allow|accept|permit|take)s? (?:pets?|dogs?|cats?|animals?)\b",
        r"\bpet (?:policy|friendly|fee|rent|deposit)\b",
        r"\b(?:can|could) i (?:bring|have|keep) (?:a |my |2 |two )?(?:pets?|dogs?|cats?)\b",
    ),
    "rent": _any(
        r"\bhow much\b",
        r"\b(?:rent|rents|price|prices|pricing|cost|costs)\b.*\?",
        r"\bwhat(?:'s| is| are) the (?:rent|price|cost)",
        r"\bwhat do .* cost\b",
    ),
    "amenities": _any(
        r"\bamenit(?:y|ies)\b",
        r"\b(?:gym|pool|fitness|rooftop|roof deck|doorman|concierge)\b",
        r"\bwhat does (?:the building|it) (?:have|offer)\b",
    ),
    "laundry": _any(r"\b(?:laundry|washer|dryer)\b"),
    "utilities": _any(r"\butilit(?:y|ies)\b", r"\b(?:heat|electric(?:ity)?|internet) included\b"),
    "lease": _any(r"\blease (?:length|term)s?\b", r"\bhow long (?:is|are) the lease"),
    "deposit": _any(r"\bsecurity deposit\b", r"\bdeposit\b"),
    "address": _any(r"\baddress\b", r"\bwhere (?:is|are)\b", r"\blocated\b", r"\blocation\b", r"\bneighbou?rhood\b"),
    "tour_hours": _any(r"\b(?:tour|showing|office) hours\b", r"\bwhen (?:can|do) (?:i|you) (?:tour|do tours)\b"),
}


def detect_questions(s: str) -> list[str]:
    """Topics the caller asked about (pets, parking, rent...)."""
    return [topic for topic, pattern in _TOPICS.items() if pattern.search(s)]


# ---------------------------------------------------------------- name

_NAME_INTRO = re.compile(
    r"\b(?:my name is|my name's|name is|names|this is|it's|it is|i'm|i am|call me|"
    r"you can call me)\s+([a-z][a-z'-]+(?:\s+[a-z][a-z'-]+)?)"
)
_NOT_NAMES = {
    "a", "an", "the", "looking", "interested", "calling", "here", "just", "not", "good",
    "fine", "great", "okay", "ok", "sorry", "trying", "wondering", "thinking", "hoping",
    "going", "moving", "free", "available", "about", "at", "on", "in", "back", "still",
    "also", "really", "so", "very", "afraid", "sure", "new", "all", "done", "the", "hi",
    "hello", "yes", "no", "actually", "that", "this", "what", "we", "i", "me", "my", "and",
    "a", "to", "for", "with", "by", "text", "email", "phone", "call", "be", "is", "it",
    "reaching", "ready", "curious", "set", "happy", "glad", "tired", "busy", "out", "over",
    "having", "getting", "planning", "needing", "searching",
}


def _title(name: str) -> str:
    return " ".join(part[:1].upper() + part[1:] for part in name.split())


def extract_name(s: str, expecting: bool = False) -> str | None:
    """The caller's name from "my name is Dana Lee" or, when we just asked, "Dana Lee"."""
    for match in _NAME_INTRO.finditer(s):
        words = match.group(1).split()
        if words[0] in _NOT_NAMES:
            continue
        kept = [w for w in words if w not in _NOT_NAMES]
        kept = kept[: len(kept) if len(kept) == len(words) else 1]
        return _title(" ".join(kept))
    if expecting:
        cleaned = re.sub(r"^(?:yes|yeah|sure|ok|okay|hi|hello|um|uh|it's|its)\b[\s,]*", "", s)
        words = re.findall(r"[a-z][a-z'-]*", cleaned)
        if 1 <= len(words) <= 3 and not any(w in _NOT_NAMES for w in words):
            return _title(" ".join(words))
    return None


# ---------------------------------------------------------------- unit, pets, budget

_UNIT = re.compile(
    r"\b(?:(studio)s?|([1-3])\s?(?:-\s?)?(?:bed ?rooms?|beds?|br|b r|bd|bdrm)\b)"
)


def extract_unit_size(s: str) -> UnitSize | None:
    """studio / 1br / 2br / 3br; the last one mentioned wins (corrections come last)."""
    found: UnitSize | None = None
    for match in _UNIT.finditer(s):
        found = "studio" if match.group(1) else f"{match.group(2)}br"  # type: ignore[assignment]
    return found


_PET_KINDS = {
    "cat": "cat", "cats": "cat", "kitten": "cat", "kittens": "cat", "kitty": "cat",
    "dog": "dog", "dogs": "dog", "puppy": "dog", "puppies": "dog", "pup": "dog",
    "bird": "bird", "birds": "bird", "parrot": "bird", "rabbit": "rabbit", "rabbits": "rabbit",
    "bunny": "rabbit", "fish": "fish", "hamster": "hamster", "hamsters": "hamster",
}
_PET = re.compile(
    r"\b(?:(\d+|a|an|one|a couple of|couple of|a pair of)\s+)?(?:(?:small|little|big|large|"
    r"old|young|senior|tiny|rescue|indoor|house)\s+)*(" + "|".join(_PET_KINDS) + r")\b"
)
_NO_PETS = re.compile(
    r"\b(?:no pets?|no animals?|don't have (?:any )?(?:pets?|animals?)|do not have (?:any )?pets?|"
    r"without (?:any )?pets?|pet ?free|zero pets|none)\b"
)
_OWNERSHIP = re.compile(r"\b(?:i|we|i've|we've)\s(?:have|got|own|'ve got|also have)\b|\bmy\b|\bour\b|\bwith\b")


def extract_pets(s: str, expecting: bool = False) -> list[Pet] | None:
    """Pets the caller has; [] for "no pets"; None when they didn't say."""
    if _NO_PETS.search(s) and not re.search(r"\b(?:i|we) have\b", s):
        return []
    matches = list(_PET.finditer(s))
    if not matches:
        return [] if expecting and re.match(r"^(?:no|nope|nah|none)\b", s) else None
    if not expecting and not _OWNERSHIP.search(s) and detect_questions(s):
        return None  # "do you allow dogs?" is a question, not a fact
    counts: dict[str, int] = {}
    for match in matches:
        amount, word = match.group(1), match.group(2)
        if amount is None:
            count = 2 if word.endswith("s") and word != "fish" else 1
        elif amount.isdigit():
            count = int(amount)
        elif "couple" in amount or "pair" in amount:
            count = 2
        else:
            count = 1
        kind = _PET_KINDS[word]
        counts[kind] = counts.get(kind, 0) + count
    return [Pet(kind=kind, count=count) for kind, count in counts.items()]


_MONEY = re.compile(
    r"(\$\s?)?(\d+(?:\.\d+)?)\s?(k\b|grand\b|thousand\b)?(\s?(?:dollars?|bucks)\b)?"
    r"(\s?(?:a|per|/)\s?month\b|\s?monthly\b)?"
)
_BUDGET_CUE = re.compile(
    r"\b(?:budget|around|about|up to|under|below|max(?:imum)?|no more than|less than|"
    r"spend|afford|roughly|approximately|between|range|somewhere)\b"
)


def extract_budget(s: str, expecting: bool = False) -> int | None:
    """Monthly budget in dollars, from "$3,200", "twenty five hundred" or "2.5k"."""
    best: int | None = None
    for match in _MONEY.finditer(s):
        dollar, number, thousands, unit, per_month = match.groups()
        value = float(number)
        if thousands:
            value *= 1000
        elif value < 10 and expecting and "." in number:
            value *= 1000  # "2.5" when asked for a budget means 2,500
        amount = int(round(value))
        context = s[max(0, match.start() - 30): match.start()]
        cued = bool(dollar or thousands or unit or per_month or _BUDGET_CUE.search(context))
        if not (cued or expecting):
            continue
        if 500 <= amount <= 30000:
            best = amount  # later figures win: "2500, actually 3000"
    return best


# ---------------------------------------------------------------- tour type, contact, email, phone

_VIRTUAL = re.compile(r"\b(?:virtual(?:ly)?|video|facetime|face time|zoom|online|remote(?:ly)?)\b")
_IN_PERSON = re.compile(
    r"\b(?:in person|in-person|come (?:by|in|over)|stop by|visit (?:in person|the building)|"
    r"see it (?:myself|with my own eyes)|walk ?through|on site)\b"
)


def extract_tour_type(s: str) -> TourType | None:
    """virtual or in_person; the last mentioned wins."""
    last: tuple[int, TourType] | None = None
    for pattern, value in ((_VIRTUAL, "virtual"), (_IN_PERSON, "in_person")):
        for match in pattern.finditer(s):
            if last is None or match.start() > last[0]:
                last = (match.start(), value)  # type: ignore[assignment]
    return last[1] if last else None


_CONTACT_WORD = r"(texts?|texting|sms|messages?|e-?mails?|calls?|phone(?: calls?)?)"
_CONTACT = re.compile(
    r"\b(?:prefer|rather|best|contact|reach|send|by|via|through|over)\b[^.?!]{0,25}?\b"
    + _CONTACT_WORD
    + r"|\b(text|e-?mail) me\b"
    + r"|\b(call) me (?:back|later|at|on|any ?time|instead)\b"
    + r"|\b" + _CONTACT_WORD + r" (?:is|are|works|would be) (?:best|better|fine|great|good)\b"
)


def extract_contact_preference(s: str) -> ContactPreference | None:
    """How the caller wants to hear from us: call, text or email."""
    match = _CONTACT.search(s)
    if not match:
        return None
    word = next(g for g in match.groups() if g)
    if word.startswith(("text", "sms", "message")):
        return "text"
    if word.startswith(("email", "e-mail")):
        return "email"
    return "call"


_EMAIL_WRITTEN = re.compile(r"[a-z0-9._%+-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}")
_EMAIL_SPOKEN = re.compile(
    r"\b([a-z0-9]+(?:\s?(?:dot|\.|underscore|dash|hyphen)\s?[a-z0-9]+)*)\s(?:at|@)\s"
    r"([a-z0-9]+(?:\s?(?:dot|\.)\s?[a-z0-9]+)+)\b"
)
_JOINERS = {"dot": ".", "underscore": "_", "dash": "-", "hyphen": "-"}


def extract_email(s: str) -> str | None:
    """An email, written ("dana.lee@example.com") or spoken ("dana dot lee at example dot com")."""
    written = _EMAIL_WRITTEN.search(s)
    if written:
        return written.group(0).strip(".")
    spoken = _EMAIL_SPOKEN.search(s)
    if not spoken:
        return None

    def join(part: str) -> str:
        part = re.sub(r"\s?\b(dot|underscore|dash|hyphen)\b\s?", lambda m: _JOINERS[m.group(1)], part)
        return part.replace(" ", "")

    local, domain = join(spoken.group(1)), join(spoken.group(2))
    if "." not in domain or len(domain.rsplit(".", 1)[1]) < 2:
        return None
    return f"{local}@{domain}"


_PHONE_RUN = re.compile(r"(?:\+?\d[\d\s().-]{8,}\d)")


def extract_phone(s: str, region: str = "US") -> str | None:
    """A phone number in E.164, from digits however they were grouped or spoken."""
    spoken = re.sub(r"\boh\b", "0", s) if re.search(r"\b(?:number|phone|cell|reach me)\b", s) else s
    for match in _PHONE_RUN.finditer(spoken):
        digits = re.sub(r"[^\d+]", "", match.group(0))
        if len(digits.lstrip("+")) < 10:
            continue
        try:
            parsed = phonenumbers.parse(digits, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_possible_number(parsed):
            return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    return None


# ---------------------------------------------------------------- dates and times

_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_MONTHS = (
    "january|february|march|april|may|june|july|august|september|october|november|december|"
    "jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec"
)
_DATE_PHRASE = re.compile(
    r"\b(?:the )?day after tomorrow\b"
    r"|\b(?:today|tonight|tomorrow|tmrw)\b"
    rf"|\b(?:(?:this|next|on|coming|this coming) )?(?:{'|'.join(_WEEKDAYS)})s?\b"
    rf"|\b(?:{_MONTHS})\.? \d{{1,2}}(?:st|nd|rd|th)?\b"
    rf"|\b(?:the )?\d{{1,2}}(?:st|nd|rd|th)? of (?:{_MONTHS})\b"
    r"|\bthe \d{1,2}(?:st|nd|rd|th)\b(?! (?:one|option|time|slot|choice))"
    r"|\b\d{1,2}/\d{1,2}(?:/\d{2,4})?\b"
    r"|\b(?:in )?(?:a|1|2|3) weeks?(?: from (?:now|today))?\b"
    r"|\bnext week\b"
    rf"|\b(?:early |mid |late |end of |beginning of )?(?:{_MONTHS})\b(?! \d)"
)
_MONTH_ONLY = re.compile(rf"^(?:(early|mid|late|end of|beginning of) )?({_MONTHS})$")

_CLOCK = re.compile(
    r"\b(?:at |around |by |for )?(\d{1,2})(?::(\d{2})|\s(\d{2})(?!\d))?\s?(am|pm|o'?clock)?"
    r"(?:\s?(?:in the (morning|afternoon|evening)|at night|tonight))?\b"
)
_NOON = re.compile(r"\b(noon|midday|midnight)\b")
_HALF_PAST = re.compile(r"\b(half|quarter) (past|after|to) (\d{1,2})\b")
_PERIOD = re.compile(r"\b(morning|afternoon|evening|tonight|night|after work|lunch ?time)\b")
_PERIOD_ALIASES = {"tonight": "evening", "night": "evening", "after work": "evening",
                   "lunchtime": "afternoon", "lunch time": "afternoon"}


@dataclass(frozen=True)
class DateMention:
    """A date phrase found in text and what day it names."""

    phrase: str
    day: date
    start: int


def extract_dates(s: str, now: datetime) -> list[DateMention]:
    """Every date named in the text, resolved against ``now`` (future preferred)."""
    found: list[DateMention] = []
    for match in _DATE_PHRASE.finditer(s):
        phrase = match.group(0).strip()
        day = _resolve_date(phrase, now)
        if day is not None:
            found.append(DateMention(phrase, day, match.start()))
    return found


def _resolve_date(phrase: str, now: datetime) -> date | None:
    today = now.date()
    p = phrase.removeprefix("the ").removeprefix("on ")
    if p in ("today", "tonight"):
        return today
    if p in ("tomorrow", "tmrw"):
        return today + timedelta(days=1)
    if p == "day after tomorrow":
        return today + timedelta(days=2)
    if p == "next week":
        return today + timedelta(days=7 - today.weekday())
    weekday = next((i for i, w in enumerate(_WEEKDAYS) if w in p), None)
    if weekday is not None:
        ahead = (weekday - today.weekday()) % 7
        if p.startswith("next") and ahead == 0:
            ahead = 7
        elif p.startswith("next") and ahead <= 1 and today.weekday() >= 5:
            ahead += 7  # "next Sunday" said on a Saturday means the one after tomorrow's
        return today + timedelta(days=ahead)
    nth = re.fullmatch(r"(\d{1,2})(?:st|nd|rd|th)", p)
    if nth:
        return _day_of_month(int(nth.group(1)), today)
    month_only = _MONTH_ONLY.match(p)
    if month_only:
        part, month_name = month_only.groups()
        parsed = dateparser.parse(f"{month_name} 1", languages=["en"], settings=_future(now))
        if parsed is None:
            return None
        offset = {"mid": 14, "late": 24, "end of": 27}.get(part or "", 0)
        return parsed.date() + timedelta(days=offset)
    parsed = dateparser.parse(p, languages=["en"], settings=_future(now))
    return parsed.date() if parsed else None


def _day_of_month(day_number: int, today: date) -> date | None:
    """"the 28th": this month if it is still ahead, else next month."""
    year, month = today.year, today.month
    for _ in range(2):
        try:
            candidate = date(year, month, day_number)
        except ValueError:
            candidate = None
        if candidate and candidate >= today:
            return candidate
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return None


def _future(now: datetime) -> dict:
    return {
        "RELATIVE_BASE": now.replace(tzinfo=None),
        "PREFER_DATES_FROM": "future",
        "PREFER_DAY_OF_MONTH": "first",
        "DATE_ORDER": "MDY",
    }


def extract_clock(s: str, expecting: bool = False) -> tuple[time | None, str | None]:
    """An explicit time of day and/or a part of the day ("morning")."""
    period_match = _PERIOD.search(s)
    period = period_match.group(1) if period_match else None
    period = _PERIOD_ALIASES.get(period or "", period)
    clock: time | None = None
    noon = _NOON.search(s)
    if noon:
        clock = time(0) if noon.group(1) == "midnight" else time(12)
    half = _HALF_PAST.search(s)
    if half:
        kind, direction, hour_text = half.groups()
        minutes = 30 if kind == "half" else 15
        hour = int(hour_text)
        if direction == "to":
            hour, minutes = hour - 1, 60 - minutes
        clock = _twelve_to_24(hour, minutes, None, period)
    if clock is None:
        for match in _CLOCK.finditer(s):
            hour_text, mm, spaced_mm, suffix, inline_period = match.groups()
            whole = match.group(0)
            cued = bool(
                suffix or mm or inline_period or whole.startswith(("at ", "around ", "by ", "for "))
                or "night" in whole or "tonight" in whole
            )
            after = s[match.end(): match.end() + 10]
            if re.match(r"\s?(?:st|nd|rd|th|bed|br|cats?|dogs?|pets?|weeks?|days?|months?|"
                        r"dollars?|k\b|grand|people|of\b|/)", after):
                continue
            if not (cued or expecting):
                continue
            hour = int(hour_text)
            minute = int(mm or spaced_mm or 0)
            if hour > 23 or minute > 59 or (hour > 12 and not (mm or spaced_mm)):
                continue
            if "night" in whole or "tonight" in whole:
                inline_period = "evening"
            clock = _twelve_to_24(hour, minute, suffix, inline_period or period)
    return clock, period


def _twelve_to_24(hour: int, minute: int, suffix: str | None, period: str | None) -> time:
    if hour > 12:
        return time(hour % 24, minute)
    if suffix == "pm" or period in ("afternoon", "evening"):
        return time(hour % 12 + 12, minute)
    if suffix == "am" or period == "morning":
        return time(hour % 12, minute)
    # No am/pm: read it the way people book tours (9-11 in the morning, 12-7 after noon).
    return time(hour if hour >= 8 and hour != 12 else (hour % 12) + 12, minute)


_MOVE_CUE = re.compile(r"\b(?:move|moving|move-in|movein|start(?:ing)? (?:the )?lease|lease start|need (?:a|the) place|available)\b")


# ---------------------------------------------------------------- everything


def understand(
    text: str, now: datetime, catalog: Catalog, awaiting: str | None = None
) -> Understanding:
    """Read one utterance. ``awaiting`` names what the agent just asked for, if anything."""
    s = prepare(text)
    u = Understanding(text=text)
    u.affirm = detect_affirm(s)
    u.intents = detect_intents(s)
    u.correction = detect_correction(s)
    u.questions = detect_questions(s)

    u.property_ids = catalog.find_all(normalize_words(text)) or catalog.find_all(
        normalize_words(s)
    )
    s = catalog.strip_names(s)
    u.name = extract_name(s, expecting=awaiting == "name")
    u.unit_size = extract_unit_size(s)
    u.pets = extract_pets(s, expecting=awaiting in ("pets", "pet_details"))
    u.email = extract_email(s)
    u.phone = extract_phone(s)
    without_contacts = s
    for found in (u.email, u.phone):
        if found:
            without_contacts = without_contacts.replace(found, " ")
    u.budget = extract_budget(without_contacts, expecting=awaiting == "budget")
    u.tour_type = extract_tour_type(s)
    u.contact_preference = extract_contact_preference(s)
    if awaiting == "contact_preference" and u.contact_preference is None:
        word = re.search(r"\b(text|email|e-mail|call|phone)\b", s)
        if word:
            u.contact_preference = {"text": "text", "call": "call", "phone": "call"}.get(
                word.group(1), "email"
            )
    if u.name and u.name.lower().split()[0] in ("text", "email"):
        u.name = None

    dates = extract_dates(s, now)
    move_cue = _MOVE_CUE.search(s)
    tour_dates: list[DateMention] = []
    for mention in dates:
        near_move = move_cue and abs(move_cue.start() - mention.start) < 40
        if awaiting == "move_in" or (near_move and awaiting != "tour_time"):
            u.move_in = mention.day
        else:
            tour_dates.append(mention)
    if tour_dates:
        u.tour_day = tour_dates[-1].day
    budget_or_unit_only = u.budget is not None and awaiting != "tour_time"
    clock, period = extract_clock(s, expecting=awaiting == "tour_time" and not budget_or_unit_only)
    if clock is not None and not (u.move_in and not tour_dates and awaiting == "move_in"):
        u.tour_clock = clock
    if period and not (u.move_in and not tour_dates):
        u.tour_period = period
    if u.move_in is None and awaiting == "move_in" and re.search(r"\b(?:asap|as soon as possible|right away|immediately)\b", s):
        u.move_in = now.date()
    return u
