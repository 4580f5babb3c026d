"""Understanding one caller utterance: what they told us and what they want.

Each extractor is a small pure function over prepared text (see ``numbers.prepare``), so it
can be tested alone with tricky inputs. ``understand`` runs them all and returns one
``Understanding``; the dialogue decides what to do with it.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

import dateparser
import phonenumbers
from rapidfuzz import fuzz, process

from app.domain.catalog import Catalog, normalize_words
from app.domain.state import ContactPreference, Pet, TourType, UnitSize
from app.planner.fuzzy_places import CONFIDENT, PlaceMatcher, choose_by_number
from app.planner.names import (
    family_name_after,
    is_known_first_name,
    leading_name,
    parse_spelled_name,
)
from app.planner.numbers import prepare

MAX_TURN_CHARS = 1000
"""A caller turn longer than this is cut: nobody says more in one breath, and a flood of
typed text must not cost more than a normal turn."""

# What the agent may be waiting for when a day or a time is clearly about the tour.
TOUR_AWAITS = frozenset({"tour_time", "pick_slot", "confirm", "tour_type", "manage_booking"})

# ---------------------------------------------------------------- result


@dataclass
class Understanding:
    """Everything one utterance said. ``None`` means "not mentioned"."""

    text: str
    name: str | None = None
    property_ids: list[str] = field(default_factory=list)
    unit_size: UnitSize | None = None
    pets: list[Pet] | None = None
    budget: int | None = None
    move_in: date | None = None
    tour_type: TourType | None = None
    tour_day: date | None = None
    tour_clock: time | None = None
    tour_period: str | None = None
    email: str | None = None
    phone: str | None = None
    contact_preference: ContactPreference | None = None
    affirm: bool | None = None
    correction: bool = False
    questions: list[str] = field(default_factory=list)
    intents: set[str] = field(default_factory=set)
    unsure: bool = False  # "not sure", "no idea", "whatever works": no answer, and that's fine
    declines_name: bool = False  # "I'd rather not say": book under the caller ID instead
    choice: int | None = None  # "the second one", "number 3", a keypad digit: 1-based
    spelled_name: str | None = None  # "D A N A" when we asked the caller to spell their name
    property_guess: str | None = None  # a building we may have heard: read it back first
    in_person_hint: bool = False  # "can I come Saturday?": in person, unless chosen otherwise
    compare: str | None = None  # "which one is cheapest?": a question across the buildings
    follow_up: bool = False  # "and at Riverview?": the last question again, for another building
    pointing: bool = False  # "that one", "the cheaper one": the building the agent just named
    soonest: bool = False  # "whenever's soonest", "the earliest one": the first open time

    @property
    def mentions_time(self) -> bool:
        return any(x is not None for x in (self.tour_day, self.tour_clock, self.tour_period))

    @property
    def has_facts_besides_places(self) -> bool:
        """Anything given beyond the buildings named ("and at Riverview, on Friday?")."""
        return dataclasses.replace(self, property_ids=[]).has_facts

    @property
    def has_facts(self) -> bool:
        """Did the caller give us any information at all?"""
        return bool(
            self.name
            or self.property_ids
            or self.mentions_time
            or any(
                x is not None
                for x in (
                    self.unit_size,
                    self.pets,
                    self.budget,
                    self.move_in,
                    self.tour_type,
                    self.email,
                    self.phone,
                    self.contact_preference,
                )
            )
        )


# ---------------------------------------------------------------- yes / no, intents


def _any(*patterns: str) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in patterns))


_LEAD = (
    r"^(?:oh |um+ |uh+ |erm+ |well |h?m+ |m+-?h+m+,? |uh-?huh,? |ah |so |and |okay so |"
    r"(?:hello|hi|hey)(?: dear| there| love)?,? )*"
)
_YES = _any(
    _LEAD + r"(?:yes|yeah|yea|yep|yup|ya|yah|aye|sure|ok|okay|correct|right|absolutely|"
    r"definitely|certainly|perfect|great|good(?! (?:morning|afternoon|evening|night|day)\b)|"
    r"sounds good|sounds great|please|exactly|of course|"
    r"grand|brilliant|lovely|cool|"
    r"affirmative|alright|all right|go ahead|that works|works for me|do it|book it|go for it|"
    r"you bet|please do|sounds like a plan|"
    r"that's fine|fine|let's do (?:it|that)|let's go|lock it in)\b",
    r"\b(?:sounds|that's|that is|that'd be|that would be) (?:good|great|perfect|fine|lovely)\b",
    r"\b(?:that |it |this )?(?:all |everything )?(?:sounds|looks|seems) (?:right|correct|about "
    r"right|spot on|fine|good|great|perfect)\b",
    r"\b(?:yes|yeah|yep|sure),? please\b",
    r"\bthat(?:'s| is) (?:all |exactly |absolutely |just )?(?:right|correct|perfect|great|fine)\b",
    r"\bthat(?:'s| is) (?:the one|that)[.!]?$",  # "that's the one" (prepared: "that's that")
    r" (?:yes|yeah|yep|yup)[.!]?$",  # "Mm-hm, that one, yes."
    r"\b(?:please )?(?:go ahead|book it|confirm it|lock (?:it|that|this|me) in)\b",
    r"\b(?:yes|yeah|yep|yup),? (?:please,? )?(?:lock|book|confirm|go ahead|do it)\b",
    r"^(?:bet|say less|for sure|fo sho|deal)\W*$",  # slang yeses
    r"\bthat works\b",
    # "The phone hung up by itself. Yes, confirm.": a yes that opens the last sentence
    r"[.!?] (?:yes|yeah|yep|yup)\b(?:[,.!]? (?:confirm|please|book|go ahead|do it|that's)\b|"
    r"[.!]?$)",
)
# Murmured agreement: a yes only as the answer to a yes/no question.
_MURMURED_YES = re.compile(r"^\W*(?:m+h+m+|m+[- ]?h+m+|uh[- ]?huh|u+m+[- ]?h+m+)\W*$")
_SAME_AS_BEFORE = re.compile(
    _LEAD + r"(?:the |just the |yeah,? the )?same(?: (?:one|thing|as (?:before|last time)))?\W*$"
)
YES_NO_QUESTIONS = frozenset(
    {"confirm", "resume", "confirm_name", "confirm_property", "cancel_confirm"}
)
_VISIT = r"(?:tour|appointment|booking|visit|viewing|showing)"
_NO = _any(
    _LEAD + r"(?:no|nope|nah|negative|not really|not quite|wrong)\b(?! (?:pets?|animals))",
    r"\bthat(?:'s| is) (?:not right|wrong|incorrect)\b",
    r"\bdon't book\b",
    r"\bdoesn't work\b",
)
_CORRECTION = _any(
    r"\bactually\b",
    r"\bi meant\b",
    r"\bi mean\b",
    r"\bmake (?:that|it)\b",
    r"\bchange (?:that|it)\b",
    r"\binstead\b",
    r"\bscratch that\b(?! .*start)",
    r"\bwait\b",
    r"\bsorry\b.*\b(?:meant|mean|not)\b",
    r"\brather\b",
    r"\b(?:mixed|muddled|got|had) (?:that|it|them|those|things) (?:up|mixed up|wrong|backwards)\b",
    r"\b(?:said|told you) (?:that|it|the wrong \w+) wrong\b|\bthe wrong (?:one|building|day)\b",
    r"\b(?:changed my mind|on second thoughts?|come to think of it|thinking about it)\b",
    r"\b(?:would|might|'d) (?:be|suit me|work) better\b|\bbetter (?:for me|idea)\b",
    r"\b(?:change|switch|swap) (?:it |that |this |the \w+ )?(?:over )?to\b",
)
# "See you Saturday!" is a goodbye; "I'm looking to see you(r) apartments" is not.
_SEE_YOU = r"\bsee (?:you|ya)\b(?: (?:then|later|soon|there|on \w+|\w+day|tomorrow))?[.!]*$"
# Whisper writes a closing "bye" as "by": "That's all, by." ("I'll come by" is not one).
_BY = r"\b(?:all|thanks|thank you|much|perfect|great|okay|ok|so),? by[.!]*$"
# "Thanks a bunch, talk soon.", "OK, take care!": a closing, said last.
_SIGN_OFF = (
    r"\b(?:talk (?:to you |with you )?(?:soon|later)|take care|catch (?:you|ya) later|"
    r"see ya|ciao|(?:thanks|thank you|okay|ok|alright|all right|cool),? later)[.!]*$"
)
# "Virtual, mate, cheers.": in much of the world "cheers" is a thanks; it ends the call only
# when nothing keeps it open (see RulePlanner._wants_goodbye), never on its own like "bye".
_CHEERS = r"\bcheers[.!]*$"
_INTENTS: dict[str, re.Pattern[str]] = {
    "goodbye": _any(
        r"\b(?:good ?bye|bye bye|bye)\b",
        _SEE_YOU,
        _BY,
        r"\bhave a (?:good|great|nice) (?:day|one|1|option|night|evening|weekend)\b",
        _SIGN_OFF,
        _CHEERS,
        r"\bthat(?:'s| is| will be) (?:all|it|everything)[.!]*$",
        r"^(?:no|know|now)?,? ?that(?:'s| is| will be) (?:all|it|everything)\b",
        r"\bnothing else\b",
        r"\bi(?:'m| am) (?:all set|done|good)\b(?! with)",
        r"\bhang(?:ing)? up\b",
        r"\bi (?:have|need|gotta|got) to go\b",
    ),
    "bye": _any(r"\b(?:good ?bye|bye bye|bye)\b", _SEE_YOU, _BY, _SIGN_OFF),
    "later": _any(
        r"\b(?:i'll|i will|let me|i'm gonna|i am going to|i'?ll have to|i need to|i can) "
        r"(?:call (?:you )?(?:back|again)|ring (?:you )?(?:back|again)|check (?:my|with|a few)|"
        r"think about it|get back to you)\b",
        r"\b(?:can|could|may) i (?:call|ring) (?:you )?back\b",
        r"\b(?:call|try) (?:you )?(?:back )?(?:later|another time|tomorrow)\b",
        r"\b(?:and|then|i'll|i will) (?:call|ring) (?:you )?back\b",  # "let me sort it out and ..."
    ),
    "repeat": _any(
        r"\b(?:repeat|say (?:that|it|am|dat) again|come again|pardon|one more time)\b",
        r"^(?:sorry|excuse me|pardon)?\s?(?:what|huh|pardon|come again)?(?: me)?\s?\??$",
        r"^(?:(?:sorry|excuse me|pardon|huh|what|eh)\W*){2,3}$",  # "Huh, sorry?"
        # Didn't hear it: "Missed that, sorry.", "you were breaking up", "say what now?"
        r"\b(?:didn't|did not|couldn't|could not) (?:catch|hear|understand)\b",
        r"\b(?:didn't|did not) get (?:that|it|you|what|the [\w ]{1,25}? down)\b",
        r"\bmissed (?:that|it|what|you|the last|that last)\b",
        r"\b(?:lost me|you were breaking|breaking up|you cut out|cutting out|say what)\b",
        r"\b(?:glitch(?:ed|ing|y)?|bad (?:line|connection|signal)|static on the line)\b",
        r"\bwhat(?:'d| did)? you (?:just )?(?:say|said)\b|\bwhat was (?:all )?that\b",
        # The agent's last offer or read-back, asked for again: "Can you go over those times
        # again?", "Which buildings did you say?", "Run that by me again?"
        r"\b(?:say|read|go over|go through|run (?:me )?through|list|give me|tell me)"
        r"(?: [\w']+){0,3} (?:again|(?:one|1) more time|once more|back)\b",
        r"\brun (?:that|it|those|them|the [\w ]{1,20}?) (?:by|past) me\b",
        r"^\W*(?:please,? )?again\b|\bagain,? please\b",
        r"\b(?:times|days|slots|buildings|building names|options|properties|details|booking|"
        r"names)\b[^.?!]{0,25}\bagain\b",
        r"\bwhat (?:were|was) (?:the|them|those|these|they)\b",
        r"\b(?:which|what) (?:times?|days?|slots?|buildings?|propert(?:y|ies)|places|options|"
        r"ones) (?:were|was|did you)\b",
        r"\b(?:times?|days?|buildings?|propert(?:y|ies)|options|day and time) (?:that )?you "
        r"(?:just )?(?:said|mentioned|offered|gave|listed)\b",
        r"\bwhat (?:day and time|day|time|date) (?:was|is) that\?",
        r"\b(?:what|which) (?:day and time|day|time|date|times|days)(?: [\w']+){0,2} "
        r"(?:did you (?:just )?(?:say|said|have|put)|you (?:just )?said)\b"
        r"(?! (?:you|they|it|the|tours?)\b)",  # not "what time did you say you open?"
        r"\bwhat(?:'d| did| have| had)? you(?:'ve)? (?:got|get|put|have) me down for\b",
        r"\bwhat (?:exactly )?(?:are|were) you booking\b|\bdetails you(?:'ve| have)? got\b",
    ),
    "start_over": _any(
        r"\b(?:start (?:over|again|from scratch)|from the (?:top|beginning)|reset)\b"
    ),
    "cancel": _any(
        r"\bcancel\b",
        rf"\b(?:call off|scrap|drop|scratch|delete|remove|get rid of) (?:my |the |our |that )?"
        rf"{_VISIT}\b",
        r"\b(?:take|cross) (?:it|me|that) off\b",
        rf"\b(?:call|scrap|scratch) (?:it|that|the {_VISIT}) off\b",
        rf"\bcall off\b|\bdon't need (?:the|my|that) {_VISIT} (?:any ?more|after all)\b",
    ),
    "reschedule": _any(
        r"\breschedule\b",
        rf"\b(?:move|change|switch|push|shift|rearrange|rebook|postpone) (?:my|the|our|that) "
        rf"{_VISIT}\b",
        r"\b(?:move|push|change|switch|shift) it (?:to|back|forward|up)\b",
        r"\b(?:a )?different (?:time|day)\b|\banother (?:day|time)\b",
        rf"\bchange the (?:time|day|date) (?:of|for) (?:my|the|our) {_VISIT}\b",
        rf"\b(?:push|move|bump|shift) (?:back|up|forward) (?:my|the|our) {_VISIT}\b",
        rf"\bput (?:my|the|our) {_VISIT} on\b.*\binstead\b",
        r"\b(?:that|the) (?:day|time|date) (?:doesn't|does not|won't|no longer) work",
    ),
    "book": _any(
        r"\b(?:book|schedule|set up|arrange|make|get) (?:a |an |me |us )*"
        r"(?:tour|visit|viewing|showing|appointment)\b",
        r"\b(?:tour|see|visit|view|look at) (?:the |an |a |your )?"
        r"(?:apartment|unit|place|building|property)\b",
        r"\b(?:take|do) a tour\b",
        r"\btour\b",
    ),
    "resume": _any(
        r"\b(?:calling|call(?:ed)?) back\b",
        r"\bsame (?:place|building|one|as (?:before|last time)|apartment|thing)\b",
        r"\b(?:where|what) we left off\b",
        r"\bpick (?:it |things |this )?(?:back )?up\b",
        r"\bcarry on\b",
        r"\bcontinue\b",
        r"\babout the (?:apartment|tour|place|unit)\b",
        r"\b(?:last|earlier) (?:time|call)\b",
        r"\b(?:called|spoke|talked|was on the phone)(?: (?:to|with) (?:you|someone))? "
        r"(?:earlier|before|yesterday|last week|the other day)\b",
    ),
    "human": _any(
        r"\b(?:speak|talk) (?:to|with) (?:a |an )?(?:human|person|agent|someone|manager)\b"
    ),
}


def detect_affirm(s: str) -> bool | None:
    """True for yes, False for no, None when the caller said neither."""
    if _NO.search(s):
        return False
    if _YES.search(s):
        return True
    return None


_YES_PHRASES = (
    "that works",
    "that works for me",
    "go ahead",
    "sounds good",
    "sounds great",
    "book it",
    "yes please",
    "perfect",
    "that's perfect",
    "yes that's right",
    "let's do it",
)


def sounds_like_yes(s: str) -> bool:
    """A short reply a phone recognizer garbled from a yes ("that's work", "go a head")."""
    words = s.split()
    if not 1 <= len(words) <= 5:
        return False
    best = process.extractOne(s, _YES_PHRASES, scorer=fuzz.ratio)
    return best is not None and best[1] >= 80


def detect_intents(s: str) -> set[str]:
    return {name for name, pattern in _INTENTS.items() if pattern.search(s)}


def detect_correction(s: str) -> bool:
    return bool(_CORRECTION.search(s))


_UNSURE = re.compile(
    r"\b(?:not sure|unsure|don't know|dont know|do not know|no idea|no preference|"
    r"doesn't matter|does not matter|skip|flexible|whatever|rather not|prefer not|not yet|"
    r"haven't decided|undecided|any of them|either (?:is|one is|one's|would be) fine|"
    r"either way|any ?time|whenever|you (?:pick|choose|decide)|surprise me|no clue|"
    r"hard to say|can't say|not certain|dunno|i guess it depends|up to you)\b"
)
_DECLINE_NAME = re.compile(
    r"\b(?:rather not|prefer not|don't want to (?:give|say|share|tell)|"
    r"do not want to (?:give|say|share|tell)|not (?:giving|going to give|gonna give)|"
    r"no names?\b|without (?:a|my) name|skip (?:the|my) name|leave (?:the|my) name|"
    r"skip (?:that|this|it)(?: part| bit| one| question)?\b|"
    r"anonymous|why do you need|none of your business|just (?:book|put) it under (?:my|the) "
    r"(?:number|phone)|use my (?:number|phone)|(?:under|with) my (?:phone )?number|"
    r"no,? thanks?(?: you)?\b|(?:phone )?number(?:'s| is| works| will do)(?: just)? "
    r"(?:fine|ok|okay|good|enough))"
)
_EXPLICIT_CHOICE = re.compile(r"\b(?:number|option|choice|press(?:ing)?|pressed) [1-3]\b")


def detect_unsure(s: str) -> bool:
    """ "Not sure", "no idea", "any time": the caller has no answer, which is fine."""
    return bool(_UNSURE.search(s))


def detect_declines_name(s: str) -> bool:
    return bool(_DECLINE_NAME.search(s))


# ---------------------------------------------------------------- questions

_PET_WORDS = r"(?:pets?|dogs?|cats?|animals?|puppy|puppies|kittens?)"
_TOPICS: dict[str, re.Pattern[str]] = {
    "parking": _any(
        r"\bparking\b",
        r"\bgarage\b",
        r"\bmy car\b",
        r"\b(?:where|can) (?:can |do |could )?(?:i|we) park\b",
        r"\bwhere (?:do|can|would|should) (?:people|residents|tenants|visitors|guests|folks) "
        r"park\b",
        r"\bpark (?:my|our|a) (?:car|vehicle)\b",
        r"\b(?:somewhere|anywhere|a place|someplace|a spot) (?:i|we|to) (?:can |could )?park\b",
    ),
    "pets": _any(
        rf"\b{_PET_WORDS}\b.*\b(?:allow(?:ed)?|ok|okay|welcome|permitted|policy|friendly)\b",
        rf"\b(?:allow|accept|permit|take)s? {_PET_WORDS}\b",
        r"\bpet (?:policy|friendly|fee|rent|deposit)\b",
        rf"\b(?:can|could) (?:i|we) (?:bring|have|keep) (?:a |my |our |\d+ )?{_PET_WORDS}\b",
        rf"\bwhat about (?:my |our )?{_PET_WORDS}\b",
    ),
    "rent": _any(
        r"\bhow much\b(?!.*\b(?:parking|garage|park|pet|deposit|fee)\b)",
        r"\b(?:rent|rents|price|prices|pricing|cost|costs)\b.*\?",
        r"\bwhat(?:'s| is| are) the (?:rent|price|cost)",
        r"\bwhat do .* cost\b",
        r"\bwhat about (?:the )?(?:rent|price|cost)s?\b",
        r"\bwhat(?:'s| are| is) (?:you|y'all|you all|you guys|they|it|the owners?|the landlord) "
        r"asking\b",
        r"\basking price\b",
        r"\bwhat kind of (?:money|budget|numbers)\b",
        r"\bwhat are (?:the )?(?:prices|rents|costs)\b",
        r"\b(?:prices?|rents?|pricing) (?:like|for|on|at)\b",
        r"\bwhat(?:'s| is| does)? (?:a |the )?(?:\w+ )?(?:bedroom|studio|unit)s? "
        r"(?:go|rent|cost)\b",
    ),
    "amenities": _any(
        r"\bamenit(?:y|ies)\b",
        r"\b(?:gym|pool|fitness|rooftop|roof deck|doorman|concierge)\b",
        r"\bwhat does (?:the building|it) (?:have|offer)\b",
    ),
    "laundry": _any(r"\b(?:laundry|washer|dryer|washing machine)\b"),
    "utilities": _any(r"\butilit(?:y|ies)\b", r"\b(?:heat|electric(?:ity)?|internet) included\b"),
    "lease": _any(
        r"\blease (?:length|term)s?\b", r"\bhow long (?:is|are) the lease", r"\blease\b.*\?"
    ),
    "deposit": _any(r"\bsecurity deposit\b", r"\bdeposit\b"),
    "address": _any(
        r"(?<!\be-mail )(?<!\bemail )\baddress\b",
        r"\bwhere (?:is|are)\b(?! (?:my|the) (?:tour|appointment))",
        r"\blocated\b",
        r"\blocation\b",
        r"\bneighbou?rhood\b",
        r"\bhow (?:do|would|can|could|will) (?:i|we) (?:find|get to|get there|reach|locate)\b",
        r"\bhow to (?:get|find|reach)\b|\bwhereabouts\b",
        r"\b(?:is it|are they|is that|is the building) (?:near|close to|by|next to) (?:the |a )?"
        r"(?:train|subway|station|metro|path|bus)\b",
    ),
    "availability": _any(
        r"\bwhat (?:times?|days?|slots?|openings?)\b.*\b(?:have|available|open|free|got)\b",
        r"\b(?:when|what) (?:are|is) (?:you )?(?:available|open|free)\b",
        r"\bwhen can (?:i|we) (?:come|see|tour|visit|do)\b",
        r"\b(?:any|what) (?:openings?|availability|slots?)\b",
        r"\bwhat(?:'s| is) (?:available|open|free)\b",
        r"\bdo you have (?:anything|any ?thing|any times?|any openings?|a slot|time)\b",
        r"\bwhat (?:do )?you(?: guys| all| folks)? (?:have|got) (?:on |for )?(?:this |next )?"
        r"(?:[a-z]+day|today|tomorrow|tonight|the \d+|(?:january|february|march|april|may|june|"
        r"july|august|september|october|november|december)\b)",
        r"\b(?:are|is) there (?:any )?tours? (?:on |for )?(?:this |next )?(?:[a-z]+day|today|"
        r"tomorrow|the \d+|(?:january|february|march|april|may|june|july|august|september|"
        r"october|november|december)\b)",
        r"\bwhat times\W*$",
        r"\bis (?:there )?anything (?:open|available|free)\b",
        r"\bwhen(?:'s| is) the (?:next|earliest|soonest)\b",
        r"\b(?:earliest|soonest|next) (?:available|opening|slot|time)\b",
        r"\bwhat (?:do you|have you|you)(?: guys| all| folks)? (?:have|got) (?:open|free|available|"
        r"left)\b",
        r"\b(?:can|could|would) you (?:check|look(?: at| up)?|see)\b.*\b(?:what|which|any) "
        r"(?:times?|slots?|openings?|hours)\b",
        r"\b(?:are|is) there (?:any )?(?:slots?|openings?|times?|spots?)\b",
        r"\bwhat (?:times?|days?) (?:could|can|should|would|might) (?:i|we) (?:come|stop|drop)\b",
        r"\bdo you have (?:any )?(?:spots?|slots?|openings?|times?|availability)\b",
        r"\bwhat(?:'ve| have)? (?:you|y'all|ya)(?: guys| all| folks)? got\b(?! (?:me|us) down)",
        r"\bdo you have (?:something|somethin'?)\b",
        r"\bwetin (?:you|una) (?:get|have|dey)\b",  # Nigerian Pidgin: what do you have
        r"\b(?:you|y'all|ya) got (?:any )?(?:slots?|spots?|openings?|times?|anything|something)\b",
    ),
    "my_tour": _any(
        r"\b(?:when|what time|what day|where)(?:'s| is| was) (?:my|the|our) (?:tour|appointment|"
        r"showing|visit|booking)\b",
        r"\b(?:when|what time) (?:am i|are we) (?:coming|booked|scheduled|supposed to)\b",
        r"\bremind me (?:when|what time|what day|of) ?(?:my |the )?(?:tour|it|appointment)?\b",
        r"\bdo (?:i|we) (?:have|already have) (?:a|an|any) (?:tour|appointment|booking)\b",
        r"\bwhat(?:'s| is| was) my (?:confirmation|code|booking)\b",
    ),
    "overview": _any(
        r"\bwhat (?:do you|have you|you)(?: guys| all| folks)? (?:have|got)\b"
        r"(?!,? (?:on|for|at|available|open|free|left|in|today|tomorrow|tonight|this|next|"
        r"[a-z]+day|the \d+|the [a-z]+(?:st|nd|rd|th)|january|february|march|april|may|june|"
        r"july|august|september|october|november|december)\b)",
        r"\bwhat are (?:my|the|our) (?:options|choices)\b",
        r"\btell me (?:more )?about (?:them|the buildings|your buildings|the apartments|each)\b",
        r"\bwhat (?:buildings|properties|apartments|places) (?:do you|are there|have you)\b",
        r"\bwhat(?:'s| is) the difference\b",
    ),
    "tour_hours": _any(
        r"\b(?:tour|showing|office) hours\b",
        r"\bwhat (?:times?|hours|days) (?:do|are|can) (?:the )?(?:tours?|showings?|you)"
        r" ?(?:run|happen|open|tour|give|do tours|available|held)?\b(?!.*\b(?:have|got)\b)",
        r"\bwhen do (?:the )?(?:tours?|showings?) (?:run|happen|start)\b",
        r"\b(?:tours?|showings?|viewings?)\b\W{0,3}\s?when do you (?:do|run|give|have|hold) "
        r"(?:them|those|it)\b",
        r"\bwhen (?:are|do you (?:usually |normally )?(?:do|give|run)) (?:the |your )?"
        r"(?:tours?|showings?|viewings?)(?: (?:usually|normally|generally|held|on))?\W*$",
        r"\bwhat are your (?:hours|tour times)\b",
        r"\btour (?:times|schedule)\b",
        r"\bwhen (?:can|do) (?:i|you) (?:tour|do tours)\b",
        r"\bwhat (?:times|hours) (?:do you|are) (?:you )?(?:open|tours?)\b",
        r"\bwhen(?:'s| is| are) (?:the |your )?(?:leasing )?(?:office|you) open\b",
        r"\bwhen (?:are|is) (?:you|y'all|the office)(?: guys| all| folks)? open\b",
        r"\bwhat times? can (?:people|folks|someone|anyone|one) (?:come|see|visit|tour|view)\b",
        r"\b(?:your|the|tour|viewing|showing) timings?\b",
        r"\bwhat time (?:do |does )?(?:you|they|tours?|showings?|the office) (?:start|begin|end|"
        r"finish|stop|close|open)\b",
        r"\b(?:tours?|showings?) (?:only )?(?:on|during) (?:the )?(?:weekdays?|weekends?|"
        r"evenings?|mornings?)\b",
        r"\bdo you (?:do|give|have|offer|run|hold) (?:any )?(?:tours?|showings?) "
        r"(?:in the |on |at )?(?:the )?(?:evenings?|mornings?|weekends?|nights?|saturdays?|"
        r"sundays?|weekdays?)\b",
    ),
}


_CHEAPEST = re.compile(
    r"\b(?:cheapest|cheaper|least expensive|less expensive|most affordable|more affordable|"
    r"lowest (?:rent|price)s?|best (?:price|deal)|on a budget|budget option)\b"
)
_ACROSS = re.compile(
    r"\b(?:which|what) (?:one|ones|building|buildings|place|property|of them|of the)\b"
    r"|\b(?:of (?:them|the (?:three|buildings|properties)))\b|\bcheapest\b"
)
_FOLLOW_UP = re.compile(
    r"^(?:(?:ok|okay|and|so|hmm|um|uh)[ ,]+)*(?:and|what about|how about|what's it like|same)"
    r"\b|\b(?:there|over there)\?$"
)
_SOONEST = re.compile(
    r"\b(?:soonest|earliest|first (?:available|opening|open)|next (?:available|opening))\b"
    r"|\bwhenever(?:'s| is)? (?:soonest|earliest|works|is good|you have)\b"
)
_POINTING = re.compile(
    r"\b(?:that|this) (?:one|building|place|option)\b"
    r"|\bthe (?:cheapest|cheaper|less expensive|more affordable|affordable) (?:one|option)\b"
    r"|\b(?:let's|let us|i'll|ill|i will) (?:do|go with|take|see) that\b"
)


_WHICH_HAVE = re.compile(
    r"\b(?:which|what) (?:ones?|1|buildings?|places?|properties|of them)\b.*\b(?:have|has|got|"
    r"offer)"
    r"|\b(?:do|does) (?:any|all|either|both) (?:of them|of the buildings|of you|buildings?)? ?"
    r"(?:have|has|got|offer)\b|\bwhere (?:do|can) (?:you|i) (?:have|get|find)\b"
)


def detect_comparison(s: str) -> str | None:
    """A question that compares the buildings, or None: "which one is cheapest?" (rent),
    "which ones have studios?" (size: the size itself is read as the unit size).

    Pets, parking and the rest are answered building by building, which already tells the
    caller which ones."""
    if _CHEAPEST.search(s) and _ACROSS.search(s):
        return "rent"
    if _WHICH_HAVE.search(s) and extract_unit_size(s) is not None:
        return "size"
    return None


# A question the patterns above miss: the shape of a question and a topic's words. Callers
# ask the same thing a hundred ways ("what's a two bedroom going for", "can I keep a car
# there", "how's Friday looking"); the topic's words give it away more surely than the
# grammar. Measured on a phrasing bank the patterns were never tuned on
# (bench/caller_sim/held_out.yaml): 44% of questions answered with the patterns alone.
_ASKS = re.compile(
    r"\?|\b(?:what|what's|whats|where|where's|wheres|how|how's|hows|which|"
    r"tell me|remind me|wondering|wonder|curious|do you know|any idea)\b"
    r"|^(?:(?:so|and|um+|uh+|oh|ok(?:ay)?|hi|hello|hey|also|sorry|actually|ballpark)[ ,]+)*"
    r"(?:is|are|can|could|do|does|would|will|isn't|aren't|any)\b"
    r"|\b(?:is|are|can|could|do|does|would|will|isn't|aren't|any)\b"
    r"(?= (?:there|it|they|that|this|you|i|we|a|an|the|my|our|dogs?|cats?|pets?|animals?|\w+day)\b)"
)
_NOT_ASKING = re.compile(r"\b(?:where (?:we|i) left off|how about|what about (?:\d|at|on)\b)")
_LOOSE_TOPICS: dict[str, re.Pattern[str]] = {
    "pets": re.compile(
        rf"\b{_PET_WORDS}\b|\bpet[- ]friendly\b"
        r"|\b(?:rabbits?|bunn(?:y|ies)|birds?|parrots?|hamsters?|ferrets?|reptiles?|snakes?)\b"
    ),
    "parking": re.compile(
        r"\b(?:parking|garage|(?:to|i|we) park\b(?! (?:nearby|near|view))|"
        r"keep (?:a|my|our) (?:car|vehicle)|(?:my|a|our) (?:car|vehicle)\b)"
    ),
    "rent": re.compile(
        r"\b(?:expensive|pricey|cheap|affordable|cost|costs|price|prices|pricing|rent|rents|"
        r"monthly|a month|per month|going for|go for(?! it)|run (?:me|us)|ballpark|how much)\b"
    ),
    "address": re.compile(
        r"\b(?:where|street|(?<!mail )address|part of town|what area|which area|neighbou?rhood|"
        r"located|location|cross ?streets?|borough|directions|get there)\b"
    ),
    "tour_hours": re.compile(
        r"\b(?:how (?:late|early)|(?:until|till|til) what time|what time do (?:tours|you|they) "
        r"(?:start|end|finish|close|stop)|(?:first|last) tour of the day|"
        r"earliest and (?:the )?latest|latest and (?:the )?earliest|"
        r"what hours|hours|(?:on|over) (?:the )?weekends?|weekend tours?|what times do|"
        r"when do you (?:open|close)|what time do you (?:open|close)|are you open|"
        r"is the office open|do you do (?:evening|morning|weekend|sunday|saturday|night) tours|"
        r"(?:latest|earliest|last|first) tour)\b"
    ),
    "availability": re.compile(
        r"\b(?:openings?|availability|available|booked up|full up|slots?|"
        r"anything (?:left|open|free)|what(?:'s| is) (?:open|left)|how(?:'s| is) [\w ]+ looking|"
        r"what (?:have you|do you have|you have|you)(?: guys| all| folks)? got|"
        r"(?:are you|is it) free|list of (?:times|slots|openings)|"
        r"(?:what|which) (?:times?|slots?) (?:are|is) (?:still )?(?:free|open|left)|"
        r"(?:fit|squeeze|get) (?:me|us) in|any (?:spots?|times?|slots?|room|space)|"
        r"is there (?:a time|any ?thing|a slot|a spot|room)|do you have (?:room|space|time)|"
        r"what (?:days?|times?) (?:work|are good|do you have)|"
        r"what(?:'s| is)? (?:good|works) for you|"
        r"what time works|when could (?:i|we)|(?:what's|how's|what is|how is) your "
        r"(?:schedule|calendar|availability)|is [\w ]{1,25} (?:open|free|available))\b"
    ),
}


# Words callers use only to ask: "is it expensive like for a studio", "how's Friday booked up".
_ASKING_WORDS = re.compile(
    r"\b(?:expensive|pricey|how much|going for|run (?:me|us)|ballpark|booked up|openings|"
    r"anything (?:left|open|free|available)|list of (?:times|slots|openings))\b"
)


def _loose_questions(s: str) -> list[str]:
    """Topics of a question the exact patterns missed, by the topic's words (one or two)."""
    s = " ".join(s.split())
    if not (_ASKS.search(s) or _ASKING_WORDS.search(s)) or _NOT_ASKING.search(s):
        return []
    found = [topic for topic, pattern in _LOOSE_TOPICS.items() if pattern.search(s)]
    if "tour_hours" in found and "availability" in found:
        found.remove("tour_hours")  # "openings on the weekend": times, not the hours
    if "address" in found and "parking" in found:
        found.remove("address")  # "where can I park?": parking, not directions
    return found[:2]


