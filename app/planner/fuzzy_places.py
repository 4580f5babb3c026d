"""Hearing building names through a phone-line recognizer, and numbered choices.

The recognizer writes "Hudson 360" as "hutson three sixty" or "how it's in 360", and
"Riverview Lofts" as "river few lofts". Rather than add every such spelling to the alias list,
we compare the words heard with each building name two ways over word n-grams: by spelling
(rapidfuzz) and by sound (jellyfish's metaphone of the words run together, so word boundaries
don't matter: "how its in" and "hudson" are both HTSN). A score comes with each match so the
agent can read back a doubtful one ("Did you mean Riverview Lofts?").
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, NamedTuple

import jellyfish
import numpy as np
from rapidfuzz.distance import Indel
from rapidfuzz.process import cdist

from app.domain.catalog import normalize_words
from app.planner.numbers import prepare

if TYPE_CHECKING:
    from app.domain.catalog import Catalog


def _word_list(words: str) -> tuple[str, ...]:
    return tuple(words.split())


def _word_set(words: str) -> frozenset[str]:
    return frozenset(words.split())


CONFIDENT = 0.9
"""A match scoring at least this can be taken as said; below it, read it back first."""
_ALIAS_NUMBER_SCORE = 0.75  # "three sixty" alone: a building only if the caller confirms
_LONG_NAME = 12
"""Names of at least this many letters ("riverviewlofts") carry enough evidence to match with
a few recognizer errors; shorter ones ("westend", "thehudson") must sound the same."""
_LONG_MIN = 0.8  # mean of spelling and sound similarity for a long name
_SHORT_MIN_SPELLING = 0.8  # "hutson" for "hudson"; rejects "the best end", "east end"
_EXTRA_WORDS = 2  # a window may hold this many more words than the name ("how its in")
_MISSING_WORDS = 1  # ... or one fewer ("twenty one west")

# Words after a number that make it an amount or a time, not "three sixty" the building.
_UNITS = _word_set(
    "dollars dollar bucks a per pm am oclock square sq feet ft percent minutes minute hours "
    "hour days day weeks week months month degrees k grand"
)
_ONES = _word_list(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen"
)
_TENS = _word_list("_ _ twenty thirty forty fifty sixty seventy eighty ninety")
_NUMBER_WORDS = frozenset([*_ONES, *_TENS, "hundred", "and", "oh"])


Span = tuple[int, int]


class PlaceMatch(NamedTuple):
    """A building heard in the text: its id, a 0-1 score and the character span matched."""

    property_id: str
    score: float
    span: Span


class _Pattern(NamedTuple):
    property_id: str
    words: int
    letters: str  # the words run together: "riverviewlofts"
    sound: str  # metaphone of ``letters``
    number_only: bool


class _Token(NamedTuple):
    word: str
    source: int  # index of the text word it was read from ("360" -> "three", "sixty")


def _two_digits(n: int) -> str:
    if n < len(_ONES):
        return _ONES[n]
    return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])


def number_readings(digits: str) -> list[str]:
    """How a caller says a number, most usual first: 360 -> "three sixty", "three hundred ..."."""
    n = int(digits)
    if n < 100:
        return [_two_digits(n)]
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        if rest == 0:
            return [f"{_ONES[hundreds]} hundred"]
        pair = _two_digits(rest) if rest >= 10 else f"oh {_ONES[rest]}"
        full = _two_digits(rest)
        return [
            f"{_ONES[hundreds]} {pair}",
            f"{_ONES[hundreds]} hundred {full}",
            f"{_ONES[hundreds]} hundred and {full}",
        ]
    return [" ".join(_ONES[int(d)] for d in digits)]


def _spoken_forms(name: str) -> list[str]:
    """A building name with its numbers read out every usual way."""
    options = [number_readings(w) if w.isdigit() else [w] for w in normalize_words(name).split()]
    return [" ".join(combo) for combo in itertools.product(*options)]


def _sound(letters: str) -> str:
    return jellyfish.metaphone(letters) if letters else ""


class _Window(NamedTuple):
    start: int  # token indices, end exclusive
    end: int
    letters: str


class _Hit(NamedTuple):
    score: float
    start: int
    end: int
    property_id: str
    name_words: int  # words in the name matched


class PlaceMatcher:
    """Finds building names in recognizer text, tolerating mishearings."""

    def __init__(self, names: Mapping[str, Sequence[str]]) -> None:
        """``names``: property id -> [canonical name, aliases...], as staff wrote them."""
        patterns: dict[str, _Pattern] = {}
        for property_id, spellings in names.items():
            for spelling in spellings:
                for form in _spoken_forms(spelling):
                    patterns.setdefault(form.replace(" ", ""), _pattern(property_id, form))
        self._exact = patterns
        self._fuzzy = [p for p in patterns.values() if not p.number_only]
        self._letters = [p.letters for p in self._fuzzy]
        self._sounds = [p.sound for p in self._fuzzy]
        self._words = np.array([p.words for p in self._fuzzy])
        self._long = np.array([len(p.letters) >= _LONG_NAME for p in self._fuzzy])
        self._max_words = max(p.words for p in patterns.values()) + _EXTRA_WORDS

    @classmethod
    def from_catalog(cls, catalog: Catalog) -> PlaceMatcher:
        """From the buildings' names and aliases in ``prompts/properties.yaml``."""
        return cls({pid: [p.name, *p.aliases] for pid, p in catalog.properties.items()})

    def find(self, normalized_text: str) -> list[PlaceMatch]:
        """Buildings named in ``normalized_text`` (``normalize_words`` output), in order.

        One match per building, its best; spans are character offsets into the text and
        cover the longest confident reading ("hudson free sixty", not just "hudson").
        """
        words = [(m.group(0), m.span()) for m in re.finditer(r"\S+", normalized_text)]
        tokens = _spoken_tokens([w for w, _ in words])
        if not tokens:
            return []
        windows = self._windows(tokens)
        hits = self._exact_hits(windows, tokens, words) + self._fuzzy_hits(windows)
        return _choose(hits, tokens, [span for _, span in words])

    def _windows(self, tokens: list[_Token]) -> list[_Window]:
        """Every run of up to ``_max_words`` tokens, with its letters run together."""
        windows = []
        for start in range(len(tokens)):
            letters = ""
            for end in range(start + 1, min(start + self._max_words, len(tokens)) + 1):
                letters += tokens[end - 1].word
                windows.append(_Window(start, end, letters))
        return windows

    def _exact_hits(
        self, windows: list[_Window], tokens: list[_Token], words: list[tuple[str, Span]]
    ) -> list[_Hit]:
        hits = []
        for start, end, letters in windows:
            pattern = self._exact.get(letters)
            if pattern is None:
                continue
            if not pattern.number_only:
                hits.append(_Hit(1.0, start, end, pattern.property_id, pattern.words))
            elif not _is_amount(tokens, start, end, [w for w, _ in words]):
                score = _ALIAS_NUMBER_SCORE
                hits.append(_Hit(score, start, end, pattern.property_id, pattern.words))
        return hits

    def _fuzzy_hits(self, windows: list[_Window]) -> list[_Hit]:
        """Windows like a name by spelling and sound (mean), or, for short names, by sound."""
        letters = [w.letters for w in windows]
        spelling = cdist(letters, self._letters, scorer=Indel.normalized_similarity)
        sound = cdist(
            [_sound(text) for text in letters], self._sounds, scorer=Indel.normalized_similarity
        )
        size = np.array([w.end - w.start for w in windows])[:, None]
        fits = (size >= self._words - _MISSING_WORDS) & (size <= self._words + _EXTRA_WORDS)
        mean = (spelling + sound) / 2
        long_ok = self._long & (mean >= _LONG_MIN)
        short_ok = ~self._long & (sound == 1.0) & (spelling >= _SHORT_MIN_SPELLING)
        rows, cols = np.nonzero(fits & (long_ok | short_ok))
        return [
            _Hit(float(mean[r, c]), windows[r].start, windows[r].end, *self._fuzzy[c][:2])
            for r, c in zip(rows, cols, strict=True)
        ]


