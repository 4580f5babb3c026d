"""What ``/metrics`` counts, from the timeline events a call records (no server here).

The realtime loop has no metrics code: every event it records goes through the flight
recorder to ``app.logging.metrics``. These tests feed events in and read the values a
Prometheus scrape would see.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from app.domain.catalog import Catalog
from app.logging.flight_recorder import FlightRecorder
from app.logging.metrics import METRICS, Metrics
from app.runtime import Runtime
from app.settings import Settings
from app.web import metrics_route
from app.web.loop_lag import LoopLag


def value(metrics: Metrics, sample: str, **labels: str) -> float:
    """One sample's value as a scraper reads it (0 when absent)."""
    found = metrics.registry.get_sample_value(sample, labels)
    return found if found is not None else 0.0


def test_a_turn_s_timings_land_in_their_histograms_in_seconds() -> None:
    metrics = Metrics()
    metrics.observe("turn_end", {"silence_ms": 600.0, "quick": False, "voiced_ms": 900})
    metrics.observe("stt_done", {"ms": 180.5, "text": "a tour please", "audio_ms": 1200})
    metrics.observe("planner_done", {"ms": 3.0, "trigger": "turn"})
    metrics.observe("tts_first_audio", {"ms": 95.0, "cached": False})
    metrics.observe("first_frame_out", {"ms_since_speech_end": 820.0, "trigger": "turn"})

    assert value(metrics, "tourline_end_of_turn_wait_seconds_sum") == 0.6
    assert value(metrics, "tourline_stt_seconds_count") == 1
    assert value(metrics, "tourline_stt_seconds_sum") == 0.1805
    assert value(metrics, "tourline_tts_first_audio_seconds_sum") == 0.095
    assert value(metrics, "tourline_voice_to_voice_seconds_count") == 1
    assert value(metrics, "tourline_voice_to_voice_seconds_bucket", le="0.8") == 0
    assert value(metrics, "tourline_voice_to_voice_seconds_bucket", le="1.0") == 1


def test_only_replies_to_a_caller_s_turn_count_as_voice_to_voice() -> None:
    """The greeting and a keypad answer have no end of speech to measure from."""
    metrics = Metrics()
    metrics.observe("first_frame_out", {"ms_since_speech_end": None, "trigger": "greeting"})
    metrics.observe("first_frame_out", {"ms_since_speech_end": 300.0, "trigger": "dtmf"})
    metrics.observe("first_frame_out", {"ms_since_speech_end": None, "trigger": "turn"})
    assert value(metrics, "tourline_voice_to_voice_seconds_count") == 0


def test_interruptions_and_wasted_work_are_counted() -> None:
    metrics = Metrics()
    for name, fields in [
        ("barge_in", {"caller_so_far": "wait", "stt_ms": 120.0}),
        ("clear_sent", {}),
        ("agent_said", {"text": "The tour is", "interrupted": True, "unheard": "at ten"}),
        ("agent_said", {"text": "Hello!", "interrupted": False, "unheard": ""}),
        ("backchannel", {"text": "uh-huh", "stt_ms": 90.0}),
        ("backchannel", {"text": "mm", "stt_ms": 80.0}),
        ("turn_taken_back", {"pause_ms": 700, "hold_ms": 400}),
        ("stt_dropped", {}),
        ("caller_said", {"text": "wait"}),  # no metric: ignored
    ]:
        metrics.observe(name, fields)
    assert value(metrics, "tourline_barge_ins_total") == 1
    assert value(metrics, "tourline_clears_total") == 1
    assert value(metrics, "tourline_replies_cut_total") == 1
    assert value(metrics, "tourline_backchannels_ignored_total") == 2
    assert value(metrics, "tourline_turns_taken_back_total") == 1
    assert value(metrics, "tourline_stt_dropped_total") == 1


def test_memory_load_time_and_error_closes_by_code() -> None:
    metrics = Metrics()
    metrics.observe("context_loaded", {"ms": 42.0, "returning": True})
    metrics.observe("bad_message", {"reason": "not JSON", "close_code": None})  # ignored
    metrics.observe("bad_message", {"reason": "flood", "close_code": 1008})
    metrics.ws_closed("avatar", 1011)
    metrics.ws_closed("avatar", 1000)  # a normal goodbye is no error

    assert value(metrics, "tourline_memory_context_load_seconds_sum") == 0.042
    assert value(metrics, "tourline_ws_error_closes_total", socket="media", code="1008") == 1
    assert value(metrics, "tourline_ws_error_closes_total", socket="avatar", code="1011") == 1
    assert value(metrics, "tourline_ws_error_closes_total", socket="avatar", code="1000") == 0


def test_odd_fields_are_skipped_not_raised() -> None:
    """A metric must never break the call that records the event."""
    metrics = Metrics()
    metrics.observe("stt_done", {"ms": "slow"})
    metrics.observe("tts_first_audio", {})
    metrics.observe("turn_end", {"silence_ms": True})
    assert value(metrics, "tourline_stt_seconds_count") == 0
    assert value(metrics, "tourline_tts_first_audio_seconds_count") == 0
    assert value(metrics, "tourline_end_of_turn_wait_seconds_count") == 0


def test_the_flight_recorder_feeds_the_process_metrics(tmp_path: Path) -> None:
    before = value(METRICS, "tourline_barge_ins_total")
    stt_before = value(METRICS, "tourline_stt_seconds_count")
    recorder = FlightRecorder(tmp_path, "CAmetrics")
    recorder.event("barge_in", caller_so_far="hold on")
    recorder.event("stt_done", ms=150.0, text="hold on")
    recorder.close()
    recorder.event("barge_in", caller_so_far="after the call")  # dropped, like its line
    assert value(METRICS, "tourline_barge_ins_total") == before + 1
    assert value(METRICS, "tourline_stt_seconds_count") == stt_before + 1


def test_the_exposition_parses_and_carries_load_figures() -> None:
    metrics = Metrics()
    metrics.set_load(
        active_calls={"phone": 3, "avatar": 1}, capacity=10, loop_lag_ms=12.0, memory_backlog=4
    )
    families = {f.name: f for f in text_string_to_metric_families(metrics.render().decode())}
    active = {s.labels["channel"]: s.value for s in families["tourline_active_calls"].samples}
    assert active == {"phone": 3, "avatar": 1}
    assert families["tourline_call_capacity"].samples[0].value == 10
    assert families["tourline_event_loop_lag_seconds"].samples[0].value == 0.012
    assert families["tourline_memory_backlog"].samples[0].value == 4
    assert families["tourline_voice_to_voice_seconds"].type == "histogram"
    assert families["tourline_barge_ins"].type == "counter"
    assert all(f.documentation for f in families.values()), "every metric has a help string"


def test_without_an_api_key_configured_metrics_are_open_like_the_other_admin_routes(
    tmp_path: Path,
) -> None:
    """The route alone, on a runtime with no models (a scrape needs none)."""
    settings = Settings(data_dir=tmp_path, api_key=None, max_calls=7)
    app = FastAPI()
    app.include_router(metrics_route.router(LoopLag()))
    catalog = Catalog.load(settings.prompts_dir / "properties.yaml")
    app.state.runtime = Runtime(settings, catalog, None, ready=True)
    response = TestClient(app).get("/metrics")
    assert response.status_code == 200
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    assert families["tourline_call_capacity"].samples[0].value == 7
    active = {s.labels["channel"]: s.value for s in families["tourline_active_calls"].samples}
    assert active == {"phone": 0, "avatar": 0, "livekit": 0}
    assert families["tourline_memory_backlog"].samples[0].value == 0  # no memory: no backlog
