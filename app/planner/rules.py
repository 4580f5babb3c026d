"""The deterministic tour-booking dialogue: slot filling with templates, no LLM.

One turn is: understand the utterance, handle what we were waiting for (a yes/no, a pick
among offered times...), apply the facts, look up times, answer questions, then ask for the
one thing still missing. Everything said comes from ``prompts/dialogue.yaml``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from app.planner import spoken
from app.planner.context import CallerContext
from app.planner.numbers import prepare
from app.planner.prompts import Prompts
from app.planner.state import PREFERENCE_FIELDS, Booking, PlannerState
from app.planner.tour_desk import TourDesk
from app.planner.understanding import Understanding, understand
from app.planner.unit_fit import unit_fit_notes
from app.stores.bookings import BookingError, SlotTaken

OPTIONAL_FIELDS = ("unit_size", "move_in", "pets", "budget", "contact_preference", "email", "name")
# Asked in this order; a field the caller already gave is never asked.
QUESTION_ORDER = ("name", "property", "unit_size", "move_in", "pets", "budget", "tour_type")
# Forgotten on "start over" or "let's start fresh"; who the caller is stays.
INTEREST_FIELDS = ("property_id", "unit_size", "budget", "move_in", "tour_type", "tour_time")

_SKIP = re.compile(
    r"\b(?:not sure|unsure|don't know|dont know|no idea|no preference|doesn't matter|"
    r"does not matter|skip|flexible|whatever|rather not|prefer not|not yet|haven't decided|"
    r"undecided|any of them|either is fine)\b"
)
_NOISE = re.compile(r"^(?:\W|um+|uh+|hmm+|mm+|ah+|er+|noise|inaudible|music|blank_audio|\s)*$")
_CHOICE = re.compile(
    r"\b(?:the )?(1st|first|earlier|former|2nd|second|later|latter|last)\b(?: one| time| option)?"
)
_KEEP = re.compile(r"\b(?:keep|leave it|that's fine|it's fine|no change|stays?)\b")


@dataclass
class Reply:
    """What the agent says this turn, built up piece by piece."""

    parts: list[str] = field(default_factory=list)
    progress: bool = False  # did the caller's turn move the conversation on?
    asked: bool = False  # a handler already asked this turn's question
    noise: bool = False  # the turn was only noise: never a reason to skip a question

    def add(self, text: str) -> None:
        if text:
            self.parts.append(text)


class RulePlanner:
    """Deterministic dialogue policy over a PlannerState. Stateless itself; safe to share."""

    def __init__(self, desk: TourDesk, prompts: Prompts) -> None:
        self.desk = desk
        self.prompts = prompts
        self.catalog = desk.catalog

    # ------------------------------------------------------------------ entry points

    def greet(self, state: PlannerState, context: CallerContext | None) -> list[str]:
        """The agent's first words: a welcome, or welcome back with what we remember."""
        out = Reply()
        name = spoken.first_name(state.caller_name)
        booking = state.booking
        if booking and booking.status == "booked" and booking.start > self.desk.now():
            tour = self._tour_phrase(booking.tour_type, booking.property_id)
            when = spoken.when(booking.start)
            out.add(
                self.prompts.say(
                    "greeting.returning_booked", name=name or "there", tour=tour, when=when
                )
            )
            return self._ask(state, out, "manage_booking")
        if context is not None and context.is_returning and name:
            interest = self._interest_phrase(state)
            if interest:
                out.add(self.prompts.say("greeting.returning", name=name, interest=interest))
                return self._ask(state, out, "resume")
            out.add(self.prompts.say("greeting.returning_no_interest", name=name))
            return self._ask(state, out, "book_today", awaiting="resume")
        office = self.prompts.say("office_name")
        if name:
            out.add(self.prompts.say("greeting.new_named", office=office, name=name))
            return self._ask(state, out, "property")
        out.add(self.prompts.say("greeting.new", office=office))
        return self._ask(state, out, "name")

    def respond(self, state: PlannerState, text: str) -> list[str]:
        """One caller turn in, the agent's sentences out."""
        state.begin_turn()
        state.silences = 0
        now = self.desk.now()
        u = understand(text, now, self.catalog, state.awaiting)
        out = Reply()
        if _NOISE.match(u.text.lower()):
            out.noise = True
            return self._reprompt(state, out, "conversation.noise")
        if "repeat" in u.intents and not (u.has_facts or u.questions):
            return [state.last_reply or self.prompts.say("conversation.repeat_nothing")]
        if "start_over" in u.intents:
            return self._start_over(state, out)
        if self._wants_goodbye(state, u):
            return self._goodbye(state, out)
        self._handle_awaited(state, u, out)
        if state.ended:
            return self._done(state, out)
        self._take_in(state, u, out, now)
        if not out.progress:
            off_topic = len(u.text.split()) > 3
            key = "conversation.off_topic" if off_topic else "conversation.didnt_catch"
            return self._reprompt(state, out, key)
        return self._ask_next(state, out)

    def _take_in(self, state: PlannerState, u: Understanding, out: Reply, now: datetime) -> None:
        """Everything the caller said beyond the answer we waited for."""
        self._handle_booking_intents(state, u, out)
        time_changed = self._apply_time(state, u, out, now)
        self._apply_facts(state, u, out, time_changed)
        self._answer_questions(state, u, out)
        if "human" in u.intents:
            out.add(self.prompts.say("conversation.human"))
            out.progress = True
        passed = _SKIP.search(u.text.lower()) or (u.affirm is False and not u.has_facts)
        if state.awaiting in OPTIONAL_FIELDS and not out.progress and passed:
            self._skip(state, state.awaiting, out)

    def on_silence(self, state: PlannerState) -> list[str]:
        """The caller said nothing for a while: check in, then let them go."""
        state.silences += 1
        out = Reply()
        if state.silences >= 3:
            out.add(self.prompts.say("conversation.silence_goodbye"))
            state.update(ended=True, awaiting=None)
            return self._done(state, out)
        out.add(self.prompts.say("conversation.still_there", state.silences - 1))
        if state.last_question:
            out.add(state.last_question)
        return self._done(state, out)

    def _start_over(self, state: PlannerState, out: Reply) -> list[str]:
        self._forget_interest(state, keep_booking=True)
        state.update(pets=None, skipped=[], pending_questions=[], awaiting=None)
        out.add(self.prompts.say("conversation.start_over"))
        out.progress = True
        return self._ask_next(state, out)

    # ------------------------------------------------------------------ what we waited for

    def _handle_awaited(self, state: PlannerState, u: Understanding, out: Reply) -> None:
        handler = {
            "resume": self._on_resume,
            "manage_booking": self._on_manage_booking,
            "cancel_confirm": self._on_cancel_confirm,
            "anything_else": self._on_anything_else,
            "pick_slot": self._on_pick_slot,
            "confirm": self._on_confirm,
            "pets": self._on_pets,
            "pet_details": self._on_pets,
            "contact_preference": self._on_contact_preference,
        }.get(state.awaiting or "")
        if handler is not None:
            handler(state, u, out)

    def _on_resume(self, state: PlannerState, u: Understanding, out: Reply) -> None:
        if u.affirm is False and not u.has_facts:
            self._forget_interest(state, keep_booking=True)
            out.add(self.prompts.say("conversation.resume_no"))
            out.progress = True
        elif u.affirm:
            out.add(self.prompts.say("conversation.resume_yes"))
            out.progress = True

    def _on_manage_booking(self, state: PlannerState, u: Understanding, out: Reply) -> None:
        if "cancel" in u.intents or "reschedule" in u.intents:
            return  # handled with the booking intents
        if u.mentions_time:
            u.intents.add("reschedule")  # "Can we do Friday at 3 instead?"
            return
        if _KEEP.search(u.text.lower()) or u.affirm is not None:
            out.add(self.prompts.say("booking.kept"))
            state.update(awaiting="anything_else")
            out.progress = True

    def _on_cancel_confirm(self, state: PlannerState, u: Understanding, out: Reply) -> None:
        if u.affirm and state.booking:
            cancelled = self.desk.cancel(state.booking.confirmation_code)
            state.update(booking=cancelled, tour_time=None, rescheduling=False)
            out.add(self.prompts.say("booking.cancelled", when=spoken.when(cancelled.start)))
        elif u.affirm is False:
            out.add(self.prompts.say("booking.kept"))
        else:
            return
        state.update(awaiting="anything_else")
        out.progress = True

    def _on_anything_else(self, state: PlannerState, u: Understanding, out: Reply) -> None:
        if u.affirm is False and not u.has_facts and not u.questions:
            self._goodbye(state, out)
        elif u.affirm and not u.has_facts and not u.questions and not u.intents:
            out.add(self.prompts.say("conversation.what_else"))
            state.update(awaiting=None)
            out.asked = True
            out.progress = True

    def _on_pick_slot(self, state: PlannerState, u: Understanding, out: Reply) -> None:
        if not state.offered_slots:
            return
        choice = self._choose_offered(state, u)
        if choice is not None:
            state.update(tour_time=choice, offered_slots=[])
            out.progress = True
        elif u.affirm is False and not u.has_facts:
            state.update(offered_slots=[])  # "neither": ask for another day and time
            out.add(self.prompts.say("conversation.skip_ok"))
            out.progress = True

    def _on_confirm(self, state: PlannerState, u: Understanding, out: Reply) -> None:
        if state.tour_time is None:
            return
        declined = u.affirm is False or bool({"cancel", "reschedule"} & u.intents)
        if u.affirm and not u.mentions_time and not u.correction:
            self._book(state, out)
        elif declined and not u.has_facts and not (state.rescheduling and "cancel" in u.intents):
            self._offer_instead(state, out)

    def _offer_instead(self, state: PlannerState, out: Reply) -> None:
        """The caller turned the time down: offer the nearest others, keep the day in view."""
        declined = state.tour_time
        assert declined and state.tour_type and state.property_id
        state.update(tour_time=None)
        out.add(self.prompts.say("conversation.skip_ok"))
        out.progress = True
        nearby = self.desk.nearest(state.tour_type, state.property_id, declined, count=3)
        slots = [slot for slot in nearby if slot != declined][:2]
        if slots:
            key = "slots.other_two" if len(slots) > 1 else "slots.other_one"
            phrases = [self._slot_phrase(slot, slots) for slot in slots]
            out.add(self.prompts.say(key, first=phrases[0], second=phrases[-1]))
            state.update(offered_slots=slots)

    def _on_pets(self, state: PlannerState, u: Understanding, out: Reply) -> None:
        if u.affirm and u.pets is None:
            out.add(self.prompts.say("ask.pet_details"))
            state.update(awaiting="pet_details")
            out.asked = out.progress = True

    def _on_contact_preference(self, state: PlannerState, u: Understanding, out: Reply) -> None:
        if u.contact_preference is None and u.email:
            state.update(contact_preference="email")

    def _choose_offered(self, state: PlannerState, u: Understanding) -> datetime | None:
        slots = state.offered_slots
        if u.tour_clock is not None:
            matching = [s for s in slots if s.time() == u.tour_clock]
            if u.tour_day is not None:
                matching = [s for s in matching if s.date() == u.tour_day]
            return matching[0] if matching else None
        if u.tour_day is not None:
            same_day = [s for s in slots if s.date() == u.tour_day]
            return same_day[0] if len(same_day) == 1 else None
        if u.mentions_time:
            return None
        choice = _CHOICE.search(prepare(u.text))
        if choice:
            word = choice.group(1)
            first = word in ("1st", "first", "earlier", "former")
            return slots[0] if first or len(slots) == 1 else slots[-1]
        if u.affirm:
            return slots[0]  # "yes" / "sure": the first one offered (we confirm before booking)
        return None

    # ------------------------------------------------------------------ facts

    def _apply_facts(
        self, state: PlannerState, u: Understanding, out: Reply, time_changed: bool = False
    ) -> None:
        values = self._fact_values(state, u)
        changed = state.update(**values)
        if values:
            out.progress = True  # even repeating what we knew is an answer
        if not (changed or time_changed):
            return
        if "caller_name" in changed:
            out.add(self.prompts.say("ack.name", name=spoken.first_name(state.caller_name)))
        notes = (
            self._check_unit_fit(state)
            if {"property_id", "unit_size", "budget"} & set(changed)
            else []
        )
        facts = self._fact_phrases(state, changed)
        if time_changed and self._next_question(state) is not None:
            facts = self._with_time_phrase(state, facts, changed)  # confirmed later otherwise
        if facts:
            key = "ack.correction" if u.correction else "ack.summary"
            out.add(self.prompts.say(key, facts=spoken.join(facts)))
        for note in notes:
            out.add(note)
        if "property_id" in changed and state.property_id and state.pending_questions:
            self._answer(state, state.pending_questions, state.property_id, out)
            state.update(pending_questions=[])
        if "tour_type" in changed or "property_id" in changed:
            state.update(offered_slots=[])

    def _fact_values(self, state: PlannerState, u: Understanding) -> dict:
        values: dict = {}
        if u.name and u.name != state.caller_name:
            values["caller_name"] = u.name
        asking_about_another = bool(u.questions) and state.property_id and not u.correction
        if u.property_ids and not asking_about_another:
            values["property_id"] = u.property_ids[-1]  # not for "does Riverview have parking?"
        for name in PREFERENCE_FIELDS:
            if name in ("caller_name", "property_id"):
                continue  # handled above: they need the checks there
            value = getattr(u, name)
            if value is not None:
                values[name] = value
        return values

    def _with_time_phrase(
        self, state: PlannerState, facts: list[str], changed: list[str]
    ) -> list[str]:
        """Add the wanted tour time, folding in the tour type: "a virtual tour on ..."."""
        if "tour_type" in changed and state.tour_type:
            type_phrase = self._tour_type_phrase(state.tour_type)
            return [f for f in facts if f != type_phrase] + [
                self._time_phrase(state, state.tour_type)
            ]
        return [*facts, self._time_phrase(state, None)]

    def _tour_type_phrase(self, tour_type: str) -> str:
        return self.prompts.say(
            "facts.tour_type", tour_type=spoken.with_article(_tour_word(tour_type))
        )

    def _time_phrase(self, state: PlannerState, tour_type: str | None) -> str:
        """The wanted tour time as a phrase: "a virtual tour on Tuesday, November 24"."""
        tour = self._tour_type_phrase(tour_type) if tour_type else self.prompts.say("facts.a_tour")
        if state.tour_time is not None:
            return self.prompts.say("facts.tour_time", tour=tour, when=spoken.when(state.tour_time))
        assert state.requested_day is not None
        day = spoken.day(state.requested_day)
        if state.requested_period:
            day = self.prompts.say("facts.day_period", day=day, period=state.requested_period)
        return self.prompts.say("facts.tour_day", tour=tour, day=day)

    def _fact_phrases(self, state: PlannerState, changed: list[str]) -> list[str]:
        say = self.prompts.say
        phrases: list[str] = []
        if "unit_size" in changed and "property_id" in changed and state.property_id:
            phrases.append(
                say(
                    "facts.unit_at_property",
                    unit=spoken.unit(state.unit_size),
                    property=self.catalog.name_of(state.property_id),
                )
            )
        elif "property_id" in changed and state.property_id:
            phrases.append(say("facts.property", property=self.catalog.name_of(state.property_id)))
        elif "unit_size" in changed and state.unit_size:
            phrases.append(say("facts.unit", unit=spoken.unit(state.unit_size)))
        if "budget" in changed and state.budget:
            phrases.append(say("facts.budget", budget=spoken.money(state.budget)))
        if "move_in" in changed and state.move_in:
            phrases.append(say("facts.move_in", date=spoken.day(state.move_in)))
        if "pets" in changed and state.pets is not None:
            phrases.append(
                say("facts.pets", pets=spoken.pets(state.pets))
                if state.pets
                else say("facts.no_pets")
            )
        if "tour_type" in changed and state.tour_type:
            phrases.append(self._tour_type_phrase(state.tour_type))
        if "email" in changed and state.email:
            phrases.append(say("facts.email", email=state.email))
        if "phone" in changed and state.phone:
            phrases.append(say("facts.phone"))
        if "contact_preference" in changed and state.contact_preference:
            phrases.append(
                say("facts.contact_preference", channel=_channel(state.contact_preference))
            )
        return phrases

    def _check_unit_fit(self, state: PlannerState) -> list[str]:
        """Tell the caller early when the building has no such unit, or rents exceed the budget."""
        notes, unavailable = unit_fit_notes(self.catalog, self.prompts, state)
        if unavailable:
            state.update(property_id=None)
        return notes
        prop = self.catalog.get(state.property_id)
        rent = prop.units.get(state.unit_size)
        if rent is None:
            others = [
                p.name for p in self.catalog.properties.values() if state.unit_size in p.units
            ]
            state.update(property_id=None)
            return [
                self.prompts.say(
                    "booking.unit_unavailable",
                    property=prop.name,
                    unit=spoken.unit_plain(state.unit_size),
                    others=spoken.join(others),
                    have_has="have" if len(others) > 1 else "has",
                )
            ]
        if state.budget and state.budget < rent.rent_min:
            return [
                self.prompts.say(
                    "booking.over_budget",
                    unit=spoken.unit_plain(state.unit_size),
                    rent_min=spoken.money(rent.rent_min),
                )
            ]
        return []

    # ------------------------------------------------------------------ times

    def _apply_time(self, state: PlannerState, u: Understanding, out: Reply, now: datetime) -> bool:
        """Take the day and time the caller named; True when the wanted tour time changed."""
        if not u.mentions_time or (state.awaiting == "pick_slot" and state.tour_time):
            return False
        out.progress = True
        clock = u.tour_clock
        if clock is None and u.tour_period is None and state.tour_time and u.tour_day:
            clock = state.tour_time.time()  # "can we do Friday instead?": same time, new day
        day = u.tour_day or self._day_in_view(state)
        if clock is None:
            changed = state.update(
                tour_time=None,
                offered_slots=[],
                requested_day=day or now.date(),
                requested_period=u.tour_period,
            )
            return bool(changed)
        if day is None:
            later_today = datetime.combine(now.date(), clock, now.tzinfo) > now
            day = now.date() if later_today else now.date() + timedelta(days=1)
        changed = state.update(
            tour_time=datetime.combine(day, clock, self.catalog.tz),
            offered_slots=[],
            requested_day=None,
            requested_period=None,
        )
        return "tour_time" in changed

    def _day_in_view(self, state: PlannerState) -> date | None:
        """The day we are talking about, for a time said alone ("make it 3 PM")."""
        if state.tour_time:
            return state.tour_time.date()
        if state.offered_slots:
            return state.offered_slots[0].date()
        return state.requested_day

    def _offer_requested(self, state: PlannerState, out: Reply) -> bool:
        """Offer free times on the day (and part of day) the caller asked for."""
        day, period = state.requested_day, state.requested_period
        assert day is not None and state.tour_type and state.property_id
        state.update(requested_day=None, requested_period=None)
        slots = self.desk.offer(state.tour_type, state.property_id, day, period)
        if not slots:
            out.add(
                self.prompts.say(
                    "slots.none_that_day",
                    tour_type=_tour_word(state.tour_type),
                    day=spoken.relative_day(day, self.desk.now().date()),
                )
            )
            wanted = datetime.combine(day, datetime.min.time(), self.catalog.tz).replace(hour=12)
            slots = self.desk.nearest(state.tour_type, state.property_id, wanted)
        return self._offer(state, slots, out)

    def _offer(
        self, state: PlannerState, slots: list[datetime], out: Reply, closest: bool = False
    ) -> bool:
        if not slots:
            out.add(self.prompts.say("slots.nothing"))
            state.update(offered_slots=[])
            return False
        phrases = [self._slot_phrase(s, slots) for s in slots]
        if closest:
            key = "slots.closest" if len(slots) > 1 else "slots.closest_one"
        else:
            key = "slots.offer_two" if len(slots) > 1 else "slots.offer_one"
        out.add(self.prompts.say(key, first=phrases[0], second=phrases[-1]))
        state.update(offered_slots=slots)
        return True

    def _slot_phrase(self, slot: datetime, group: list[datetime]) -> str:
        """Just "11 AM" when every offered slot is on the same day, else the full date."""
        if len(group) > 1 and all(s.date() == group[0].date() for s in group) and slot != group[0]:
            return spoken.clock(slot)
        return spoken.when(slot)

    # ------------------------------------------------------------------ booking

    def _handle_booking_intents(self, state: PlannerState, u: Understanding, out: Reply) -> None:
        booking = _active_booking(state)
        if not {"cancel", "reschedule"} & u.intents:
            return
        if booking is None:
            if state.awaiting not in ("confirm", "pick_slot", "tour_time"):
                out.add(self.prompts.say("booking.no_booking"))
                out.progress = True
            return  # otherwise it is about the time being chosen now
        if "cancel" in u.intents:
            out.progress = True
            out.add(
                self.prompts.say(
                    "ask.cancel_confirm",
                    tour=self._tour_phrase(booking.tour_type, booking.property_id),
                    when=spoken.when(booking.start),
                )
            )
            state.update(awaiting="cancel_confirm")
            out.asked = True
        elif "reschedule" in u.intents:
            out.progress = True
            state.update(
                rescheduling=True, property_id=booking.property_id, tour_type=booking.tour_type
            )
            if not u.mentions_time:
                state.update(tour_time=None)

    def _book(self, state: PlannerState, out: Reply) -> None:
        assert state.tour_time and state.tour_type and state.property_id
        out.progress = True
        try:
            if state.rescheduling and state.booking:
                booking = self.desk.reschedule(
                    state.booking.confirmation_code, state.tour_type, state.tour_time
                )
                out.add(
                    self.prompts.say(
                        "booking.rescheduled",
                        when=spoken.when(booking.start),
                        code=booking.confirmation_code,
                    )
                )
            else:
                booking = self.desk.book(
                    state.property_id,
                    state.tour_type,
                    state.tour_time,
                    caller_id=state.caller_id or state.phone or state.email or "anonymous",
                    caller_name=state.caller_name,
                    email=state.email,
                )
                code = booking.confirmation_code
                out.add(
                    self.prompts.say("booking.done", code=code, code_spelled=spoken.spell(code))
                )
        except (SlotTaken, ValueError, BookingError):
            out.add(self.prompts.say("booking.taken_meanwhile"))
            slots = self.desk.nearest(state.tour_type, state.property_id, state.tour_time)
            state.update(tour_time=None)
            self._offer(state, slots, out, closest=True)
            return
        state.update(booking=booking, rescheduling=False)

    # ------------------------------------------------------------------ questions

    def _answer_questions(self, state: PlannerState, u: Understanding, out: Reply) -> None:
        if not u.questions:
            return
        out.progress = True
        booking = _active_booking(state)
        property_id = (
            u.property_ids[-1]
            if u.property_ids
            else state.property_id or (booking.property_id if booking else None)
        )
        topics = [t for t in u.questions if t != "tour_hours"]
        if "tour_hours" in u.questions:
            out.add(self.prompts.say("answers.tour_hours"))
        if not topics:
            return
        if property_id is None:
            out.add(self.prompts.say("answers.which_property"))
            state.update(pending_questions=topics, awaiting="property")
            out.asked = True
            return
        self._answer(state, topics, property_id, out)

    def _answer(self, state: PlannerState, topics: list[str], property_id: str, out: Reply) -> None:
        prop = self.catalog.get(property_id)
        for topic in topics:
            if topic == "pets":
                out.add(prop.pets)
            elif topic == "parking":
                out.add(prop.parking)
            elif topic == "amenities":
                out.add(
                    self.prompts.say(
                        "answers.amenities",
                        property=prop.name,
                        amenities=spoken.join(prop.amenities),
                    )
                )
            elif topic == "address":
                out.add(
                    self.prompts.say(
                        "answers.address",
                        property=prop.name,
                        address=prop.address,
                        neighborhood=prop.neighborhood,
                    )
                )
            elif topic == "rent":
                out.add(self._rent_answer(state, prop))
            elif topic in prop.faq:
                out.add(prop.faq[topic])

    def _rent_answer(self, state: PlannerState, prop) -> str:
        size = state.unit_size
        if size and size in prop.units:
            rent = prop.units[size]
            return self.prompts.say(
                "answers.rent_unit",
                unit_cap=spoken.capitalize(spoken.unit_plain(size)),
                property=prop.name,
                rent_min=spoken.money(rent.rent_min),
                rent_max=spoken.money(rent.rent_max),
            )
        ranges = [
            f"{spoken.unit_plain(s)}s start at {spoken.money(r.rent_min)}"
            for s, r in prop.units.items()
        ]
        return self.prompts.say("answers.rent_all", property=prop.name, ranges=spoken.join(ranges))

    # ------------------------------------------------------------------ what to ask next

    def _ask_next(self, state: PlannerState, out: Reply) -> list[str]:
        if state.ended:
            return self._done(state, out)
        if out.asked:
            return self._finish(state, out, state.awaiting, question_in_reply=True)
        if _active_booking(state) and not state.rescheduling:
            return self._after_booking(state, out)
        if state.awaiting == "anything_else" and not state.rescheduling:
            return self._ask(state, out, "anything_else")
        missing = self._next_question(state)
        if missing is not None:
            return self._ask(state, out, missing)
        if state.requested_day is not None:
            if self._offer_requested(state, out):
                return self._ask(state, out, "pick_slot")
            return self._ask_time(state, out)
        if state.offered_slots and state.tour_time is None:
            return self._ask(state, out, "pick_slot")
        if state.tour_time is None:
            return self._ask_time(state, out)
        return self._confirm_or_offer(state, out)

    def _next_question(self, state: PlannerState) -> str | None:
        """The first thing we still need to ask before looking up times (None: ask for a time)."""
        if state.rescheduling:
            return None  # the building and tour type come from the booking
        for name in QUESTION_ORDER:
            attr = (
                "caller_name" if name == "name" else "property_id" if name == "property" else name
            )
            if getattr(state, attr) is None and name not in state.skipped:
                return name
        return None

    def _ask_time(self, state: PlannerState, out: Reply) -> list[str]:
        question = "reschedule_time" if state.rescheduling else "tour_time"
        return self._ask(state, out, question, awaiting="tour_time")

    def _after_booking(self, state: PlannerState, out: Reply) -> list[str]:
        """Right after booking: how to send the confirmation; then "anything else?"."""
        just_booked = "booking" in state.changed or state.awaiting in (
            "contact_preference",
            "email",
        )
        if (
            just_booked
            and state.contact_preference is None
            and ("contact_preference" not in state.skipped)
        ):
            return self._ask(state, out, "contact_preference")
        wants_email = state.contact_preference == "email" and not state.email
        if just_booked and wants_email and "email" not in state.skipped:
            return self._ask(state, out, "email")
        return self._ask(state, out, "anything_else")

    def _confirm_or_offer(self, state: PlannerState, out: Reply) -> list[str]:
        assert state.tour_time and state.tour_type and state.property_id
        check = self.desk.check(state.tour_type, state.property_id, state.tour_time)
        if not check.ok:
            state.update(tour_time=None)
            out.add(self._problem_sentence(state, check.problem, check.start))
            alternatives = check.alternatives
            if check.problem == "closed_day":
                alternatives = self._open_day_alternatives(state, check.start) or alternatives
            if self._offer(state, alternatives, out, closest=True):
                return self._ask(state, out, "pick_slot")
            return self._ask_time(state, out)
        fields = {
            "tour": self._tour_phrase(state.tour_type, state.property_id),
            "when": spoken.when(state.tour_time),
            "name": state.caller_name or "you",
        }
        key = "confirm_reschedule" if state.rescheduling else "confirm"
        return self._ask(state, out, key, awaiting="confirm", **fields)

    def _open_day_alternatives(self, state: PlannerState, wanted: datetime) -> list[datetime]:
        """For a closed day: the same time on the open days just before and just after."""
        assert state.tour_type and state.property_id
        found: set[datetime] = set()
        for days in (-1, 1):
            nearby = wanted + timedelta(days=days)
            found.update(self.desk.nearest(state.tour_type, state.property_id, nearby, count=1))
        return sorted(found)

    def _problem_sentence(self, state: PlannerState, problem: str | None, start: datetime) -> str:
        kind = state.tour_type or "virtual"
        key = {
            "taken": "slots.taken",
            "past": "slots.past",
            "closed_day": "slots.closed_day",
            "outside_hours": f"slots.outside_hours_{kind}",
            "off_grid": f"slots.off_grid_{kind}",
        }.get(problem or "", "slots.taken")
        return self.prompts.say(key, when=spoken.when(start))

    def _ask(
        self, state: PlannerState, out: Reply, question: str, awaiting: str | None = None, **fields
    ) -> list[str]:
        awaiting = awaiting or question
        repeated = state.awaiting == awaiting and not out.progress
        state.reprompts = state.reprompts + 1 if repeated else 0
        text = self.prompts.say(f"ask.{question}", state.reprompts, **fields)
        out.add(text)
        state.last_question = text
        return self._finish(state, out, awaiting)

    def _reprompt(self, state: PlannerState, out: Reply, key: str) -> list[str]:
        """We didn't understand: say so and ask again, or move past an optional question."""
        awaiting = state.awaiting
        tried_twice = state.reprompts >= 1 and not self._said_noise_reprompt(state)
        if awaiting in OPTIONAL_FIELDS and not out.noise and tried_twice:
            state.update(skipped=[*state.skipped, awaiting])
            out.add(self.prompts.say("conversation.skip_auto"))
            out.progress = True
            return self._ask_next(state, out)
        out.add(self.prompts.say(key, state.reprompts))
        return self._ask_next(state, out)

    def _said_noise_reprompt(self, state: PlannerState) -> bool:
        """Was our last reply a "didn't catch that" to noise (which is no answer at all)?"""
        last = state.last_reply or ""
        noise = {self.prompts.say("conversation.noise", variant) for variant in range(3)}
        return any(last.startswith(text) for text in noise)

    def _skip(self, state: PlannerState, name: str, out: Reply) -> None:
        state.update(skipped=[*state.skipped, name])
        out.add(self.prompts.say("conversation.skip_ok"))
        out.progress = True

    # ------------------------------------------------------------------ endings

    def _wants_goodbye(self, state: PlannerState, u: Understanding) -> bool:
        if "goodbye" not in u.intents:
            return False
        # "No, that's all" to a booking confirmation is a "no", not a hang-up; "bye" is.
        return state.awaiting != "confirm" or u.affirm is None or "bye" in u.intents

    def _goodbye(self, state: PlannerState, out: Reply) -> list[str]:
        booking = state.booking
        if booking and booking.status == "booked":
            out.add(
                self.prompts.say(
                    "conversation.goodbye_booked",
                    name=spoken.first_name(state.caller_name) or "again",
                    when=spoken.when(booking.start),
                )
            )
        elif state.caller_name:
            out.add(
                self.prompts.say("conversation.goodbye", name=spoken.first_name(state.caller_name))
            )
        else:
            out.add(self.prompts.say("conversation.goodbye_anonymous"))
        state.update(ended=True, awaiting=None)
        return self._done(state, out)

    def _finish(
        self, state: PlannerState, out: Reply, awaiting: str | None, question_in_reply: bool = False
    ) -> list[str]:
        state.update(awaiting=awaiting)
        if question_in_reply and out.parts:
            state.last_question = out.parts[-1]
        return self._done(state, out)

    def _done(self, state: PlannerState, out: Reply) -> list[str]:
        parts = [p for p in out.parts if p]
        state.last_reply = " ".join(parts)
        return parts

    # ------------------------------------------------------------------ helpers

    def _forget_interest(self, state: PlannerState, keep_booking: bool) -> None:
        state.update(
            **{name: None for name in INTEREST_FIELDS},
            offered_slots=[],
            requested_day=None,
            requested_period=None,
            rescheduling=False,
        )
        if not keep_booking:
            state.update(booking=None)

    def _tour_phrase(self, tour_type: str, property_id: str) -> str:
        return spoken.tour(tour_type, self.catalog.name_of(property_id))

    def _interest_phrase(self, state: PlannerState) -> str | None:
        if state.property_id and state.unit_size:
            return self.prompts.say(
                "facts.unit_at_property",
                unit=spoken.unit(state.unit_size),
                property=self.catalog.name_of(state.property_id),
            )
        if state.property_id:
            return self.catalog.name_of(state.property_id)
        if state.unit_size:
            return spoken.unit(state.unit_size)
        return None


def _active_booking(state: PlannerState) -> Booking | None:
    booking = state.booking
    return booking if booking is not None and booking.status == "booked" else None


def _tour_word(tour_type: str) -> str:
    return "virtual" if tour_type == "virtual" else "in-person"


def _channel(preference: str) -> str:
    return {"text": "text", "email": "email", "call": "phone"}[preference]
