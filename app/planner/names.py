"""Hearing names: is a heard phrase a person's name, a spelled-out name, a known name misheard.

Callers' names come from every origin, and a phone-line recognizer turns some of them into
ordinary English ("when you" for a surname it doesn't know). We judge with data rather than a
stop-word list:

- first names of many countries with their frequency per country (gender-guesser's
  ``nam_dict.txt``), so "Siobhan", "Priya", "Thanh" and "Oluwaseun"-like rare words pass;
- English word frequencies (wordfreq), so "looking", "fine" and "the building" do not;
- the same word's frequency in seven other European languages' text, so a name that is
  frequent in English ("John", "Smith") still reads as a name while "Rose" or "Will" reads as
  a name and a word: names travel between languages, English vocabulary ("calling", "here")
  mostly does not.

Matching a heard name with a remembered one uses a consonant skeleton (jellyfish's metaphone),
because a phone-line recognizer is least reliable on vowels ("Marie" for "Maria").
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from functools import cache, lru_cache
from importlib import resources
from statistics import median

import jellyfish
from rapidfuzz import process
from rapidfuzz.distance import Indel, Levenshtein

# ---------------------------------------------------------------- plausibility

PLAUSIBLE = 0.5
"""``name_plausibility`` at or above this: take it as a name."""
SURE = 0.8
"""At or above this: no need to read it back."""

_KNOWN_NAME = 1.0  # a first name in the dataset, not an everyday English word
_RARE_WORD = 0.9  # not everyday English: a surname, or a name the dataset lacks
_NAME_AND_WORD = 0.6  # "Rose", "Will", "Hunter": a name in English-speaking countries and a word
_SURNAME_WORD = 0.55  # "Smith" after a first name: an English word that travels like a name
_NOT_A_NAME = 0.0

COMMON_ZIPF = 4.0
"""English words at or above this Zipf frequency are everyday vocabulary (about 1 in 100,000
words of text). Surnames of many origins sit below it: Garcia 3.9, Nguyen 3.2, Patel 3.5."""
_OTHER_LANGUAGES = ("de", "fr", "es", "it", "nl", "pt", "pl")
# A word's "English excess" is its Zipf frequency in English minus the median over the other
# languages. Names travel (John 0.5, Smith 0.7); English vocabulary mostly doesn't (here 2.0,
# calling 5.0, absent from the others' lists). Measured on wordfreq 3.1's small lists.
_VOCABULARY_EXCESS = 0.22
"""A first name of English-speaking countries is also vocabulary when its excess, less 0.05
per step of its name frequency (1-13), reaches this: Rose 0.25, Mark 0.23, Will 2.1 vs James
0.07, John 0.0. Rose and Mark sit near the line: tests pin them."""
_NAME_FREQUENCY_WEIGHT = 0.05
_FUNCTION_WORD_ZIPF = 5.0
"""A name only outside English-speaking countries that is this frequent in English is the
English word: "The", "You", "So", "Ok" are Vietnamese, Chinese or Korean names too."""
_FOREIGN_NAME_EXCESS = 0.35
"""Such a name with an excess under this is a name first: Diego 0.22, Orlando 0.29."""
_SURNAME_EXCESS = 1.3
"""After a first name, a common English word with an excess under this reads as a surname:
Smith 0.7, Miller 0.5, Brown 0.9 vs here 2.0, please 1.9, calling 5.0."""
_MAX_NAME_WORDS = 3
# Inside a name, between two of its words: "Sabrina da Rocha", "Frederick Mac an Abbadh",
# "Livia van Boven". They don't count toward _MAX_NAME_WORDS, nor against a name for being
# everyday words ("an", "de"); alone, first or last they are no name.
_PARTICLES = frozenset(
    {"mac", "mc", "an", "de", "da", "di", "do", "dos", "das", "del", "della", "van", "von"}
    | {"der", "den", "du", "la", "le", "bin", "binti", "ibn", "al", "el", "ni", "nic", "ter"}
    | {"ten", "bint", "ap", "ua", "mhic", "o"}
)
_LOWER_PARTICLES = frozenset({"de", "da", "di", "do", "dos", "das", "del", "della", "van"}) | {
    "von",
    "der",
    "den",
    "du",
    "la",
    "le",
    "ter",
    "ten",
    "bin",
    "binti",
    "bint",
    "ibn",
    "an",
}  # written lowercase inside a name: "Sabrina da Rocha", but "Mac", "Al", "Ní" stay up
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")
_PUNCTUATION = re.compile(r"[.,;:!?\"()]")
_VOWEL = re.compile(r"[aeiouy]")
_LONG_RUN = re.compile(r"(.)\1{2,}")  # "hmmm", "sooo": stretched interjections
_DOUBLED = re.compile(r"(.)\1")
_SHORT_WORD = 3


def _fold(text: str) -> str:
    """Lower-case ASCII: the recognizer writes "Jose" for "José"."""
    decomposed = unicodedata.normalize("NFKD", text.replace("\u2019", "'"))
    return decomposed.encode("ascii", "ignore").decode().lower()


@cache
def _first_names() -> dict[str, int]:
    """First name -> its frequency (1-13) in Britain, Ireland or the USA, 0 if only elsewhere.

    We read gender-guesser's data file ourselves: its ``Detector()`` parses every country
    column into per-gender dicts, which takes about 0.2 s; we need one number per name.
    """
    path = resources.files("gender_guesser").joinpath("data", "nam_dict.txt")
    names: dict[str, int] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        # "#" comments, "=" short-form pairs, "+" in column 30 repeats a name for sorting.
        if line[:1] in "#=" or line[29:30] == "+":
            continue
        anglo_columns = line[30:33].strip()  # Great Britain, Ireland, U.S.A.
        frequency = int(max(anglo_columns), 16) if anglo_columns else 0
        raw = line[3:29].strip().replace("+", "").lower()  # "Jun+Wei" is also "Junwei"
        keys = (raw,) if raw.isascii() else (raw, _fold(raw))
        for key in keys:
            if frequency >= names.get(key, 0):
                names[key] = frequency
    return names


@cache
def _zipf_table(language: str) -> dict[str, float]:
    """Zipf frequencies we need: English words at or above ``COMMON_ZIPF`` (rarer ones only
    count as rare), and those same words in another language. Kept small: wordfreq's own
    dicts for eight languages would hold 2.5 million entries."""
    from wordfreq import available_languages, read_cBpack  # deferred: import takes ~0.1 s

    keep = None if language == "en" else _zipf_table("en")
    floor = COMMON_ZIPF if language == "en" else 0.0
    table: dict[str, float] = {}
    # Bucket i holds the words of frequency 10^(-i/100), that is Zipf (900 - i) / 100.
    for index, bucket in enumerate(read_cBpack(available_languages("small")[language])):
        zipf = (900 - index) / 100
        if zipf < floor:
            break
        for word in bucket:
            if keep is None or word in keep:
                table.setdefault(word, zipf)
    return table


def _zipf(word: str, language: str = "en") -> float:
    """The word's Zipf frequency; 0 for English words below ``COMMON_ZIPF``."""
    return _zipf_table(language).get(word, 0.0)