def detect_questions(s: str) -> list[str]:
    """Topics the caller asked about (pets, parking, rent...)."""
    found = [topic for topic, pattern in _TOPICS.items() if pattern.search(s)]
    if "my_tour" not in found:  # "where's my tour?" is not a question about the address
        fees = any(t in found for t in ("parking", "pets", "deposit", "utilities", "laundry"))
        loose = [t for t in _loose_questions(s) if t not in found]
        found += [t for t in loose if not (t == "rent" and fees)]  # "how much is parking"
    if "availability" in found and "tour_hours" in found and not _TOPICS["tour_hours"].search(s):
        found.remove("tour_hours")
    if "parking" in found and "address" in found and not _TOPICS["address"].search(s):
        found.remove("address")  # "where do people park?": parking, not directions
    if "deposit" in found and "lease" in found and not re.search(r"\blease (?:length|term)", s):
        found.remove("lease")
    return found


# ---------------------------------------------------------------- name

_NAME_INTRO = re.compile(
    r"\b(?:my name is|(?:my |the )?name's|name is|(?:my )?names is|name it is|names|"
    r"name,? which is|"
    r"name(?:'ll| will| would| should) be|this is|this would be|it's|it is|i'm|i am|call me|"
    r"(?:you can )?write(?: it| down)?(?: as)?|"
    r"put (?:me|it) down (?:as|for)|put down|(?:you're|you are) speaking (?:with|to)|"
    r"you can call me|put it under|under the name)\s+"
    r"([^\W\d_][\w'-]*(?:\s+[^\W\d_][\w'-]*){0,3})"
)
# "You can put Sabrina da Rocha on it", "put Ekene down": the name is what goes on the booking.
_PUT_NAME_ON = re.compile(
    r"\bput\s+([^\W\d_][\w'-]*(?:\s+[^\W\d_][\w'-]*){0,3}?)\s+"
    r"(?:on (?:it|that|the (?:booking|reservation|tour|list))|down\b)"
)
_NAME_FILLER = re.compile(
    r"^(?:(?:yes|yeah|yep|yup|no|nope|nah|sure thing|sure|of course|certainly|absolutely|"
    r"alright|all right|"
    r"right|ok|okay|(?:hi|hello|hey) po|hi|hiya|hello|hey|howdy|g'?day|oi|oy|howzit|"
    r"(?:as-?)?salaa?m(?: alaikum)?|shalom|namaste|hola|bonjour|ciao|aloha|heya|yo|kia ora|"
    r"ope|lowkey|ano|sumimasen|abeg(?: na)?|genau|voil[aà]|yoroshiku(?: onegaishimasu)?|"
    r"good (?:morning|afternoon|evening|day)|um+|uh+|ah+|er|"
    r"y'all|yall|ya'll|you all|folks|guys|everyone|there|"
    r"oh|well|so|it's|its|that's|(?:it|that)(?:'d| would) be|and|honestly|me|"
    r"let me (?:see|think)|lemme (?:see|think)|hmm+|"
    r"actually|sorry|oops|my mistake|my bad|correction|wait|hold on)\b[\s,]*)+"
)
_CLAUSE = re.compile(r"[,;!?]|\.(?!\s?m\b)(?<!\b[ap]\.)")  # "10 a.m." is one clause
_HESITATION = re.compile(r"\b(?:m+-?h+m+|uh-?huh|um+|uh+|uhm+|ah+|erm+|ehm+|er+|hmm+|mm+)\b")


