"""Who the caller is: one normalization used everywhere memory is keyed.

Phones become E.164 ("(212) 555-0199", "+1 212 555 0199" and "2125550199" are one caller);
emails are trimmed and lower-cased; anything else (a device id) is trimmed and kept as is.
"""

from __future__ import annotations

import re

import phonenumbers

DEFAULT_REGION = "US"
MAX_CALLER_ID_LENGTH = 320
"""The longest caller id kept (an email address can be this long); one policy for the
phone webhook, the avatar protocol and the REST API, so an id accepted at one door can be
searched, exported and forgotten at the others."""
_PHONE_CHARS = re.compile(r"^[\d\s().+-]+$")


class InvalidCallerId(ValueError):
    """The caller id is empty or unusable."""


def normalize_caller_id(raw: str, region: str = DEFAULT_REGION) -> str:
    """The one key memory uses for this caller."""
    value = (raw or "").strip()
    if not value:
        raise InvalidCallerId("caller id is empty")
    if len(value) > MAX_CALLER_ID_LENGTH or not value.isprintable():
        raise InvalidCallerId(
            f"caller id must be printable and at most {MAX_CALLER_ID_LENGTH} characters"
        )
    if "@" in value:
        return value.lower()
    if _PHONE_CHARS.match(value) and sum(ch.isdigit() for ch in value) >= 7:
        phone = normalize_phone(value, region)
        if phone:
            return phone
    return value


def normalize_phone(raw: str, region: str = DEFAULT_REGION) -> str | None:
    """E.164 for a possible phone number, else None."""
    try:
        parsed = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


# Caller ID withheld: carriers send a word, and Twilio passes the word or its keypad digits
# ("Anonymous" -> +266696687). Every such caller would otherwise share one memory.
_WITHHELD_WORDS = ("anonymous", "restricted", "unavailable", "unknown", "private", "blocked")
_KEYPAD = {
    letter: str(key)
    for key, letters in enumerate(
        ("", "", "abc", "def", "ghi", "jkl", "mno", "pqrs", "tuv", "wxyz")
    )
    for letter in letters
}
WITHHELD_IDS = frozenset(
    [*_WITHHELD_WORDS, *("".join(_KEYPAD[c] for c in word) for word in _WITHHELD_WORDS)]
)


def is_withheld(raw: str) -> bool:
    """Is this a withheld caller ID ("Anonymous", "+266696687", "Restricted"...)?"""
    value = (raw or "").strip().lower().lstrip("+")
    return value in WITHHELD_IDS


def masked(caller_id: str | None) -> str:
    """A caller id fit for a log line: "+1415•••0101", "d•••@example.com", "dev•••"."""
    value = (caller_id or "").strip()
    if not value:
        return "(none)"
    if "@" in value:
        local, _, domain = value.partition("@")
        return f"{local[:1]}•••@{domain}"
    if is_phone(value) and len(value) > 9:
        return f"{value[:5]}•••{value[-4:]}"
    return f"{value[:3]}•••"


def is_phone(caller_id: str) -> bool:
    return caller_id.startswith("+") and caller_id[1:].isdigit()