def _english_excess(word: str) -> float:
    """How much more frequent ``word`` is in English than in other European languages' text."""
    return _zipf(word) - median(_zipf(word, lang) for lang in _OTHER_LANGUAGES)


def _unstretched(word: str) -> str:
    """ "hmmm" -> "hmm", "umm" -> "um": a stretched interjection is as common as a plain one.

    Short words only ("umm", "ahh", "ooh"); "Mann" or "Webb" stay as written.
    """
    word = _LONG_RUN.sub(r"\1\1", word)
    if len(word) > _SHORT_WORD or word in _first_names() or _zipf(word) >= COMMON_ZIPF:
        return word
    plain = _DOUBLED.sub(r"\1", word)
    return plain if _zipf(plain) >= COMMON_ZIPF else word


# Never part of a name: the call's own words, said right after one ("Kim, virtual please"),
# and interjections and greetings rare enough in text to pass as one ("Oops", "Hiya", "Erm").
_NEVER_IN_A_NAME = frozenset(
    {
        *("virtual", "virtually", "tour", "tours", "person", "in-person", "studio", "bedroom"),
        *("bedrooms", "apartment", "apartments", "building", "showing", "viewing"),
        *("walkthrough", "please", "here", "speaking", "calling"),
        *("oops", "whoops", "oopsie", "ugh", "argh", "aha", "huh", "hmm", "mhm", "gosh"),
        *("geez", "jeez", "shoot", "dang", "darn", "yikes", "hiya", "howdy", "greetings"),
        *("correction", "skip", "oh", "ah", "uh", "um", "er", "erm", "eh"),
        *("yes", "yeah", "yep", "yup", "yea", "no", "nope", "nah", "okay", "ok", "problem"),
        *("y'all", "yall", "ya'll", "whereabouts", "folks", "guys", "everyone", "thanks"),
        *("sir", "madam", "ma'am", "maam", "g'day", "gday", "ehm", "uhm", "fam", "hm"),
        *("apologies", "pardon", "excuse", "sorry", "whoa", "wow", "gimme", "lemme", "gonna"),
        *("hello", "hullo", "hallo", "hi", "hey", "oi", "oy", "salaam", "salam", "shalom"),
        *("namaste", "hola", "bonjour", "ciao", "aloha", "howzit", "heya", "yo", "ahoy"),
        *("ope", "lowkey", "highkey", "fr", "ngl", "tbh", "lah", "leh", "lor", "bruh"),
        *("bro", "dude", "innit", "ay", "eh", "ja", "nee", "ora", "email", "e-mail"),
        *("ano", "sumimasen", "yoroshiku", "onegaishimasu", "onegai", "desu", "genau"),
        *("voila", "abeg", "wetin", "abi", "jare", "sha", "ehn", "naw"),
        *("whats", "hows", "wheres", "thats", "lets", "dont", "cant", "wont", "ive", "youre"),
    }
)
# Courtesies that end a name said with them ("Cornelius Obasanjo po", "Jason Clark mate",
# "Jennifer o"), though first or alone they are names ("Po", "Máté").
_COURTESIES = frozenset({"po", "mate", "o"})
_CONTRACTION = re.compile(r"'(?:s|re|ll|ve|m|d|t)$")  # "how's", "we're": never a name
_VERB_ING_OR_ADVERB = re.compile(r"[a-z]{3,}(?:ing|ally|ely|ably|ibly)$")