def extract_name(s: str, expecting: bool = False) -> str | None:
    """The caller's name from "my name is Dana Lee" or, when we just asked, "Dana Lee".

    Whether the words are a name is judged with data (``names``: first names of many
    origins, word frequencies), so "I'm looking" is not a name and "I'm Oluwaseun" is."""
    s = _COURTESY_TAIL.sub("", _HESITATION.sub(" ", s))
    put = _PUT_NAME_ON.search(s)
    if put and leading_name(put.group(1)):
        return leading_name(put.group(1))
    for match in _NAME_INTRO.finditer(s):
        found = leading_name(match.group(1))
        if found:
            return found
    if expecting and "?" not in s and not detect_questions(s):
        found = leading_name(_NAME_FILLER.sub("", s.strip()))
        if found and not detect_intents(found.lower()) and not _spoken_to(found, s):
            return found
    return None


def _answered_name(clauses: list[str], s: str) -> str | None:
    """The name in an answer to "what's your name?": the first clause if it starts with one,
    or a later clause that is one ("Oops, my mistake, 10:30. Sure, Emilio Gonzalo.").

    Beside a question ("xiulan su what's the deal with pets") only a full name or a known
    first name counts: "Ballpark, what would a studio run me?" is no name."""
    asking = "?" in _ECHO_QUESTION.sub("", s) or bool(detect_questions(s))
    for index, clause in enumerate(clauses):
        words = _NAME_FILLER.sub("", " ".join(_HESITATION.sub(" ", clause).split()))
        found = leading_name(words)
        if not found or detect_intents(found.lower()) or _spoken_to(found, s):
            continue
        if index and len(found.split()) < len(words.split()):
            continue  # after the first clause, only a clause that is all name: "..., Dana Lee."
        if asking and len(found.split()) < 2 and not is_known_first_name(found):
            continue
        return found
    # Unpunctuated: "sorry i meant half past five yeah mitzy ocampo": the words after the
    # last "yeah" / "it's", if they are a name and nothing else.
    tail = _LAST_CUE.search(_COURTESY_TAIL.sub("", " ".join(clauses)))
    if tail:
        words = tail.group(1).strip()
        found = leading_name(words)
        if found and len(found.split()) == len(words.split()) and not detect_intents(words):
            return found
    return None


