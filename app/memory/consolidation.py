"""Batch consolidation: unsynced exchanges and ended calls become memories and summaries.

The durable log is the truth; consolidation derives memory from it, then marks what it
used. It runs when a caller has 25 or more unsynced exchanges, or when a call ends:

1. the caller's latest PlannerState snapshot is re-indexed as slot facts (idempotent:
   an unchanged slot is left alone, a changed one is updated, never duplicated);
2. each ended call gets a short deterministic summary, built from that call's last
   snapshot and its outcome, stored on the call and as a ``summary`` memory;
3. with an LLM configured, mem0's own extraction (``infer=True``) runs on the transcript
   (a failure there is logged, the deterministic part stands);
4. the exchanges are marked synced and the calls consolidated, in one transaction.

A crash anywhere before step 4 leaves everything unsynced, so the next run (at start-up,
see ``MemoryService``) simply does it again, and steps 1-2 converge to the same rows.

Replicas share the database, so a run first claims the caller (``ClaimStore``: a leased
row) and reads the pending work only once it holds the claim: a batch is indexed by one
process, and a second process asked to do the same caller meanwhile stands aside. The
holder looks again after releasing, so work that arrived while it held the claim (and
that another process was turned away from) is never stranded.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from app.domain import spoken
from app.domain.identity import masked
from app.domain.state import PlannerState
from app.memory.caller_memories import CallerMemories
from app.memory.facts import FactExtractor
from app.stores.claims import DEFAULT_LEASE_S, ClaimStore, process_owner
from app.stores.conversations import CallRecord, ConversationStore, Exchange

logger = logging.getLogger(__name__)

BATCH_SIZE = 25  # unsynced exchanges that trigger a consolidation mid-call
MAX_ROUNDS = 10  # claimed runs back to back for one caller while new work keeps arriving
CHANNEL_WORDS = {
    "phone": "Phone call",
    "avatar": "Avatar session",
    "livekit": "Voice session",
    "chat": "Text chat",
    "sms": "Text messages",
    "whatsapp": "WhatsApp messages",
}
# Facts the summary leaves out: the name leads the summary, contact details are not news.
_SUMMARY_SKIP = {"name", "email", "phone", "contact", "booking"}


class ClaimLostError(RuntimeError):
    """This run outlived its lease and another process took the caller over."""

    def __init__(self, caller_id: str) -> None:
        super().__init__(
            f"consolidation of {masked(caller_id)} outlived its claim; the new holder goes on"
        )


@dataclass
class ConsolidationReport:
    caller_id: str
    consolidated: bool = False
    reason: str = "nothing to do"
    exchanges_synced: int = 0
    calls_summarized: list[str] = field(default_factory=list)
    facts: dict[str, int] = field(default_factory=dict)  # outcome -> count
    llm_memories: int | None = None
    claimed_elsewhere: bool = False  # another process held the caller: it does the work

    def merge(self, other: ConsolidationReport) -> None:
        """Add a later round's work to this report."""
        if other.consolidated and not self.consolidated:
            self.consolidated, self.reason = True, other.reason
        self.exchanges_synced += other.exchanges_synced
        self.calls_summarized.extend(other.calls_summarized)
        for outcome, count in other.facts.items():
            self.facts[outcome] = self.facts.get(outcome, 0) + count
        if other.llm_memories is not None:
            self.llm_memories = (self.llm_memories or 0) + other.llm_memories

    def as_dict(self) -> dict[str, Any]:
        return {
            "caller_id": self.caller_id,
            "consolidated": self.consolidated,
            "reason": self.reason,
            "exchanges_synced": self.exchanges_synced,
            "calls_summarized": list(self.calls_summarized),
            "facts": dict(self.facts),
            "llm_memories": self.llm_memories,
            "claimed_elsewhere": self.claimed_elsewhere,
        }


