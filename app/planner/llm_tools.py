"""The LLM planner's tools: availability, booking and preferences, over the shared TourDesk.

Tool definitions (names, descriptions, parameters) come from ``prompts/tools.yaml``; this
module executes them. Every tool mutates the conversation's ``PlannerState`` the same way the
rule planner would, and returns a small JSON object for the model. Bad arguments come back
as ``{"error": ...}`` so the model can fix them or ask the caller; they never end the turn.
Database work runs in a worker thread, off the event loop.
"""

from __future__ import annotations

import asyncio
import json
import re
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from app.domain import spoken
from app.domain.catalog import normalize_words
from app.domain.identity import normalize_phone
from app.domain.state import PREFERENCE_FIELDS, Booking, PlannerState, TourType
from app.planner.prompts import Prompts
from app.planner.tour_desk import Contact, TourDesk
from app.planner.unit_fit import unit_fit_notes
from app.stores.bookings import BookingError, normalize_code

_CLOCK = re.compile(r"^(\d{1,2})(?:[:.](\d{2}))?(?::\d{2})?\s*(?:([ap])\.?\s*m\.?)?$", re.I)
OFFER_COUNT = 4


class ToolError(ValueError):
    """A problem with the model's arguments, explained to the model."""


def load_definitions(path: Path, property_ids: list[str]) -> list[dict[str, Any]]:
    """OpenAI ``tools`` entries from the YAML file, with the building ids as enums."""
    definitions = []
    for item in yaml.safe_load(path.read_text()):
        parameters = item.get("parameters") or {"type": "object", "properties": {}}
        prop = parameters.get("properties", {}).get("property_id")
        if prop is not None:
            prop["enum"] = list(property_ids)
        definitions.append(
            {
                "type": "function",
                "function": {
                    "name": item["name"],
                    "description": " ".join(str(item.get("description", "")).split()),
                    "parameters": parameters,
                },
            }
        )
    return definitions


def parse_day(value: Any) -> date:
    try:
        return date.fromisoformat(str(value).strip()[:10])
    except ValueError as exc:
        raise ToolError(f"date {value!r} is not YYYY-MM-DD") from exc


def parse_clock(value: Any) -> time:
    """A time of day from "14:00", "2:30 PM" or "11am"."""
    match = _CLOCK.match(str(value).strip())
    if not match:
        raise ToolError(f"time {value!r} is not HH:MM")
    hour, minute = int(match.group(1)), int(match.group(2) or 0)
    half = (match.group(3) or "").lower()
    if half == "p" and hour < 12:
        hour += 12
    elif half == "a" and hour == 12:
        hour = 0
    if hour > 23 or minute > 59:
        raise ToolError(f"time {value!r} is not a time of day")
    return time(hour, minute)


def offer_only(definitions: list[dict[str, Any]], offered: tuple[str, ...]) -> None:
    """Let the model choose only the confirmation channels this line can send: without
    any, ``contact_preference`` is not a parameter at all."""
    for definition in definitions:
        properties = definition["function"]["parameters"].get("properties", {})
        if "contact_preference" not in properties:
            continue
        if offered:
            properties["contact_preference"]["enum"] = [*offered, "call"]
        else:
            del properties["contact_preference"]


def _slot(dt: datetime) -> dict[str, str]:
    return {"start": dt.isoformat(), "spoken": spoken.when(dt)}


