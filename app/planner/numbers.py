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
_NOISE = re.compile(r"[^a-z0-9$:.@'?\s-]")
_SPACES = re.compile(r"\s+")
# "the second one" is a choice, not the number 1.
_PRONOUN_ONE = re.compile(
    r"\b(first|second|third|last|other|earlier|later|this|that|which|either|same|any|each) one\b"
)
# Words text2num would read as numbers where callers don't mean one.
_GUARDED = {
    "no one": "nobody",
    "one of": "1 of",
    "the one": "that",
    "first time": "initial time",
}


def prepare(text: str) -> str:
    """Lower-case text with digits for number words, ready for the extractors."""
    s = text.lower().replace("\u2019", "'")
    for phrase, replacement in _GUARDED.items():
        s = s.replace(phrase, replacement)
    s = _PRONOUN_ONE.sub(r"\1 option", s)
    s = _AMPM.sub(lambda m: f" {m.group(1)}m ", s)
    s = _THOUSANDS.sub("", s)
    s = _NOISE.sub(" ", s)
    s = alpha2digit(s, "en", threshold=0)
    return _SPACES.sub(" ", s).strip()


def to_int(token: str) -> int | None:
    """An integer from a digit string, or None."""
    try:
        return int(token)
    except ValueError:
        return None
