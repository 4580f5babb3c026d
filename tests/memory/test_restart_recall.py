"""A caller is remembered across a ``kill -9`` of the server, by voice, in another number format.

The whole phone path, twice: Twilio is played by sim/twilio (caller speech
from Piper at real time, the agent's audio transcribed by Whisper). The caller gives a name
and a building, the server process is killed with SIGKILL while the call is still up, a new
server starts on the same data dir, and the caller phones back with the number written
differently. The greeting they hear must name them and the building.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from app.domain.state import PlannerState
from app.stores.conversations import ConversationStore
from app.stores.database import create_db_engine
from sim.server import running_server
from sim.twilio import TwilioCall, preload_models, transcribe

pytestmark = pytest.mark.slow

PUBLIC = "https://tourline.example"
FIRST_FROM = "+14155550123"
CALL_BACK_FROM = "(415) 555-0123"  # the same caller, written another way


def last_state(data_dir: Path, caller_id: str) -> PlannerState | None:
    """What the durable log holds for the caller (read while no server runs)."""
    engine = create_db_engine(f"sqlite:///{data_dir / 'tourline.db'}")
    try:
        snapshot = ConversationStore(engine).latest_snapshot(caller_id)
    finally:
        engine.dispose()
    return PlannerState.from_json(snapshot.state_json) if snapshot else None


async def test_returning_caller_is_greeted_by_name_after_sigkill(tmp_path: Path) -> None:
    await preload_models()
    data_dir = tmp_path / "data"
    heard: list[str] = []

    with running_server(data_dir) as first:
        async with TwilioCall.connect(
            first.base_url, public_url=PUBLIC, auth_token=None, from_number=FIRST_FROM
        ) as call:
            # A caller who knows what they want talks over the greeting (saves its 8 s).
            await call.say_over_agent(
                "my name is dana lee and i would like to see hudson three sixty", after_s=0.5
            )
            heard.append(await transcribe(await call.listen(timeout_s=20)))  # the cut greeting
            # The agent's answer has been heard: the turn it answers is in the durable log.
            heard.append(await transcribe(await call.listen(timeout_s=30)))
            os.kill(first.process.pid, signal.SIGKILL)  # mid-call, no goodbye, no clean-up
            first.process.wait(timeout=30)
    assert first.process.returncode == -signal.SIGKILL

    state = last_state(data_dir, FIRST_FROM)
    assert state is not None, f"nothing recorded before the kill; the agent said: {heard}"
    assert (state.caller_name, state.property_id) == ("Dana Lee", "hudson-360"), heard

    with running_server(data_dir) as second:
        async with TwilioCall.connect(
            second.base_url, public_url=PUBLIC, auth_token=None, from_number=CALL_BACK_FROM
        ) as call:
            greeting = (await transcribe(await call.listen(timeout_s=20))).lower()
            events = await call.wait_for_timeline(
                lambda evs: any(e["event"] == "agent_said" for e in evs)
            )
    said = next(e["text"] for e in events if e["event"] == "agent_said")
    assert "welcome back" in greeting, greeting
    assert "hudson" in greeting, greeting
    # The name is checked in the words the agent spoke: Whisper tiny, the harness's ears,
    # hears a lone "Dana" after "welcome back" as "gaina" now and then.
    assert "Dana" in said, said
