"""A labelled set of callers, their memories and their questions, for recall and score cutoffs.

Each caller has a few past calls, given as the PlannerState changes the planner would have
made (so the facts and call summaries are worded by Tourline's own ``FactExtractor`` and
``Consolidator``), plus notes in the free-form style mem0's LLM extraction writes when an
LLM is configured: 12-17 memories per caller.

Questions are what a returning caller asks ("which building was I looking at?") or what an
operator asks about them, each labelled with the memory that answers it: ``slot:<slot>``
for a fact, ``note:<text fragment>`` for a note. ``UNRELATED`` questions have no answer in
any caller's memories: their best score shows what a cutoff must reject.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from app.domain.state import Booking, Pet


@dataclass(frozen=True)
class LabelledCaller:
    caller_id: str
    calls: list[dict[str, Any]]  # PlannerState updates, one dict per call (cumulative)
    notes: list[str]
    questions: list[tuple[str, str]]  # (question, "slot:..." or "note:...")
    extra: dict[str, Any] = field(default_factory=dict)


def _booking(code: str, property_id: str, tour_type: str, start: datetime) -> Booking:
    return Booking(
        confirmation_code=code,
        status="booked",
        property_id=property_id,
        tour_type=tour_type,  # type: ignore[arg-type]
        start=start,
    )


CALLERS: list[LabelledCaller] = [
    LabelledCaller(
        "+14155550101",
        calls=[
            {"caller_name": "Dana Lee", "property_id": "hudson-360", "unit_size": "1br"},
            {"pets": [Pet(kind="cat", count=2)], "budget": 2400, "move_in": date(2027, 3, 1)},
            {
                "budget": 2600,
                "tour_type": "virtual",
                "contact_preference": "text",
                "booking": _booking(
                    "4RZ8", "hudson-360", "virtual", datetime(2027, 2, 4, 23, 30, tzinfo=UTC)
                ),
            },
        ],
        notes=[
            "Works as a nurse on night shifts at Mount Sinai",
            "Wants a quiet unit away from the elevator",
            "Asked whether the building has a bike room",
            "Her sister lives near Riverview Lofts",
            "Prefers a unit with lots of natural light",
            "Is moving out of a place in Brooklyn",
        ],
        questions=[
            ("Which building was I looking at?", "slot:property_interest"),
            ("What did I tell you about my cats?", "slot:pets"),
            ("What's my budget again?", "slot:budget"),
            ("When is my tour?", "slot:booking"),
            ("When do I want to move in?", "slot:move_in"),
            ("Where does she work?", "note:nurse"),
            ("Does she care about noise?", "note:quiet"),
            ("Did I ask about storing my bicycle?", "note:bike room"),
        ],
    ),
    LabelledCaller(
        "+12125550102",
        calls=[
            {"caller_name": "Marcus Webb", "property_id": "riverview-lofts"},
            {"unit_size": "2br", "pets": [], "budget": 3800, "email": "marcus.webb@example.com"},
            {"tour_type": "in_person", "contact_preference": "email"},
        ],
        notes=[
            "Needs a parking space for his pickup truck",
            "Is relocating from Chicago for a new job",
            "Has a teenage son who will live with him",
            "Plays the piano and needs a building that allows it",
            "Asked about a gym in the building",
            "Would sign an eighteen-month lease",
        ],
        questions=[
            ("Do I have any pets on file?", "slot:pets"),
            ("How many bedrooms did I want?", "slot:property_interest"),
            ("What is my email address?", "slot:email"),
            ("Is there parking for my truck?", "note:parking"),
            ("Where is he moving from?", "note:Chicago"),
            ("Can I play my piano there?", "note:piano"),
            ("How long a lease does he want?", "note:lease"),
        ],
    ),
    LabelledCaller(
        "+13125550103",
        calls=[
            {"caller_name": "Priya Raman", "unit_size": "studio"},
            {"property_id": "21-west-end", "budget": 2100},
            {"move_in": date(2027, 6, 15), "contact_preference": "call"},
        ],
        notes=[
            "Uses a wheelchair and needs step-free access",
            "Wants laundry inside the unit",
            "Is a graduate student at Columbia",
            "Her parents will act as guarantors",
            "Asked if utilities are included in the rent",
        ],
        questions=[
            ("What size apartment am I after?", "slot:property_interest"),
            ("How much did I say I can spend?", "slot:budget"),
            ("When am I moving?", "slot:move_in"),
            ("Any accessibility needs?", "note:wheelchair"),
            ("Does she need a washer and dryer?", "note:laundry"),
            ("Who is the guarantor?", "note:guarantors"),
            ("Are bills part of the rent?", "note:utilities"),
        ],
    ),
    LabelledCaller(
        "tom.okafor@example.com",
        calls=[
            {"caller_name": "Tom Okafor", "pets": [Pet(kind="dog", count=1)]},
            {"property_id": "riverview-lofts", "unit_size": "1br", "budget": 2900},
            {
                "tour_type": "in_person",
                "booking": _booking(
                    "7KQ2", "riverview-lofts", "in_person", datetime(2027, 1, 16, 16, 0, tzinfo=UTC)
                ),
            },
        ],
        notes=[
            "His dog is a large German Shepherd",
            "Wants a ground floor unit near a park",
            "Dislikes carpet and wants hardwood floors",
            "Works from home three days a week",
            "Asked whether there is a dog run nearby",
        ],
        questions=[
            ("Do I have a pet?", "slot:pets"),
            ("When am I coming to see the apartment?", "slot:booking"),
            ("What breed is his dog?", "note:German Shepherd"),
            ("Which floor does he prefer?", "note:ground floor"),
            ("What flooring does he like?", "note:hardwood"),
            ("Does he work remotely?", "note:Works from home"),
        ],
    ),
    LabelledCaller(
        "+16465550105",
        calls=[
            {"caller_name": "Elena Rossi", "property_id": "21-west-end", "unit_size": "2br"},
            {"budget": 4200, "move_in": date(2027, 9, 1), "pets": []},
            {"property_id": "hudson-360", "unit_size": "2br", "tour_type": "virtual"},
        ],
        notes=[
            "Shares the apartment with a roommate",
            "Prefers to be contacted by email, not phone",
            "Is a software engineer at a startup",
            "Wants a building with a doorman",
            "Asked about the security deposit",
            "Cycles to work and needs bike storage",
        ],
        questions=[
            ("Which building am I interested in now?", "slot:property_interest"),
            ("What was my budget?", "slot:budget"),
            ("Will anyone live with her?", "note:roommate"),
            ("How does she like to be contacted?", "note:email"),
            ("Does she want a doorman?", "note:doorman"),
            ("How much is the deposit I asked about?", "note:deposit"),
        ],
    ),
    LabelledCaller(
        "+17185550106",
        calls=[
            {"caller_name": "Sam Whitaker", "property_id": "hudson-360"},
            {"unit_size": "3br", "budget": 5200, "pets": [Pet(kind="rabbit", count=1)]},
            {"tour_type": "virtual", "contact_preference": "text"},
        ],
        notes=[
            "Has three young children",
            "Is allergic to cats",
            "Needs to be near a good public school",
            "Asked about a playground for the kids",
            "Would like a dishwasher",
        ],
        questions=[
            ("How many bedrooms do we need?", "slot:property_interest"),
            ("What pet do I have?", "slot:pets"),
            ("How should we send the confirmation?", "slot:contact"),
            ("Does he have kids?", "note:children"),
            ("Any allergies?", "note:allergic"),
            ("Is a school nearby important?", "note:school"),
        ],
    ),
    LabelledCaller(
        "+19175550107",
        calls=[
            {"caller_name": "Grace Kim", "property_id": "riverview-lofts", "unit_size": "studio"},
            {"budget": 1900, "move_in": date(2027, 4, 1)},
            {"budget": 2050, "tour_type": "in_person"},
        ],
        notes=[
            "Is a pastry chef who starts work at 4 AM",
            "Wants a gas stove rather than electric",
            "Has a cello and worries about noise complaints",
            "Asked about the subway line to Midtown",
        ],
        questions=[
            ("What's my rent limit?", "slot:budget"),
            ("What kind of tour did I want?", "slot:tour_type"),
            ("What does she do for a living?", "note:pastry chef"),
            ("What kind of stove does she want?", "note:gas stove"),
            ("How does she get to Midtown?", "note:subway"),
        ],
    ),
    LabelledCaller(
        "+12015550108",
        calls=[
            {"caller_name": "Luis Ortega", "property_id": "21-west-end", "unit_size": "1br"},
            {"pets": [Pet(kind="dog", count=2)], "budget": 3100},
            {
                "email": "luis.ortega@example.com",
                "booking": _booking(
                    "M3PX", "21-west-end", "virtual", datetime(2027, 3, 10, 22, 0, tzinfo=UTC)
                ),
            },
        ],
        notes=[
            "Is moving with his partner from Miami",
            "Needs a home office with a door",
            "Asked whether there is a roof deck",
            "Has a car and asked about garage prices",
        ],
        questions=[
            ("How many dogs do I have?", "slot:pets"),
            ("What's my tour confirmation code?", "slot:booking"),
            ("Where is he relocating from?", "note:Miami"),
            ("Does he need space to work?", "note:home office"),
            ("Is there a rooftop?", "note:roof deck"),
            ("What did he ask about parking his car?", "note:garage"),
        ],
    ),
]

# Nothing any caller said answers these: what a score cutoff should turn away.
UNRELATED: list[str] = [
    "What's the weather going to be tomorrow?",
    "Who won the football game last night?",
    "Can you recommend a good pizza place?",
    "What is the capital of Australia?",
    "How do I reset my router password?",
    "Tell me a joke",
    "What time does the pharmacy close?",
    "Is the stock market up today?",
    "How tall is the Empire State Building?",
    "What's a good recipe for lasagna?",
    "Which airline flies to Tokyo?",
    "How do I renew my driver's license?",
]
