"""Which building fits what a caller who doesn't know the names wants ("near a park").

Callers who can't pick a building by name describe what they want instead. The words they
use are matched against what the catalog says about each building (neighbourhood, amenities,
parking); a building is suggested only when it alone matches, so a vague wish ("something
nice") never picks one for them."""

from __future__ import annotations

import re

from app.domain.catalog import Catalog, Property

_WORD = re.compile(r"[a-z]+")
# The same wish in the caller's words and in the catalog's.
_SAME = {
    "subway": "train",
    "metro": "train",
    "transit": "train",
    "commute": "train",
    "path": "train",
    "gym": "fitness",
    "workout": "fitness",
    "kid": "children",
    "kids": "children",
    "family": "children",
    "playroom": "children",
    "water": "river",
    "waterfront": "river",
    "hudson": "river",
    "roof": "rooftop",
    "washer": "laundry",
    "dryer": "laundry",
    "garage": "parking",
    "car": "parking",
    "chargers": "parking",
    "concierge": "doorman",
    "theater": "times",
    "theatre": "times",
}
# Words too common in wishes and descriptions to tell buildings apart.
_COMMON = frozenset(
    [
        "want",
        "wants",
        "something",
        "somewhere",
        "place",
        "looking",
        "like",
        "would",
        "need",
        "with",
        "near",
        "close",
        "from",
        "that",
        "have",
        "this",
        "there",
        "their",
        "they",
        "them",
        "what",
        "which",
        "some",
        "very",
        "really",
        "maybe",
        "nice",
        "good",
        "great",
        "area",
        "building",
        "apartment",
        "apartments",
        "home",
        "homes",
        "unit",
        "minutes",
        "minute",
        "walk",
        "short",
        "blocks",
        "block",
        "every",
        "floor",
        "month",
        "dollars",
    ]
)


def _terms(text: str) -> set[str]:
    words = (w.removesuffix("s") if len(w) > 4 else w for w in _WORD.findall(text.lower()))
    return {_SAME.get(w, w) for w in words if len(w) >= 3 and w not in _COMMON}


def _described(prop: Property) -> frozenset[str]:
    return frozenset(_terms(" ".join([prop.neighborhood, prop.parking, *prop.amenities])))


def best_fit(text: str, catalog: Catalog) -> Property | None:
    """The one building whose description shares the most of the caller's words, if unique."""
    wanted = _terms(text)
    scored = sorted(
        ((len(wanted & _described(p)), p) for p in catalog.properties.values()),
        key=lambda pair: -pair[0],
    )
    if not scored or scored[0][0] == 0:
        return None
    if len(scored) > 1 and scored[1][0] == scored[0][0]:
        return None
    return scored[0][1]
