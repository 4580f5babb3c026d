"""Barge-in over the phone: talking over the agent stops it; a cough or "uh-huh" does not.

The greeting for a new caller is several sentences (each followed by a mark), long enough to
interrupt. The harness echoes marks only when playback reaches them and, on ``clear``,
echoes the pending ones at once as Twilio does: so the server must use the marks echoed
*before* its clear to know what the caller actually heard.
"""

from __future__ import annotations

import asyncio
from typing import Any

from app.audio.wer import normalize_words
from sim.server import RunningServer
from sim.twilio import (
    TEST_PUBLIC_URL,
    TEST_TOKEN,
    CallerVoice,
    TwilioCall,
    cough_pcm8k,
    fresh_number,
    preload_models,
    transcribe,
)

TOKEN = TEST_TOKEN
PUBLIC = TEST_PUBLIC_URL
GREETING = (
    "Thanks for calling the leasing office! I can help you book a tour of 21 West End, "
    "Hudson 360 or Riverview Lofts. May I have your name?"
)


def agent_turns(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e["event"] == "agent_said"]


async def test_talking_over_the_agent_interrupts_it(server: RunningServer) -> None:
    """After the first mark: the first sentence was heard, the rest was not. (Barging in
    before any mark is tested on the virtual clock, tests/voice/test_loop_virtual.py.)"""
    marks_before = 1
    await preload_models()
    async with TwilioCall.connect(
        server.base_url, public_url=PUBLIC, auth_token=TOKEN, from_number=fresh_number()
    ) as call:
        sent = await call.say_over_agent(
            "my name is dana lee", after_s=0.6, after_marks=marks_before
        )
        greeting = await call.listen(timeout_s=15)
        assert greeting.cleared, "the server never sent clear while the caller talked over it"
        assert sent.first_voiced_frame_at is not None and sent.last_voiced_frame_at is not None
        assert greeting.clear_at is not None
        reaction = greeting.clear_at - sent.first_voiced_frame_at
        # From ~0.13 s (the early judgement sure of "my name is ...") to the glance's worst.
        assert 0.1 <= reaction <= 1.5, f"clear {reaction:.2f}s after the caller started"
        assert len(greeting.marks_heard) == marks_before

        reply = await call.listen(timeout_s=20)
        assert reply.first_frame_at > sent.last_voiced_frame_at, (
            "after the clear, the agent spoke again before the caller finished"
        )
        heard_reply = (await transcribe(reply)).lower()
        assert "nice to meet you" in heard_reply and "dana" in heard_reply, heard_reply
        heard_greeting = (await transcribe(greeting)).lower()
        assert "your name" not in heard_greeting, heard_greeting

        events = await call.wait_for_timeline(lambda ev: len(agent_turns(ev)) >= 2)
        assert call.violations == [], call.violations

    names = [e["event"] for e in events]
    assert "barge_in" in names and "clear_sent" in names, names
    first = agent_turns(events)[0]
    assert first["interrupted"] is True, first
    text, unheard = first["text"], first["unheard"]
    assert unheard, first
    # What was heard plus what was not is the whole greeting, in order.
    assert normalize_words(text) + normalize_words(" ".join(unheard)) == normalize_words(
        GREETING
    ), first
    # Only the chunks whose marks came back before the clear count as heard.
    assert normalize_words(text)[:3] == ["thanks", "for", "calling"], first
    assert "may i have your name" in " ".join(unheard).lower(), first
    assert agent_turns(events)[1]["interrupted"] is False


async def test_a_cough_and_backchannels_do_not_interrupt(server: RunningServer) -> None:
    """One greeting, talked over three times by sounds that are not a turn: a cough at 1 s,
    "Uh-huh." at 2.5 s and "okay" at 5 s. It plays to the end and nothing is a turn."""
    await preload_models()
    # Their own line noise, rendered up front: the shared voice's noise depends on which
    # tests ran before, and Whisper tiny.en reads a noisy "uh-huh" as "Oh.", "out." or "Wow.".
    # Spelled the way Piper says them recognisably: Piper reads "uh huh" as "I have".
    voice = CallerVoice(seed=2)
    uh_huh = await asyncio.to_thread(voice.render, "Uh-huh.")
    okay = await asyncio.to_thread(voice.render, "okay")
    async with TwilioCall.connect(
        server.base_url, public_url=PUBLIC, auth_token=TOKEN, from_number=fresh_number()
    ) as call:
        await call.wait_for_playback(1.0)
        await call.say_pcm(cough_pcm8k(duration_s=0.15), "cough")
        await call.say_over_agent(uh_huh, after_s=2.5)
        await call.say_over_agent(okay, after_s=5.0)
        greeting = await call.listen(timeout_s=15)
        assert not greeting.cleared and call.clears() == []
        heard = (await transcribe(greeting)).lower()
        assert "your name" in heard, heard
        events = await call.wait_for_timeline(lambda ev: len(agent_turns(ev)) >= 1)
    assert "barge_in" not in [e["event"] for e in events]
    assert agent_turns(events)[0]["interrupted"] is False
    assert "caller_said" not in [e["event"] for e in events], "a backchannel is not a turn"