# "Sorry, Max, get down": a name said to the dog or the child, not the caller's.
_TO_SOMEONE_ELSE = (
    r"[,.!]?\s+(?:stop(?: it| that)?|get (?:down|off)|no+|quiet|be quiet|shh+|shush|hush|"
    r"come (?:here|back)|leave (?:it|that)|drop (?:it|that)|sit|down|go away|not now|"
    r"put (?:it|that) down|give (?:it|that) back|enough|careful|gentle|stay|off)\b"
)


def _spoken_to(name: str, s: str) -> bool:
    first = name.lower().split()[0]
    return bool(re.search(rf"\b{re.escape(first)}{_TO_SOMEONE_ELSE}", s.lower()))


# "Me? Asman.": the caller checks what was asked, and answers it.
_ECHO_QUESTION = re.compile(r"\b(?:who,? )?(?:me|my name|for me|the name|name)\?")

# A name's answer often ends in a courtesy: "Heather Larkin, yep", "it's Eino, no problem".
_COURTESY_TAIL = re.compile(
    r"(?:[\s,]+(?:yeah|yep|yes|yup|please|thanks|thank you|no problem|no worries|that's me|"
    r"that is me|speaking|here|sir|ma'am|maam|madam|mate|boss|po|o|desu|abeg|sha|genau))+\W*$"
)


_LAST_CUE = re.compile(
    r".*\b(?:yeah|yes|yep|sure|okay|ok|it's|its|name's|name is|this is|i'm|under)\s+(.+)$"
)


# ---------------------------------------------------------------- unit, pets, budget

_UNIT = re.compile(r"\b(?:(studio)s?|([1-3])\s?(?:-\s?)?(?:bed ?rooms?|beds?|br|b r|bd|bdrm)\b)")


def extract_unit_size(s: str) -> UnitSize | None:
    """studio / 1br / 2br / 3br; the last one mentioned wins (corrections come last)."""
    found: UnitSize | None = None
    for match in _UNIT.finditer(s):
        found = "studio" if match.group(1) else f"{match.group(2)}br"  # type: ignore[assignment]
    return found


_PET_KINDS = {
    "cat": "cat", "cats": "cat", "kitten": "cat", "kittens": "cat", "kitty": "cat",
    "dog": "dog", "dogs": "dog", "puppy": "dog", "puppies": "dog", "pup": "dog",
    "bird": "bird", "birds": "bird", "parrot": "bird", "rabbit": "rabbit", "rabbits": "rabbit",
    "bunny": "rabbit", "fish": "fish", "hamster": "hamster", "hamsters": "hamster",
}  # fmt: skip
_PET = re.compile(
    r"\b(?:(\d+|a|an|one|a couple of|couple of|a pair of)\s+)?(?:(?:small|little|big|large|"
    r"old|young|senior|tiny|rescue|indoor|house)\s+)*(" + "|".join(_PET_KINDS) + r")\b"
)
_NO_PETS = re.compile(
    r"\b(?:no pets?|no animals?|don't have (?:any )?(?:pets?|animals?)|do not have (?:any )?"
    r"pets?|without (?:any )?pets?|pet ?free|zero pets|nobody)\b"
)
_OWNERSHIP = re.compile(
    r"\b(?:i|we|i've|we've)\s(?:have|got|own|'ve got|also have)\b|\bmy\b|\bour\b|\bwith\b"
)
_SHORT_ANSWER = re.compile(r"^(?:yes |yeah |yep )?(?:just )?(?:a|an|\d+|a couple of)\b")


