"""Barge-in as the caller hears it: how much of their own talking it takes to stop the agent,
counted in call audio (the virtual clock), and which sounds over the agent never stop it.

Real-time figures on noisy lines, with ten calls sharing the cores, are bench work; here the
recognizer answers at once, so what is left is the loop's own rule.
"""

from __future__ import annotations

import asyncio
import threading

import pytest

from app.voice.compute_pool import BARGE, NORMAL, URGENT, ComputePool
from tests.voice.virtual import VirtualCall


async def test_talking_over_the_agent_stops_it_within_300_ms_of_audio(
    call: VirtualCall,
) -> None:
    await call.caller.wait(1.0)
    started = call.at()
    await call.caller.say("Wait, can I do Saturday instead?", 1.8)
    await call.caller.wait(2.0)

    (clear,) = call.phone.kinds("clear")
    assert clear.at - started <= 0.3
    assert len(call.phone.replies()) == 2  # the greeting was cut, and the caller answered


async def test_an_interruption_sure_from_its_onset_stops_the_agent_within_200_ms(
    call: VirtualCall,
) -> None:
    """ "Wait, ...": the early judgement at 160 ms of talking is sure, so the agent stops
    without waiting for the recognizer's look at 250 ms."""
    await call.caller.wait(1.0)
    started = call.at()
    await call.caller.say("Wait, can I do Saturday instead?", 1.8)
    await call.caller.wait(2.0)

    (clear,) = call.phone.kinds("clear")
    assert clear.at - started <= 0.2


async def test_an_opening_the_early_judgement_is_unsure_of_waits_for_the_words(
    call: VirtualCall,
) -> None:
    """ "Can I ...": not sure at 160 ms, so the agent goes on until the look at 250 ms."""
    await call.caller.wait(1.0)
    started = call.at()
    await call.caller.say("Can I do Saturday instead?", 1.8)
    await call.caller.wait(2.0)

    (clear,) = call.phone.kinds("clear")
    assert 0.2 < clear.at - started <= 0.3


@pytest.mark.parametrize(
    "sound",
    ["uh-huh", "okay", "mm-hmm", "Yeah.", "Thank you.", "M8."],  # the last two: Whisper on a hum
)
async def test_a_backchannel_over_the_agent_does_not_stop_it(call: VirtualCall, sound: str) -> None:
    await call.caller.wait(1.0)
    await call.caller.say(sound, 0.45)
    await call.after_greeting()

    assert not call.phone.kinds("clear")
    (greeting,) = call.memory.exchanges
    assert not greeting.interrupted
    assert call.memory.said("user") == []


async def test_a_cough_too_short_to_be_speech_does_not_stop_it(call: VirtualCall) -> None:
    await call.caller.wait(1.0)
    await call.caller.say("", 0.2)  # voiced, but no words in it
    await call.after_greeting()

    assert not call.phone.kinds("clear")
    assert call.memory.said("user") == []


async def test_an_interruption_that_starts_like_a_backchannel_is_heard_again_sooner(
    call: VirtualCall,
) -> None:
    """ "Okay, but ...": the first look hears "Okay" and lets the agent go on; a second look
    on twice the audio hears the rest, well before the long-overlap rule would cut in."""
    await call.caller.wait(1.0)
    started = call.at()
    await call.caller.say("Okay", 0.3)
    await call.caller.say("but I need a tour of Riverview Lofts on Friday.", 2.0)
    await call.caller.wait(1.5)

    (clear,) = call.phone.kinds("clear")
    assert 0.3 < clear.at - started <= 0.6


async def test_a_long_backchannel_is_still_a_turn_at_the_long_overlap_limit(
    call: VirtualCall,
) -> None:
    await call.caller.wait(1.0)
    started = call.at()
    await call.caller.say("okay okay", 1.5)  # words of a backchannel, but it goes on
    await call.caller.wait(1.0)

    (clear,) = call.phone.kinds("clear")
    assert 0.6 < clear.at - started <= 1.0


class Gate:
    """A job that holds its worker thread until released, so the queue order is visible."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()

    def __call__(self) -> str:
        self.started.set()
        assert self.release.wait(10), "test gate never released"
        return "gate"


async def test_the_barge_in_check_runs_while_every_worker_is_busy() -> None:
    """Other calls' transcriptions and renders fill the workers; the barge-in check does not
    queue behind them (nor behind URGENT work waiting for a worker)."""
    pool = ComputePool(workers=2)
    gates = [Gate(), Gate()]
    order: list[str] = []
    try:
        busy = [
            asyncio.ensure_future(pool.run(f"call-{i}", gate, priority=URGENT))
            for i, gate in enumerate(gates)
        ]
        for gate in gates:
            assert await asyncio.to_thread(gate.started.wait, 10)
        waiting = [
            asyncio.ensure_future(pool.run("call-2", order.append, "urgent", priority=URGENT)),
            asyncio.ensure_future(pool.run("call-3", order.append, "normal", priority=NORMAL)),
        ]
        await pool.run("call-4", order.append, "barge", priority=BARGE)
        assert order == ["barge"]
        for gate in gates:
            gate.release.set()
        await asyncio.gather(*busy, *waiting)
        assert order == ["barge", "urgent", "normal"]
    finally:
        for gate in gates:
            gate.release.set()
        pool.shutdown()