@lru_cache(maxsize=4096)
def _word_score(word: str, later: bool) -> float:
    """How much one word looks like part of a name; ``later`` is true after the first word."""
    word = _unstretched(word)
    if _dropped_g(word):
        return _NOT_A_NAME  # "I'm lookin for a studio": not Lookin
    if not _VOWEL.search(word) and len(word) > 2:
        return _NOT_A_NAME  # "mhm", "shh": names have a vowel
    if word in _NEVER_IN_A_NAME or _CONTRACTION.search(word) or (later and word in _COURTESIES):
        return _NOT_A_NAME  # "Abiodun, virtual please": the call's own words are no name
    anglo = _first_names().get(word)
    if not later and anglo is None and _VERB_ING_OR_ADVERB.search(word):
        return _NOT_A_NAME  # "I'm leaning toward", "ideally": rare enough to pass as names
    zipf = _zipf(word)
    if zipf < COMMON_ZIPF:
        return _KNOWN_NAME if anglo is not None else _RARE_WORD
    excess = _english_excess(word)
    if anglo:  # "John" is frequent as a name, "Rose" also as a word
        vocabulary = excess - _NAME_FREQUENCY_WEIGHT * anglo
        return _NAME_AND_WORD if vocabulary >= _VOCABULARY_EXCESS else _KNOWN_NAME
    if anglo is not None and _travels_as_name(word, zipf, excess):
        return _NAME_AND_WORD  # a name elsewhere, frequent in English as one: "Diego", "Roman"
    if later and excess < _SURNAME_EXCESS:
        return _SURNAME_WORD
    return _NOT_A_NAME


_DROPPED_G_ZIPF = 4.5  # "looking" 5.6, "sing" 4.5; "Robin", "Kevin", "Erin" have no such word


def _dropped_g(word: str) -> bool:
    """ "lookin", "fixin'", "nothin": an everyday "-ing" word said without its g."""
    word = word.rstrip("'")
    return (
        word.endswith("in") and word not in _first_names() and _zipf(word + "g") >= _DROPPED_G_ZIPF
    )


def _travels_as_name(word: str, zipf: float, excess: float) -> bool:
    """For a name of non-English-speaking countries that is frequent in English text.

    Two-letter entries ("Ah", "Un", "Ok") and very frequent words ("You", "The") are English.
    """
    short = len(word) < _SHORT_WORD
    return not short and zipf < _FUNCTION_WORD_ZIPF and excess < _FOREIGN_NAME_EXCESS


def _words(text: str) -> list[list[str]] | None:
    """The words of a heard name, each split at hyphens; None if anything else is in it."""
    words = [word.split("-") for word in _PUNCTUATION.sub(" ", _fold(text)).split()]
    if not words or any(not _WORD.fullmatch(part) for word in words for part in word):
        return None
    return words


