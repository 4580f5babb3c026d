"""app/planner/fuzzy_places.py: building names through recognizer errors, numbered choices.

Texts are written the way a recognizer writes them, then normalized with ``normalize_words``
as the planner does before matching.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from app.domain.catalog import Catalog, normalize_words
from app.planner.fuzzy_places import (
    CONFIDENT,
    PlaceMatch,
    PlaceMatcher,
    choose_by_number,
    number_readings,
)
from app.planner.numbers import prepare

CATALOG = Catalog.load(Path(__file__).resolve().parent.parent / "prompts" / "properties.yaml")
MATCHER = PlaceMatcher.from_catalog(CATALOG)
W, H, R = "21-west-end", "hudson-360", "riverview-lofts"


def find(text: str) -> list[PlaceMatch]:
    return MATCHER.find(normalize_words(text))


def ids(text: str) -> list[str]:
    return [m.property_id for m in find(text)]


# (text, building, heard span, confident?) — "*" marks phrasings no alias covers.
POSITIVES = [
    ("Hudson 360", H, "hudson 360", True),
    ("hudson three sixty", H, "hudson three sixty", True),
    ("Hudson three hundred and sixty", H, "hudson three hundred and sixty", True),
    ("hudson 3 60", H, "hudson 3 60", True),
    ("the Hudson", H, "the hudson", True),
    ("I'd like to see the Hudson tomorrow", H, "the hudson", True),
    ("hutson three sixty", H, "hutson three sixty", True),  # *
    ("Hutson 360 please", H, "hutson 360", True),  # *
    ("hudson free sixty", H, "hudson free sixty", True),  # *
    ("Hudson 316", H, "hudson 316", True),  # *
    ("how it's in 360", H, "how its in 360", False),  # *
    ("who's in three sixty", H, "whos in three sixty", False),  # *
    ("Can I tour Hudson Three Sixty on Friday?", H, "hudson three sixty", True),
    ("riverview lofts", R, "riverview lofts", True),
    ("Riverview Lofts.", R, "riverview lofts", True),
    ("river view loft", R, "river view loft", True),
    ("review lofts", R, "review lofts", True),
    ("river few lofts", R, "river few lofts", True),  # *
    ("river views lofts", R, "river views lofts", True),  # *
    ("rivera lofts", R, "rivera lofts", True),  # *
    ("revere lofts", R, "revere lofts", True),  # *
    ("river for lofts", R, "river for lofts", False),  # *
    ("riverview loss", R, "riverview", True),  # *
    ("the riverview", R, "riverview", True),
    ("Is Riverview pet friendly?", R, "riverview", True),
    ("the lofts in Hoboken", R, "the lofts", True),
    ("twenty one west end", W, "twenty one west end", True),
    ("21 West End", W, "21 west end", True),
    ("21 west and", W, "21 west and", True),  # *
    ("twenty-one west end", W, "twenty one west end", True),
    ("twenty one west", W, "twenty one west", False),  # *
    ("21 west in", W, "21 west in", True),  # *
    ("twenty one vest end", W, "twenty one vest end", True),  # *
    ("west end avenue", W, "west end", True),
    ("the west end", W, "the west end", True),
    ("21 West End Avenue please", W, "21 west end avenue", True),
    ("I want the one on West End", W, "west end", True),
    ("tweny one west end", W, "tweny one west end", True),  # *
    ("twenty one wes tend", W, "twenty one wes tend", True),  # *
    ("hudson three sixty or riverview lofts", H, "hudson three sixty", True),
]


@pytest.mark.parametrize(("text", "building", "span", "confident"), POSITIVES)
def test_finds_building(text: str, building: str, span: str, confident: bool) -> None:
    normalized = normalize_words(text)
    found = MATCHER.find(normalized)
    match = next(m for m in found if m.property_id == building)
    assert normalized[match.span[0] : match.span[1]] == span
    assert (match.score >= CONFIDENT) == confident, match.score


NEGATIVES = [
    "I'd like to see it on Wednesday",
    "the weekend",
    "this weekend works",
    "when",
    "when can I come",
    "review the lease",
    "can I review the lease first",
    "I live near the river",
    "at 3 60 dollars",
    "is it 360 dollars a month",
    "I'm looking for a two bedroom",
    "what's the rent",
    "west side",
    "the west coast",
    "twenty one",
    "twenty one dollars",
    "one west",
    "the loft",
    "I'd love to",
    "how is it in there",
    "who is this",
    "see you soon",
    "I was reviewing",
    "every week",
    "the best end",
    "east end",
    "the end",
    "what time works",
    "sounds good",
    "Wednesday at three thirty",
    "the view from the roof",
    "how's the west entrance",
    "yes that works",
    "my name is Dana",
]


@pytest.mark.parametrize("text", NEGATIVES)
def test_ordinary_speech_names_no_building(text: str) -> None:
    assert find(text) == []


def test_staff_aliases_still_match_exactly() -> None:
    # Aliases are staff's words: "river view" and "hudson" always name the building.
    assert ids("a river view would be nice") == [R]
    assert ids("my name is Hudson Smith") == [H]


def test_a_number_alone_is_a_weak_match() -> None:
    [match] = find("I'll take three sixty")
    assert match.property_id == H and match.score < CONFIDENT
    assert find("at 3 60") == []


def test_several_buildings_in_order_of_mention() -> None:
    assert ids("compare riverview lofts and hudson 360") == [R, H]
    assert ids("hutson three sixty or twenty one west and") == [H, W]


def test_prepared_text_works_too() -> None:
    # The planner may pass ``prepare``d text (digits for number words).
    assert ids(normalize_words(prepare("hudson three hundred sixty"))) == [H]
    assert ids(normalize_words(prepare("twenty one west end"))) == [W]


def test_the_curated_sets_are_big_enough() -> None:
    assert len(POSITIVES) >= 40
    assert len(NEGATIVES) >= 30


def test_empty_text() -> None:
    assert MATCHER.find("") == []


def test_builds_from_plain_mapping() -> None:
    matcher = PlaceMatcher({"a": ["Maple Court", "the maple"], "b": ["Oak Tower 12"]})
    assert [m.property_id for m in matcher.find("the mapel cort")] == ["a"]
    assert [m.property_id for m in matcher.find("oak tower twelve")] == ["b"]


@pytest.mark.parametrize(
    ("digits", "first"),
    [("21", "twenty one"), ("360", "three sixty"), ("305", "three oh five"),
     ("300", "three hundred"), ("7", "seven"), ("1234", "one two three four")],
)  # fmt: skip
def test_number_readings(digits: str, first: str) -> None:
    assert number_readings(digits)[0] == first


LONG_TURN = (  # a whole turn, as the planner matches it
    "I'd like to see it on Wednesday at three, is the Hudson one available for a two "
    "bedroom, or maybe river few lofts"
)


def test_find_picks_both_buildings_out_of_a_long_turn() -> None:
    """What the planner hears mid-call. Its speed per call is measured by
    bench/matching_speed.py (tests do not time things)."""
    text = normalize_words(LONG_TURN)
    assert [m.property_id for m in MATCHER.find(text)] == [H, R]


# ---------------------------------------------------------------- numbered choices


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("one", 1), ("1", 1), ("2", 2), ("Two.", 2), ("three", 3), ("um, two.", 2),
        ("the first", 1), ("the first one", 1), ("the second one", 2), ("The third one.", 3),
        ("number 3", 3), ("number two", 2), ("option two", 2), ("option 1 please", 1),
        ("two please", 2), ("press 2", 2), ("the 3rd", 3), ("second", 2), ("third option", 3),
        ("first one please", 1), ("okay the third one please", 3), ("let's do the first", 1),
        ("I'll go with number 2 please", 2), ("I will take number one", 1),
        ("let us go with 3", 3), ("the last one", 3), ("1 for 21 West End", 1),
        ("to", 2), ("too", 2), ("won", 1), ("number two there", 2), ("one yeah", 1),
        ("3 I guess", 3), ("the second sir", 2),
    ],
)  # fmt: skip
def test_choose_by_number(text: str, expected: int) -> None:
    assert choose_by_number(text) == expected


@pytest.mark.parametrize(
    "text",
    ["two bedroom", "a 2 bedroom", "at 2 pm", "Tuesday the 2nd", "the second of December",
     "I have 2 dogs", "A cat and 2 small dogs.", "actually make it three thirty",
     "hudson three sixty", "Hudson 360, 3 bedrooms.", "Is the security deposit one month?",
     "the one in hoboken", "the Hudson one", "one two", "four", "number five", "for",
     "I also have first.", "", "yes"],
)  # fmt: skip
def test_not_a_numbered_choice(text: str) -> None:
    assert choose_by_number(text) is None


def test_choice_count() -> None:
    assert choose_by_number("four", count=5) == 4
    assert choose_by_number("the last one", count=2) == 2
    assert choose_by_number("number 3", count=2) is None
