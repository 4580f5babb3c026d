"""A caller who can't name a building describes it: the one that alone fits is suggested."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.domain.catalog import Catalog
from app.planner.building_fit import best_fit

CATALOG = Catalog.load(Path(__file__).resolve().parents[1] / "prompts" / "properties.yaml")


@pytest.mark.parametrize(
    ("wish", "building"),
    [
        ("something quiet, near a park maybe", "21-west-end"),
        ("close to the subway please", "riverview-lofts"),
        ("walking distance to times square", "hudson-360"),
        ("I'd love a pool", "hudson-360"),
        ("a gym and a doorman", "21-west-end"),
        ("good for the kids", "21-west-end"),
    ],
)
def test_a_wish_that_one_building_fits_suggests_it(wish: str, building: str) -> None:
    fit = best_fit(wish, CATALOG)
    assert fit is not None and fit.id == building


@pytest.mark.parametrize(
    "wish", ["something nice", "honestly I have no idea", "somewhere on the water", "uh"]
)
def test_a_vague_or_shared_wish_suggests_nothing(wish: str) -> None:
    assert best_fit(wish, CATALOG) is None
