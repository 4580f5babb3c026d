"""Turn recognizer text into one predictable form before extraction.

Speech recognizers write "twenty five hundred" one time and "$2,500" the next. We lower-case,
unify "p.m." and "a.m.", drop thousands separators and let ``text2num`` turn number words
into digits, so every extractor sees "2500".
"""

from __future__ import annotations

import re

from text_to_num import alpha2digit

_AMPM = re.compile(r"\b([ap])\s?\.?\s?m\b\.?")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}\b)")
# Letters of every alphabet stay ("Uğan", "Antonín"), and an underscore in an email's name.
_NOISE = re.compile(r"[^\w$:./@'?\s-]|(?<![a-z0-9])_|_(?![a-z0-9])")
_SPACES = re.compile(r"\s+")
# "3ish", "three-ish": about that hour.
_ISH = re.compile(
    r"\b(\d{1,2}|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve)\s?-?ish\b"
)
# "one-bedroom": text2num leaves hyphenated words alone, so split the size off.
_HYPHEN_UNIT = re.compile(r"(?<=[a-z])-(?=bed|br\b|room)")
# "the second one" is a choice, not the number 1.
_PRONOUN_ONE = re.compile(
    r"\b(first|second|third|last|other|earlier|later|this|that|which|either|same|any|each|"
    r"cheaper|cheapest|earliest|soonest|latest|monday|tuesday|wednesday|thursday|friday|saturday|sunday|morning|"
    r"afternoon|evening|"
    r"[ap]\.?m\.?|o'?clock|thirty|hour) one\b"
)
# "the Monday December 7th one": a date then "one" means that date, not one o'clock.
_DATE_THEN_ONE = re.compile(
    r"\b(\d{1,2}th|\d{2}(?:st|nd|rd)|fourth|fifth|sixth|seventh|eighth|ninth|tenth|eleventh|"
    r"twelfth|\w+teenth|\w+tieth) one\b"
)
# Words text2num would read as numbers where callers don't mean one ("the one bedroom" does).
_NOT_A_UNIT = r"(?!\s?-?\s?(?:bed|br\b|b r\b))"
_GUARDED = [
    (re.compile(rf"\bno one\b{_NOT_A_UNIT}"), "nobody"),
    (re.compile(r"\bone of\b"), "1 of"),
    (re.compile(rf"\bthe one\b{_NOT_A_UNIT}"), "that"),
    (re.compile(r"\bfirst time\b"), "initial time"),
]


def prepare(text: str) -> str:
    """Lower-case text with digits for number words, ready for the extractors."""
    s = text.lower().replace("\u2019", "'")
    for pattern, replacement in _GUARDED:
        s = pattern.sub(replacement, s)
    s = _ISH.sub(r"around \1", s)
    s = _PRONOUN_ONE.sub(r"\1 option", s)
    s = _DATE_THEN_ONE.sub(r"\1", s)
    s = _AMPM.sub(lambda m: f" {m.group(1)}m ", s)
    s = _THOUSANDS.sub("", s)
    s = _NOISE.sub(" ", s)
    s = _HYPHEN_UNIT.sub(" ", s)
    s = alpha2digit(s, "en", threshold=0)
    return _SPACES.sub(" ", s).strip()


def to_int(token: str) -> int | None:
    """An integer from a digit string, or None."""
    try:
        return int(token)
    except ValueError:
        return None