def _compound_score(parts: list[str], later: bool) -> float:
    """A word, or a hyphenated one: "Mary-Jane", "Jae-won", "Seo-yeon", but not "uh-huh".

    English doesn't hyphenate "seo-yeon", so one part that is surely a name makes the whole
    a plausible one, though "seo" or "won" alone are English words.
    """
    scores = [_word_score(parts[0], later), *(_word_score(p, True) for p in parts[1:])]
    if min(scores) >= PLAUSIBLE or len(scores) == 1:
        return min(scores)
    return _SURNAME_WORD if max(scores) >= SURE else _NOT_A_NAME


def _family_name_first(words: list[list[str]], scores: list[float]) -> bool:
    """ "Le Hoang", "Li Wei": a two-letter family name (a name elsewhere) before a given name.

    Only before a word that is surely a name, so "ok Priya" or "me Priya" don't pass.
    """
    first = words[0]
    if len(words) < 2 or len(first) > 1 or len(first[0]) != 2 or scores[1] < SURE:
        return False
    word = first[0]
    zipf = _zipf(word)
    known_elsewhere = _first_names().get(word) == 0
    return (
        known_elsewhere
        and zipf < _FUNCTION_WORD_ZIPF
        and (_english_excess(word) < _FOREIGN_NAME_EXCESS)
    )


def _name_elsewhere_first(words: list[list[str]], scores: list[float]) -> bool:
    """ "German Alzate", "Young Kim": a first name of some country that is also an English
    word ("Germán" folded), before a word that is surely a name. Read back, never sure."""
    first = words[0]
    if len(words) < 2 or len(first) > 1 or len(first[0]) < _SHORT_WORD or scores[1] < SURE:
        return False
    word = first[0]
    return word in _first_names() and _zipf(word) < _FUNCTION_WORD_ZIPF


def name_plausibility(name: str) -> float:
    """0-1: how much a heard one- to three-word phrase reads as a person's name.

    1.0 known first names; 0.9 rare words (surnames, names the dataset lacks); 0.6 a name that
    is also a word ("Rose", "Will"); 0.55 an English word in surname position that reads as a
    name ("Smith"); 0 everyday words ("when you", "looking"). See ``PLAUSIBLE`` and ``SURE``.
    """
    words = _words(name)
    inner = [i for i in _inner_particles(words or [])]
    if not words or len(words) - len(inner) > _MAX_NAME_WORDS:
        return _NOT_A_NAME
    if len(words) == 1 and len(words[0]) == 1 and len(words[0][0]) == 1:
        return _NOT_A_NAME
    scores = [_compound_score(parts, later=i > 0) for i, parts in enumerate(words)]
    if scores[0] < PLAUSIBLE and (
        _family_name_first(words, scores) or _name_elsewhere_first(words, scores)
    ):
        scores[0] = _NAME_AND_WORD
    return min(score for i, score in enumerate(scores) if i not in inner)


def _inner_particles(words: list[list[str]]) -> list[int]:
    """Positions of particles between a name's first and last word ("da" in "Sabrina da
    Rocha"), when what follows them is no particle itself."""
    return [
        i
        for i in range(1, len(words) - 1)
        if len(words[i]) == 1 and words[i][0] in _PARTICLES and words[-1][0] not in _PARTICLES
    ]


def is_plausible_name(name: str) -> bool:
    """True when ``name`` can be taken as a name (perhaps to be read back)."""
    return name_plausibility(name) >= PLAUSIBLE


def is_sure_name(name: str) -> bool:
    """True when every word is a known first name or a rare non-word: no read-back needed."""
    return name_plausibility(name) >= SURE


_NOT_FAMILY_NAMES = frozenset(
    {
        *("and", "the", "so", "but", "or", "thanks", "thank", "yes", "no", "okay", "ok"),
        *("sure", "hi", "hello", "again", "too", "i", "my", "we", "just", "from"),
        *("are", "is", "was", "can", "could", "do", "does", "will", "would", "should", "what"),
        *("where", "when", "how", "who", "why", "email", "text", "call", "please", "speaking"),
        *("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"),
        *("january", "february", "march", "april", "may", "june", "july", "august"),
        *("september", "october", "november", "december", "today", "tomorrow"),
    }
)


def family_name_after(first: str, text: str) -> str | None:
    """ "I am Therese Little.": a family name that is also a common word ("Little", "Young",
    "Bishop") fails the word-frequency test, but the recognizer writes it capitalized right
    after the first name. That capitalized word, or None."""
    match = re.search(rf"\b{re.escape(first)}\s+([A-Z][a-z]+(?:['-][A-Za-z]+)?)\b", text)
    if match is None:
        return None
    word = match.group(1)
    plain = _fold(word)
    later_score = _word_score(plain, True)
    if plain in _NOT_FAMILY_NAMES or plain in _NEVER_IN_A_NAME or later_score > _NOT_A_NAME:
        return None  # a word that scores as a name was already taken by the usual rules
    return word