def _pattern(property_id: str, form: str) -> _Pattern:
    letters = form.replace(" ", "")
    number_only = all(w in _NUMBER_WORDS for w in form.split())
    return _Pattern(property_id, len(form.split()), letters, _sound(letters), number_only)


def _choose(hits: list[_Hit], tokens: list[_Token], spans: list[Span]) -> list[PlaceMatch]:
    """Best first, no two overlapping, one per building; returned in order of mention."""
    hits.sort(key=lambda hit: (-hit.score, -(hit.end - hit.start), hit.start))
    taken: list[_Hit] = []
    for hit in hits:
        if any(t.property_id == hit.property_id for t in taken) or _overlaps(hit, taken):
            continue
        taken.append(_longer_name(hits, hit, taken))
    chosen = [
        PlaceMatch(
            hit.property_id,
            round(hit.score, 3),
            (spans[tokens[hit.start].source][0], spans[tokens[hit.end - 1].source][1]),
        )
        for hit in taken
    ]
    return sorted(chosen, key=lambda m: m.span)


def _overlaps(hit: _Hit, taken: list[_Hit]) -> bool:
    return any(hit.start < t.end and t.start < hit.end for t in taken)


def _longer_name(hits: list[_Hit], hit: _Hit, taken: list[_Hit]) -> _Hit:
    """A confident hit around ``hit`` on a longer name of the same building, if any.

    "hudson" is an exact alias, but in "hudson free sixty" the whole phrase is the name: the
    span should cover it. The score stays the exact hit's.
    """
    for other in hits:  # best first
        around = other.start <= hit.start and other.end >= hit.end
        longer = other.name_words > hit.name_words and other.property_id == hit.property_id
        if around and longer and other.score >= CONFIDENT and not _overlaps(other, taken):
            return other._replace(score=hit.score)
    return hit


