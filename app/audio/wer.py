"""Word error rate with a light normaliser, for speech tests and benchmarks.

Why normalise: Whisper writes "11am", "11 a.m." or "eleven AM" for the same sound; counting
those as errors would measure formatting, not recognition. The normaliser lowercases, drops
punctuation, splits digits from letters and maps small number words to digits, applied
identically to reference and hypothesis.
"""

from __future__ import annotations

import re

__all__ = ["normalize_words", "word_error_rate"]

_NUMBER_WORDS = {
    "zero": "0", "oh": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
    "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10", "eleven": "11",
    "twelve": "12", "thirteen": "13", "fourteen": "14", "fifteen": "15", "sixteen": "16",
    "seventeen": "17", "eighteen": "18", "nineteen": "19", "twenty": "20", "thirty": "30",
    "forty": "40", "fifty": "50",
}  # fmt: skip
_ORDINALS = {
    "first": "1st", "second": "2nd", "third": "3rd", "fourth": "4th", "fifth": "5th",
    "sixth": "6th", "seventh": "7th", "eighth": "8th", "ninth": "9th", "tenth": "10th",
    "eleventh": "11th", "twelfth": "12th", "thirteenth": "13th", "fifteenth": "15th",
    "twentieth": "20th", "thirtieth": "30th",
}  # fmt: skip
_SPELLING = {"okay": "ok", "o'clock": "oclock", "alright": "all right", "%": "percent"}


def normalize_words(text: str) -> list[str]:
    """Lowercase words with punctuation and number formatting made comparable."""
    t = text.lower()
    t = re.sub(r"\b([ap])\.\s?m\.?", r"\1m", t)  # a.m. / p.m. -> am / pm
    t = re.sub(r"(\d),(\d{3})", r"\1\2", t)  # 1,000 -> 1000
    t = re.sub(r"\$(\d+(?:\.\d+)?)", r"\1 dollars", t)  # $3000 -> 3000 dollars
    t = re.sub(r"(\d):00\b", r"\1", t)  # 11:00 -> 11
    t = re.sub(r"(\d):(\d\d)", r"\1 \2", t)  # 11:30 -> 11 30
    t = re.sub(r"(\d)%", r"\1 percent", t)
    t = t.replace("-", " ")
    words: list[str] = []
    for raw in t.split():
        w = raw.strip(".,!?;:\"()[]{}“”‘’'")
        if not w:
            continue
        w = _SPELLING.get(w, w)
        w = _NUMBER_WORDS.get(w, _ORDINALS.get(w, w))
        w = re.sub(r"(\d)([a-z])", r"\1 \2", w)  # 11am -> 11 am, 1st -> 1 st
        w = re.sub(r"([a-z])(\d)", r"\1 \2", w)
        words.extend(w.split())
    return words


def word_error_rate(reference: str, hypothesis: str) -> float:
    """(substitutions + deletions + insertions) / reference words, after normalising."""
    ref, hyp = normalize_words(reference), normalize_words(hypothesis)
    if not ref:
        return 0.0 if not hyp else 1.0
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1] / len(ref)
