"""Prometheus metrics: what ``GET /metrics`` exports, fed by the calls' timeline events.

Why from the timeline: every stage of a call already goes through
``FlightRecorder.event``, so the recorder hands each event to :func:`observe` and the
realtime loop needs no metrics code; a number in ``/metrics`` is the same number the call's
timeline shows. Figures the timeline does not carry (calls in progress, capacity, event-loop
lag) are set by the web layer just before it renders (:meth:`Metrics.set_load`).

One ``CollectorRegistry`` per :class:`Metrics`, not prometheus-client's global one, so a test
can build its own and several apps in one process don't collide on names. Times are in
seconds, as Prometheus names them (``*_seconds``); the timeline's milliseconds are converted.
"""

from __future__ import annotations

import statistics
import threading
from collections import deque
from collections.abc import Mapping
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST as CONTENT_TYPE
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = [
    "CONTENT_TYPE",
    "METRICS",
    "Metrics",
    "call_held",
    "call_rejected",
    "observe",
    "ws_closed",
]

VOICE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 5.0)
"""Caller stops -> first reply audio: 100 ms to 3 s is where calls live, 5 s is broken."""
STAGE_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0)
"""One stage of a turn (STT, first audio, the end-of-turn wait, a memory load)."""
CLOSE_NORMAL = 1000
RECENT = 500
"""Turns kept per stage for the dashboard's p50/p95 (exact, unlike a histogram's buckets)."""

_COUNTED = {
    "barge_in": "barge_ins",
    "clear_sent": "clears",
    "backchannel": "backchannels_ignored",
    "turn_taken_back": "turns_taken_back",
    "stt_dropped": "stt_dropped",
}
"""Timeline events that each add one to a counter (event -> attribute)."""