class Consolidator:
    """Runs one caller's consolidation; call it from the memory worker thread only."""

    def __init__(
        self,
        store: ConversationStore,
        memories: CallerMemories,
        facts: FactExtractor,
        *,
        llm_enabled: bool = False,
        batch_size: int = BATCH_SIZE,
        claims: ClaimStore | None = None,
        owner: str | None = None,
        lease_s: float = DEFAULT_LEASE_S,
    ) -> None:
        self.store = store
        self.memories = memories
        self.facts = facts
        self.llm_enabled = llm_enabled
        self.batch_size = batch_size
        self.claims = claims  # None: this process is the only writer (tests, tools)
        self.owner = owner or process_owner()
        self.lease_s = lease_s

    def due(self, caller_id: str) -> str | None:
        """Why this caller should be consolidated now, or None."""
        if self.store.pending_calls(caller_id):
            return "call ended"
        if self.store.unsynced_count(caller_id) >= self.batch_size:
            return f"{self.batch_size}+ unsynced exchanges"
        return None

    def run(self, caller_id: str, reason: str | None = None) -> ConsolidationReport:
        """Consolidate the caller's pending work, once across every process on the database."""
        if self.claims is None:
            return self._run(caller_id, reason)
        report = ConsolidationReport(caller_id)
        for _ in range(MAX_ROUNDS):
            if not self.claims.claim(caller_id, self.owner, self.lease_s):
                report.claimed_elsewhere = not report.consolidated
                if report.claimed_elsewhere:
                    report.reason = "another process is consolidating this caller"
                return report
            try:
                report.merge(self._run(caller_id, reason))
            finally:
                self.claims.release(caller_id, self.owner)
            # Another process turned away while we held the claim relies on this look.
            if self.due(caller_id) is None:
                return report
        logger.warning(
            "Consolidation of %s kept finding new work; the rest waits for a retry",
            masked(caller_id),
        )
        report.claimed_elsewhere = True  # asks the service to retry later
        return report

    def _keep_claim(self, caller_id: str) -> None:
        """Renew the lease before the step that commits; stop if it was lost (overran)."""
        if self.claims is not None and not self.claims.renew(caller_id, self.owner, self.lease_s):
            raise ClaimLostError(caller_id)

    def _run(self, caller_id: str, reason: str | None) -> ConsolidationReport:
        report = ConsolidationReport(caller_id)
        exchanges = self.store.unsynced_exchanges(caller_id)
        pending = self.store.pending_calls(caller_id)
        if not exchanges and not pending:
            return report
        latest = self.store.latest_snapshot(caller_id)
        if latest is not None:
            state = PlannerState.from_json(latest.state_json)
            for fact in self.facts.current(state, caller_id=caller_id):
                outcome = self.memories.put(
                    caller_id, fact.slot, fact.text, call_id=latest.call_id, value=fact.value
                )
                report.facts[outcome] = report.facts.get(outcome, 0) + 1
        summaries: dict[str, str] = {}
        for call in pending:
            summary = self.summarize(call)
            self.memories.put(
                caller_id, f"summary:{call.call_id}", summary, kind="summary", call_id=call.call_id
            )
            summaries[call.call_id] = summary
        if self.llm_enabled and exchanges:
            self._keep_claim(caller_id)
            report.llm_memories = self._infer(caller_id, exchanges)
        self._keep_claim(caller_id)
        self.store.finish_consolidation(caller_id, [e.id for e in exchanges], summaries)
        report.consolidated = True
        report.reason = reason or ("call ended" if pending else "unsynced exchanges")
        report.exchanges_synced = len(exchanges)
        report.calls_summarized = list(summaries)
        return report

    def summarize(self, call: CallRecord) -> str:
        """Text chat on Saturday, November 21 with Dana Lee. Interested in ... No tour booked."""
        snapshot = self.store.latest_snapshot(call.caller_id, call.call_id)
        state = PlannerState.from_json(snapshot.state_json) if snapshot else None
        when = spoken.day(call.started_at.astimezone(self.facts.tz))
        head = f"{CHANNEL_WORDS.get(call.channel, 'Call')} on {when}"
        if state is not None and state.caller_name:
            head += f" with {state.caller_name}"
        parts = [head + "."]
        if state is not None:
            facts = [
                f.text
                for f in self.facts.current(state, caller_id=call.caller_id)
                if f.text and f.slot not in _SUMMARY_SKIP
            ]
            if facts:
                parts.append(spoken.capitalize("; ".join(_lower_first(t) for t in facts)) + ".")
            if state.booking is not None:
                parts.append(self.facts.booking_sentence(state.booking) + ".")
            else:
                parts.append("No tour booked.")
        if call.outcome == "abandoned":
            parts.append("The call dropped before a goodbye.")
        return " ".join(parts)

    def _infer(self, caller_id: str, exchanges: list[Exchange]) -> int | None:
        by_call: dict[str, list[dict[str, str]]] = {}
        for e in exchanges:
            role = "user" if e.role == "user" else "assistant"
            by_call.setdefault(e.call_id, []).append({"role": role, "content": e.said})
        written = 0
        try:
            for call_id, messages in by_call.items():
                written += self.memories.infer(caller_id, messages, call_id)
        except Exception as exc:
            logger.warning(
                "LLM memory extraction failed for %s (%s); keeping the deterministic facts",
                masked(caller_id),
                exc,
            )
            return None
        return written


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]
