"""Plays Twilio's side of a phone call against the real server, for tests and benchmarks.

Why a simulator instead of mocks: barge-in, end-of-turn and latency only mean something if
the far end behaves like Twilio's media edge. So this package sends exactly the JSON Twilio
sends, paces caller audio at real time on a drift-free 20 ms clock, fills the gaps with line
noise instead of digital silence, and plays the server's audio back the way Twilio's player
does: outbound ``media`` is buffered and played at real time, a ``mark`` is echoed when
playback reaches it, and a ``clear`` empties the buffer and echoes every mark still pending.

Modules, smallest first (each imports only those before it):

- ``clock``: ``MediaClock``, absolute 20 ms deadlines.
- ``http``: ``post_voice_webhook`` / ``parse_twiml`` / ``upgrade_signature``, the HTTP leg
  of a call (``post_sms``: an inbound text), and ``fetch_timeline`` / ``wait_for_timeline``,
  the server's record of it.
- ``voice``: ``CallerVoice``, text (Piper) or raw 8 kHz PCM -> 20 ms μ-law frames, each
  flagged voiced or not, so latency can start at the last voiced frame rather than at
  trailing silence; the Piper and Whisper shared by every call in a process.
- ``stream``: ``MediaStream``, the WebSocket and Twilio's inbound messages with their
  sequence numbers.
- ``player``: ``Player``, Twilio's outbound playback buffer (media, marks, clear) plus a
  record of everything the server sent and when; ``AgentTurn``, one turn as played.
- ``script``: ``question_kind``, ``CallerScript``, and ``transcribe``, what the caller heard
  through the shared Whisper.
- ``call``: ``TwilioCall``, the facade tests use: ``listen``, ``say``, ``say_over_agent``,
  ``press``, ``hang_up``, ``timeline``.

Every timestamp is ``time.monotonic()`` seconds (the event loop's clock too).
"""

from __future__ import annotations

from sim.twilio.call import CallEnded, NoReply, TwilioCall, Utterance
from sim.twilio.clock import MediaClock
from sim.twilio.http import (
    DEFAULT_FROM,
    DEFAULT_TO,
    TEST_PUBLIC_URL,
    TEST_TOKEN,
    StreamInstruction,
    fetch_timeline,
    fresh_number,
    local_socket_url,
    new_sid,
    parse_twiml,
    post_sms,
    post_voice_webhook,
    twilio_form,
    upgrade_signature,
    wait_for_timeline,
)
from sim.twilio.player import AgentTurn, Outbound, Player
from sim.twilio.script import CallerScript, heard_level_dbfs, question_kind, transcribe
from sim.twilio.stream import MediaStream, ring_and_open
from sim.twilio.voice import (
    CallerVoice,
    Speech,
    cough_pcm8k,
    preload_models,
    shared_stt,
    shared_voice,
)

__all__ = [
    "DEFAULT_FROM",
    "DEFAULT_TO",
    "TEST_PUBLIC_URL",
    "TEST_TOKEN",
    "AgentTurn",
    "CallEnded",
    "CallerScript",
    "CallerVoice",
    "MediaClock",
    "MediaStream",
    "NoReply",
    "Outbound",
    "Player",
    "Speech",
    "StreamInstruction",
    "TwilioCall",
    "Utterance",
    "cough_pcm8k",
    "fetch_timeline",
    "fresh_number",
    "heard_level_dbfs",
    "local_socket_url",
    "new_sid",
    "parse_twiml",
    "post_sms",
    "post_voice_webhook",
    "preload_models",
    "question_kind",
    "ring_and_open",
    "shared_stt",
    "shared_voice",
    "transcribe",
    "twilio_form",
    "upgrade_signature",
    "wait_for_timeline",
]