def _seconds(value: Any) -> float | None:
    """A timeline's milliseconds as seconds; None when the field is missing or not a number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return max(0.0, float(value)) / 1000


def _count_of(histogram: Histogram) -> int:
    """How many observations a histogram holds, as its scrape shows it."""
    return int(
        sum(
            sample.value
            for family in histogram.collect()
            for sample in family.samples
            if sample.name.endswith("_count")
        )
    )


class Metrics:
    """The metric objects, in their own registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.active_calls = Gauge(
            "tourline_active_calls",
            "Calls in progress in this process, by channel (phone, avatar, livekit).",
            ["channel"],
            registry=r,
        )
        self.calls_rejected = Counter(
            "tourline_calls_rejected",
            "Callers turned away: full (still no room after holding, or an avatar socket "
            "closed 1013) or draining (this process is stopping), by channel.",
            ["reason", "channel"],
            registry=r,
        )
        self.calls_held = Counter(
            "tourline_calls_held",
            "Webhooks answered 'all lines busy, please hold' with a redirect, because this "
            "process was full (one per round a caller waits).",
            registry=r,
        )
        self.call_capacity = Gauge(
            "tourline_call_capacity",
            "Calls this process takes before /readyz says full (TOURLINE_MAX_CALLS).",
            registry=r,
        )
        self.loop_lag = Gauge(
            "tourline_event_loop_lag_seconds",
            "Worst lateness of the event loop's 20 ms tick in the latest second: the delay "
            "every call's audio shares.",
            registry=r,
        )
        self.memory_backlog = Gauge(
            "tourline_memory_backlog",
            "Memory jobs (consolidation, indexing) queued or running in this process: a "
            "backlog that keeps growing means memories are written faster than indexed.",
            registry=r,
        )
        self.voice_to_voice = Histogram(
            "tourline_voice_to_voice_seconds",
            "Server side, from the caller's end of speech to the reply's first audio frame out.",
            buckets=VOICE_BUCKETS,
            registry=r,
        )
        self.stt = Histogram(
            "tourline_stt_seconds",
            "Transcribing a caller turn (queue wait included), as the timeline's stt_done.",
            buckets=STAGE_BUCKETS,
            registry=r,
        )
        self.tts_first_audio = Histogram(
            "tourline_tts_first_audio_seconds",
            "From the reply's plan to its first rendered audio (cache hits included).",
            buckets=STAGE_BUCKETS,
            registry=r,
        )
        self.end_of_turn_wait = Histogram(
            "tourline_end_of_turn_wait_seconds",
            "Silence waited before deciding the caller's turn was over.",
            buckets=STAGE_BUCKETS,
            registry=r,
        )
        self.planner = Histogram(
            "tourline_planner_seconds",
            "Planning a reply to a caller turn (the planner's whole answer).",
            buckets=STAGE_BUCKETS,
            registry=r,
        )
        self.context_load = Histogram(
            "tourline_memory_context_load_seconds",
            "Loading what memory holds about the caller, at the start of a call.",
            buckets=STAGE_BUCKETS,
            registry=r,
        )
        self.barge_ins = Counter(
            "tourline_barge_ins", "Callers who interrupted the agent.", registry=r
        )
        self.replies_cut = Counter(
            "tourline_replies_cut",
            "Agent replies the caller did not hear to the end (barge-in, hang-up, take-back).",
            registry=r,
        )
        self.clears = Counter(
            "tourline_clears", "Clear messages sent (queued agent audio dropped).", registry=r
        )
        self.backchannels_ignored = Counter(
            "tourline_backchannels_ignored",
            "Speech over the agent judged a backchannel ('uh-huh'): the agent went on.",
            registry=r,
        )
        self.turns_taken_back = Counter(
            "tourline_turns_taken_back",
            "Turns ended too early: the caller went on and the reply was taken back.",
            registry=r,
        )
        self.stt_dropped = Counter(
            "tourline_stt_dropped",
            "Transcriptions made stale while decoding (the caller went on): wasted STT time.",
            registry=r,
        )
        self.ws_error_closes = Counter(
            "tourline_ws_error_closes",
            "WebSockets the server closed because something was wrong, by close code.",
            ["socket", "code"],
            registry=r,
        )
        self._recent: dict[int, deque[float]] = {}  # id(histogram) -> its latest seconds
        self._recent_lock = threading.Lock()

    def observe(self, name: str, fields: Mapping[str, Any]) -> None:
        """Account for one timeline event; events without a metric are ignored."""
        if name in _COUNTED:
            counter: Counter = getattr(self, _COUNTED[name])
            counter.inc()
        elif name == "first_frame_out":
            if fields.get("trigger") == "turn":
                self._time(self.voice_to_voice, fields.get("ms_since_speech_end"))
        elif name == "planner_done":
            if fields.get("trigger") == "turn":
                self._time(self.planner, fields.get("ms"))
        elif name == "stt_done":
            self._time(self.stt, fields.get("ms"))
        elif name == "tts_first_audio":
            self._time(self.tts_first_audio, fields.get("ms"))
        elif name == "turn_end":
            self._time(self.end_of_turn_wait, fields.get("silence_ms"))
        elif name == "context_loaded":
            self._time(self.context_load, fields.get("ms"))
        elif name == "agent_said":
            if fields.get("interrupted"):
                self.replies_cut.inc()
        elif name == "bad_message":
            code = fields.get("close_code")  # the media socket's refusals (None: ignored)
            if isinstance(code, int):
                self.ws_closed("media", code)

    def ws_closed(self, socket: str, code: int) -> None:
        """The server closed a WebSocket with ``code``; a normal close (1000) is no error."""
        if code != CLOSE_NORMAL:
            self.ws_error_closes.labels(socket=socket, code=str(code)).inc()

    def rejected(self, reason: str, channel: str = "phone") -> None:
        """A caller turned away for ``reason`` (``full`` or ``draining``)."""
        self.calls_rejected.labels(reason=reason, channel=channel).inc()

    def set_load(
        self,
        *,
        active_calls: Mapping[str, int],
        capacity: int,
        loop_lag_ms: float,
        memory_backlog: int = 0,
    ) -> None:
        """The figures read at scrape time rather than from events (calls by channel)."""
        for channel, count in active_calls.items():
            self.active_calls.labels(channel=channel).set(count)
        self.call_capacity.set(capacity)
        self.loop_lag.set(loop_lag_ms / 1000)
        self.memory_backlog.set(memory_backlog)

    def render(self) -> bytes:
        """The Prometheus text exposition of everything in this registry."""
        return generate_latest(self.registry)

    def value(self, sample: str, **labels: str) -> float:
        """One sample as a scrape reads it (0 when it has none yet)."""
        found = self.registry.get_sample_value(sample, labels)
        return found if found is not None else 0.0

    def total(self, sample: str) -> float:
        """A sample summed over all its labels (e.g. rejected calls of every reason)."""
        return sum(
            s.value
            for family in self.registry.collect()
            for s in family.samples
            if s.name == sample
        )

    def recent(self, histogram: Histogram) -> dict[str, float | int | None]:
        """p50/p95 in ms over the latest ``RECENT`` observations of one histogram, and the
        count since start: what the dashboard shows beside the histogram itself."""
        with self._recent_lock:
            values = sorted(self._recent.get(id(histogram), ()))
        count = _count_of(histogram)
        if not values:
            return {"p50_ms": None, "p95_ms": None, "n": 0, "count": count}
        cuts = statistics.quantiles(values, n=20, method="inclusive") if len(values) > 1 else []
        p95 = cuts[18] if cuts else values[0]
        return {
            "p50_ms": round(statistics.median(values) * 1000, 1),
            "p95_ms": round(p95 * 1000, 1),
            "n": len(values),
            "count": count,
        }

    def _time(self, histogram: Histogram, ms: Any) -> None:
        seconds = _seconds(ms)
        if seconds is not None:
            histogram.observe(seconds)
            with self._recent_lock:
                window = self._recent.setdefault(id(histogram), deque(maxlen=RECENT))
                window.append(seconds)


METRICS = Metrics()
"""This process's metrics: what the flight recorder feeds and ``/metrics`` renders."""


def observe(name: str, fields: Mapping[str, Any]) -> None:
    """The flight recorder's observer: every timeline event of every call comes here."""
    METRICS.observe(name, fields)


def call_rejected(reason: str, channel: str = "phone") -> None:
    """A channel turned a caller away (see :meth:`Metrics.rejected`)."""
    METRICS.rejected(reason, channel)


def call_held() -> None:
    """The webhook asked a caller to hold (this process is full) and to try again."""
    METRICS.calls_held.inc()


def ws_closed(socket: str, code: int) -> None:
    """For a channel that closes a socket outside the timeline (see :meth:`Metrics.ws_closed`)."""
    METRICS.ws_closed(socket, code)
