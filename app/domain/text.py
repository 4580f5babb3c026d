"""Text segmentation: how a reply's sentences are cut into the chunks that are spoken."""

from __future__ import annotations

import re
from collections.abc import Callable

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
