"""Early warnings both planners give: the building has no such unit, or rents exceed the budget."""

from __future__ import annotations

from app.domain import spoken
from app.domain.catalog import Catalog
from app.domain.state import PlannerState
from app.planner.prompts import Prompts


def unit_fit_notes(
    catalog: Catalog, prompts: Prompts, state: PlannerState
) -> tuple[list[str], bool]:
    """Sentences to say, and whether the chosen building lacks the unit size altogether.

    The building is never forgotten on a mismatch: the caller hears which sizes it has and
    which buildings have theirs, and chooses (asking "which building?" again loops)."""
    if not (state.property_id and state.unit_size):
        return [], False
    prop = catalog.get(state.property_id)
    rent = prop.units.get(state.unit_size)
    if rent is None:
        others = [p.name for p in catalog.properties.values() if state.unit_size in p.units]
        sizes = [spoken.unit_plain(size) + "s" for size in prop.units]
        note = prompts.say(
            "booking.unit_unavailable",
            property=prop.name,
            unit=spoken.unit_plain(state.unit_size),
            sizes=spoken.join(sizes),
            others=spoken.join(others),
            have_has="have" if len(others) > 1 else "has",
        )
        return [note], True
    if state.budget and state.budget < rent.rent_min:
        note = prompts.say(
            "booking.over_budget",
            unit=spoken.unit_plain(state.unit_size),
            rent_min=spoken.money(rent.rent_min),
        )
        return [note], False
    return [], False