def _spoken_tokens(words: list[str]) -> list[_Token]:
    """Words with numbers read out: "21 west" -> twenty one west."""
    tokens: list[_Token] = []
    for i, word in enumerate(words):
        spoken = number_readings(word)[0].split() if word.isdigit() else [word]
        tokens.extend(_Token(w, i) for w in spoken)
    return tokens


def _is_amount(tokens: list[_Token], start: int, end: int, words: list[str]) -> bool:
    """ "3 60 dollars", "at 3 60": a number-only alias that is an amount or a time."""
    after = tokens[end - 1].source + 1
    before = tokens[start].source - 1
    return (after < len(words) and words[after] in _UNITS) or (
        before >= 0 and words[before] == "at"
    )


# ---------------------------------------------------------------- numbered choices

_ORDINAL = re.compile(r"^(\d+)(?:st|nd|rd|th)$")
_WORDS = re.compile(r"[a-z0-9']+")
# How a pick is said: "number 2", "option two", "I'll take the second", "2 please", "two".
_BEFORE_PICK = _word_set("number option choice press pressed pick take the with do say is")
_AFTER_PICK = _word_set(
    "option please for thanks thank then is there yeah yes yep ok okay sir maam po mate i"
)
_FILLERS = _word_set("um uh er erm hmm oh ok okay yes yeah yep sure so well i'd let's")
# After a number, these make it a count or a time, not a pick: "two bedroom", "2 pm".
_COUNTED = _word_set(
    "bedroom bedrooms bed beds br bath baths bathroom bathrooms pm am oclock people person "
    "pets pet dogs dog cats cat months month weeks week days day years year dollars dollar "
    "hundred thousand k minutes minute hours hour of"
)
_DATE_WORDS = _word_set(
    "monday tuesday wednesday thursday friday saturday sunday january february march april may "
    "june july august september october november december at in"
)
# A lone homophone when the caller answers a numbered offer with one word.
_LONE = {"won": 1, "to": 2, "too": 2, "for": 4, "fore": 4}


def choose_by_number(text: str, count: int = 3) -> int | None:
    """The option a caller picked from a numbered offer ("the second one", "number 3", "2").

    ``count`` options were offered. None when there is no pick, more than one, or the number
    counts or dates something ("two bedrooms", "at 2 pm", "Tuesday the 2nd", "three thirty").
    """
    words = _WORDS.findall(prepare(text))
    while words and words[0] in _FILLERS:
        words = words[1:]
    picks: set[int | None]  # _pick's None (no pick at that word) goes with the range below
    if len(words) == 1 and words[0] in _LONE:
        picks = {_LONE[words[0]]}
    elif words[-2:] == ["last", "option"]:
        picks = {count}
    else:
        picks = {_pick(words, i) for i in range(len(words))}
    picks &= set(range(1, count + 1))
    return picks.pop() if len(picks) == 1 else None


def _number(word: str) -> int | None:
    ordinal = _ORDINAL.match(word)
    if ordinal:
        return int(ordinal.group(1))
    return int(word) if word.isdigit() else None


def _pick(words: list[str], i: int) -> int | None:
    """The number at ``words[i]`` if it is said the way a pick is said."""
    value = _number(words[i])
    if value is None:
        return None
    before = words[i - 1] if i > 0 else None
    after = words[i + 1] if i + 1 < len(words) else None
    if any(w is not None and _number(w) is not None for w in (before, after)):
        return None  # "three thirty", "3 60"
    if any(w in _DATE_WORDS for w in words[max(0, i - 2) : i]):
        return None  # "Tuesday the 2nd", "at 2"
    said_as_pick = (before is None or before in _BEFORE_PICK) and (
        after is None or after in _AFTER_PICK
    )
    return value if said_as_pick else None