class TourTools:
    """Runs one tool call against the desk and a conversation's state."""

    def __init__(self, desk: TourDesk, prompts: Prompts, prompts_dir: Path) -> None:
        self.desk = desk
        self.prompts = prompts
        self.catalog = desk.catalog
        self.definitions = load_definitions(
            prompts_dir / "tools.yaml", list(self.catalog.properties)
        )
        offer_only(self.definitions, desk.offered)
        self._handlers = {
            "check_availability": self.check_availability,
            "book_tour": self.book_tour,
            "update_preferences": self.update_preferences,
            "reschedule_tour": self.reschedule_tour,
            "cancel_tour": self.cancel_tour,
            "end_call": self.end_call,
        }

    async def run(self, state: PlannerState, name: str, arguments: str) -> str:
        """The tool's result as the JSON text sent back to the model."""
        handler = self._handlers.get(name)
        try:
            if handler is None:
                raise ToolError(f"there is no tool named {name!r}")
            args = json.loads(arguments or "{}")
            if not isinstance(args, dict):
                raise ToolError("arguments must be a JSON object")
            result = await handler(state, args)
        except json.JSONDecodeError:
            result = {"error": "arguments are not valid JSON"}
        except ValidationError as exc:
            problems = "; ".join(f"{e['loc'][0]}: {e['msg']}" for e in exc.errors() if e["loc"])
            result = {"error": f"invalid value ({problems})"}
        except (ToolError, BookingError) as exc:
            result = {"error": str(exc)}
        return json.dumps(result, ensure_ascii=False)

    # ------------------------------------------------------------------ tools

    async def check_availability(self, state: PlannerState, args: dict[str, Any]) -> dict[str, Any]:
        property_id = self._property(args, state)
        tour_type = self._tour_type(args, state)
        day = parse_day(args.get("date"))
        state.update(property_id=property_id, tour_type=tour_type)
        if args.get("time"):
            start = datetime.combine(day, parse_clock(args["time"]), self.catalog.tz)
            check = await asyncio.to_thread(self.desk.check, tour_type, property_id, start)
            if check.ok:
                state.update(tour_time=start, offered_slots=[])
                return {"available": True, **_slot(start)}
            state.update(tour_time=None, offered_slots=check.alternatives)
            return {
                "available": False,
                "requested": spoken.when(start),
                "problem": self._problem(check.problem, tour_type, start),
                "alternatives": [_slot(s) for s in check.alternatives],
            }
        period = (
            args.get("period")
            if args.get("period") in ("morning", "afternoon", "evening")
            else None
        )
        slots = await asyncio.to_thread(
            self.desk.offer, tour_type, property_id, day, period, OFFER_COUNT
        )
        result: dict[str, Any] = {"day": spoken.day(day), "free_times": [_slot(s) for s in slots]}
        if not slots:
            noon = datetime.combine(day, time(12), self.catalog.tz)
            slots = await asyncio.to_thread(self.desk.nearest, tour_type, property_id, noon)
            result["nearest_free_times"] = [_slot(s) for s in slots]
        state.update(offered_slots=slots)
        return result

    async def book_tour(self, state: PlannerState, args: dict[str, Any]) -> dict[str, Any]:
        self._apply({k: args[k] for k in ("caller_name", "email") if args.get(k)}, state)
        property_id = self._property(args, state)
        tour_type = self._tour_type(args, state)
        start = self._start(args, state)
        current = _active(state.booking)
        if current and current.property_id == property_id and current.start > self.desk.now():
            raise ToolError(
                f"the caller already has a tour there ({current.confirmation_code}, "
                f"{spoken.when(current.start)}): use reschedule_tour to move it"
            )
        try:
            booking = await asyncio.to_thread(
                self.desk.book,
                property_id,
                tour_type,
                start,
                state.caller_id or state.phone or state.email or "anonymous",
                state.caller_name,
                state.email,
                Contact(state.phone, state.email, state.contact_preference),
            )
        except (BookingError, ValueError):
            return await self._not_booked(state, tour_type, property_id, start, "booked")
        state.update(
            property_id=property_id,
            tour_type=tour_type,
            tour_time=booking.start,
            booking=booking,
            offered_slots=[],
            rescheduling=False,
        )
        code = booking.confirmation_code
        return {
            "booked": True,
            "confirmation_code": code,
            "code_spelled": spoken.spell(code),
            "tour": spoken.tour(tour_type, self.catalog.name_of(property_id)),
            "when": spoken.when(booking.start),
            "confirmation": await asyncio.to_thread(self._confirmation, state, booking),
        }

    async def update_preferences(self, state: PlannerState, args: dict[str, Any]) -> dict[str, Any]:
        values = {k: v for k, v in args.items() if v is not None}
        if "name" in values and "caller_name" not in values:
            values["caller_name"] = values.pop("name")
        ignored = sorted(k for k in values if k not in PREFERENCE_FIELDS)
        changed = self._apply({k: v for k, v in values.items() if k in PREFERENCE_FIELDS}, state)
        result: dict[str, Any] = {"updated": changed, "known": state.caller_facts()}
        if ignored:
            result["ignored"] = ignored
        notes = self._fit_notes(state)
        if notes:
            result["notes"] = notes
        booking = _active(state.booking)
        contacts = {"contact_preference", "email", "phone"}
        if booking is not None and contacts & set(changed) and state.contact_preference:
            result["confirmation"] = await asyncio.to_thread(self._confirmation, state, booking)
        return result

    async def reschedule_tour(self, state: PlannerState, args: dict[str, Any]) -> dict[str, Any]:
        booking = await self._booking(args, state)
        start = datetime.combine(
            parse_day(args.get("date")), parse_clock(args.get("time")), self.catalog.tz
        )
        try:
            moved = await asyncio.to_thread(
                self.desk.reschedule, booking.confirmation_code, booking.tour_type, start
            )
        except (BookingError, ValueError):
            return await self._not_booked(
                state, booking.tour_type, booking.property_id, start, "rescheduled"
            )
        state.update(
            booking=moved,
            property_id=moved.property_id,
            tour_type=moved.tour_type,
            tour_time=moved.start,
            offered_slots=[],
            rescheduling=False,
        )
        return {
            "rescheduled": True,
            "confirmation_code": moved.confirmation_code,
            "when": spoken.when(moved.start),
        }

    async def cancel_tour(self, state: PlannerState, args: dict[str, Any]) -> dict[str, Any]:
        booking = await self._booking(args, state)
        cancelled = await asyncio.to_thread(self.desk.cancel, booking.confirmation_code)
        state.update(booking=cancelled, tour_time=None, rescheduling=False)
        return {"cancelled": True, "when": spoken.when(cancelled.start)}

    async def end_call(self, state: PlannerState, args: dict[str, Any]) -> dict[str, Any]:
        booking = _active(state.booking)
        if booking is not None:  # held confirmations go by their default route now
            await asyncio.to_thread(self.desk.release_confirmation, booking.confirmation_code)
        state.update(ended=True)
        return {"ok": True, "note": "The line closes after your reply."}

    # ------------------------------------------------------------------ helpers

    def _confirmation(self, state: PlannerState, booking: Booking) -> str:
        """What the model may tell the caller about their confirmation message: only what
        this line can send (the same rules as the deterministic planner)."""
        offered = self.desk.offered
        code = booking.confirmation_code
        if not offered:
            return (
                "This line can't text or email yet. Read the code aloud and tell the caller "
                "we can't text or email from this line yet; never offer a text or an email."
            )
        preference = state.contact_preference
        contact = Contact(state.phone, state.email, preference)
        if preference == "call":
            self.desk.send_confirmation(code, contact)
            return "The caller wants no message; none will be sent."
        if preference in offered and self.desk.send_confirmation(code, contact, booking):
            where = state.phone if preference == "text" else state.email
            return f"It will be sent by {preference} to {where}. Tell the caller."
        if preference in offered:
            missing = "mobile number" if preference == "text" else "email address"
            return f"Ask for their {missing} (then call update_preferences) to send it."
        if offered == ("text",) and state.phone:
            self.desk.send_confirmation(code, Contact(state.phone, None, "text"), booking)
            return "It will be texted to the number they are calling from. Tell the caller."
        choices = " or ".join(offered)
        note = (
            f"Ask whether they want it by {choices}"
            if len(offered) > 1
            else (f"Offer to send it by {choices}")
        )
        if preference is not None:
            note = f"This line can't send {preference}. " + note
        return (
            note + "; this line can send nothing else. Record the answer with update_preferences."
        )

    def _apply(self, values: dict[str, Any], state: PlannerState) -> list[str]:
        """Validate every value first (all or nothing), then record the changes."""
        if "property_id" in values:
            values["property_id"] = self._property(values, state)
        if "tour_type" in values:
            values["tour_type"] = self._tour_type(values, state)
        if isinstance(values.get("email"), str):
            values["email"] = values["email"].strip().lower()
        if "phone" in values:
            phone = normalize_phone(str(values["phone"]))
            if phone is None:
                raise ToolError(f"phone {values['phone']!r} is not a phone number")
            values["phone"] = phone
        checked = PlannerState.model_validate(values)
        return state.update(**{name: getattr(checked, name) for name in values})

    def _property(self, args: dict[str, Any], state: PlannerState) -> str:
        value = args.get("property_id") or state.property_id
        if not value:
            raise ToolError("which building? property_id is missing")
        if value in self.catalog.properties:
            return str(value)
        found = self.catalog.find_all(normalize_words(str(value)))
        if found:
            return found[0]
        raise ToolError(
            f"unknown property_id {value!r}; use one of {', '.join(self.catalog.properties)}"
        )

    def _tour_type(self, args: dict[str, Any], state: PlannerState) -> TourType:
        value = args.get("tour_type") or state.tour_type
        if not value:
            raise ToolError("in person or virtual? tour_type is missing")
        normalized = str(value).strip().lower().replace("-", "_").replace(" ", "_")
        if normalized in ("in_person", "inperson", "person"):
            return "in_person"
        if normalized == "virtual":
            return "virtual"
        raise ToolError(f"tour_type {value!r} must be in_person or virtual")

    def _start(self, args: dict[str, Any], state: PlannerState) -> datetime:
        if args.get("date") and args.get("time"):
            return datetime.combine(
                parse_day(args["date"]), parse_clock(args["time"]), self.catalog.tz
            )
        if state.tour_time is not None and not args.get("date") and not args.get("time"):
            return state.tour_time
        raise ToolError("which day and time? pass both date and time")

    async def _booking(self, args: dict[str, Any], state: PlannerState) -> Booking:
        code = args.get("confirmation_code")
        if code:
            booking = await asyncio.to_thread(self.desk.bookings.get, normalize_code(str(code)))
        else:
            booking = _active(state.booking)
        if booking is None or booking.status != "booked":
            raise ToolError(
                "there is no booked tour with that code" if code else "no tour is booked"
            )
        return booking

    async def _not_booked(
        self, state: PlannerState, tour_type: TourType, property_id: str, start: datetime, verb: str
    ) -> dict[str, Any]:
        check = await asyncio.to_thread(self.desk.check, tour_type, property_id, start)
        problem = check.problem or "taken"
        state.update(tour_time=None, offered_slots=check.alternatives)
        return {
            verb: False,
            "problem": self._problem(problem, tour_type, start),
            "alternatives": [_slot(s) for s in check.alternatives],
        }

    def _problem(self, problem: str | None, tour_type: TourType, start: datetime) -> str:
        key = {
            "past": "slots.past",
            "closed_day": "slots.closed_day",
            "outside_hours": f"slots.outside_hours_{tour_type}",
            "off_grid": f"slots.off_grid_{tour_type}",
        }.get(problem or "", "slots.taken")
        return self.prompts.say(key, when=spoken.when(start))

    def _fit_notes(self, state: PlannerState) -> list[str]:
        """The same early warnings the rule planner gives: no such unit, or over budget."""
        return unit_fit_notes(self.catalog, self.prompts, state)[0]


def _active(booking: Booking | None) -> Booking | None:
    return booking if booking is not None and booking.status == "booked" else None
