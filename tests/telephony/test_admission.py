"""Admission past capacity, without a server: who gets a slot, what a caller on hold hears,
and the waterfall the dashboard draws from a call's timeline.

The real server's side (a burst of webhooks, hold, redirect, let in) is in
``test_metrics_call.py``, which shares its one server.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.channels.admission import Admissions
from app.channels.twilio.twilio_http import full_twiml, hold_twiml
from app.domain.catalog import Catalog
from app.logging.metrics import Metrics
from app.logging.waterfall import waterfall
from app.runtime import Runtime
from app.settings import Settings
from app.web import metrics_route
from app.web.loop_lag import LoopLag


class Calls:
    """Live calls and a clock the test moves by hand."""

    def __init__(self) -> None:
        self.live: list[tuple[str, str]] = []
        self.now = 100.0

    def admissions(self, ttl_s: float = 15.0) -> Admissions:
        return Admissions(lambda: list(self.live), ttl_s=ttl_s, clock=lambda: self.now)


def test_a_burst_at_capacity_minus_one_admits_one() -> None:
    calls = Calls()
    calls.live = [("CAlive", "phone")]
    admissions = calls.admissions()
    answers = [admissions.try_admit(f"CA{i}", capacity=2) for i in range(10)]
    assert answers.count(True) == 1 and answers[0]
    assert admissions.occupied() == 2


def test_the_same_call_asking_again_is_still_let_in() -> None:
    admissions = Calls().admissions()
    assert admissions.try_admit("CA1", capacity=1)
    assert admissions.try_admit("CA1", capacity=1)  # Twilio retried the webhook
    assert not admissions.try_admit("CA2", capacity=1)


def test_a_slot_frees_when_its_call_ends_or_its_stream_never_comes() -> None:
    calls = Calls()
    admissions = calls.admissions(ttl_s=15.0)
    assert admissions.try_admit("CA1", capacity=1)
    calls.live = [("CA1", "phone")]  # the stream started
    assert admissions.occupied() == 1 and admissions.pending() == 0
    calls.live = []  # ...and the call ended
    assert admissions.try_admit("CA2", capacity=1)
    calls.now += 16  # CA2's stream never came
    assert admissions.occupied() == 0
    assert admissions.try_admit("CA3", capacity=1)


def test_calls_are_counted_by_channel() -> None:
    calls = Calls()
    calls.live = [("CA1", "phone"), ("AV1", "avatar"), ("CA2", "phone")]
    assert calls.admissions().by_channel() == {"phone": 2, "avatar": 1, "livekit": 0}


def test_hold_redirects_to_the_webhook_and_the_last_try_says_goodbye() -> None:
    first = ET.fromstring(hold_twiml("https://x.example/twilio/voice?attempt=2", attempt=1))
    assert [verb.tag for verb in first] == ["Say", "Pause", "Redirect"]
    assert "busy" in (first.findtext("Say") or "")
    redirect = first.find("Redirect")
    assert redirect is not None and redirect.get("method") == "POST"
    assert redirect.text == "https://x.example/twilio/voice?attempt=2"
    later = ET.fromstring(hold_twiml("https://x.example/twilio/voice?attempt=3", attempt=2))
    assert "busy" not in (later.findtext("Say") or "")  # the reason is said once
    goodbye = ET.fromstring(full_twiml())
    assert [verb.tag for verb in goodbye] == ["Say", "Hangup"]


def test_dashboard_percentiles_cover_the_latest_turns() -> None:
    metrics = Metrics()
    for ms in range(100, 1100, 10):  # 100 turns: 100 ms ... 1090 ms
        metrics.observe("first_frame_out", {"ms_since_speech_end": ms, "trigger": "turn"})
    metrics.observe("first_frame_out", {"ms_since_speech_end": None, "trigger": "greeting"})
    recent = metrics.recent(metrics.voice_to_voice)
    assert recent["count"] == 100 and recent["n"] == 100
    assert recent["p50_ms"] == 595.0
    assert recent["p95_ms"] is not None and 1030 <= recent["p95_ms"] <= 1050
    assert Metrics().recent(Metrics().stt)["p50_ms"] is None


def _event(t_ms: float, name: str, **fields: Any) -> dict[str, Any]:
    return {"t_ms": t_ms, "event": name, **fields}


TIMELINE = [
    _event(0, "start"),
    _event(20, "first_frame_out", ms_since_speech_end=None, trigger="greeting"),
    # Turn 1: transcribed during the end-of-turn wait, answered.
    _event(5000, "speech_end", voiced_ms=900),
    _event(5450, "stt_done", ms=400, text="a tour please"),
    _event(5600, "turn_end", silence_ms=600, quick=False),
    _event(5601, "caller_said", text="a tour please"),
    _event(5605, "planner_done", ms=4, trigger="turn"),
    _event(5700, "tts_first_audio", ms=95, cached=False),
    _event(5710, "first_frame_out", ms_since_speech_end=710, trigger="turn"),
    # Turn 2: transcribed after the wait, then taken back (the caller went on).
    _event(9000, "turn_end", silence_ms=500, quick=True),
    _event(9200, "stt_done", ms=300, text="saturday"),
    _event(9201, "caller_said", text="saturday"),
    _event(9203, "planner_done", ms=2, trigger="turn"),
    _event(9300, "turn_taken_back", pause_ms=300),
    # Turn 3: no words.
    _event(12000, "turn_end", silence_ms=700, quick=False),
    _event(12100, "stt_done", ms=90, text=""),
    _event(12101, "turn_ignored", reason="no words"),
]


def test_waterfall_places_each_stage_of_each_turn_from_the_speech_end() -> None:
    turns = waterfall(TIMELINE)
    assert [t["outcome"] for t in turns] == ["answered", "taken back", "no words"]
    first = turns[0]
    assert first["text"] == "a tour please" and first["voice_to_voice_ms"] == 710
    stages = {s["stage"]: (s["start_ms"], s["ms"]) for s in first["stages"]}
    assert list(stages) == ["end_of_turn_wait", "stt", "planner", "tts", "send"]
    assert stages["end_of_turn_wait"] == (0.0, 600.0)  # speech ended at 5000
    assert stages["stt"] == (50.0, 400.0)  # started at the pause, during the wait
    assert stages["planner"] == (601.0, 4.0)
    assert stages["tts"] == (605.0, 95.0)
    assert stages["send"] == (700.0, 10.0)
    second = {s["stage"]: s for s in turns[1]["stages"]}
    assert second["stt"]["start_ms"] == 400.0  # after its wait: 8500 + 400 = 8900
    assert "send" not in second


def test_waterfall_of_a_call_with_no_turns_is_empty() -> None:
    assert waterfall(TIMELINE[:2]) == []
    assert waterfall([{"event": "turn_end"}, {"t_ms": "x", "event": "turn_end"}]) == []


def test_the_dashboard_routes_shape_a_call_s_timeline_without_models(tmp_path: Path) -> None:
    """``/metrics/summary`` lists the call; ``/calls/{sid}/waterfall`` draws its turns."""
    settings = Settings(data_dir=tmp_path, api_key=None, max_calls=3)
    app = FastAPI()
    app.include_router(metrics_route.router(LoopLag()))
    catalog = Catalog.load(settings.prompts_dir / "properties.yaml")
    app.state.runtime = Runtime(settings, catalog, None, ready=True)
    (tmp_path / "calls").mkdir()
    lines = "".join(json.dumps(event) + "\n" for event in TIMELINE)
    (tmp_path / "calls" / "CAshaped.jsonl").write_text(lines, encoding="utf-8")
    client = TestClient(app)

    summary = client.get("/metrics/summary").json()
    assert summary["calls"]["capacity"] == 3 and not summary["calls"]["full"]
    assert [c["call_id"] for c in summary["recent_calls"]] == ["CAshaped"]
    assert set(summary["stages"]) >= {"end_of_turn_wait", "stt", "planner", "tts_first_audio"}
    turns = client.get("/calls/CAshaped/waterfall").json()["turns"]
    assert [t["outcome"] for t in turns] == ["answered", "taken back", "no words"]
    assert client.get("/calls/CAnothing/waterfall").status_code == 404
