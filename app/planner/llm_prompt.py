"""The LLM planner's system prompt, from ``prompts/system_prompt.md``.

The template is read once; the buildings and tour rules are summarized once; the state,
memory and clock are filled in on every turn so the model always sees the current values.
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime, timedelta
from pathlib import Path

from app.domain import spoken, tour_rules
from app.domain.catalog import Catalog
from app.domain.context import CallerContext
from app.domain.state import TOUR_TYPE_WORDS, PlannerState
from app.planner.prompts import Prompts

_PLACEHOLDER = re.compile(r"\{(\w+)\}")
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
CALENDAR_DAYS = 14
# Dialogue bookkeeping of the rule planner: noise to the model, so left out of the prompt.
_STATE_NOISE = {
    "awaiting",
    "changed",
    "last_question",
    "last_reply",
    "reprompts",
    "requested_day",
    "requested_period",
    "silences",
    "turns",
    "ask_streak",
    "asked_once",
    "name_tries",
    "pending_name",
    "name_guess",
    "pending_property",
    "unit_choice",
    "wanted_time",
    "refused_time",
}


def read_template(path: Path) -> str:
    """The template without its leading ``#`` comment lines."""
    lines = path.read_text().splitlines()
    while lines and (lines[0].startswith("#") or not lines[0].strip()):
        lines.pop(0)
    return "\n".join(lines).strip() + "\n"


def fill(template: str, values: dict[str, str]) -> str:
    """Replace ``{name}`` placeholders; unknown ones (and any other braces) stay as they are."""
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)


class SystemPrompt:
    """Renders the system message for one turn."""

    def __init__(self, template: str, catalog: Catalog, prompts: Prompts) -> None:
        self.template = template
        self.catalog = catalog
        self.static = {
            "office": prompts.say("office_name"),
            "buildings": buildings_summary(catalog),
            "tour_rules": tour_rules_summary(),
        }

    @classmethod
    def load(cls, prompts_dir: Path, catalog: Catalog, prompts: Prompts) -> SystemPrompt:
        return cls(read_template(prompts_dir / "system_prompt.md"), catalog, prompts)

    def render(self, state: PlannerState, context: CallerContext | None, now: datetime) -> str:
        return fill(
            self.template,
            {
                **self.static,
                "now": f"{spoken.day(now)}, {now.year}, {spoken.clock(now)} ({now.tzinfo})",
                "calendar": calendar(now),
                "memory": memory_summary(context, self.catalog),
                "state": state_json(state),
            },
        )


def state_json(state: PlannerState) -> str:
    return json.dumps(state.model_dump(mode="json", exclude=_STATE_NOISE), ensure_ascii=False)


def calendar(now: datetime) -> str:
    """One line per day, so the model never has to work out which date "next Friday" is."""
    lines = []
    for offset in range(CALENDAR_DAYS):
        day = (now + timedelta(days=offset)).date()
        note = " (today)" if offset == 0 else " (tomorrow)" if offset == 1 else ""
        lines.append(f"- {spoken.day(day)}: {day.isoformat()}{note}")
    return "\n".join(lines)


def tour_rules_summary() -> str:
    lines = []
    for tour_type, hours in tour_rules.HOURS.items():
        days = _weekday_phrase(hours.weekdays)
        first = spoken.clock(datetime.combine(date.min, hours.first_start))
        last = spoken.clock(datetime.combine(date.min, hours.last_start))
        lines.append(
            f"- {spoken.capitalize(TOUR_TYPE_WORDS[tour_type])} tours (tour_type "
            f'"{tour_type}"): {days}, starting every {hours.step_minutes} minutes from '
            f"{first}; the last start is {last}."
        )
    lines.append("- Tours can't start in the past.")
    return "\n".join(lines)


def _weekday_phrase(weekdays: frozenset[int]) -> str:
    days = sorted(weekdays)
    if len(days) == 7:
        return "every day"
    if days == list(range(days[0], days[-1] + 1)) and len(days) > 2:
        return f"{_WEEKDAYS[days[0]]} to {_WEEKDAYS[days[-1]]}"
    return spoken.join([_WEEKDAYS[d] for d in days])


def buildings_summary(catalog: Catalog) -> str:
    blocks = []
    for prop in catalog.properties.values():
        units = "; ".join(
            f"{spoken.unit_plain(size)}s {spoken.money(rent.rent_min)} to "
            f"{spoken.money(rent.rent_max)} a month"
            for size, rent in prop.units.items()
        )
        lines = [
            f'- {prop.name} (property_id "{prop.id}"): {prop.address}, {prop.neighborhood}.',
            f"  Units (unit_size {', '.join(prop.units)}): {units}.",
            f"  Pets: {prop.pets}",
            f"  Parking: {prop.parking}",
            f"  Amenities: {spoken.join(prop.amenities)}.",
        ]
        lines += [f"  {spoken.capitalize(topic)}: {answer}" for topic, answer in prop.faq.items()]
        blocks.append("\n".join(lines))
    return "\n".join(blocks)


def memory_summary(context: CallerContext | None, catalog: Catalog) -> str:
    if context is None or not context.is_returning:
        return "Nothing yet: this is a new caller."
    lines = []
    if context.name:
        lines.append(f"- Name: {context.name}")
    booking = context.upcoming_booking
    if booking is not None and booking.status == "booked":
        prop = catalog.properties.get(booking.property_id)
        tour = spoken.tour(booking.tour_type, prop.name if prop else booking.property_id)
        lines.append(
            f"- Upcoming tour: {tour} on {spoken.when(booking.start)}, confirmation code "
            f"{booking.confirmation_code}"
        )
    if context.last_summary:
        lines.append(f"- Last call: {context.last_summary}")
    if context.memories:
        lines.append("- Remembered from earlier calls:")
        lines += [f"  - {memory}" for memory in context.memories]
    return "\n".join(lines)