def everyday_words_only(text: str) -> bool:
    """Every word is an everyday English word ("sure, book it", "Saturday at 11"): the
    caller said no name, however the recognizer may have heard one."""
    words = re.findall(r"[^\W\d_]+(?:'[^\W\d_]+)?", text.lower())
    return all(_zipf(_unstretched(w)) >= COMMON_ZIPF for w in words)


def is_known_first_name(name: str) -> bool:
    """A first name in the names dataset ("Maria", "Oluwaseun"), however rare."""
    words = _fold(name).split()
    return bool(words) and words[0] in _first_names()


def leading_name(text: str) -> str | None:
    """The longest plausible name at the start of ``text``, title-cased: "dana calling" -> Dana.

    For "I'm Dana calling about ..." where an intro pattern captures words after the name.
    """
    words = _PUNCTUATION.sub(" ", text).split()[: _MAX_NAME_WORDS + 2]  # with particles
    cut = next((i for i, w in enumerate(words) if i and w.lower() in ("a", "i")), None)
    if cut is not None:
        words = words[:cut]  # "Abiodun a virtual tour", "Dana and I": not "Ó", "J"
    for end in range(len(words), 0, -1):
        candidate = " ".join(words[:end])
        if is_plausible_name(candidate):
            return _title(candidate)
    return None


def warm_up() -> None:
    """Load the datasets now (about 0.3 s, 30 MB) rather than in a caller's first turn."""
    name_plausibility("warm up")


# ---------------------------------------------------------------- spelled names

_SPOKEN_LETTERS = {
    "ay": "a", "bee": "b", "be": "b", "see": "c", "sea": "c", "cee": "c", "dee": "d",
    "ee": "e", "ef": "f", "eff": "f", "gee": "g", "aitch": "h", "haitch": "h", "eye": "i",
    "jay": "j", "kay": "k", "el": "l", "ell": "l", "em": "m", "en": "n", "oh": "o", "owe": "o",
    "pee": "p", "pea": "p", "cue": "q", "queue": "q", "are": "r", "ar": "r", "ess": "s",
    "es": "s", "tee": "t", "tea": "t", "you": "u", "yoo": "u", "vee": "v", "ex": "x",
    "why": "y", "wye": "y", "zee": "z", "zed": "z",
}  # fmt: skip
_MARKS = {"apostrophe": "'", "hyphen": "-", "dash": "-"}
_SHOUT = frozenset({"capital", "uppercase", "upper", "lowercase", "small", "letter"})
# "M as in Mary", "N for Nancy": the example word's first letter is what the caller means.
_AS_IN = re.compile(r"(?:\b[a-z]+\s+)?\b(?:as in|like in)\s+([a-z])[a-z']*")
_FOR = re.compile(r"\b([a-z]+)\s+(?:for|like)\s+([a-z])[a-z']*")
_DOUBLE_U = re.compile(r"\bdouble\s*(?:you|u)\b")
_DOUBLE = re.compile(r"\bdouble\s+([a-z]+)\b")
_TRIPLE = re.compile(r"\btriple\s+([a-z]+)\b")
_SPLIT = re.compile(r"[\s,.;:!?\"()/]+|(?<=\b[a-z])-|-(?=[a-z]\b)")
_MIN_LETTERS = 2
_TRIPLED = re.compile(r"(.)\1{2,}")  # "S S S M P H I W E": no name has a letter three times


def _letter(token: str) -> str | None:
    """A spelled letter ("d", "dee") or mark ("apostrophe"), else None."""
    if len(token) == 1 and token.isalpha():
        return token
    return _SPOKEN_LETTERS.get(token) or _MARKS.get(token)


def _letter_for_word(match: re.Match[str]) -> str:
    """ "M for Mary" -> "m"; "looking for Mary" stays as it is."""
    letter = _letter(match.group(1))
    return f" {letter} " if letter == match.group(2) else match.group(0)


def _expand_doubles(text: str) -> str:
    """ "double L" -> "l l", "double you" -> "w"."""
    text = _DOUBLE_U.sub("w", text)

    def repeat(match: re.Match[str], times: int) -> str:
        letter = _letter(match.group(1))
        return " ".join([letter] * times) if letter else match.group(0)

    text = _TRIPLE.sub(lambda m: repeat(m, 3), text)
    return _DOUBLE.sub(lambda m: repeat(m, 2), text)