def extract_pets(s: str, expecting: bool = False) -> list[Pet] | None:
    """Pets the caller has; [] for "no pets"; None when they didn't say."""
    if _NO_PETS.search(s) and not re.search(r"\b(?:i|we) have\b(?! no)", s):
        return []
    matches = list(_PET.finditer(s))
    if not matches:
        return [] if expecting and re.match(_LEAD + r"(?:no|nope|nah|none)\b", s) else None
    owned = _OWNERSHIP.search(s) or (expecting and _SHORT_ANSWER.match(s))
    if not owned and detect_questions(s):
        return None  # "do you allow dogs?" is a question, not a fact
    counts: dict[str, int] = {}
    for match in matches:
        kind = _PET_KINDS[match.group(2)]
        counts[kind] = counts.get(kind, 0) + _pet_count(match.group(1), match.group(2))
    return [Pet(kind=kind, count=count) for kind, count in counts.items()]


def _pet_count(amount: str | None, word: str) -> int:
    if amount is None:
        return 2 if word.endswith("s") and word != "fish" else 1
    if amount.isdigit():
        return int(amount)
    return 2 if "couple" in amount or "pair" in amount else 1


_MONEY = re.compile(
    r"(\$\s?)?(\d+(?:\.\d+)?)\s?(k\b|grand\b|thousand\b)?(\s?(?:dollars?|bucks)\b)?"
    r"(\s?(?:a|per|/)\s?month\b|\s?monthly\b)?"
)
_BUDGET_CUE = re.compile(
    r"\b(?:budget|around|about|up to|under|below|max(?:imum)?|no more than|less than|"
    r"spend|afford|roughly|approximately|between|range|somewhere|more than|over)\b"
)
_SPLIT_THOUSANDS = re.compile(r"\b([1-9]) ([1-9]00)\b")
_NOT_MONEY_AFTER = re.compile(r"\s?(?:am\b|pm\b|o'?clock|st\b|nd\b|rd\b|th\b)")
# "2 bedrooms", "3 cats": a count, but "under 2600, pet friendly" is still a budget.
_COUNT_AFTER = re.compile(r"\s?(?:bed|br\b|cats?|dogs?|pets?)")


def extract_budget(s: str, expecting: bool = False) -> int | None:
    """Monthly budget in dollars, from "$3,200", "twenty five hundred" or "2.5k"."""
    if expecting:
        s = _SPLIT_THOUSANDS.sub(r"\1\2", s)  # "three eight hundred" -> 3800
    best: int | None = None
    for match in _MONEY.finditer(s):
        dollar, number, thousands, unit, per_month = match.groups()
        if len(number) > 9:
            continue  # a keypad run or a phone number, never a rent (and too big for a float)
        if not (dollar or thousands) and _NOT_MONEY_AFTER.match(s, match.end(2)):
            continue
        if not (dollar or thousands) and len(number) < 3 and _COUNT_AFTER.match(s, match.end(2)):
            continue
        value = float(number)
        if thousands or (expecting and value < 20 and not (dollar or unit)):
            value *= 1000  # "2.5k", or "about three" when asked for a budget
        context = s[max(0, match.start() - 30) : match.start()]
        cued = bool(dollar or thousands or unit or per_month or _BUDGET_CUE.search(context))
        amount = round(value)
        if (cued or expecting) and 500 <= amount <= 30000:
            best = amount  # later figures win: "2500, actually 3000"
    return best


# ---------------------------------------------------------------- tour type, contact, email, phone

_VIRTUAL = re.compile(r"\b(?:virtual(?:ly)?|video|facetime|face time|zoom|online|remote(?:ly)?)\b")
# "Online" is a tour type only as one ("do it online"); "I saw it online" is where they looked.
_SEEN_ONLINE = re.compile(
    r"\b(?:saw|seen|found|listed|posted|read about|looked|looking|advertised|ad|listing)\b"
    r"(?: [\w']+){0,4} online\b"
)
_IN_PERSON = re.compile(
    r"\bnot (?:on (?:the |a )?(?:computer|screen|laptop)|by video|virtual(?:ly)?|online)\b|"
    r"\b(?:in person|in-person|come (?:by|in|over)|stop by|visit (?:in person|the building)|"
    r"see it (?:myself|with my own eyes)|walk ?through|on site|physically|in the flesh|"
    r"face[ -]to[ -]face|(?:my|our) own (?:two )?eyes)\b"
)
# "In person, I'm not good with the video stuff": a virtual word they turn down.
_NOT_VIRTUAL = re.compile(
    r"\b(?:not (?:good|great|comfortable|confident|big|a (?:big )?fan|into) (?:with|on|at|of)|"
    r"(?:don't|do not|can't|cannot) (?:like|do|use|handle|manage)|hate)"
    r"(?: [\w']+){0,2} (?:virtual(?:ly)?|video|zoom|facetime|face time|online)\b"
)


# "Can I come Saturday?" leans in person, but never overrides a tour type already chosen.
_COME_OVER = re.compile(
    r"\b(?:(?:can|could) (?:i|we) come(?! back)|come (?:see|look|take a look))\b"
)


# How Whisper has written a spoken "in person" that opens an answer on a noisy line
# ("and person next Tuesday", "Impersonate next Tuesday"): heard only when asked for a type.
_IN_PERSON_MISHEARD = re.compile(
    r"^\W*(?:(?:and|an|on|a|im|um|uh)[ -]?persons?\b|persons?\b(?! who)|impersonat\w*|imperson\b)"
)


def extract_tour_type(s: str, expecting: bool = False) -> TourType | None:
    """virtual or in_person; the last mentioned wins."""
    s = _SEEN_ONLINE.sub(lambda m: " " * len(m.group(0)), s)
    s = _NOT_VIRTUAL.sub(lambda m: " " * len(m.group(0)), s)
    if expecting and _IN_PERSON_MISHEARD.search(s) and not _VIRTUAL.search(s):
        return "in_person"
    last: tuple[int, TourType] | None = None
    for pattern, value in ((_VIRTUAL, "virtual"), (_IN_PERSON, "in_person")):
        for match in pattern.finditer(s):
            if last is None or match.start() > last[0]:
                last = (match.start(), value)  # type: ignore[assignment]
    return last[1] if last else None


_CONTACT_WORD = r"(texts?|texting|sms|messages?|e-?mails?|calls?|phone(?: calls?)?)"
_CONTACT = re.compile(
    r"\b(?:prefer|rather|best|contact|reach|send|by|via|through|over)\b[^.?!]{0,25}?\b"
    + _CONTACT_WORD
    + r"|\b(text|e-?mail) (?:me|it|the confirmation|the code|that)\b"
    + r"|\b(call) me (?:back|later|at|on|any ?time|instead)\b"
    + r"|\b"
    + _CONTACT_WORD
    + r" (?:is|are|works|would be) (?:best|better|fine|great|good)\b"
)
_CONTACT_ANSWER = re.compile(r"\b(texts?|sms|e-?mail|call|phone)\b")


def extract_contact_preference(s: str, expecting: bool = False) -> ContactPreference | None:
    """How the caller wants to hear from us: call, text or email."""
    match = _CONTACT.search(s) or (_CONTACT_ANSWER.search(s) if expecting else None)
    if not match:
        return None
    word = next(g for g in match.groups() if g)
    if word.startswith(("text", "sms", "message")):
        return "text"
    if word.startswith(("email", "e-mail")):
        return "email"
    return "call"


_EMAIL_WRITTEN = re.compile(r"[a-z0-9._%+-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}")
_EMAIL_SPOKEN = re.compile(
    r"\b([a-z0-9_]+(?:\s?(?:dot|underscore|dash|hyphen)\s?[a-z0-9_]+|\.[a-z0-9_]+)*)\s(?:at|@)\s"
    r"([a-z0-9]+(?:\s?dot\s?[a-z0-9]+|\.[a-z0-9]+)+)\b"
)  # a period then a space ends a sentence: "looking at the building. Where ..." is no email
_JOINERS = {
    "dot": ".", "underscore": "_", "dash": "-", "hyphen": "-", ".": ".", "_": "_", "-": "-",
}  # fmt: skip
_EMAIL_LEAD = re.compile(r"^(?:(?:my|the|email|e-mail|address|is|it's|its|sure|yes|ok)\s)+")


def _join_spoken(part: str) -> str:
    part = re.sub(r"\s?\b(dot|underscore|dash|hyphen)\b\s?", lambda m: _JOINERS[m.group(1)], part)
    return part.replace(" ", "")


def extract_email(s: str) -> str | None:
    """An email, written ("dana.lee@example.com") or spoken ("dana dot lee at example dot com")."""
    written = _EMAIL_WRITTEN.search(s)
    if written:
        return written.group(0).strip(".")
    spelled = find_spelled_email(s)
    if spelled:
        return spelled[0]
    text, start = _EMAIL_LEAD.sub("", s), 0
    while (spoken := _EMAIL_SPOKEN.search(text, start)) is not None:
        local, domain = _join_spoken(spoken.group(1)), _join_spoken(spoken.group(2))
        if "." in domain and domain.rsplit(".", 1)[1] in _TLDS:
            return f"{local}@{domain}"
        start = spoken.start(2)  # "me at jared.wong at hotmail.com": the name was no domain
    return None


_TOKEN = re.compile(r"[a-z0-9']+|(?<=[a-z0-9])[._-](?=[a-z0-9])")  # "jo.wu_3": joiners too
_DIGIT_WORDS = {
    "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6",
    "seven": "7", "eight": "8", "nine": "9",
}  # fmt: skip


def find_spelled_email(s: str, prepared: bool = False) -> tuple[str, int, int] | None:
    """An email spelled out letter by letter, and where it was said: "l u c y underscore
    s m i t h at yahoo dot com", "e v i e dot p i e r s o n four six at icloud dot com".

    Walks back from "at" over single letters, digits, joiners (dot, underscore, dash) and
    words next to a joiner; forward over "<word> dot <word>". Digits said as words count
    (on unprepared text "o three" stays a letter and a digit; on ``prepared`` text, where
    "o o" became "00", only where the email was said is to be trusted)."""
    tokens = [(m.group(0), m.start(), m.end()) for m in _TOKEN.finditer(s)]
    for at, (word, _, _) in enumerate(tokens):
        if word != "at" or at == 0:
            continue
        domain, end = _spoken_domain(tokens, at + 1)
        if domain is None:
            continue
        local, first = _spelled_local(tokens, at, digits_anywhere=prepared)
        if local and first < at:
            return f"{local}@{domain}", tokens[first][1], end
    return None


