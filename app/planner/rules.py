"""The deterministic tour-booking dialogue: booking first, the caller leads, no LLM.

One turn is: understand the utterance, handle what we were waiting for (a yes/no, a pick
among offered times...), apply the facts, look up times, answer questions, then ask for the
one thing still missing. Everything said comes from ``prompts/dialogue.yaml``.

A tour needs only a building, a tour type, a time and a way to address the caller (a name,
or the caller ID when they won't or can't give one). Everything else is optional and asked
at most once, after the booking. No question is put more than twice in a row: the third
time the agent changes strategy (spell the name, numbered buildings, two open times).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from app.domain import spoken
from app.domain.catalog import Property
from app.domain.context import CallerContext
from app.domain.identity import is_phone
from app.domain.state import PREFERENCE_FIELDS, Booking, PlannerState
from app.domain.text import split_sentences
from app.planner.building_fit import best_fit
from app.planner.names import everyday_words_only, reconcile_spelling, spelled_out
from app.planner.numbers import prepare
from app.planner.prompts import Prompts
from app.planner.tour_desk import Contact, TourDesk
from app.planner.understanding import Understanding, sounds_like_yes, understand
from app.planner.unit_fit import unit_fit_notes
from app.stores.bookings import BookingError, SlotTaken

OPTIONAL_FIELDS = (
    "unit_size",
    "unit_size_later",
    "move_in",
    "pets",
    "pet_details",
    "budget",
    "contact_preference",
    "email",
    "text_number",
)
# What a tour needs before its time is checked, in this order; then a time, then a name.
REQUIRED_ORDER = ("property", "tour_type")
# Asked once each, right after a booking, when still unknown.
AFTER_BOOKING = ("contact_preference", "email", "text_number", "unit_size_later")
# Notes in ``asked_once`` that the confirmation's route was settled (or said unavailable).
CONFIRMATION_SETTLED = "confirmation_route"
_TOUR_FIELDS = frozenset({"property_id", "tour_type", "tour_time"})  # read back by "confirm"
NAME_QUESTIONS = frozenset({"name", "spell_name", "confirm_name"})
MAX_NAME_ASKS = 2
"""Name questions after the first (asked again, read back, spell it). Then the best heard is
kept and the call goes on: the booking matters more than the name."""
_THATS_IT = re.compile(r"\bthat(?:'s| is) (?:it|me|right|correct)\b")
MAX_SAME_QUESTION = 2
_NUMBERED_FORM_OF = {
    "property_number": "property",
    "tour_type_number": "tour_type",
}  # the third time in a row, change strategy instead
# Forgotten on "start over" or "let's start fresh"; who the caller is stays.
INTEREST_FIELDS = ("property_id", "unit_size", "budget", "move_in", "tour_type", "tour_time")

_NOISE = re.compile(r"^(?:\W|um+|uh+|hmm+|mm+|ah+|er+|noise|inaudible|music|blank_audio|\s)*$")
_CHOICE = re.compile(
    r"\b(?:the )?(1st|first|earlier|earliest|soonest|former|2nd|second|later|latest|latter|last)"
    r"\b(?: one| time| option)?"
)
_GREETING_ONLY = re.compile(
    r"^\W*(?:(?:hi|hello|hey|hiya|howdy|good (?:morning|afternoon|evening))(?: there)?\W*)+$"
)
_KEEP = re.compile(
    r"\b(?:keep|leave it|that's fine|it's fine|no changes?|stays?|nothing to change|"
    r"(?:don't|do not) (?:need to |want to )?change|(?:just |only )?(?:checking|wanted to check|"
    r"want(?:ed)? to (?:make sure|confirm))|still (?:on|booked|good|happening))\b"
)


@dataclass
class Reply:
    """What the agent says this turn, built up piece by piece."""

    parts: list[str] = field(default_factory=list)
    progress: bool = False  # did the caller's turn move the conversation on?
    asked: bool = False  # a handler already asked this turn's question
    noise: bool = False  # the turn was only noise: never a reason to skip a question
    awaited: str | None = None  # what the previous question asked for (streak counting)
    summary: str | None = None  # this turn's "Got it: ..." when it only restates the tour
    answered: bool = False  # the caller asked and was answered: our question again, said shorter
    spelled: bool = False  # the caller spelled their name this turn: read back as letters
    open_asked: bool = False  # "is 1:30 Saturday free?": the caller named a time and asked
    offered: bool = False  # times were offered in this reply

    def add(self, text: str) -> None:
        if text:
            self.parts.append(text)


def _heard_unsure(name: str, unsure: set[str]) -> bool:
    """Was any word of the name ("Fandium-Ashino" too) one the recognizer was unsure of?"""
    return bool(unsure & set(re.split(r"[\s-]+", name.lower())))


def _changes_tour(u: Understanding) -> bool:
    """Does the caller's answer touch what the read-back said (building, type, time)?

    A "no" with only other facts (digits read as a phone number, a size) is still a no."""
    return bool(u.property_ids or u.tour_type or u.mentions_time)


class RulePlanner:
    """Deterministic dialogue policy over a PlannerState. Stateless itself; safe to share."""

    def __init__(self, desk: TourDesk, prompts: Prompts) -> None:
        self.desk = desk
        self.prompts = prompts
        self.catalog = desk.catalog

    # ------------------------------------------------------------------ entry points

    def greet(self, state: PlannerState, context: CallerContext | None) -> list[str]:
        """The agent's first words: a welcome, or welcome back with what we remember.

        A returning caller is recognised by what memory holds about them (a booking, a
        building, a unit size), with or without a name."""
        out = Reply()
        name = spoken.first_name(state.caller_name)
        booking = state.booking
        if booking and booking.status == "booked" and booking.start > self.desk.now():
            tour = self._tour_phrase(booking.tour_type, booking.property_id)
            when = spoken.when(booking.start)
            key = "greeting.returning_booked" if name else "greeting.returning_booked_anonymous"
            out.add(self.prompts.say(key, name=name, tour=tour, when=when))
            return self._ask(state, out, "manage_booking")
        returning = context is not None and context.is_returning
        if returning and not name:
            state.update(name_declined=True)  # known by their caller ID: don't hold up a booking
        pending = state.tour_time
        if pending is not None and pending <= self.desk.now():
            pending = None  # the time the last call was about to book has passed
        if returning and pending and state.property_id and state.tour_type:
            tour = self._tour_phrase(state.tour_type, state.property_id)
            when = spoken.when(pending)
            key = "greeting.returning_pending" if name else "greeting.returning_pending_anonymous"
            out.add(self.prompts.say(key, name=name, tour=tour, when=when))
            return self._ask(state, out, "confirm_pending", awaiting="confirm")
        state.update(tour_time=None)  # past, or half a tour (no building or type): ask afresh
        interest = self._interest_phrase(state) if returning else None
        if interest:
            key = "greeting.returning" if name else "greeting.returning_anonymous"
            out.add(self.prompts.say(key, name=name, interest=interest))
            return self._ask(state, out, "resume")
        if returning and name:
            out.add(self.prompts.say("greeting.returning_no_interest", name=name))
            return self._ask(state, out, "book_today", awaiting="resume")
        office = self.prompts.say("office_name")
        if name:
            out.add(self.prompts.say("greeting.new_named", office=office, name=name))
            return self._ask(state, out, "property")
        out.add(self.prompts.say("greeting.new", office=office))
        return self._ask(state, out, "name")

    def respond(self, state: PlannerState, text: str, unsure: Collection[str] = ()) -> list[str]:
        """One caller turn in, the agent's sentences out.

        ``unsure`` holds the words the recognizer was not confident of (lower case): a name
        or building among them is read back for confirmation instead of taken as heard."""
        state.begin_turn()
        state.silences = 0
        now = self.desk.now()
        u = understand(text, now, self.catalog, state.awaiting)
        out = Reply(awaited=state.awaiting)
        if _NOISE.match(u.text.lower()) and u.choice is None and u.affirm is None:
            out.noise = True
            return self._reprompt(state, out, "conversation.noise")
        if "repeat" in u.intents and not (u.has_facts or u.questions):
            return [state.last_reply or self.prompts.say("conversation.repeat_nothing")]
        if "start_over" in u.intents:
            return self._start_over(state, out)
        if "later" in u.intents and _active_booking(state) is None and not u.questions:
            state.update(**self._fact_values(state, u))  # "let me check my calendar"
            self._keep_name_guess(state)
            first = spoken.first_name(state.caller_name)
            key = "conversation.goodbye_later" if first else "conversation.goodbye_later_anonymous"
            out.add(self.prompts.say(key, name=first))
            state.update(ended=True, awaiting=None)
            return self._done(state, out)
        if self._wants_goodbye(state, u):
            state.update(**self._fact_values(state, u))  # "A 2-bedroom. That's all, bye."
            if state.awaiting == "confirm" and u.affirm and not u.mentions_time:
                self._book(state, out)  # "Great, thanks, bye!": a yes first, then the goodbye
            elif state.awaiting == "cancel_confirm" and u.affirm is not None:
                self._on_cancel_confirm(state, u, out)  # "Yep, cancel it, cheers."
            return self._goodbye(state, out)
        self._hear_name(state, u, out, {w.lower().strip(".,!?") for w in unsure})
        self._handle_awaited(state, u, out)
        if state.ended:
            return self._done(state, out)
        self._take_in(state, u, out, now)
        if out.asked:
            return self._finish(state, out, state.awaiting, question_in_reply=True)
        if not out.progress:
            return self._no_progress(state, u, out)
        return self._ask_next(state, out)

    def _take_in(self, state: PlannerState, u: Understanding, out: Reply, now: datetime) -> None:
        """Everything the caller said beyond the answer we waited for."""
        self._resolve_references(state, u, out)
        self._handle_booking_intents(state, u, out)
        self._pick_offered_anytime(state, u, out)
        time_changed = self._apply_time(state, u, out, now)
        self._apply_facts(state, u, out, time_changed)
        self._answer_questions(state, u, out)
        if state.unit_choice and not out.asked:  # after any answer: the question comes last
            self._ask_unit_choice(state, out)
        self._offer_first_open(state, u, out)
        if "human" in u.intents:
            out.add(self.prompts.say("conversation.human"))
            out.progress = True
        if "book" in u.intents or ("resume" in u.intents and state.property_id):
            out.progress = True  # "I'd like to book a tour": on to what the tour needs
        passed = u.unsure or (u.affirm is False and not u.has_facts)
        if state.awaiting in OPTIONAL_FIELDS and not out.progress and passed:
            self._skip(state, state.awaiting, out)

    # ------------------------------------------------------------------ names

    def _hear_name(
        self, state: PlannerState, u: Understanding, out: Reply, unsure: set[str]
    ) -> None:
        """Take a name as heard, read back an uncertain one, or count a miss.

        A name the recognizer was unsure of is read back ("Was that Priya?"); a spelling is
        read back as letters. At most ``MAX_NAME_ASKS`` questions follow the first one;
        then the best heard is kept. A name the caller refuses to give, or that could not
        be heard at all, is not needed: the booking goes under the caller ID."""
        asked_name = state.awaiting in NAME_QUESTIONS
        if u.spelled_name:
            u.name = u.spelled_name
        refused = u.declines_name and (asked_name or "name" in u.text.lower())
        if refused and not u.name and not state.caller_name:
            state.update(name_declined=True, pending_name=None, name_guess=None)
            out.add(self.prompts.say("booking.under_caller_id", under=self._under(state)))
            out.progress = True
            return
        if state.awaiting == "confirm_name" and state.pending_name:
            self._hear_read_back_answer(state, u, out, unsure)
        elif u.spelled_name:
            self._take_spelling(state, u, out)
        elif u.name and u.name != state.caller_name and _heard_unsure(u.name, unsure):
            self._doubt_name(state, u, out)
        elif asked_name and not u.name and not _answers_something_else(u):
            state.update(name_tries=state.name_tries + 1)  # words we could not read as one
        if u.name:
            state.update(name_guess=None, pending_name=None)

    def _doubt_name(self, state: PlannerState, u: Understanding, out: Reply) -> None:
        """A name heard with low confidence: read it back while asks remain, else keep it."""
        if state.name_tries >= MAX_NAME_ASKS:
            return  # the best we have: taken as heard
        state.update(pending_name=u.name, name_guess=u.name, name_tries=state.name_tries + 1)
        u.name = None  # asked back below, once the rest of the turn is taken in
        out.progress = True

    def _take_spelling(self, state: PlannerState, u: Understanding, out: Reply) -> None:
        """A spelled name: read back as letters, as a question while asks remain."""
        out.spelled = True
        if u.name:
            u.name = reconcile_spelling(u.name, state.name_guess)
        if state.name_tries < MAX_NAME_ASKS:
            state.update(pending_name=u.name, name_guess=u.name, name_tries=state.name_tries + 1)
            u.name = None
            out.progress = True
        elif u.name:
            out.add(self.prompts.say("ack.spelled", letters=spelled_out(u.name)))

    def _hear_read_back_answer(
        self, state: PlannerState, u: Understanding, out: Reply, unsure: set[str]
    ) -> None:
        """ "Was that Priya?": yes, a correction (said or spelled), or no."""
        pending = state.pending_name
        state.update(pending_name=None)
        out.progress = True
        if u.spelled_name:
            self._take_spelling(state, u, out)
        elif u.name and u.name != pending:
            if _heard_unsure(u.name, unsure) and state.name_tries < MAX_NAME_ASKS:
                # Heard wrong twice: spelling is likelier to get it than a third hearing.
                state.update(name_guess=u.name, name_tries=MAX_NAME_ASKS)
                u.name = None
        elif u.affirm is False:
            # Also "No, it's Krishna Borah" heard again as "Christian Abor": the line keeps
            # saying it, not the caller; never keep the name they just refused.
            state.update(name_guess=None, name_tries=max(state.name_tries + 1, MAX_NAME_ASKS))
            u.name = None
        elif u.affirm or u.name == pending or _THATS_IT.search(u.text.lower()):
            u.name = pending
        else:
            u.name = pending  # no answer to the read-back: the best heard, and on we go

    def _under(self, state: PlannerState) -> str:
        """What a booking without a name goes under, as the caller hears it."""
        caller = state.caller_id or ""
        if is_phone(caller):
            return self.prompts.say("booking.under_phone")
        if "@" in caller:
            return self.prompts.say("booking.under_email")
        return self.prompts.say("booking.under_device")

    def _ask_name(self, state: PlannerState, out: Reply) -> list[str]:
        """The booking needs a name: ask, then ask to spell it, then keep the best heard or
        use the caller ID. A name heard unsure is read back first."""
        if state.pending_name:
            if out.spelled:
                letters = spelled_out(state.pending_name)
                return self._ask(state, out, "confirm_spelling", "confirm_name", letters=letters)
            return self._ask(state, out, "confirm_name", name=state.pending_name)
        if state.name_tries > MAX_NAME_ASKS:
            if state.name_guess:
                state.update(caller_name=state.name_guess, name_guess=None)
                return self._ask_next(state, out)
            state.update(name_declined=True)
            out.add(self.prompts.say("booking.under_caller_id", under=self._under(state)))
            return self._ask_next(state, out)
        if state.name_tries >= MAX_NAME_ASKS:
            return self._ask(state, out, "spell_name")
        return self._ask(state, out, "name_for_booking", awaiting="name")

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
        state.update(pets=None, skipped=[], awaiting=None)
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
            "property_number": self._on_property_number,
            "tour_type_number": self._on_tour_type_number,
            "confirm_property": self._on_confirm_property,
            "unit_choice": self._on_unit_choice,
        }.get(state.awaiting or "")
        if handler is not None:
            handler(state, u, out)

    def _on_property_number(self, state: PlannerState, u: Understanding, out: Reply) -> None:
        """A pick among the numbered buildings: "2", "number two", keypad 2."""
        ids = list(self.catalog.properties)
        if u.choice is not None and not u.property_ids and 1 <= u.choice <= len(ids):
            u.property_ids = [ids[u.choice - 1]]

    def _on_tour_type_number(self, state: PlannerState, u: Understanding, out: Reply) -> None:
        if u.choice in (1, 2) and u.tour_type is None:
            u.tour_type = "in_person" if u.choice == 1 else "virtual"

    def _on_confirm_property(self, state: PlannerState, u: Understanding, out: Reply) -> None:
        guess = state.pending_property
        state.update(pending_property=None)
        if guess and u.affirm and not u.property_ids:
            u.property_ids = [guess]

    def _on_unit_choice(self, state: PlannerState, u: Understanding, out: Reply) -> None:
        """The building lacks the size asked for: keep it, or take the one that has it."""
        others = state.unit_choice
        state.update(unit_choice=[])
        if u.property_ids or not others:
            return  # a building named: taken in with the facts
        if u.choice is not None and 1 <= u.choice <= len(others) + 1:
            options = [state.property_id, *others]
            picked = options[u.choice - 1]
            u.property_ids = [picked] if picked else []
        elif u.affirm is False and len(others) == 1:
            u.property_ids = [others[0]]
        elif u.affirm or u.unsure or "anyway" in u.text.lower() or "stay" in u.text.lower():
            out.progress = True  # keep the building; the size was a preference

    def _on_resume(self, state: PlannerState, u: Understanding, out: Reply) -> None:
        if "resume" in u.intents and u.affirm is not False:
            out.add(self.prompts.say("conversation.resume_yes"))
            out.progress = True
        elif u.affirm is False and not u.has_facts:
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
        if u.affirm is None and not (u.has_facts or u.questions or u.intents):
            u.affirm = sounds_like_yes(prepare(u.text)) or None  # "that's work": a yes misheard
        if u.affirm and not u.mentions_time and not u.correction:
            self._book(state, out)
        elif (
            declined and not _changes_tour(u) and not (state.rescheduling and "cancel" in u.intents)
        ):
            self._offer_instead(state, out)  # a "no" with nothing usable: offer other times

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
        if u.contact_preference is not None:
            return
        offered = self.desk.offered
        if u.email:
            state.update(contact_preference="email")
        elif u.phone and "text" in offered:
            state.update(contact_preference="text")
        elif u.affirm and len(offered) == 1:  # "Would you like it by text?" "Yes."
            state.update(contact_preference="text" if offered == ("text",) else "email")
            out.progress = True

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
        if u.choice is not None and 1 <= u.choice <= len(slots):
            return slots[u.choice - 1]
        choice = _CHOICE.search(prepare(u.text))
        if choice:
            word = choice.group(1)
            first = word in ("1st", "first", "earlier", "earliest", "soonest", "former")
            return slots[0] if first or len(slots) == 1 else slots[-1]
        if u.affirm:
            return slots[0]  # "yes" / "sure": the first one offered (we confirm before booking)
        return None

    def _pick_offered_anytime(self, state: PlannerState, u: Understanding, out: Reply) -> None:
        """ "The first one" after we offered times, even while asking something else."""
        if state.awaiting == "pick_slot" or not state.offered_slots:
            return  # with a time already set too: they chose one of the times we just offered
        if u.choice is None and not _CHOICE.search(prepare(u.text)):
            return
        if u.mentions_time:
            return
        choice = self._choose_offered(state, u)
        if choice is not None:
            state.update(tour_time=choice, offered_slots=[])
            out.add(self.prompts.say("ack.summary", facts=spoken.when(choice)))
            out.progress = True

    # ------------------------------------------------------------------ no answer

    def _no_progress(self, state: PlannerState, u: Understanding, out: Reply) -> list[str]:
        """The turn gave nothing we could use: help with what was asked, or move on."""
        awaiting = state.awaiting
        if awaiting in OPTIONAL_FIELDS:
            self._skip(state, awaiting, out, auto=not u.unsure)
            return self._ask_next(state, out)
        if awaiting == "manage_booking":  # "Hi!" back to "Welcome back ...": ask it again
            if not _GREETING_ONLY.match(u.text.lower()):
                out.add(self.prompts.say("conversation.didnt_catch", state.reprompts))
            return self._ask(state, out, "manage_booking")
        if awaiting in ("property", "property_number"):
            fit = best_fit(u.text, self.catalog)  # "something near a park"
            if fit is not None:
                return self._suggest(state, out, fit, "suggest_property")
        if u.unsure and awaiting in ("property", "property_number"):
            if state.described_buildings:  # "doesn't matter" again: choose for them
                return self._suggest(state, out, self._cheapest(state)[0], "pick_for_them")
            state.update(described_buildings=True)
            out.add(self._describe_buildings())
            return self._ask_next(state, out)
        if u.unsure and awaiting == "confirm_property":  # not even with a suggestion
            out.awaited = None
            return self._ask_property_number(state, out)
        if u.unsure and awaiting == "tour_type":
            out.add(self.prompts.say("answers.tour_types"))
            return self._ask_next(state, out)
        if u.unsure and awaiting == "tour_time" and self._can_offer(state):
            return self._offer_soonest(state, out)
        if awaiting == "name" and u.affirm and _answers_something_else(u):
            out.add(self.prompts.say("conversation.name_first"))  # "Sure, book it": a name first
            out.answered = True
            return self._ask(state, out, "name_for_booking", awaiting="name")
        if awaiting in NAME_QUESTIONS and state.name_tries >= 1:
            return self._ask_next(state, out)  # asking again, or another way, says enough
        # Many words we can't use: off topic, or (on a phone line, more often) misheard. Say
        # what we can help with once; after that it only sends the caller back a step.
        off_topic = len(u.text.split()) > 3 and awaiting not in ("property", "property_number")
        off_topic = off_topic and not state.said_scope
        state.said_scope = state.said_scope or off_topic
        key = "conversation.off_topic" if off_topic else "conversation.didnt_catch"
        return self._reprompt(state, out, key)

    def _suggest(self, state: PlannerState, out: Reply, prop: Property, key: str) -> list[str]:
        """Put one building forward; "yes" (or "that one") chooses it."""
        state.update(pending_property=prop.id, suggested_property=prop.id)
        return self._ask(
            state, out, key, awaiting="confirm_property", property=prop.name, why=prop.neighborhood
        )

    def _describe_buildings(self) -> str:
        descriptions = [f"{p.name} is {p.neighborhood}" for p in self.catalog.properties.values()]
        return self.prompts.say("answers.buildings", descriptions="; ".join(descriptions))

    def _can_offer(self, state: PlannerState) -> bool:
        return bool(state.property_id and state.tour_type)

    def _offer_soonest(self, state: PlannerState, out: Reply) -> list[str]:
        """Two open times near what the caller asked for (or the soonest): easy to pick."""
        assert state.property_id and state.tour_type
        day = state.requested_day
        now = self.desk.now()
        if day is not None and day > now.date():
            wanted = datetime.combine(day, datetime.min.time(), self.catalog.tz).replace(hour=12)
        else:
            wanted = now + timedelta(hours=2)
        state.update(requested_day=None, requested_period=None)
        slots = self.desk.nearest(state.tour_type, state.property_id, wanted)
        if self._offer(state, slots, out):
            return self._ask(state, out, "pick_slot")
        return self._ask_time(state, out)

    # ------------------------------------------------------------------ facts

    def _apply_facts(
        self, state: PlannerState, u: Understanding, out: Reply, time_changed: bool = False
    ) -> None:
        values = self._fact_values(state, u)
        wanted = values.get("contact_preference")
        if wanted not in (None, "call") and wanted not in self.desk.offered:
            del values["contact_preference"]  # "text is fine": promise only what we can send
            say = self.prompts.say
            out.add(say("booking.channel_unavailable", channel=_channel(wanted)))
            out.progress = True
        before = {field: getattr(state, field) for field in values}
        changed = state.update(**values)
        if values:
            out.progress = True  # even repeating what we knew is an answer
        # "I'd rather see it in person" is a correction only if something else was set.
        replaced = time_changed or any(before.get(f) is not None for f in changed)
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
        if state.unit_choice:  # the note says it all: no "Got it: a studio at Riverview"
            facts = [f for f in facts if f not in self._place_phrases(state)]
        answered_times = "availability" in u.questions and u.tour_clock is None
        if time_changed and self._next_question(state) is not None and not answered_times:
            facts = self._with_time_phrase(state, facts, changed)  # confirmed later otherwise
        if facts:
            correcting = u.correction and replaced
            key = "ack.correction" if correcting else "ack.summary"
            out.add(self.prompts.say(key, facts=spoken.join(facts)))
            if set(changed) - {"caller_name"} <= _TOUR_FIELDS and not correcting:
                out.summary = out.parts[-1]  # the confirmation question will say it all
        for note in notes:
            out.add(note)
        if ("tour_type" in changed or "property_id" in changed) and not self._offer_holds(state):
            state.update(offered_slots=[])
            if state.tour_time is None and state.wanted_time is not None:
                state.update(tour_time=state.wanted_time)  # "virtual then": same time, new type
            elif state.tour_time is None and state.wanted_day and not state.requested_day:
                state.update(requested_day=state.wanted_day)  # "virtual then": that same day
        state.update(wanted_time=None, wanted_day=None)

    def _offer_holds(self, state: PlannerState) -> bool:
        """Do the times just offered still fit the tour? ("Saturday at 10 or 11 for an
        in-person tour": "in person" keeps them.)"""
        offered_type, _, offered_place = (state.offered_for or "").partition("@")
        return bool(
            state.offered_slots
            and offered_type == (state.tour_type or offered_type)
            and offered_place in ("", state.property_id)
        )

    def _place_phrases(self, state: PlannerState) -> set[str]:
        say = self.prompts.say
        phrases = set()
        if state.property_id:
            name = self.catalog.name_of(state.property_id)
            phrases.add(say("facts.property", property=name))
            if state.unit_size:
                unit = spoken.unit(state.unit_size)
                phrases.add(say("facts.unit_at_property", unit=unit, property=name))
        if state.unit_size:
            phrases.add(say("facts.unit", unit=spoken.unit(state.unit_size)))
        return phrases

    def _fact_values(self, state: PlannerState, u: Understanding) -> dict[str, Any]:
        values: dict[str, Any] = {}
        if u.name and u.name != state.caller_name:
            values["caller_name"] = u.name
        asking_about_another = bool(u.questions) and state.property_id and not u.correction
        if u.property_ids and not asking_about_another:
            values["property_id"] = u.property_ids[-1]  # not for "does Riverview have parking?"
        if u.tour_type is None and u.in_person_hint and state.tour_type is None:
            values["tour_type"] = "in_person"
        elif u.property_guess and not state.property_id:
            values["pending_property"] = u.property_guess  # "Did you mean Riverview Lofts?"
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
            assert state.unit_size is not None  # _fact_values changes it only to a size said
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
        """Tell the caller early when the building has no such unit, or rents exceed the budget.

        On a size mismatch the building stays recorded and the caller chooses: that building
        anyway, or one that has the size (``unit_choice``)."""
        notes, unavailable = unit_fit_notes(self.catalog, self.prompts, state)
        if unavailable:
            others = [
                pid
                for pid, prop in self.catalog.properties.items()
                if state.unit_size in prop.units and pid != state.property_id
            ]
            state.update(unit_choice=others)
        return notes

    def _ask_unit_choice(self, state: PlannerState, out: Reply) -> None:
        assert state.property_id
        others = [self.catalog.name_of(pid) for pid in state.unit_choice]
        text = self.prompts.say(
            "ask.unit_choice",
            property=self.catalog.name_of(state.property_id),
            others=spoken.join(others, "or"),
        )
        out.add(text)
        state.update(awaiting="unit_choice", last_question=text)
        out.asked = True

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
        today = self.desk.now().date()
        if not slots and period and day == today:  # "mornings are better": the next morning
            for ahead in range(1, 8):
                later = today + timedelta(days=ahead)
                slots = self.desk.offer(state.tour_type, state.property_id, later, period)
                if slots:
                    return self._offer(state, slots, out)
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
            state.update(wanted_day=day)
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
        out.offered = True
        offered_for = f"{state.tour_type or ''}@{state.property_id or ''}"
        state.update(offered_slots=slots, offered_for=offered_for)
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
            if out.awaited == "cancel_confirm":
                return  # "Yes, please cancel": the cancel just done, not one more
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
                if self.desk.has_messages(booking.confirmation_code):
                    self._settled(state)  # the move is sent the way its confirmation went
            else:
                booking = self.desk.book(
                    state.property_id,
                    state.tour_type,
                    state.tour_time,
                    caller_id=state.caller_id or state.phone or state.email or "anonymous",
                    caller_name=state.caller_name,
                    email=state.email,
                    contact=Contact(state.phone, state.email, state.contact_preference),
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

    def _resolve_references(self, state: PlannerState, u: Understanding, out: Reply) -> None:
        """What a short turn points back to: "that one" is the building just recommended,
        "and at Riverview?" is the last question again, about another building (answered
        here, without choosing that building: the caller is still comparing)."""
        if u.compare and u.pointing and not u.property_ids:  # "I'll take the cheapest one"
            self._answer_cheapest(state, out)
            u.property_ids, u.compare = [self._cheapest(state)[0].id], None
        elif (
            u.pointing
            and not u.property_ids
            and state.awaiting != "pick_slot"
            and state.suggested_property
            and not state.property_id
        ):
            u.property_ids = [state.suggested_property]
        topics = state.last_topics
        if u.questions or u.compare:
            return
        if u.follow_up and u.property_ids and topics:
            asked = [p for p in u.property_ids if p != state.property_id]
            for property_id in asked:
                self._answer(state, topics, property_id, out)
            if asked and len(u.property_ids) == len(asked) and not u.has_facts_besides_places:
                u.property_ids = []
                out.progress = out.answered = True
                return
        state.update(last_topics=[])  # the caller moved on: "and Riverview?" chooses it now

    def _answer_size_where(self, state: PlannerState, size: str, out: Reply) -> None:
        """ "Which ones have studios?": the buildings that do (one: it is the suggestion)."""
        places = [p for p in self.catalog.properties.values() if size in p.units]
        units = spoken.capitalize(spoken.unit_plain(size)) + "s"
        if not places:
            out.add(self.prompts.say("answers.size_nowhere", units=units.lower()))
        elif len(places) == len(self.catalog.properties):
            out.add(self.prompts.say("answers.size_everywhere", units=units.lower()))
        else:
            names = spoken.join([p.name for p in places])
            out.add(self.prompts.say("answers.size_where", units=units, places=names))
        if len(places) == 1:
            state.update(suggested_property=places[0].id)
        out.progress = out.answered = True

    def _answer_my_tour(self, state: PlannerState, u: Understanding, out: Reply) -> None:
        """ "When is my tour again?": the booking as it stands, with its code (and where)."""
        booking = _active_booking(state)
        if booking is None:
            out.add(self.prompts.say("answers.no_tour"))
            return
        code = booking.confirmation_code
        out.add(
            self.prompts.say(
                "answers.my_tour",
                tour=self._tour_phrase(booking.tour_type, booking.property_id),
                when=spoken.when(booking.start),
                code=code,
                code_spelled=spoken.spell(code),
            )
        )
        if "where" in u.text.lower() and "address" not in u.questions:
            self._answer(state, ["address"], booking.property_id, out)

    def _offer_first_open(self, state: PlannerState, u: Understanding, out: Reply) -> None:
        """ "Whenever's soonest": the first open times, in person unless they said otherwise."""
        if not u.soonest or u.mentions_time or state.tour_time or state.offered_slots:
            return
        if out.asked or _active_booking(state) or not state.property_id:
            return
        if state.tour_type is None:
            state.update(tour_type="in_person")
            out.add(self.prompts.say("conversation.tour_type_default"))
        out.progress = True
        self._offer_soonest(state, out)
        out.asked = True  # the offer ends with its own question

    def _cheapest(self, state: PlannerState) -> list[Property]:
        """The buildings by their lowest rent for the caller's size (all sizes if none)."""
        size = state.unit_size
        every = list(self.catalog.properties.values())
        places = [p for p in every if size is None or size in p.units] or every
        return sorted(places, key=lambda p: _lowest_rent(p, size if size in p.units else None))

    def _answer_cheapest(self, state: PlannerState, out: Reply) -> None:
        ranked = self._cheapest(state)
        size = state.unit_size if ranked and state.unit_size in ranked[0].units else None
        best, rest = ranked[0], ranked[1:]
        others = [f"{spoken.money(_lowest_rent(p, size))} at {p.name}" for p in rest]
        what = spoken.unit_plain(size) + "s" if size else "apartments"
        out.add(
            self.prompts.say(
                "answers.cheapest",
                property=best.name,
                what=what,
                price=spoken.money(_lowest_rent(best, size)),
                others=spoken.join(others),
            )
        )
        state.update(suggested_property=best.id, last_topics=["rent"])
        out.progress = out.answered = True

    def _answer_questions(self, state: PlannerState, u: Understanding, out: Reply) -> None:
        """Answer in the turn asked; the dialogue then returns to what the tour still needs."""
        if u.compare == "rent" and not u.property_ids:
            self._answer_cheapest(state, out)
        if u.compare == "size" and u.unit_size and not u.property_ids:
            self._answer_size_where(state, u.unit_size, out)
        if not u.questions:
            return
        out.progress = out.answered = True
        booking = _active_booking(state)
        property_id = (
            u.property_ids[-1]
            if u.property_ids
            else state.property_id or (booking.property_id if booking else None)
        )
        if "overview" in u.questions:
            about_types = state.awaiting in ("tour_type", "tour_type_number")
            if about_types and "difference" in u.text.lower():
                out.add(self.prompts.say("answers.tour_types"))  # in person vs virtual
            else:
                out.add(self._describe_buildings())
        if "my_tour" in u.questions:
            self._answer_my_tour(state, u, out)
        asides = ("tour_hours", "availability", "overview", "my_tour")
        topics = [t for t in u.questions if t not in asides]
        if topics:
            state.update(last_topics=topics)
        if "availability" in u.questions and u.tour_clock is None:
            self._answer_availability(state, u, property_id, out)
        elif "availability" in u.questions:
            out.open_asked = True  # answered where the time is checked: "Yes, that's open."
        elif "tour_hours" in u.questions:
            out.add(self.prompts.say("answers.tour_hours"))
        if not topics:
            return
        if property_id is None:
            self._answer_everywhere(state, topics, out)
            return
        self._answer(state, topics, property_id, out)

    def _answer_everywhere(self, state: PlannerState, topics: list[str], out: Reply) -> None:
        """No building named yet: a short answer for each, so the caller can choose."""
        if "rent" in topics:
            size = state.unit_size
            ranges = [
                f"{spoken.money(_lowest_rent(p, size))} at {p.name}"
                for p in self.catalog.properties.values()
                if size is None or size in p.units
            ]
            what = spoken.capitalize(spoken.unit_plain(size)) + "s" if size else "Rents"
            out.add(
                self.prompts.say("answers.rent_everywhere", what=what, ranges=spoken.join(ranges))
            )
        for prop_id in self.catalog.properties:
            rest = [t for t in topics if t != "rent"]
            if rest:
                self._answer(state, rest, prop_id, out, prefix=True)

    def _answer_availability(
        self, state: PlannerState, u: Understanding, property_id: str | None, out: Reply
    ) -> None:
        """Real open times for the building, tour type and day asked (or remembered)."""
        tour_type = u.tour_type or state.tour_type or "in_person"
        today = self.desk.now().date()
        day = u.tour_day or state.requested_day
        period = u.tour_period or state.requested_period
        if self._their_time_is_open(state, property_id, day, period):
            out.open_asked = True  # "3 PM Friday... what do you have Friday?": 3 PM is open
            return
        buildings = [property_id] if property_id else list(self.catalog.properties)
        slots = self._open_everywhere(tour_type, buildings, day or today, period)
        if not slots:
            wanted = datetime.combine(day or today, datetime.min.time(), self.catalog.tz)
            slots = self.desk.nearest(tour_type, buildings[0], wanted.replace(hour=12))
            day = None
        if not slots:
            out.add(self.prompts.say("slots.nothing"))
            return
        tour = self._tour_type_phrase(tour_type)
        if property_id:
            tour = self._tour_phrase(tour_type, property_id)
        day_phrase = f" {spoken.relative_day(day, today)}" if day else ""
        same_day = day is not None and all(slot.date() == day for slot in slots)
        phrases = [spoken.clock(s) if same_day else spoken.when(s) for s in slots]
        out.add(
            self.prompts.say(
                "answers.availability",
                tour=tour,
                day=day_phrase,
                slots=spoken.join(phrases, "or"),
            )
        )
        state.update(
            offered_slots=slots,
            offered_for=f"{tour_type}@{property_id or ''}",
            requested_day=None,
            requested_period=None,
        )

    def _their_time_is_open(
        self, state: PlannerState, property_id: str | None, day: date | None, period: str | None
    ) -> bool:
        """The caller already chose a time (and the next question is the name or "Shall I
        book?"), asks what is open that day, and their own time is."""
        chosen, tour_type = state.tour_time, state.tour_type
        if not (chosen and property_id and tour_type) or period or day not in (None, chosen.date()):
            return False
        return self.desk.check(tour_type, property_id, chosen).ok

    def _open_everywhere(
        self, tour_type: str, buildings: list[str], day: date, period: str | None
    ) -> list[datetime]:
        """Times open on ``day`` at every one of ``buildings`` (the first two)."""
        common: list[datetime] | None = None
        for prop_id in buildings:
            free = self.desk.offer(tour_type, prop_id, day, period, count=8)  # type: ignore[arg-type]
            common = free if common is None else [s for s in common if s in free]
        return (common or [])[:2]

    def _answer(
        self,
        state: PlannerState,
        topics: list[str],
        property_id: str,
        out: Reply,
        prefix: bool = False,
    ) -> None:
        prop = self.catalog.get(property_id)
        if prefix:  # no building named yet: each answer says which building it is about
            start = len(out.parts)
            self._answer(state, topics, property_id, out)
            for i in range(start, len(out.parts)):
                text = _first_sentence(out.parts[i])
                if not text.startswith((prop.name, "At ")):
                    out.parts[i] = f"At {prop.name}, {text[:1].lower()}{text[1:]}"
            return
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

    def _rent_answer(self, state: PlannerState, prop: Property) -> str:
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
        if state.pending_name:
            return self._ask_name(state, out)
        if state.pending_property and not state.property_id:
            name = self.catalog.name_of(state.pending_property)
            return self._ask(state, out, "confirm_property", property=name)
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
        """What the tour still needs before its time is looked up (None: ask for a time)."""
        if state.rescheduling:
            return None  # the building and tour type come from the booking
        if state.property_id is None:
            return "property"
        if state.tour_type is None:
            return "tour_type"
        return None

    def _ask_time(self, state: PlannerState, out: Reply) -> list[str]:
        question = "reschedule_time" if state.rescheduling else "tour_time"
        return self._ask(state, out, question, awaiting="tour_time")

    def _after_booking(self, state: PlannerState, out: Reply) -> list[str]:
        """Right after booking: the optional questions, each at most once; then "anything else?"."""
        just_booked = "booking" in state.changed or state.awaiting in AFTER_BOOKING
        if just_booked:
            asked = self._confirmation_route(state, out)
            if asked is not None:
                return asked
            question = "unit_size_later"
            done = question in state.asked_once or question in state.skipped
            if not done and state.unit_size is None:
                return self._ask(state, out, question)
        return self._ask(state, out, "anything_else")

    def _confirmation_route(self, state: PlannerState, out: Reply) -> list[str] | None:
        """How the confirmation goes, promising only what this line can send.

        Nothing configured: the code was read aloud, and the caller hears that we can't
        text or email yet. One channel: a phone caller is told it's texted to this number
        (no question), others are asked for their number or email. Both: "by text or by
        email?". The answer routes the booking's held messages (``TourDesk``); the goodbye
        or the hold deadline sends them by the default route when no answer came."""
        booking = _active_booking(state)
        if booking is None or CONFIRMATION_SETTLED in state.asked_once:
            return None
        say, offered = self.prompts.say, self.desk.offered
        if not offered:
            out.add(say("booking.no_messages"))
            return self._settled(state)
        preference = state.contact_preference
        if preference is not None and preference != "call" and preference not in offered:
            out.add(say("booking.channel_unavailable", channel=_channel(preference)))
            preference = None
        contact = Contact(state.phone, state.email, preference)
        if preference is not None:
            if self.desk.send_confirmation(booking.confirmation_code, contact, booking):
                if preference != "call" and "contact_preference" not in state.changed:
                    out.add(say("booking.will_send", channel=_channel(preference)))
                return self._settled(state)
            missing = "email" if preference == "email" else "text_number"
            if missing in state.asked_once or missing in state.skipped:
                return self._settled(state)  # the goodbye sends it the default way, if any
            return self._ask(state, out, missing)
        if "contact_preference" in state.skipped:  # "no thanks": nothing is sent
            self.desk.send_confirmation(booking.confirmation_code, Contact(preference="call"))
            return self._settled(state)
        if "contact_preference" in state.asked_once:
            return None  # asked, not answered: the goodbye sends it the default way
        if offered == ("text",) and state.phone:
            self.desk.send_confirmation(
                booking.confirmation_code, Contact(state.phone, None, "text"), booking
            )
            out.add(say("booking.will_text_this_number"))
            return self._settled(state)
        if offered == ("email",) and state.email:
            self.desk.send_confirmation(
                booking.confirmation_code, Contact(None, state.email, "email"), booking
            )
            out.add(say("booking.will_email", email=state.email))
            return self._settled(state)
        if len(offered) == 1:
            question = "contact_text_only" if offered == ("text",) else "contact_email_only"
            return self._ask(state, out, question, awaiting="contact_preference")
        return self._ask(state, out, "contact_preference")

    def _settled(self, state: PlannerState) -> list[str] | None:
        """Note the route as settled; None: the after-booking questions go on."""
        state.update(asked_once=[*state.asked_once, CONFIRMATION_SETTLED])
        return None

    def _confirm_or_offer(self, state: PlannerState, out: Reply) -> list[str]:
        assert state.tour_time and state.tour_type and state.property_id
        check = self.desk.check(state.tour_type, state.property_id, state.tour_time)
        if not check.ok and self._insists_on_a_virtual_day(state, check.problem):
            state.update(tour_type="virtual", wanted_time=None, refused_time=None)
            out.add(self.prompts.say("slots.closed_day_made_virtual"))
            check = self.desk.check(state.tour_type, state.property_id, state.tour_time)
        if not check.ok:
            refused = state.tour_time if check.problem == "closed_day" else None
            state.update(tour_time=None, wanted_time=state.tour_time, refused_time=refused)
            out.add(self._problem_sentence(state, check.problem, check.start))
            alternatives = check.alternatives
            if check.problem == "closed_day":
                alternatives = self._open_day_alternatives(state, check.start) or alternatives
            if self._offer(state, alternatives, out, closest=True):
                return self._ask(state, out, "pick_slot")
            return self._ask_time(state, out)
        if out.open_asked:
            out.add(self.prompts.say("slots.yes_open", when=spoken.when(state.tour_time)))
        if not (state.caller_name or state.name_declined or state.rescheduling):
            return self._ask_name(state, out)
        fields = {
            "tour": self._tour_phrase(state.tour_type, state.property_id),
            "when": spoken.when(state.tour_time),
            "name": state.caller_name or "you",
        }
        if out.summary in out.parts:
            out.parts.remove(out.summary)  # "So that's an in-person tour of ..." says it all
        if "tour_time" in state.changed:
            out.awaited = None  # a new time makes it a new question, not a re-ask
        key = "confirm_reschedule" if state.rescheduling else "confirm"
        return self._ask(state, out, key, awaiting="confirm", **fields)

    def _insists_on_a_virtual_day(self, state: PlannerState, problem: str | None) -> bool:
        """The caller asks again for the same in-person time on a day only virtual tours run
        (told once already): a virtual tour then is what they can have, so it becomes one."""
        if problem != "closed_day" or state.tour_type != "in_person" or not state.property_id:
            return False
        if state.tour_time is None or state.refused_time != state.tour_time:
            return False
        return self.desk.check("virtual", state.property_id, state.tour_time).ok

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
        self,
        state: PlannerState,
        out: Reply,
        question: str,
        awaiting: str | None = None,
        **fields: Any,
    ) -> list[str]:
        """Put a question, or, the third time in a row, try another way (``_fallback``)."""
        awaiting = awaiting or question
        if _NUMBERED_FORM_OF.get(out.awaited or "") == awaiting:
            question = awaiting = out.awaited or awaiting  # stay with the easier form
        streak = state.ask_streak + 1 if awaiting == out.awaited else 1
        if streak > MAX_SAME_QUESTION:
            fallback = self._fallback(awaiting)
            if fallback is not None:
                out.awaited = None  # the new question starts its own streak
                state.update(ask_streak=0)
                return fallback(state, out)
        state.update(ask_streak=streak, reprompts=streak - 1)
        key = f"ask.{question}"
        if out.answered and awaiting == out.awaited and self.prompts.has(f"ask_again.{question}"):
            key = f"ask_again.{question}"  # after their question: the same one, said shorter
        text = self.prompts.say(key, state.reprompts, **fields)
        out.add(text)
        state.last_question = text
        if awaiting in OPTIONAL_FIELDS and awaiting not in state.asked_once:
            state.update(asked_once=[*state.asked_once, awaiting])
        return self._finish(state, out, awaiting)

    def _fallback(self, awaiting: str) -> Callable[[PlannerState, Reply], list[str]] | None:
        """Another way to get what two tries of the same question did not."""
        return {
            "property": self._ask_property_number,
            "confirm_property": self._ask_property_number,
            "tour_type": self._ask_tour_type_number,
            "tour_type_number": self._default_tour_type,
            "tour_time": self._offer_or_ask_time,
            "pick_slot": self._ask_time_again,
            "resume": self._resume_quietly,
            "confirm_name": self._accept_pending_name,
            "name": self._spell_after_two_misses,
            "spell_name": self._ask_name,
            "unit_choice": self._keep_building,
            "confirm": self._confirm_by_keypad,
            "anything_else": self._goodbye,
            "manage_booking": self._keep_booking,
        }.get(awaiting)

    def _ask_property_number(self, state: PlannerState, out: Reply) -> list[str]:
        state.update(pending_property=None)
        if out.awaited == "property_number":
            out.add(self.prompts.say("conversation.callback_offer"))
            return self._ask(state, out, "anything_else")
        return self._ask(state, out, "property_number")

    def _ask_tour_type_number(self, state: PlannerState, out: Reply) -> list[str]:
        return self._ask(state, out, "tour_type_number")

    def _default_tour_type(self, state: PlannerState, out: Reply) -> list[str]:
        state.update(tour_type="in_person")
        out.add(self.prompts.say("conversation.tour_type_default"))
        return self._ask_next(state, out)

    def _offer_or_ask_time(self, state: PlannerState, out: Reply) -> list[str]:
        if self._can_offer(state) and not state.rescheduling:
            return self._offer_soonest(state, out)
        state.update(ask_streak=0)
        return self._ask_time(state, out)

    def _ask_time_again(self, state: PlannerState, out: Reply) -> list[str]:
        if not out.offered:  # times offered just now stay: "the earlier one" can still pick
            state.update(offered_slots=[])
        return self._ask_time(state, out)

    def _spell_after_two_misses(self, state: PlannerState, out: Reply) -> list[str]:
        """Asked twice, answered twice, and no name heard ("yes my name is Owe"): spelling is
        another way in. Noise or "Sure, book it" is no try: ``_ask_name`` asks again, keeps
        the best heard, or books under the caller ID."""
        tried = not (out.noise or out.answered)  # said something, and it was no question
        if state.name_tries < MAX_NAME_ASKS and not state.pending_name and tried:
            state.update(name_tries=MAX_NAME_ASKS)
            return self._ask(state, out, "spell_name")
        return self._ask_name(state, out)

    def _resume_quietly(self, state: PlannerState, out: Reply) -> list[str]:
        state.update(awaiting=None)
        return self._ask_next(state, out)

    def _accept_pending_name(self, state: PlannerState, out: Reply) -> list[str]:
        if state.pending_name:
            state.update(caller_name=state.pending_name, pending_name=None)
        return self._ask_next(state, out)

    def _keep_building(self, state: PlannerState, out: Reply) -> list[str]:
        state.update(unit_choice=[])
        return self._ask_next(state, out)

    def _confirm_by_keypad(self, state: PlannerState, out: Reply) -> list[str]:
        assert state.tour_time
        when = spoken.when(state.tour_time)
        return self._ask(state, out, "confirm_keypad", awaiting="confirm", when=when)

    def _keep_booking(self, state: PlannerState, out: Reply) -> list[str]:
        out.add(self.prompts.say("booking.kept"))
        return self._ask(state, out, "anything_else")

    def _reprompt(self, state: PlannerState, out: Reply, key: str) -> list[str]:
        """We didn't understand: say so and ask again (``_ask`` changes tack the third time)."""
        out.add(self.prompts.say(key, state.reprompts))
        if state.awaiting == "name" and not state.caller_name and out.noise:
            return self._ask(state, out, "name")  # noise is no answer: ask the same again
        return self._ask_next(state, out)

    def _skip(self, state: PlannerState, name: str, out: Reply, auto: bool = False) -> None:
        state.update(skipped=[*state.skipped, name])
        out.add(self.prompts.say("conversation.skip_auto" if auto else "conversation.skip_ok"))
        out.progress = True

    # ------------------------------------------------------------------ endings

    def _wants_goodbye(self, state: PlannerState, u: Understanding) -> bool:
        if "goodbye" not in u.intents:
            return False
        # While a tour is being set up, only "bye" hangs up. To "Shall I book it?", "No,
        # that's all" is a "no"; "I'm good" / "That's it" is as often an answer (or a
        # misheard "sounds good") as a goodbye: the question is put again, with its keypad
        # option, rather than the tour dropped half made.
        booking_under_way = state.booking is None and bool(
            state.property_id or state.tour_time or state.requested_day
        )
        # "That's it." to "Was that Priya?" is a yes; "Riverview, two bedroom, that's it"
        # ends a list of what they want, not the call.
        giving_facts = u.has_facts or "book" in u.intents
        held = state.awaiting in ("confirm", "confirm_name") or booking_under_way or giving_facts
        return "bye" in u.intents or not held

    def _keep_name_guess(self, state: PlannerState) -> None:
        """A call ends while we were still checking a name: the best heard beats none (the
        next call greets them by it, and can still be corrected)."""
        guess = state.pending_name or state.name_guess
        if guess and not state.caller_name:
            state.update(caller_name=guess, pending_name=None, name_guess=None)

    def _goodbye(self, state: PlannerState, out: Reply) -> list[str]:
        self._keep_name_guess(state)
        booking = state.booking
        if booking and booking.status == "booked":
            self.desk.release_confirmation(booking.confirmation_code)
            first = spoken.first_name(state.caller_name)
            key = "goodbye_booked" if first else "goodbye_booked_anonymous"
            out.add(
                self.prompts.say(f"conversation.{key}", name=first, when=spoken.when(booking.start))
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


def _lowest_rent(prop: Property, size: str | None) -> int:
    if size is not None:
        return prop.units[size].rent_min  # type: ignore[index]
    return min(rent.rent_min for rent in prop.units.values())


def _first_sentence(text: str) -> str:
    sentences = split_sentences([text])
    return sentences[0] if sentences else text


def _answers_something_else(u: Understanding) -> bool:
    """ "Sure, book it" to the name question: no attempt at a name (so no reason to ask
    them to spell it), only a yes to what came before."""
    attempt = _NAME_ATTEMPT.search(u.text.lower())  # "yes, my name is Owe": a name, unheard
    return u.affirm is True and everyday_words_only(u.text) and attempt is None


_NAME_ATTEMPT = re.compile(r"\b(?:name(?:'s| is)|it's|this is|i'm|i am|call me)\b")


def _active_booking(state: PlannerState) -> Booking | None:
    booking = state.booking
    return booking if booking is not None and booking.status == "booked" else None


def _tour_word(tour_type: str) -> str:
    return "virtual" if tour_type == "virtual" else "in-person"


def _channel(preference: str) -> str:
    return {"text": "text", "email": "email", "call": "phone"}[preference]