_CAPITALS = re.compile(r"\b[A-Z]{2,8}\b")


def _capitals_as_letters(text: str) -> str:
    """ "MUS TFA", "ZSC-H-R-E-K", "SRH": Whisper writes a run of spelled letters as capitals.

    A capitalised everyday word ("OK") or name ("DANA") counts only beside a lone or dashed
    letter."""
    letters_near = re.search(r"(?:^|[\s,.-])[A-Za-z](?:$|[\s,.-])", text) is not None

    def expand(match: re.Match[str]) -> str:
        word = match.group(0)
        plain = word.lower()
        spelled = letters_near or (_zipf(plain) < COMMON_ZIPF and plain not in _first_names())
        return " ".join(word) if spelled else word

    return _CAPITALS.sub(expand, text)


_CLOCK_TIME = re.compile(r"\b\d{1,2}(?::\d{2})?\s*[ap]\.?\s?m\b\.?", re.IGNORECASE)


def _tokens(text: str) -> list[str]:
    text = _CLOCK_TIME.sub(" ", text)  # "9:30 a.m." is a time, not the letters A, M
    text = _fold(_capitals_as_letters(text))
    text = _AS_IN.sub(r" \1 ", text)
    text = _FOR.sub(_letter_for_word, text)
    text = _expand_doubles(text)
    return [t for t in _SPLIT.split(text) if t and t not in _SHOUT]


def _runs(tokens: list[str]) -> list[list[tuple[str, str]]]:
    """Maximal runs of letter tokens, each item (token as heard, letter)."""
    runs: list[list[tuple[str, str]]] = [[]]
    for token in tokens:
        letter = _letter(token)
        if letter:
            runs[-1].append((token, letter))
        elif runs[-1]:
            runs.append([])
    return [run for run in runs if run]