def _spelled_local(
    tokens: list[tuple[str, int, int]], at: int, digits_anywhere: bool = False
) -> tuple[str, int]:
    """The name part before "at", walking back: digits only at its end ("peace five eight";
    a phone number said just before is not part of it), single letters, joiners, and a word
    next to a joiner or just before the digits."""
    parts: list[str] = []
    index = at - 1
    letters_seen = False
    while index >= 0:
        word = tokens[index][0]
        after = tokens[index + 1][0] if index + 1 < at else ""
        near_joiner = word.isalpha() and any(
            0 <= j < at and tokens[j][0] in _JOINERS for j in (index - 1, index + 1)
        )
        single = [len(tokens[j][0]) == 1 for j in (index - 1, index + 1) if 0 <= j < at]
        if word == "-" and len(single) == 2 and all(single):
            pass  # "j-o-n-a-s": the recognizer's way of writing a spelling
        elif word in _JOINERS:
            parts.append(_JOINERS[word])
        elif _is_digit_token(word):
            if letters_seen and not digits_anywhere:
                break
            parts.append(_DIGIT_WORDS.get(word, word))
        elif _letters_here(word, near_joiner, letters_seen, after):
            parts.append(word)
            letters_seen = True
        else:
            break
        index -= 1
    local = "".join(reversed(parts)).strip("._-")
    return (local if any(c.isalpha() for c in local) else ""), index + 1


def _letters_here(word: str, near_joiner: bool, letters_seen: bool, after: str) -> bool:
    """A spelled letter, a word beside a joiner, or the word just before the digits."""
    if not word.isalpha():
        return False
    return len(word) == 1 or near_joiner or (not letters_seen and _is_digit_token(after))


def _is_digit_token(word: str) -> bool:
    return word.isdigit() or word in _DIGIT_WORDS


# Endings an address said aloud has: "me at jared.wong" is no address, "at hotmail.com" is.
_TLDS = frozenset(
    {
        *("com", "net", "org", "edu", "gov", "mil", "info", "biz", "io", "co", "me", "ai"),
        *("app", "dev", "us", "uk", "ca", "au", "de", "fr", "es", "it", "nl", "ie", "in"),
        *("ng", "za", "br", "mx", "jp", "cn", "kr", "nz", "ch", "se", "no", "fi", "dk", "pl"),
        *("pt", "ru", "tr", "ph", "sg", "hk", "ke", "gh", "email", "online", "ro", "pk"),
        *("bd", "eg", "ae", "sa", "ar", "cl", "pe", "be", "gr", "cz", "hu", "ua", "vn", "th"),
        *("my", "id", "tw", "il", "lk", "np", "et", "ug", "tz", "jm", "tt", "do", "cu"),
    }
)


def _spoken_domain(tokens: list[tuple[str, int, int]], start: int) -> tuple[str | None, int]:
    names: list[str] = []
    index = start
    while index < len(tokens):
        letters = []
        while index < len(tokens) and len(tokens[index][0]) == 1 and tokens[index][0].isalpha():
            letters.append(tokens[index][0])  # "g m a i l"
            index += 1
        if letters:
            names.append("".join(letters))
        elif index < len(tokens) and tokens[index][0].isalnum():
            names.append(tokens[index][0])
            index += 1
        else:
            break
        if index < len(tokens) and tokens[index][0] in ("dot", "."):
            index += 1
            continue
        break
    if len(names) < 2 or names[-1] not in _TLDS:
        return None, 0
    return ".".join(names), tokens[index - 1][2]


_PHONE_RUN = re.compile(r"(?:\+?\d[\d\s().-]{8,}\d)")
_PHONE_CUE = re.compile(
    r"\b(?:number|phone|cell|mobile|reach me|call me|text|sms|message|whatsapp)\b"
)


def find_phone(s: str, region: str = "US") -> tuple[str, int, int] | None:
    """A phone number in E.164 and where it was said, however it was grouped or spoken."""
    spoken = re.sub(r"\boh\b", " 0", s) if _PHONE_CUE.search(s) else s
    for match in _PHONE_RUN.finditer(spoken):
        digits = re.sub(r"[^\d+]", "", match.group(0))
        if not 10 <= len(digits.lstrip("+")) <= 15:
            continue
        national = 11 if digits.startswith("1") else 10
        # "... oh eight, oh, and my email ...": an "oh" said after the number is no digit.
        trimmed = digits[:national] if len(digits) == national + 1 else digits
        for candidate in dict.fromkeys((digits, trimmed)):
            try:
                parsed = phonenumbers.parse(candidate, region)
            except phonenumbers.NumberParseException:
                continue
            if phonenumbers.is_possible_number(parsed):
                e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
                return e164, match.start(), match.end()
    return None


def extract_phone(s: str, region: str = "US") -> str | None:
    """A phone number in E.164, from digits however they were grouped or spoken."""
    found = find_phone(s, region)
    return found[0] if found else None


# ---------------------------------------------------------------- dates

_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_MONTHS = (
    "january|february|march|april|may|june|july|august|september|october|november|december|"
    "jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec"
)
_PART = r"(?:early|mid|late|the end of|end of|the beginning of|beginning of|the start of|start of)"
# "May" the month, not "I may want a dog".
_MAY_VERB = (
    r"(?<!\bi )(?<!\bwe )(?<!\byou )(?<!\bit )(?<!\bthey )(?<!\bthat )(?<!\bshe )(?<!\bhe )"
    r"may(?! (?:be|want|have|need|not|i|we|also|take|come|like|see|move|ask|get|go)\b)"
)
_MONTHS_ALONE = _MONTHS.replace("may|", _MAY_VERB + "|")
_DATE_PHRASE = re.compile(
    r"\b(?:the )?day after tomorrow\b"
    r"|\b(?:today|tonight|tomorrow|tmrw|yesterday)\b"
    rf"|\b(?:(?:this|next|on|coming|this coming) )?(?:{'|'.join(_WEEKDAYS)})s?\b"
    rf"|\b(?:{_MONTHS})\.? \d{{1,2}}(?:st|nd|rd|th)?(?: \d{{4}})?\b"
    rf"|\b(?:{_PART} )?(?:{_MONTHS}) (?:of )?20\d\d\b"
    rf"|\b(?:the )?\d{{1,2}}(?:st|nd|rd|th)? of (?:{_MONTHS})\b"
    r"|\bthe \d{1,2}(?:st|nd|rd|th)\b(?! (?:option|time|slot|choice))"
    r"|\b\d{1,2}/\d{1,2}(?:/\d{2,4})?\b"
    r"|\b(?:in )?(?:a|1|2|3) weeks?(?: from (?:now|today))?\b"
    r"|\bnext week\b"
    rf"|\b(?:{_PART} )?(?:next|this|the) month\b"
    rf"|\b(?:{_PART} )?(?:{_MONTHS_ALONE})\b(?! \d)"
    rf"|\b(?:(?:{_PART}|this|next|the) )?(?:spring|summer|fall|autumn|winter)\b"
    r"|\b(?:asap|as soon as possible|right away|immediately)\b"
    r"|\b(?:(?:this|next|the|on the|over the|this coming) )?weekend\b"
)
_SEASONS = {
    "spring": "march",
    "summer": "june",
    "fall": "september",
    "autumn": "september",
    "winter": "december",
}
_MONTH_ONLY = re.compile(
    rf"^(?:({_PART}) )?({_MONTHS}|{'|'.join(_SEASONS)})(?: (?:of )?(20\d\d))?$"
)
_MONTH_NUMBERS = {
    name: number
    for number, names in enumerate(
        (
            "jan january",
            "feb february",
            "mar march",
            "apr april",
            "may",
            "jun june",
            "jul july",
            "aug august",
            "sep sept september",
            "oct october",
            "nov november",
            "dec december",
        ),
        1,
    )
    for name in names.split()
}
_RELATIVE_MONTH = re.compile(rf"^(?:({_PART}) )?(next|this|the) month$")
_PART_OFFSETS = {"mid": 14, "late": 24, "end of": 27, "the end of": 27}
# Phrases that name a month or so, not a day: a move-in date, never a tour day.
_MONTH_LEVEL = re.compile(
    rf"^(?:(?:{_PART}|this|next|the) )?(?:(?:{_MONTHS})|month|{'|'.join(_SEASONS)})"
    r"(?: (?:of )?20\d\d)?$"
)
_WEEKS = re.compile(r"(?:in )?(a|\d) weeks?(?: from (?:now|today))?")
_SOON = frozenset({"asap", "as soon as possible", "right away", "immediately"})


@dataclass(frozen=True)
class DateMention:
    """A date phrase found in text and what day it names."""

    phrase: str
    day: date
    start: int
    end: int = 0

    @property
    def month_level(self) -> bool:
        return bool(_MONTH_LEVEL.match(self.phrase)) or self.phrase in _SOON


def extract_dates(s: str, now: datetime) -> list[DateMention]:
    """Every date named in the text, resolved against ``now`` (future preferred)."""
    found: list[DateMention] = []
    for match in _DATE_PHRASE.finditer(s):
        phrase = match.group(0).strip()
        day = resolve_date(phrase, now)
        if day is not None:
            found.append(DateMention(phrase, day, match.start(), match.end()))
    return _weekday_agrees(found, s, now.date())


_FAR_DAYS = 90
"""A tour date further out than this, next to a weekday it doesn't fall on, was misheard."""


def _weekday_agrees(found: list[DateMention], s: str, today: date) -> list[DateMention]:
    """ "Friday, November 4th" said on November 23: Friday and a date that has passed (so it
    resolved to next year, a Thursday). On a phone line the month is what gets misheard
    ("December" -> "November"); the weekday and the day number agree on one date soon,
    the next Friday the 4th. A date that is near stays as said, whatever the weekday."""
    for i, (named, dated) in enumerate(itertools.pairwise(found)):
        weekday = next((w for w, name in enumerate(_WEEKDAYS) if name in named.phrase), None)
        if weekday is None or not re.fullmatch(r"[\s,]*(?:the\s*)?", s[named.end : dated.start]):
            continue
        if dated.day.weekday() == weekday or (dated.day - today).days <= _FAR_DAYS:
            continue
        near = next(
            (
                today + timedelta(days=ahead)
                for ahead in range(_FAR_DAYS)
                if (today + timedelta(days=ahead)).day == dated.day.day
                and (today + timedelta(days=ahead)).weekday() == weekday
            ),
            None,
        )
        if near is not None:
            found[i] = dataclasses.replace(named, day=near)
            found[i + 1] = dataclasses.replace(dated, day=near)
    return found


