"""Text segmentation, once for every path: replies into sentences, sentences into spoken chunks.

Speech starts on the first sentence, so a streamed reply (an LLM's tokens) releases a
sentence the moment the next non-space character shows it really ended ("11 a.m. Saturday"
and "Dr. Lee" don't end one); a whole reply (the rule planner's) is cut the same way.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

# Sentence-final punctuation (with closing quotes or brackets) followed by spaces, or a newline.
_BREAK = re.compile(r"[.!?…]+[\"'”’)\]*]*[ \t]+|\s*\n\s*")
_LAST_WORD = re.compile(r"(\S+)$")
_MARKUP = re.compile(r"\*+|`+|^#+\s*|^\s*[-•]\s+", re.MULTILINE)
_SPACES = re.compile(r"\s+")

# Words ending in "." that don't end a sentence (compared lower-case, without the last dot).
_ABBREVIATION_WORDS = (
    "mr mrs ms dr st ave blvd rd apt no jr sr vs etc e.g i.e a.m p.m approx fl ste mt"
)
ABBREVIATIONS = frozenset(_ABBREVIATION_WORDS.split())


def clean_for_speech(text: str) -> str:
    """Drop markdown a model may emit anyway, and collapse whitespace."""
    return _SPACES.sub(" ", _MARKUP.sub("", text)).strip()


class SentenceSplitter:
    """Feed text fragments in, get finished sentences out, in order."""

    def __init__(self) -> None:
        self._buffer = ""

    def feed(self, fragment: str) -> list[str]:
        """Sentences completed by this fragment (possibly none)."""
        self._buffer += fragment
        buffer = self._buffer
        sentences: list[str] = []
        start = 0
        for match in _BREAK.finditer(buffer):
            end = match.end()
            if "\n" not in match.group(0):
                if end >= len(buffer):
                    break  # can't tell yet whether the next word starts a sentence
                if not self._ends_sentence(buffer[start : match.start() + 1], buffer[end]):
                    continue
            sentence = clean_for_speech(buffer[start:end])
            if sentence:
                sentences.append(sentence)
            start = end
        self._buffer = buffer[start:]
        return sentences

    def flush(self) -> list[str]:
        """Whatever is left once the stream ended."""
        rest, self._buffer = clean_for_speech(self._buffer), ""
        return [rest] if rest else []

    @staticmethod
    def _ends_sentence(text_through_mark: str, next_char: str) -> bool:
        if next_char.islower() or next_char in ",;:":
            return False
        match = _LAST_WORD.search(text_through_mark)
        if match is None:
            return True
        word = match.group(1)
        if not word.endswith("."):
            return True  # "?" or "!"
        stem = word.rstrip(".").lower().lstrip("(\"'")
        if stem in ABBREVIATIONS:
            return False
        return not (len(stem) == 1 and stem.isalpha())  # an initial, like "J. Lee"


def split_sentences(parts: Iterable[str]) -> list[str]:
    """Whole reply parts as sentences, cut where a streamed reply would be."""
    sentences: list[str] = []
    for part in parts:
        splitter = SentenceSplitter()
        sentences += splitter.feed(part.strip())
        sentences += splitter.flush()
    return sentences


_CLAUSE_BREAK = re.compile(r"(?<=[,;:])\s+")
FIRST_CLAUSE_MIN_WORDS = 4
"""A first sentence is split at its first comma only if both halves have this many words."""


def speakable_chunks(
    sentences: list[str],
    first_reply_chunk: bool,
    is_ready: Callable[[str], bool] = lambda _text: False,
) -> list[str]:
    """Sentences as spoken chunks: the first sentence may start on its first clause.

    It splits when the opening clause is already rendered (``is_ready``: "Got it:", "Nice
    to meet you,"), so the reply starts at once and the rest renders while it plays, or when
    both halves are long enough to sound natural on their own.
    """
    if not sentences or not first_reply_chunk:
        return sentences
    first, rest = sentences[0], sentences[1:]
    parts = _CLAUSE_BREAK.split(first, maxsplit=1)
    if len(parts) == 2 and (
        is_ready(parts[0]) or all(len(p.split()) >= FIRST_CLAUSE_MIN_WORDS for p in parts)
    ):
        return [parts[0], parts[1], *rest]
    return sentences