def _trim_speech(run: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Drop everyday words at the ends of a run of bare letters: "oh, D A N A, are you ...".

    Among bare letters a spoken "you" or "are" is speech, not a letter.
    """
    if not any(len(token) == 1 for token, _ in run):
        return run
    start, end = 0, len(run)
    while start < end and len(run[start][0]) > 1 and _zipf(run[start][0]) >= COMMON_ZIPF:
        start += 1
    while end > start and len(run[end - 1][0]) > 1 and _zipf(run[end - 1][0]) >= COMMON_ZIPF:
        end -= 1
    return run[start:end]


def _is_spelling(run: list[tuple[str, str]]) -> bool:
    """A run is a spelling when it has a bare letter, or 3+ spoken letters not all everyday words.

    "you are" (U R) and "oh you" are speech; "dee ay en ay" is a spelling.
    """
    letters = [letter for _, letter in run if letter.isalpha()]
    if len(letters) < _MIN_LETTERS:
        return False
    if any(len(token) == 1 for token, _ in run):
        return True
    return len(letters) >= 3 and any(_zipf(token) < COMMON_ZIPF for token, _ in run)


def _title(name: str) -> str:
    """ "o'brien" -> "O'Brien", "mary-jane" -> "Mary-Jane", "sabrina da rocha" -> "Sabrina da
    Rocha"."""
    titled = re.sub(
        r"(^|[\s'-])([^\W\d_])", lambda m: m.group(1) + m.group(2).upper(), name.lower()
    ).split(" ")
    return " ".join(
        w.lower() if 0 < i < len(titled) - 1 and w.lower() in _LOWER_PARTICLES else w
        for i, w in enumerate(titled)
    )


def parse_spelled_name(text: str) -> str | None:
    """The name a caller spelled ("D A N A, last name L E E" -> "Dana Lee"), or None.

    Letters may be bare, dotted or dashed ("D. A. N. A.", "d-a-n-a"), spoken ("dee ay en ay"),
    given by example ("M as in Mary"), doubled ("A double L E N"). Each spelled run is one
    word of the name; words between runs ("last name", "space", "and") only separate them.
    """
    parts = []
    for run in map(_trim_speech, _runs(_tokens(text))):
        if _is_spelling(run):
            word = _TRIPLED.sub(r"\1", "".join(letter for _, letter in run).strip("'-"))
            if sum(ch.isalpha() for ch in word) >= _MIN_LETTERS:
                parts.append(word)
    if not parts or not _sayable(parts[0]):
        return None  # "S, R, H": letters the line garbled, not a name to greet anyone by
    return _title(" ".join(p for p in parts[:_MAX_NAME_WORDS] if _sayable(p)))


_CONSONANT_PILE = re.compile(r"[^aeiouy\W\d_]{6,}")


def _sayable(word: str) -> bool:
    """Could this spelled word be said as a name? A vowel, and no pile of six consonants
    ("Nmnnrpi", "Vrmt" are what a noisy line makes of letters; "Zschrek" passes)."""
    plain = _fold(word)
    return bool(re.search(r"[aeiouy]", plain)) and not _CONSONANT_PILE.search(plain)


_SLIPS_SHORT = 1  # letters a spelled word may have lost or changed on the line
_SLIPS_LONG = 2  # ... in a word of _LONG_SPELLING letters or more
_LONG_SPELLING = 7


def _slips(word: str) -> int:
    return _SLIPS_LONG if len(word) >= _LONG_SPELLING else _SLIPS_SHORT


def _near_first_names(word: str, slips: int) -> list[str]:
    """Known first names ``slips`` letters or fewer from ``word``, nearest first (~3 ms)."""
    found = process.extract(
        word, _first_names().keys(), scorer=Levenshtein.distance, score_cutoff=slips, limit=20
    )
    return [name for name, _, _ in sorted(found, key=lambda hit: hit[1])]


def reconcile_spelling(spelled: str, heard: str | None = None) -> str:
    """A spelled name, each word checked against known first names and the name heard said.

    On a phone line the recognizer drops and confuses spelled letters ("K R O L" for
    Karol: an "A" is often lost). A first word that is no known name but one letter short
    of one known first name (or of one that sounds like what was heard) is that name; any
    word a slip or two from a word heard said (no shorter) is that word. A spelling that
    is a known name, or near none, stays as spelled: a rare name is not "corrected" into a
    common one, nor is a spelling that matches the word heard said.
    """
    said = [w for w in (heard or "").split() if _letters(w)]
    if said and _letters(spelled) == _letters(heard or ""):
        return _title(" ".join(said))  # "D A R O C H A" for "da Rocha": as it was said
    words = []
    for i, word in enumerate(spelled.split()):
        key = _letters(word)
        choice = word
        if key in {_letters(w) for w in said}:
            words.append(_title(word))  # spelled as it was heard said: "Tola" stays Tola
            continue
        if i == 0 and key not in _first_names():
            choice = _first_name_for(key, said[0] if said else None) or word
        if choice == word and not (i == 0 and key in _first_names()):
            near = [
                w
                for w in said
                if len(_letters(w)) >= len(key) > 1
                and 0 < Levenshtein.distance(key, _letters(w)) <= _slips(_letters(w))
                and _slips_are_mishearings(key, _letters(w))
            ]
            choice = near[0] if near else word
        words.append(_title(choice))
    return " ".join(words)


# Letter names that rhyme on an 8 kHz line: a spelled letter swapped within one group may be
# the line's slip; "Z" heard for a said "S" ("zee" / "ess") is the caller's spelling.
_RHYMING_LETTERS = ("bcdegptvz", "mn", "fsx", "ajkhr", "iy", "qu", "lo")


def _slips_are_mishearings(spelled: str, said: str) -> bool:
    """Every letter changed between the spelling and the word said is one a line confuses
    (letters lost are always a slip: a spelling is never longer than the name)."""
    for op in Levenshtein.editops(spelled, said):
        was, now = spelled[op.src_pos], said[op.dest_pos]
        if op.tag == "replace" and not any(was in g and now in g for g in _RHYMING_LETTERS):
            return False
    return True


def _first_name_for(key: str, said: str | None) -> str | None:
    """The known first name a spelled word one letter short of it stands for: the only one
    that sounds like the word heard said."""
    if not said:
        return None  # nothing heard to go by: the letters as spelled ("Ekene", not "Eukene")
    near = [n for n in _near_first_names(key, 1) if len(n) == len(key) + 1]
    near = [n for n in near if sounds_like(n, said)]
    return near[0] if len(near) == 1 else None


_SAID_MARKS = {"'": "apostrophe", "-": "hyphen"}


def spelled_out(name: str) -> str:
    """ "Sarah O'Neil" -> "S, A, R, A, H, then O, apostrophe, N, E, I, L": a spelling read
    back letter by letter, so the caller can check each one."""
    words = []
    for word in _fold(name).split():
        letters = [_SAID_MARKS.get(ch, ch.upper()) for ch in word if ch.isalpha() or ch in "'-"]
        if letters:
            words.append(", ".join(letters))
    return ", then ".join(words)


# ---------------------------------------------------------------- sounds alike

SOUNDS_LIKE = 0.75
"""``name_similarity`` at or above this: the recognizer may have heard one name as the other."""
_SKELETON_SCORE = 0.75  # same consonant skeleton: vowels may differ ("Maria" / "Marie")
_SKELETON_MIN_SPELLING = 0.55  # "Joel"/"Julia", "Gina"/"Joan", "Lucy"/"Lisa" share consonants
_NEAR_SKELETON_SCORE = 0.65  # a consonant or two apart, long names spelled nearly alike
_NEAR_SPELLING = 0.75
_NEAR_SKELETON_MIN = 5  # "Kristi"/"Kristen", "Brenda"/"Brendan" stay apart
_LONG_SKELETON = 6  # "Kowalchik" KWLXK for "Kowalczyk" KWLKSK: two apart in a long name
_UNLIKE_SCALE = 0.5  # consonants differ: at most 0.5, however alike the spelling ("Sam"/"Pam")
# Metaphone reads every "ch" and "sh" as X; in names X is often S ("Sean"/"Shawn") or K
# ("Chris"/"Kris"), so X may stand for either. Y and H after the first sound are glides:
# "Bryan"/"Brian", "Aisha"/"Ayesha".
_GLIDES = str.maketrans("", "", "YH")


def _letters(text: str) -> str:
    return re.sub(r"[^a-z]", "", _fold(text))


@cache
def _skeleton(word: str) -> str:
    """The consonant skeleton of a name: metaphone without glides."""
    key = jellyfish.metaphone(word)
    return key[:1] + key[1:].translate(_GLIDES) if key else word[:1].upper()


def _skeletons_match(a: str, b: str) -> bool:
    if len(a) != len(b):
        return False
    return all(_same_sound(x, y) for x, y in zip(a, b, strict=True))


def _same_sound(x: str, y: str) -> bool:
    return x == y or (x == "X" and y in "SK") or (y == "X" and x in "SK")


def _word_similarity(heard: str, known: str) -> float:
    """0-1 for one word: 1 same spelling, 0.75-1 same consonants, lower otherwise."""
    if heard == known:
        return 1.0
    spelling = Indel.normalized_similarity(heard, known)
    a, b = _skeleton(heard), _skeleton(known)
    # One-consonant names ("Lee", "Li") have nothing but the skeleton to go on.
    spelled_alike = spelling >= _SKELETON_MIN_SPELLING or len(a) == 1
    if _skeletons_match(a, b) and spelled_alike:
        return _SKELETON_SCORE + (1 - _SKELETON_SCORE) * spelling
    near = (
        min(len(a), len(b)) >= _NEAR_SKELETON_MIN
        and a[0] == b[0]
        and Levenshtein.distance(a, b) <= (2 if max(len(a), len(b)) >= _LONG_SKELETON else 1)
        and spelling >= _NEAR_SPELLING
    )
    if near:
        return _NEAR_SKELETON_SCORE + (1 - _SKELETON_SCORE) * spelling
    return _UNLIKE_SCALE * spelling


def name_similarity(heard: str, known: str) -> float:
    """0-1: how likely the recognizer wrote ``heard`` for ``known``.

    Words are compared in order, as many as both have ("Marie" vs "Maria Lopez" compares the
    first names); the whole is also compared run together ("Annalise" vs "Anna Lise").
    """
    heard_words = [_letters(w) for w in heard.split() if _letters(w)]
    known_words = [_letters(w) for w in known.split() if _letters(w)]
    if not heard_words or not known_words:
        return 0.0
    by_word = min(_word_similarity(h, k) for h, k in zip(heard_words, known_words, strict=False))
    joined = _word_similarity("".join(heard_words), "".join(known_words))
    return max(by_word, joined)


def sounds_like(heard: str, known: str) -> bool:
    """True when ``heard`` may be the recognizer's spelling of ``known``.

    Consonants must agree; vowels may not, so "Maria"/"Marie", "Jon"/"John" and also
    "Dana"/"Diana" match (a phone line blurs vowels; confirm rather than rename), while
    "Sam"/"Pam" and "Mark"/"Mike" do not.
    """
    return name_similarity(heard, known) >= SOUNDS_LIKE


def closest_name(heard: str, candidates: Sequence[str]) -> str | None:
    """The candidate ``heard`` most likely stands for, if any sounds like it; ties: first."""
    best, best_score = None, SOUNDS_LIKE
    for candidate in candidates:
        score = name_similarity(heard, candidate)
        if score > best_score or (best is None and score >= best_score):
            best, best_score = candidate, score
    return best