def resolve_date(phrase: str, now: datetime) -> date | None:
    """The day a date phrase names, seen from ``now``."""
    today = now.date()
    p = phrase.removeprefix("the ").removeprefix("on ")
    p = re.sub(r"^(?:this|next) (?=spring|summer|fall|autumn|winter)", "", p)
    simple = _simple_day(p, today)
    if simple is not None:
        return simple
    weekday = next((i for i, w in enumerate(_WEEKDAYS) if w in p), None)
    if weekday is not None:
        return weekday_date(p, weekday, today)
    nth = re.fullmatch(r"(\d{1,2})(?:st|nd|rd|th)", p)
    if nth:
        return _day_of_month(int(nth.group(1)), today)
    relative = _RELATIVE_MONTH.match(phrase)
    if relative:
        return _relative_month(relative.group(1), relative.group(2), today)
    month_only = _MONTH_ONLY.match(p) or _MONTH_ONLY.match(phrase)
    if month_only:
        part, name, year = month_only.groups()
        return _month_date(part, name, year, today=today)
    parsed = dateparser.parse(p, languages=["en"], settings=_future(now))
    return parsed.date() if parsed else None


def _simple_day(p: str, today: date) -> date | None:
    if p in ("today", "tonight") or p in _SOON:
        return today
    if p == "yesterday":
        return today - timedelta(days=1)
    if p in ("tomorrow", "tmrw"):
        return today + timedelta(days=1)
    if p == "day after tomorrow":
        return today + timedelta(days=2)
    if p == "next week":
        return today + timedelta(days=7 - today.weekday())
    if p.endswith("weekend"):  # its Saturday (today, on a weekend); "next weekend": a week on
        saturday = today + timedelta(days=(5 - today.weekday()) % 7)
        if today.weekday() == 6:
            saturday = today
        return saturday + timedelta(days=7) if p.startswith("next") else saturday
    weeks = _WEEKS.fullmatch(p)
    if weeks:
        return today + timedelta(weeks=1 if weeks.group(1) == "a" else int(weeks.group(1)))
    return None


def weekday_date(phrase: str, weekday: int, today: date) -> date:
    """The day a weekday phrase names: "saturday" is the coming one, "next wednesday" next week's.

    A bare weekday that is today means a week from today (on a Monday, "Monday" is the
    next one; "today" is what callers say for today). "Next Wednesday" said on a Monday
    is the Wednesday of next week, not the day after tomorrow ("this Wednesday").
    """
    ahead = (weekday - today.weekday()) % 7
    if phrase.startswith("next"):
        next_monday = today + timedelta(days=7 - today.weekday())
        return next_monday + timedelta(days=weekday)
    if ahead == 0 and not phrase.startswith("this"):
        ahead = 7
    return today + timedelta(days=ahead)


def _month_date(part: str | None, name: str, year: str | None, today: date) -> date:
    """A day in the next such month, or this one: "early March", "June 2027", "spring"."""
    month = _MONTH_NUMBERS[_SEASONS.get(name, name)]
    if year:
        first = date(int(year), month, 1)
    else:
        first = date(today.year + (month < today.month), month, 1)
    return max(first + timedelta(days=_PART_OFFSETS.get(part or "", 0)), today)


def _relative_month(part: str | None, which: str, today: date) -> date:
    year, month = today.year, today.month
    if which == "next":
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    first = date(year, month, 1)
    day = first + timedelta(days=_PART_OFFSETS.get(part or "", 0))
    return max(day, today)


def _day_of_month(day_number: int, today: date) -> date | None:
    """The day of "the 28th": this month if it is still ahead, else next month."""
    year, month = today.year, today.month
    for _ in range(2):
        try:
            candidate = date(year, month, day_number)
        except ValueError:
            candidate = None
        if candidate and candidate >= today:
            return candidate
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return None


def _future(now: datetime) -> dict[str, Any]:
    return {
        "RELATIVE_BASE": now.replace(tzinfo=None),
        "PREFER_DATES_FROM": "future",
        "PREFER_DAY_OF_MONTH": "first",
        "DATE_ORDER": "MDY",
    }


# ---------------------------------------------------------------- move-in or tour day?

_MOVE_CUE = re.compile(
    r"\b(?:move|moving)(?: ?-? ?in(?:to)?)?\b(?! (?:it|that|my tour|the tour|my appointment)\b)"
    r"|\blease (?:start|begin)s?\b|\bstart(?:ing)? (?:the |my )?lease\b"
    r"|\bneed (?:a|the) place\b"
)
_TOUR_CUE = re.compile(
    r"\b(?:tour|visit|viewing|showing|appointment|come (?:by|in|over)|stop by|see (?:it|the)|"
    r"how about|what about|works? for me|book|schedule|reschedule|move it|change it|"
    r"switch it|available|free|open)\b"
)
_CLOCK_AFTER = re.compile(
    r"^,?\s*(?:at |around |by |@ ?)?(?:\d{1,2}\b(?!\s?(?:st|nd|rd|th|bed|br|cats?|dogs?|pets?|k)\b)"
    r"|noon|midday|half|quarter)"
    r"|^,?\s*(?:in the )?(?:morning|afternoon|evening|night)\b"
)
_CLOCK_BEFORE = re.compile(r"(?:\d(?:\s?[ap]m|:\d\d)|noon|o'?clock)\s*(?:on |this |next )*$")
_FILLER_TEXT = (
    "um uh oh well so and how about what is are does do it that works for me please yes yeah "
    "ok okay sure maybe perhaps let's lets say i can could would like we on the a then good "
    "fine work probably sometime think hopefully around by in of at just ideally"
)
_FILLER_WORDS = frozenset(_FILLER_TEXT.split())


def _clock_next_to(s: str, mention: DateMention) -> bool:
    """A time right by the date ("saturday at 11", "11 am on friday") makes it a tour day."""
    return bool(_CLOCK_AFTER.match(s[mention.end :]) or _CLOCK_BEFORE.search(s[: mention.start]))


def _cue_before(s: str, mention: DateMention, earlier: DateMention | None) -> str | None:
    """The kind of the last cue ("move" or "tour") between the previous date and this one."""
    low = earlier.end if earlier else 0
    window = s[max(low, mention.start - 40) : mention.start]
    last: tuple[int, str] | None = None
    for kind, pattern in (("move", _MOVE_CUE), ("tour", _TOUR_CUE)):
        for match in pattern.finditer(window):
            if last is None or match.start() >= last[0]:
                last = (match.start(), kind)
    return last[1] if last else None


def is_move_in(
    s: str, mention: DateMention, earlier: DateMention | None, awaiting: str | None
) -> bool:
    """Does this date say when the caller moves in (rather than when they'd tour)?"""
    if _clock_next_to(s, mention):
        return False
    cue = _cue_before(s, mention, earlier)
    if cue is not None:
        return cue == "move"
    if awaiting == "move_in" or mention.month_level:
        return True  # "early January" is never a tour day (tours are booked two weeks out)
    if awaiting in TOUR_AWAITS:
        return False
    return mention.month_level


_SMALL_TALK = re.compile(
    r"^(?:so |and |um |uh )*(?:what|how|why|who)(?:'s| is| are| was| will)?\b"
    r"(?!.*\b(?:times?|slots?|openings?|available|free|open)\b)"
)


def _about_the_date(s: str, mention: DateMention, awaiting: str | None, timed: bool) -> bool:
    """Is a day the caller named really meant for us, not small talk ("the weather today")?"""
    if mention.month_level:
        return True  # "for March 2027": a move-in, said however
    if "availability" in detect_questions(s):
        return True  # "what times do you have today?"
    if _SMALL_TALK.search(s) and not (timed or _TOUR_CUE.search(s)):
        return False
    if awaiting in TOUR_AWAITS or timed or _TOUR_CUE.search(s) or _MOVE_CUE.search(s):
        return True
    rest = (s[: mention.start] + " " + s[mention.end :]).split()
    return len([w for w in rest if w not in _FILLER_WORDS]) <= 1


def split_dates(
    s: str, mentions: list[DateMention], awaiting: str | None, timed: bool = False
) -> tuple[date | None, date | None]:
    """(move-in date, tour day) from the dates named; the last one of each kind wins."""
    move_in: date | None = None
    tour_day: date | None = None
    earlier: DateMention | None = None
    for mention in mentions:
        if not _about_the_date(s, mention, awaiting, timed):
            pass
        elif is_move_in(s, mention, earlier, awaiting):
            move_in = mention.day
        elif not mention.month_level:
            tour_day = mention.day
        earlier = mention
    return move_in, tour_day


# ---------------------------------------------------------------- times of day

_CLOCK = re.compile(
    r"\b(?:at |around |about |by |for |@ ?)?(\d{1,2})(?::(\d{2})|\s(\d{2})(?!\d))?"
    r"\s?(am|pm|o'?clock)?"
    r"(?:\s?(?:in the (morning|afternoon|evening)|at night|tonight))?\b"
)
_NOON = re.compile(r"\b(noon|midday|midnight)\b")
_HALF_PAST = re.compile(r"\b(half|quarter) (past|after|to) (\d{1,2})\b")
_PERIOD = re.compile(
    r"(?<!good )\b(morning|afternoon|evening|tonight|night|after work|lunch ?time)s?\b"
)
_PERIOD_ALIASES = {
    "tonight": "evening",
    "night": "evening",
    "after work": "evening",
    "lunchtime": "afternoon",
    "lunch time": "afternoon",
}
_NOT_A_CLOCK_AFTER = re.compile(
    r"\s?(?:(?:st|nd|rd|th)\b|bed|br|cats?|dogs?|pets?|weeks?|days?|months?|years?|"
    r"dollars?|k\b|grand|people|of\b|/|minutes?|hours?|floors?|pounds?)"
)
_CUE_WORDS = ("at ", "around ", "about ", "by ", "for ", "@")
_MONTH_AFTER = re.compile(
    r"\s?(?:of )?(?:january|february|march|april|may|june|july|august|september|october|"
    r"november|december)\b"
)
_DAY_BEFORE = re.compile(
    r"\b(?:(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday),? (?:the|to) |"
    r"(?:january|february|march|april|may|june|july|august|september|october|november|"
    r"december),? (?:the )?)$"
)


def extract_period(s: str) -> str | None:
    """A part of the day: morning, afternoon or evening."""
    match = _PERIOD.search(s)
    if not match:
        return None
    return _PERIOD_ALIASES.get(match.group(1), match.group(1))


