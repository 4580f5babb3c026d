"""How long the agent waits after the caller goes quiet before its reply's first sound.

A caller who gave a finished answer waits for the agent: the quick hold (300 ms). A caller
seen to go on after a pause gets a hold grown to their pause for the rest of the call, even
after answers that read as finished: they are the kind who pause mid-thought.
"""

from __future__ import annotations

from tests.voice.virtual import VirtualCall as Call


async def first_sound_after_saying(call: Call, words: str) -> float:
    await call.caller.say(words)
    spoke_until = call.at()
    await call.caller.wait(2.0)
    return next(s.at for s in call.phone.kinds("audio") if s.at > spoke_until) - spoke_until


async def test_a_finished_answer_gets_the_quick_hold(call: Call) -> None:
    await call.after_greeting()
    assert 0.3 <= await first_sound_after_saying(call, "Hi, this is Dana Lee.") < 0.4


async def test_after_going_on_past_a_pause_the_hold_stays_long(call: Call) -> None:
    await call.after_greeting()
    await call.caller.say("Good morning.", 0.5)
    await call.caller.wait(0.5)  # the reply has begun...
    await call.caller.say("I'd like to see Hudson 360 tomorrow at 2 PM.")  # ...and they go on
    await call.caller.wait(2.0)
    assert len(call.phone.kinds("clear")) == 1

    assert await first_sound_after_saying(call, "My name is Dana Lee.") >= 0.6
