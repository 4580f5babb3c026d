"""What an inbound text is before it reaches the planner: a carrier keyword, or words.

Carriers (and Twilio's default Advanced Opt-Out) treat a message that is only one of these
words, in any case, as a command: STOP and the others opt the number out of all texts,
START opts it back in, HELP asks who is texting. Only the bare word counts: "cancel my
tour" and "cancel it" are booking requests for the planner, but "CANCEL" alone is an
opt-out, as Twilio treats it (Twilio itself blocks further texts to that number after it,
whatever the app replies), so Tourline confirms the opt-out and says how to cancel a tour
instead. "YES" opts back in only a number that opted out; otherwise it is an answer ("yes,
book it").
"""

from __future__ import annotations

import re
import string
import unicodedata
from typing import Literal

Keyword = Literal["opt_out", "opt_in", "yes", "help"]

OPT_OUT_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
OPT_IN_WORDS = frozenset({"START", "UNSTOP"})
HELP_WORDS = frozenset({"HELP", "INFO"})
MAX_BODY_CHARS = 1600
"""Twilio's limit for one message's body; longer is refused, not cut (a cut request
could book the wrong thing)."""

_TRIM = string.punctuation + string.whitespace
_SPACES = re.compile(r"\s+")
# Symbols, private-use and unassigned characters, surrogates, format characters (ZWJ,
# direction marks), and emoji variation selectors: nothing the planner can read.
_DROP_CATEGORIES = frozenset({"So", "Sk", "Co", "Cn", "Cs", "Cf"})
_THUMBS = {"\U0001f44d": "yes", "\U0001f44e": "no"}  # 👍 👎: an answer, often


def keyword(body: str) -> Keyword | None:
    """The carrier keyword this whole message is, if it is one."""
    word = body.strip(_TRIM).upper()
    if word in OPT_OUT_WORDS:
        return "opt_out"
    if word in OPT_IN_WORDS:
        return "opt_in"
    if word == "YES":
        return "yes"
    if word in HELP_WORDS:
        return "help"
    return None


def readable(body: str) -> str:
    """The message as the planner should read it: emoji and control characters out,
    whitespace collapsed; a lone thumbs up or down as "yes" / "no". "" if no words left."""
    stripped = body.strip()
    base = "".join(ch for ch in stripped if not _is_modifier(ch))
    if base in _THUMBS:
        return _THUMBS[base]
    kept = []
    for ch in stripped:
        if ch.isspace() or unicodedata.category(ch) == "Cc":
            kept.append(" ")
        elif not (unicodedata.category(ch) in _DROP_CATEGORIES or _is_modifier(ch)):
            kept.append(ch)
    text = _SPACES.sub(" ", "".join(kept)).strip()
    return text if any(ch.isalnum() for ch in text) else ""


def _is_modifier(ch: str) -> bool:
    """Variation selectors and skin tones: parts of an emoji, never of a word."""
    code = ord(ch)
    return 0xFE00 <= code <= 0xFE0F or 0x1F3FB <= code <= 0x1F3FF or 0xE0100 <= code <= 0xE01EF