def extract_clock(
    s: str, expecting: bool = False, unblanked: str | None = None
) -> tuple[time | None, str | None]:
    """An explicit time of day and/or a part of the day ("morning"). ``unblanked`` is ``s``
    before its dates were blanked out (same positions): what is next to a number."""
    period = extract_period(s)
    noon = _NOON.search(s)
    if noon:
        return (time(0) if noon.group(1) == "midnight" else time(12)), period
    half = _HALF_PAST.search(s)
    if half:
        kind, direction, hour_text = half.groups()
        minutes = 30 if kind == "half" else 15
        hour = int(hour_text)
        if direction == "to":
            hour, minutes = hour - 1, 60 - minutes
        return _twelve_to_24(hour, minutes, None, period), period
    near = unblanked if unblanked is not None and len(unblanked) == len(s) else s
    if _RUN_TOGETHER_CLOCK.search(s):  # "1130 in the morning", "930am"
        s = near = _RUN_TOGETHER_CLOCK.sub(r"\1:\2", s)
    clock: time | None = None
    for match in _CLOCK.finditer(s):
        found = _clock_from_match(s, match, expecting, period, near)
        if found is not None:
            clock = found  # the last time named wins: "2, I mean 3 pm"
    return clock, period


_RUN_TOGETHER_CLOCK = re.compile(
    r"\b(1[0-2]|[1-9])([0-5]\d)(?=\s?(?:am|pm|in the (?:morning|afternoon|evening))\b)"
)


def _clock_from_match(
    s: str, match: re.Match[str], expecting: bool, period: str | None, near: str
) -> time | None:
    hour_text, mm, spaced_mm, suffix, inline_period = match.groups()
    whole = match.group(0)
    at_night = "night" in whole
    quarter_hour = spaced_mm in ("00", "15", "30", "45")  # "nine thirty", "two fifteen"
    cued = bool(
        suffix or mm or quarter_hour or inline_period or at_night or whole.startswith(_CUE_WORDS)
    )
    if _NOT_A_CLOCK_AFTER.match(s, match.end()) or not (cued or expecting):
        return None
    bare = not (suffix or mm or spaced_mm or inline_period or at_night)
    bare = bare and not whole.startswith(_CUE_WORDS)  # "1", not "at 1" or "1 pm"
    dated = _MONTH_AFTER.match(near, match.end()) or _DAY_BEFORE.search(near, 0, match.start())
    if bare and dated:
        return None  # "11 30 AM, 1 December 7", "Monday to 7": a date as Whisper wrote it
    hour, minute = int(hour_text), int(mm or spaced_mm or 0)
    if hour > 23 or minute > 59 or (hour > 12 and not (mm or spaced_mm)):
        return None
    if suffix and suffix.startswith("o"):
        suffix = None
    return _twelve_to_24(hour, minute, suffix, "evening" if at_night else inline_period or period)


def _twelve_to_24(hour: int, minute: int, suffix: str | None, period: str | None) -> time:
    if hour > 12:
        return time(hour % 24, minute)
    if suffix == "pm" or (suffix != "am" and period in ("afternoon", "evening")):
        return time(hour % 12 + 12, minute)
    if suffix == "am" or period == "morning":  # "11 a.m. ... tours in the evening?": a.m.
        return time(hour % 12, minute)
    # No am/pm: read it the way people book tours (8-11 in the morning, 12-7 after noon).
    return time(hour if hour >= 8 and hour != 12 else (hour % 12) + 12, minute)


# ---------------------------------------------------------------- everything


def _blank(s: str, spans: list[tuple[int, int]]) -> str:
    """The text with some spans blanked out (positions kept), so extractors skip them."""
    chars = list(s)
    for start, end in spans:
        chars[start:end] = " " * (end - start)
    return "".join(chars)


_NUMBER_WORDS = (
    r"one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|"
    r"fifty|sixty|seventy|eighty|ninety|hundred"
)
_HYPHENED_NUMBER = re.compile(rf"\b({_NUMBER_WORDS})-(?=(?:{_NUMBER_WORDS})\b)")


@functools.cache
def _place_words(catalog: Catalog) -> frozenset[str]:
    """Every word of every building's names: "Dana Hudson" is Dana, at Hudson 360."""
    return frozenset(
        w for p in catalog.properties.values() for n in p.spoken_names() for w in n.split()
    )


def _unhyphen_numbers(text: str) -> str:
    """ "Hudson Three-Sixty" -> "hudson three sixty": the form building names are known by
    (a hyphenated name, "Coret-Coredo", keeps its hyphen)."""
    return _HYPHENED_NUMBER.sub(r"\1 ", text)


def _lower(text: str) -> str:
    """Lower case as the patterns expect: "İnönü" -> "inönü" (Python leaves a combining dot
    on the i, which splits the word), and typographic apostrophes as plain ones."""
    return text.lower().replace("i\u0307", "i").replace("\u2019", "'")


def understand(
    text: str, now: datetime, catalog: Catalog, awaiting: str | None = None
) -> Understanding:
    """Read one utterance. ``awaiting`` names what the agent just asked for, if anything."""
    text = text[:MAX_TURN_CHARS]
    # Building names go before numbers are read, so "hudson three sixty three bedrooms" is
    # Hudson 360 and a three-bedroom, not "hudson 363 bedrooms".
    lowered = _lower(text)
    s = prepare(catalog.strip_names(_unhyphen_numbers(lowered)))
    u = Understanding(text=text)
    u.affirm = detect_affirm(s)
    if u.affirm is None and awaiting in YES_NO_QUESTIONS and _MURMURED_YES.match(s):
        u.affirm = True  # "Mm-hmm." to "Shall I book it?" is a yes (elsewhere a backchannel)
    if u.affirm is None and awaiting == "resume" and _SAME_AS_BEFORE.match(s):
        u.affirm = True  # "Shall we pick up there?" "The same."
    u.intents = detect_intents(s)
    u.correction = detect_correction(s)
    u.questions = detect_questions(s)
    if "repeat" in u.intents and set(u.questions) <= {"overview", "availability"}:
        u.questions = []  # "read me back what you have": the agent's words again, no overview
    u.compare = detect_comparison(s)
    u.follow_up = bool(_FOLLOW_UP.search(s.strip()))
    u.pointing = bool(_POINTING.search(s))
    u.soonest = bool(_SOONEST.search(s))
    u.unsure = detect_unsure(s)
    u.declines_name = detect_declines_name(s)
    u.choice = choose_by_number(text)
    if u.choice is not None:
        s = _EXPLICIT_CHOICE.sub(" ", s)  # keypad "number 1" is a pick, never 1 PM
    if awaiting in ("spell_name", "confirm_name"):  # "No, it's D A N A" to a read-back too
        u.spelled_name = parse_spelled_name(text)
    _read_places(u, text, catalog)
    s = catalog.strip_names(s)
    without_contacts = _blank(s, _read_contacts(u, s, lowered, awaiting))
    _read_caller(u, without_contacts, awaiting)
    if u.name and " " not in u.name:  # "I am Therese Little."
        family = family_name_after(u.name, u.text)
        if family and family.lower() not in _place_words(catalog):
            u.name = f"{u.name} {family}"
    if u.name is None and u.email is None and awaiting in ("name", "confirm_name"):  # by clause
        clauses = _CLAUSE.split(_unhyphen_numbers(lowered))
        u.name = _answered_name([prepare(catalog.strip_names(c)) for c in clauses], s)
    mentions = extract_dates(without_contacts, now)
    plain = _blank(without_contacts, [(m.start, m.end) for m in mentions if m.phrase != "tonight"])
    u.budget = extract_budget(plain, expecting=awaiting == "budget")
    _read_when(u, without_contacts, plain, mentions, awaiting)
    if u.questions == ["tour_hours"] and u.tour_clock is None:
        u.tour_day = u.tour_period = None  # "are you open on Sundays?" asks, it doesn't book
    elif "tour_hours" in u.questions and u.tour_clock is not None:
        u.tour_period = None  # "11 a.m., and do you do evenings?": the clock says when
    return u


@functools.cache
def _matcher(catalog: Catalog) -> PlaceMatcher:
    return PlaceMatcher.from_catalog(catalog)


def _read_places(u: Understanding, text: str, catalog: Catalog) -> None:
    """Buildings named, heard fuzzily and by sound; a doubtful one is only a guess."""
    for match in _matcher(catalog).find(normalize_words(prepare(text))):
        if match.score >= CONFIDENT:
            if match.property_id not in u.property_ids:
                u.property_ids.append(match.property_id)
        elif u.property_guess is None:
            u.property_guess = match.property_id
    if u.property_ids:
        u.property_guess = None


def _read_caller(u: Understanding, s: str, awaiting: str | None) -> None:
    u.name = extract_name(s, expecting=awaiting in ("name", "confirm_name"))
    if u.name and (u.name.lower().split()[0] in ("text", "email") or detect_unsure(u.name.lower())):
        u.name = None  # "I'm undecided" is no name
    u.unit_size = extract_unit_size(s)
    u.pets = extract_pets(s, expecting=awaiting in ("pets", "pet_details"))
    u.tour_type = extract_tour_type(s, expecting=awaiting == "tour_type")
    u.in_person_hint = bool(_COME_OVER.search(s))


def _read_contacts(
    u: Understanding, s: str, raw: str, awaiting: str | None
) -> list[tuple[int, int]]:
    """Email, phone and how to send the confirmation; returns where the contacts were said."""
    spans: list[tuple[int, int]] = []
    spelled = find_spelled_email(raw)  # before "o three" became "03"
    u.email = spelled[0] if spelled else extract_email(s)
    at_email = find_spelled_email(s, prepared=True)  # the same email's place in ``s``
    if at_email:
        spans.append((at_email[1], at_email[2]))
    elif u.email and (email := _EMAIL_WRITTEN.search(s) or _EMAIL_SPOKEN.search(s)):
        spans.append(email.span())
    phone = find_phone(s)
    if phone:
        u.phone = phone[0]
        spans.append((phone[1], phone[2]))
    u.contact_preference = extract_contact_preference(s, expecting=awaiting == "contact_preference")
    return spans


_CHANGE_CUE = re.compile(
    r"\b(?:how about|what about|make it|no|not|instead|rather|earlier|later|can we do|"
    r"could we do|let's do|let's say|or)\b|\b\d{1,2} then\b"
)


def _read_when(
    u: Understanding, s: str, plain: str, mentions: list[DateMention], awaiting: str | None
) -> None:
    """Move-in date, tour day, clock time and part of the day."""
    # At "Shall I book it?" a bare number is a new time only when the caller says it is one
    # ("make it 3", "how about 4"): a recognizer's stray "one" must not move the tour to 1 PM.
    changing = u.correction or bool(_CHANGE_CUE.search(s))
    expecting_clock = awaiting in ("tour_time", "pick_slot", "manage_booking") or (
        awaiting == "confirm" and changing
    )
    clock, period = extract_clock(
        plain, expecting=expecting_clock and u.budget is None, unblanked=s
    )
    timed = clock is not None or period is not None
    u.move_in, u.tour_day = split_dates(s, mentions, awaiting, timed)
    if u.move_in is not None and u.tour_day is None and not _tour_time_said(s, awaiting):
        return  # "moving in January 15" says nothing about the tour
    u.tour_clock, u.tour_period = clock, period


def _tour_time_said(s: str, awaiting: str | None) -> bool:
    return awaiting in TOUR_AWAITS or bool(_TOUR_CUE.search(s))
