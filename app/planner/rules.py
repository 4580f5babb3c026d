"""The deterministic tour-booking dialogue: slot filling with templates, no LLM.

One turn is: understand the utterance, handle what we were waiting for (a yes/no, a pick
among offered times...), apply the facts, look up times, answer questions, then ask for the
one thing still missing. Everything said comes from ``prompts/dialogue.yaml``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from app.planner import spoken
from app.planner.context import CallerContext
from app.planner.numbers import prepare
from app.planner.prompts import Prompts
from app.planner.state import PlannerState
from app.planner.tour_desk import TourDesk
from app.planner.understanding import Understanding, understand
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
            out.add(
                self.prompts.say(
                    "greeting.returning_booked",
                    name=name or "there",
                    tour=self._tour_phrase(booking.tour_type, booking.property_id),
                    when=spoken.when(booking.start),
                )
            )
            return self._finish(state, out, "manage_booking", question_in_reply=True)
        if context is not None and context.is_returning and name:
            interest = self._interest_phrase(state)
            if interest:
                out.add(self.prompts.say("greeting.returning", name=name, interest=interest))
                return self._finish(state, out, "resume", question_in_reply=True)
            out.add(self.prompts.say("greeting.returning_no_interest", name=name))
            return self._finish(state, out, "resume", question_in_reply=True)
        office = self.prompts.say("office_name")
        if name:
            out.add(self.prompts.say("greeting.new_named", office=office, name=name))
            return self._finish(state, out, "property", question_in_reply=True)
        out.add(self.prompts.say("greeting.new", office=office))
        return self._finish(state, out, "name", question_in_reply=True)

    def respond(self, state: PlannerState, text: str) -> list[str]:
        """One caller turn in, the agent's sentences out."""
        state.begin_turn()
        state.silences = 0
        now = self.desk.now()
        u = understand(text, now, self.catalog, state.awaiting)
        out = Reply()

        if _NOISE.match(u.text.lower()):
            return self._reprompt(state, out, "conversation.didnt_catch")
        if "repeat" in u.intents and not u.has_facts:
            return [state.last_reply or self.prompts.say("conversation.repeat_nothing")]
        if "start_over" in u.intents:
            self._forget_interest(state, keep_booking=True)
            state.update(pets=None, skipped=[], pending_questions=[])
            out.add(self.prompts.say("conversation.start_over"))
            out.progress = True
            return self._ask_next(state, out)
        if self._wants_goodbye(state, u):
            return self._goodbye(state, out)

        self._handle_awaited(state, u, out, now)
        if state.ended:
            return self._done(state, out)
        self._apply_facts(state, u, out)
        self._apply_time(state, u, out, now)
        self._handle_booking_intents(state, u, out)
        self._answer_questions(state, u, out)
        if "human" in u.intents:
            out.add(self.prompts.say("conversation.human"))
            out.progress = True
        if state.awaiting in OPTIONAL_FIELDS and not out.progress and _SKIP.search(u.text.lower()):
            self._skip(state, state.awaiting, out)
        if not out.progress:
            key = "conversation.off_topic" if len(u.text.split()) > 3 else "conversation.didnt_catch"
            return self._reprompt(state, out, key)
        return self._ask_next(state, out)

    def on_silence(self, state: PlannerState) -> list[str]:
        """The caller said nothing for a while: check in, then let them go."""
        state.silences += 1
        out = Reply()
        if state.silences >= 3:
            out.add(self.prompts.say("conversation.silence_goodbye"))
            state.update(ended=True)
            return self._done(state, out)
        out.add(self.prompts.say("conversation.still_there", state.silences - 1))
        if state.last_question:
            out.add(state.last_question)
        return self._done(state, out)

    # ------------------------------------------------------------------ what we waited for

    def _handle_awaited(self, state: PlannerState, u: Understanding, out: Reply, now: datetime) -> None:
        awaiting = state.awaiting
        if awaiting == "resume":
            if u.affirm is False and not u.has_facts:
                self._forget_interest(state, keep_booking=True)
                out.add(self.prompts.say("conversation.resume_no"))
                out.progress = True
            elif u.affirm:
                out.add(self.prompts.say("conversation.resume_yes"))
                out.progress = True
        elif awaiting == "manage_booking":
            if "cancel" in u.intents or "reschedule" in u.intents:
                return  # handled with the booking intents
            if _KEEP.search(u.text.lower()) or u.affirm is not None:
                out.add(self.prompts.say("booking.kept"))
                state.update(awaiting="anything_else")
                out.progress = True
        elif awaiting == "cancel_confirm":
            if u.affirm and state.booking:
                cancelled = self.desk.cancel(state.booking.confirmation_code)
                state.update(booking=cancelled, tour_time=None, rescheduling=False)
                out.add(self.prompts.say("booking.cancelled", when=spoken.when(cancelled.start)))
                state.update(awaiting="anything_else")
                out.progress = True
            elif u.affirm is False:
                out.add(self.prompts.say("booking.kept"))
                state.update(awaiting="anything_else")
                out.progress = True
        elif awaiting == "anything_else":
            if u.affirm is False and not u.has_facts and not u.questions:
                self._goodbye(state, out)
            elif u.affirm and not u.has_facts and not u.questions and not u.intents:
                out.add(self.prompts.say("conversation.what_else"))
                state.update(awaiting=None)
                out.asked = True
                out.progress = True
        elif awaiting == "pick_slot" and state.offered_slots:
            choice = self._choose_offered(state, u)
            if choice is not None:
                state.update(tour_time=choice, offered_slots=[])
                out.progress = True
        elif awaiting == "confirm" and state.tour_time:
            if u.affirm and not u.mentions_time and not u.correction:
                self._book(state, out)
            elif u.affirm is False and not u.has_facts:
                state.update(tour_time=None)
                out.add(self.prompts.say("conversation.skip_ok"))
                out.progress = True
        elif awaiting in ("pets", "pet_details") and u.affirm and u.pets is None:
            out.add(self.prompts.say("ask.pet_details"))
            state.update(awaiting="pet_details")
            out.asked = out.progress = True
        elif awaiting == "contact_preference" and u.contact_preference is None and u.email:
            state.update(contact_preference="email")
        elif awaiting == "phone" and u.phone is None and u.affirm:
            out.progress = True

    def _choose_offered(self, state: PlannerState, u: Understanding):
        slots = state.offered_slots
        if u.tour_clock is not None and u.tour_day is None:
            for slot in slots:
                if slot.time() == u.tour_clock:
                    return slot
            return None
        if u.mentions_time:
            return None
        choice = _CHOICE.search(prepare(u.text))
        if choice:
            word = choice.group(1)
            first = word in ("1st", "first", "earlier", "former")
            return slots[0] if first or len(slots) == 1 else slots[-1]
        if u.affirm:
            return slots[0]
        return None

    # ------------------------------------------------------------------ facts

    def _apply_facts(self, state: PlannerState, u: Understanding, out: Reply) -> None:
        values: dict = {}
        if u.name and u.name != state.caller_name:
            values["caller_name"] = u.name
        if u.property_ids:
            values["property_id"] = u.property_ids[-1]
        for name in ("unit_size", "pets", "budget", "move_in", "tour_type", "email", "phone",
                     "contact_preference"):
            value = getattr(u, name)
            if value is not None:
                values[name] = value
        if "pets" in values and values["pets"] == [] and state.awaiting != "pets" and u.pets is None:
            del values["pets"]
        changed = state.update(**values)
        if not changed:
            if values:
                out.progress = True  # the caller repeated what we knew: still an answer
            return
        out.progress = True
        if "caller_name" in changed:
            out.add(self.prompts.say("ack.name", name=spoken.first_name(state.caller_name)))
        facts = self._fact_phrases(state, changed)
        if facts:
            key = "ack.correction" if u.correction else "ack.summary"
            out.add(self.prompts.say(key, facts=spoken.join(facts)))
        if {"property_id", "unit_size", "budget"} & set(changed):
            self._check_unit_fit(state, out)
        if "property_id" in changed and state.pending_questions:
            self._answer(state, state.pending_questions, state.property_id, out)
            state.update(pending_questions=[])
        if "tour_type" in changed or "property_id" in changed:
            state.update(offered_slots=[])

    def _fact_phrases(self, state: PlannerState, changed: list[str]) -> list[str]:
        say = self.prompts.say
        phrases: list[str] = []
        if "unit_size" in changed and "property_id" in changed and state.property_id:
            phrases.append(
                say("facts.unit_at_property", unit=spoken.unit(state.unit_size),
                    property=self.catalog.name_of(state.property_id))
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
                say("facts.pets", pets=spoken.pets(state.pets)) if state.pets else say("facts.no_pets")
            )
        if "tour_type" in changed and state.tour_type:
            phrases.append(say("facts.tour_type", tour_type=spoken.with_article(_tour_word(state.tour_type))))
        if "email" in changed and state.email:
            phrases.append(say("facts.email", email=state.email))
        if "phone" in changed and state.phone:
            phrases.append(say("facts.phone"))
        if "contact_preference" in changed and state.contact_preference:
            phrases.append(say("facts.contact_preference", channel=_channel(state.contact_preference)))
        return phrases

    def _check_unit_fit(self, state: PlannerState, out: Reply) -> None:
        """Tell the caller early when the building has no such unit, or rents exceed the budget."""
        if not (state.property_id and state.unit_size):
            return
        prop = self.catalog.get(state.property_id)
        rent = prop.units.get(state.unit_size)
        if rent is None:
            others = [p.name for p in self.catalog.properties.values() if state.unit_size in p.units]
            out.add(
                self.prompts.say(
                    "booking.unit_unavailable",
                    property=prop.name,
                    unit=spoken.unit_plain(state.unit_size),
                    others=spoken.join(others),
                    have_has="have" if len(others) > 1 else "has",
                )
            )
            state.update(property_id=None)
        elif state.budget and state.budget < rent.rent_min:
            out.add(
                self.prompts.say(
                    "booking.over_budget",
                    unit=spoken.unit_plain(state.unit_size),
                    rent_min=spoken.money(rent.rent_min),
                )
            )

    # ------------------------------------------------------------------ times

    def _apply_time(self, state: PlannerState, u: Understanding, out: Reply, now: datetime) -> None:
        if not u.mentions_time or state.tour_time and state.awaiting == "pick_slot" and not u.tour_day:
            return
        if state.awaiting == "pick_slot" and state.tour_time:
            return
        out.progress = True
        known_day = (
            state.tour_time.date() if state.tour_time
            else state.offered_slots[0].date() if state.offered_slots
            else state.requested_day
        )
        day = u.tour_day or known_day
        if u.tour_clock is not None:
            if day is None:
                day = now.date() if datetime.combine(now.date(), u.tour_clock, now.tzinfo) > now else (
                    now.date() + timedelta(days=1)
                )
            state.update(
                tour_time=datetime.combine(day, u.tour_clock, self.catalog.tz),
                offered_slots=[],
                requested_day=None,
                requested_period=None,
            )
            return
        state.update(
            tour_time=None,
            offered_slots=[],
            requested_day=day or now.date(),
            requested_period=u.tour_period,
        )

    def _offer_requested(self, state: PlannerState, out: Reply) -> bool:
        """Offer free times on the day (and part of day) the caller asked for."""
        day, period = state.requested_day, state.requested_period
        assert day is not None and state.tour_type and state.property_id
        state.update(requested_day=None, requested_period=None)
        slots = self.desk.offer(state.tour_type, state.property_id, day, period)
        if not slots:
            out.add(self.prompts.say("slots.none_that_day", tour_type=_tour_word(state.tour_type),
                                     day=spoken.relative_day(day, self.desk.now().date())))
            wanted = datetime.combine(day, datetime.min.time(), self.catalog.tz).replace(hour=12)
            slots = self.desk.nearest(state.tour_type, state.property_id, wanted)
        return self._offer(state, slots, out)

    def _offer(self, state: PlannerState, slots: list[datetime], out: Reply, closest: bool = False) -> bool:
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
        """"11 AM" when every offered slot is on the same day, else the full date."""
        if len(group) > 1 and all(s.date() == group[0].date() for s in group) and slot != group[0]:
            return spoken.clock(slot)
        return spoken.when(slot)

    # ------------------------------------------------------------------ booking

    def _handle_booking_intents(self, state: PlannerState, u: Understanding, out: Reply) -> None:
        booking = state.booking if state.booking and state.booking.status == "booked" else None
        if "cancel" in u.intents:
            out.progress = True
            if booking is None:
                out.add(self.prompts.say("booking.no_booking"))
                return
            out.add(self.prompts.say(
                "ask.cancel_confirm",
                tour=self._tour_phrase(booking.tour_type, booking.property_id),
                when=spoken.when(booking.start),
            ))
            state.update(awaiting="cancel_confirm")
            out.asked = True
        elif "reschedule" in u.intents and booking is not None:
            out.progress = True
            state.update(rescheduling=True, property_id=booking.property_id,
                         tour_type=booking.tour_type)
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
                out.add(self.prompts.say("booking.rescheduled", when=spoken.when(booking.start),
                                         code=booking.confirmation_code))
            else:
                booking = self.desk.book(
                    state.property_id, state.tour_type, state.tour_time,
                    caller_id=state.phone or state.email or "anonymous",
                    caller_name=state.caller_name, email=state.email,
                )
                code = booking.confirmation_code
                out.add(self.prompts.say("booking.done", code=code, code_spelled=spoken.spell(code)))
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
        property_id = u.property_ids[-1] if u.property_ids else state.property_id
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
                out.add(self.prompts.say("answers.amenities", property=prop.name,
                                         amenities=spoken.join(prop.amenities)))
            elif topic == "address":
                out.add(self.prompts.say("answers.address", property=prop.name,
                                         address=prop.address, neighborhood=prop.neighborhood))
            elif topic == "rent":
                out.add(self._rent_answer(state, prop))
            elif topic in prop.faq:
                out.add(prop.faq[topic])

    def _rent_answer(self, state: PlannerState, prop) -> str:
        size = state.unit_size
        if size and size in prop.units:
            rent = prop.units[size]
            return self.prompts.say(
                "answers.rent_unit", unit_cap=spoken.capitalize(spoken.unit_plain(size)),
                property=prop.name, rent_min=spoken.money(rent.rent_min),
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
        booking = state.booking if state.booking and state.booking.status == "booked" else None
        if booking and not state.rescheduling:
            if state.contact_preference is None and "contact_preference" not in state.skipped:
                return self._ask(state, out, "contact_preference")
            if state.contact_preference == "email" and not state.email and "email" not in state.skipped:
                return self._ask(state, out, "email")
            return self._ask(state, out, "anything_else")
        if state.awaiting == "anything_else" and not state.rescheduling:
            return self._ask(state, out, "anything_else")
        for name in QUESTION_ORDER:
            attr = "caller_name" if name == "name" else "property_id" if name == "property" else name
            if getattr(state, attr) is None and name not in state.skipped:
                return self._ask(state, out, name)
        if state.requested_day is not None:
            if self._offer_requested(state, out):
                return self._ask(state, out, "pick_slot")
            return self._ask(state, out, "tour_time")
        if state.offered_slots and state.tour_time is None:
            return self._ask(state, out, "pick_slot")
        if state.tour_time is None:
            return self._ask(state, out, "tour_time")
        return self._confirm_or_offer(state, out)

    def _confirm_or_offer(self, state: PlannerState, out: Reply) -> list[str]:
        assert state.tour_time and state.tour_type and state.property_id
        check = self.desk.check(state.tour_type, state.property_id, state.tour_time)
        if not check.ok:
            state.update(tour_time=None)
            out.add(self._problem_sentence(state, check.problem, check.start))
            if self._offer(state, check.alternatives, out, closest=True):
                return self._ask(state, out, "pick_slot")
            return self._ask(state, out, "tour_time")
        fields = {
            "tour": self._tour_phrase(state.tour_type, state.property_id),
            "when": spoken.when(state.tour_time),
            "name": state.caller_name or "you",
        }
        key = "confirm_reschedule" if state.rescheduling else "confirm"
        return self._ask(state, out, key, awaiting="confirm", **fields)

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

    def _ask(self, state: PlannerState, out: Reply, question: str, awaiting: str | None = None,
             **fields) -> list[str]:
        awaiting = awaiting or question
        repeated = state.awaiting == awaiting and not out.progress
        state.reprompts = state.reprompts + 1 if repeated else 0
        if repeated and awaiting in OPTIONAL_FIELDS and state.reprompts >= 2:
            self._skip(state, awaiting, out)
            return self._ask_next(state, out)
        text = self.prompts.say(f"ask.{question}", state.reprompts, **fields)
        out.add(text)
        state.last_question = text
        return self._finish(state, out, awaiting)

    def _reprompt(self, state: PlannerState, out: Reply, key: str) -> list[str]:
        out.add(self.prompts.say(key, state.reprompts))
        return self._ask_next(state, out)

    def _skip(self, state: PlannerState, name: str, out: Reply) -> None:
        state.update(skipped=[*state.skipped, name])
        out.add(self.prompts.say("conversation.skip_ok"))
        out.progress = True

    # ------------------------------------------------------------------ endings

    def _wants_goodbye(self, state: PlannerState, u: Understanding) -> bool:
        if "goodbye" not in u.intents:
            return False
        # "No, that's all" to a booking confirmation is a "no", not a hang-up.
        return state.awaiting != "confirm" or u.affirm is None

    def _goodbye(self, state: PlannerState, out: Reply) -> list[str]:
        booking = state.booking
        if booking and booking.status == "booked":
            out.add(self.prompts.say("conversation.goodbye_booked",
                                     name=spoken.first_name(state.caller_name) or "again",
                                     when=spoken.when(booking.start)))
        elif state.caller_name:
            out.add(self.prompts.say("conversation.goodbye", name=spoken.first_name(state.caller_name)))
        else:
            out.add(self.prompts.say("conversation.goodbye_anonymous"))
        state.update(ended=True, awaiting=None)
        return self._done(state, out)

    def _finish(self, state: PlannerState, out: Reply, awaiting: str | None,
                question_in_reply: bool = False) -> list[str]:
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
        state.update(**{name: None for name in INTEREST_FIELDS}, offered_slots=[],
                     requested_day=None, requested_period=None, rescheduling=False)
        if not keep_booking:
            state.update(booking=None)

    def _tour_phrase(self, tour_type: str, property_id: str) -> str:
        return spoken.tour(tour_type, self.catalog.name_of(property_id))

    def _interest_phrase(self, state: PlannerState) -> str | None:
        if state.property_id and state.unit_size:
            return self.prompts.say("facts.unit_at_property", unit=spoken.unit(state.unit_size),
                                    property=self.catalog.name_of(state.property_id))
        if state.property_id:
            return self.catalog.name_of(state.property_id)
        if state.unit_size:
            return spoken.unit(state.unit_size)
        return None


def _tour_word(tour_type: str) -> str:
    return "virtual" if tour_type == "virtual" else "in-person"


def _channel(preference: str) -> str:
    return {"text": "text", "email": "email", "call": "phone"}[preference]
