"""How values sound when the agent says them: dates, money, codes, lists."""

from __future__ import annotations

from datetime import date, datetime

from app.domain.state import TOUR_TYPE_WORDS, UNIT_SIZE_WORDS, Pet


def clock(dt: datetime) -> str:
    """11 AM, 6:30 PM."""
    hour = dt.hour % 12 or 12
    suffix = "AM" if dt.hour < 12 else "PM"
    return f"{hour} {suffix}" if dt.minute == 0 else f"{hour}:{dt.minute:02d} {suffix}"


def day(d: date) -> str:
    """Saturday, November 28."""
    return f"{d:%A}, {d:%B} {d.day}"


def when(dt: datetime) -> str:
    """Saturday, November 28 at 11 AM."""
    return f"{day(dt)} at {clock(dt)}"


def relative_day(d: date, today: date) -> str:
    """today / tomorrow / on Saturday, November 28: for "I have nothing open ..."."""
    if d == today:
        return "today"
    if (d - today).days == 1:
        return "tomorrow"
    return f"on {day(d)}"


def money(amount: int) -> str:
    return f"${amount:,}"


def unit(size: str) -> str:
    """a two-bedroom."""
    return UNIT_SIZE_WORDS[size]


def unit_plain(size: str) -> str:
    """two-bedroom (no article), for "two-bedrooms at ... run"."""
    return UNIT_SIZE_WORDS[size].split(" ", 1)[1]


def with_article(word: str) -> str:
    """a virtual / an in-person."""
    return f"{'an' if word[:1].lower() in 'aeiou' else 'a'} {word}"


def tour(tour_type: str, property_name: str) -> str:
    """an in-person tour of Hudson 360."""
    return f"{with_article(TOUR_TYPE_WORDS[tour_type])} tour of {property_name}"


def first_name(name: str | None) -> str | None:
    """Dana, for Dana Lee: how the agent addresses a caller."""
    return name.split()[0] if name else None


_NUMBER_WORDS = ["no", "one", "two", "three", "four", "five", "six"]


def pets(items: list[Pet]) -> str:
    """Two cats and a dog."""
    parts = []
    for pet in items:
        if pet.count == 1:
            parts.append(f"a {pet.kind}")
        else:
            count = _NUMBER_WORDS[pet.count] if pet.count < len(_NUMBER_WORDS) else str(pet.count)
            plural = pet.kind if pet.kind == "fish" else f"{pet.kind}s"
            parts.append(f"{count} {plural}")
    return join(parts)


def join(items: list[str], conjunction: str = "and") -> str:
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} {conjunction} {items[-1]}"


def spell(code: str) -> str:
    """4RW8 -> 4, R, W, 8: easy to write down from the phone."""
    return ", ".join(code)


def capitalize(text: str) -> str:
    return text[:1].upper() + text[1:]
