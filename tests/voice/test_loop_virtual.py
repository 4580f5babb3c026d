"""The live loop as a caller hears it, faster than real time (fakes and a virtual clock).

Each test is a phone call of several (virtual) seconds that runs in milliseconds: the loop,
turn-taking and the rule planner are real; the models and the clock are fakes
(``tests/voice/virtual.py``). Real-model, real-time calls stay in tests/telephony.
"""

from __future__ import annotations

from tests.voice.virtual import VirtualCall

Call = VirtualCall


async def test_a_finished_sentence_is_answered_once_after_the_hold(call: Call) -> None:
    await call.after_greeting()
    await call.caller.say("Hi, this is Dana Lee.")
    spoke_until = call.at()
    await call.caller.wait(2.0)

    _greeting, reply = call.phone.replies()
    assert "Dana" in reply
    first_sound = next(s.at for s in call.phone.kinds("audio") if s.at > spoke_until)
    # A finished answer: the agent waits out the quick hold (300 ms of quiet), then answers.
    assert 0.3 <= first_sound - spoke_until < 0.4
    assert call.memory.said("user") == ["Hi, this is Dana Lee."]


async def test_a_pause_after_thanks_is_not_the_end_of_the_turn(call: Call) -> None:
    await call.after_greeting()
    await call.caller.say("Thanks,", 0.4)
    await call.caller.wait(0.3)
    await call.caller.say("and is there parking at Hudson 360?")
    await call.caller.wait(2.0)

    assert len(call.phone.replies()) == 2  # the greeting, and one answer to both parts
    assert "garage" in call.phone.replies()[1]  # the parking question is answered
    assert call.memory.said("user") == ["Thanks, and is there parking at Hudson 360?"]
    assert not call.phone.kinds("clear")


async def test_going_on_after_the_reply_began_takes_it_back_unheard(call: Call) -> None:
    await call.after_greeting()
    await call.caller.say("Good morning.", 0.5)
    await call.caller.wait(0.5)  # past the hold: the reply has started playing
    assert call.loop._speaking
    await call.caller.say("I'd like to see Hudson 360 tomorrow at 2 PM.")
    await call.caller.wait(2.0)

    assert len(call.phone.kinds("clear")) == 1
    replies = call.phone.replies()
    assert "Hudson 360" in replies[-1]
    words = "Good morning. I'd like to see Hudson 360 tomorrow at 2 PM."
    assert call.memory.said("user") == [words]  # one turn, kept once


async def test_talking_over_the_agent_cuts_it_and_memory_keeps_what_was_heard(
    call: Call,
) -> None:
    await call.caller.wait(2.2)  # the greeting's first sentence has played
    started = call.at()
    await call.caller.say("Sorry, I need a tour of Riverview Lofts tomorrow morning.")
    await call.caller.wait(2.0)

    (clear,) = call.phone.kinds("clear")
    assert clear.at - started < 0.35  # barge-in: 250 ms of talk, then the clear
    greeting = call.memory.exchanges[0]
    assert greeting.role == "agent" and greeting.interrupted
    assert greeting.heard and greeting.heard != greeting.text
    assert greeting.text.startswith(greeting.heard)
    assert "Riverview Lofts" in call.phone.replies()[-1]


async def test_talking_over_the_first_sentence_leaves_nothing_heard(call: Call) -> None:
    await call.caller.wait(0.5)  # no mark has come back yet: nothing has been heard
    await call.caller.say("My name is Dana Lee.")
    await call.caller.wait(2.0)

    assert len(call.phone.kinds("clear")) == 1
    greeting = call.memory.exchanges[0]
    assert greeting.role == "agent" and greeting.interrupted
    assert not greeting.heard  # the greeting's question was never heard, so not answered
    assert "Dana" in call.phone.replies()[-1]


async def test_an_uh_huh_over_the_agent_does_not_interrupt(call: Call) -> None:
    await call.caller.wait(1.0)
    await call.caller.say("uh-huh", 0.4)
    await call.after_greeting()

    assert not call.phone.kinds("clear")
    (greeting,) = call.memory.exchanges
    assert not greeting.interrupted
    assert call.memory.said("user") == []


async def test_a_phone_number_typed_on_the_keypad_is_one_entry(call: Call) -> None:
    await call.after_greeting()
    await call.caller.press("6465550142")
    await call.caller.wait(2.0)  # the entry ends 1.5 s after the last key

    assert call.memory.said("user") == ["[6465550142]"]
    assert len(call.phone.replies()) == 2


async def test_a_key_over_the_agent_interrupts_and_0_repeats(call: Call) -> None:
    await call.caller.wait(1.0)
    await call.caller.press("0")
    await call.caller.wait(2.0)  # a lone key is an entry 1.5 s later
    await call.after_greeting()

    assert len(call.phone.kinds("clear")) == 1
    assert call.memory.said("user") == ["[0]"]
    assert "name" in call.phone.replies()[-1].lower()  # the question again


async def test_silence_gets_one_check_in_then_a_goodbye(call: Call) -> None:
    await call.after_greeting()
    await call.caller.wait(8.5)  # TOURLINE_NO_INPUT_TIMEOUT_S is 8
    assert "still there" in call.phone.replies()[-1]
    await call.caller.wait(30.0)

    assert call.loop.finished.is_set()
    assert call.phone.replies()[-1].endswith("Goodbye!")
    assert call.phone.kinds("conversation_ended")


async def test_the_goodbye_is_heard_to_the_end_before_the_call_ends(call: Call) -> None:
    await call.after_greeting()
    await call.caller.say("No thanks, that's all. Bye!")
    await call.caller.wait(0.7)
    assert not call.loop.finished.is_set()  # the goodbye is still playing
    await call.caller.wait(5.0)

    assert call.loop.finished.is_set() and call.loop.planner and call.loop.planner.ended
    goodbye_sent = call.phone.kinds("agent_done")[-1].at
    goodbye_seconds = sum(
        s.fields["seconds"] for s in call.phone.kinds("audio") if s.at >= goodbye_sent - 0.01
    )
    (ended,) = call.phone.kinds("conversation_ended")
    assert ended.at >= goodbye_sent + goodbye_seconds - 0.05  # after the last word played


async def test_hanging_up_mid_reply_keeps_only_what_was_played(call: Call) -> None:
    await call.caller.wait(2.2)  # all of the greeting is sent; about a sentence has played
    await call.loop.hang_up("caller hung up")

    (greeting,) = call.memory.exchanges
    assert greeting.interrupted
    assert greeting.heard and greeting.text.startswith(greeting.heard)
    assert greeting.heard != greeting.text
