"""The avatar protocol translator and transport, without a server: every message kind, every
refusal with the error code and close code the client will see."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from app.channels.avatar import protocol as avatar
from app.channels.avatar.transport import AvatarTransport


def hello(**overrides: Any) -> str:
    message: dict[str, Any] = {"type": "hello", "user": {"device_id": "dev-1"}}
    message.update(overrides)
    return json.dumps(message)


def refused(data: str | bytes) -> avatar.ProtocolError:
    with pytest.raises(avatar.ProtocolError) as caught:
        avatar.parse(data)
    return caught.value


def test_a_minimal_hello_takes_the_defaults() -> None:
    event = avatar.parse(hello())
    assert event == avatar.Hello(user_id="device:dev-1", id_kind="device_id")
    assert event.sample_rate == event.output_rate == 16000
    assert event.playback_marks is True


def test_hello_normalizes_the_user_as_memory_does() -> None:
    email = avatar.parse(hello(user={"email": "  Dana.Lee@Example.COM "}))
    phone = avatar.parse(hello(user={"user_id": "(415) 555-0123"}))
    assert isinstance(email, avatar.Hello) and email.user_id == "dana.lee@example.com"
    assert isinstance(phone, avatar.Hello) and phone.user_id == "+14155550123"


def test_hello_with_every_field() -> None:
    event = avatar.parse(
        hello(
            audio={"format": "pcm16", "sample_rate": 48000, "channels": 1},
            output_audio={"sample_rate": 24000},
            playback_marks=False,
            token="t.o.k",
            client="app/1",
        )
    )
    assert isinstance(event, avatar.Hello)
    assert (event.sample_rate, event.output_rate) == (48000, 24000)
    assert (event.playback_marks, event.token, event.client) == (False, "t.o.k", "app/1")


@pytest.mark.parametrize(
    ("user", "why"),
    [
        (None, "'user' must be an object"),
        ({}, "exactly one of"),
        ({"device_id": "a", "email": "a@b.c"}, "exactly one of"),
        ({"email": "not-an-email"}, "is not an email address"),
        ({"device_id": 42}, "must be a string"),
        ({"device_id": "   "}, "empty"),
        ({"device_id": "x" * 129}, "1-128 letters"),
        ({"device_id": "+1 415 555 0123"}, "1-128 letters"),
        ({"email": "device:x@y.z"}, "send user.device_id"),
    ],
)
def test_a_hello_without_a_usable_user_closes_1007(user: Any, why: str) -> None:
    err = refused(hello(user=user))
    assert (err.code, err.close_code) == ("bad_hello", avatar.CLOSE_INVALID)
    assert why in err.reason


@pytest.mark.parametrize(
    "audio",
    [
        {"format": "opus"},
        {"channels": 2},
        {"sample_rate": 11025},
        {"sample_rate": "16000"},
        {"sample_rate": True},
    ],
)
def test_unsupported_audio_closes_1003(audio: dict[str, Any]) -> None:
    err = refused(hello(audio=audio))
    assert (err.code, err.close_code) == ("unsupported_audio", avatar.CLOSE_UNSUPPORTED)


def test_bad_hello_field_types() -> None:
    for field, value in (("playback_marks", "yes"), ("token", 5), ("audio", [1])):
        err = refused(hello(**{field: value}))
        assert err.close_code == avatar.CLOSE_INVALID, field


def test_session_messages() -> None:
    assert avatar.parse('{"type":"text","text":"  hi there "}') == avatar.Text("hi there")
    assert avatar.parse('{"type":"played","mark":"r1.0"}') == avatar.Played("r1.0")
    assert avatar.parse('{"type":"ping"}') == avatar.Ping()
    assert avatar.parse('{"type":"pong"}') == avatar.Pong()
    assert avatar.parse('{"type":"bye"}') == avatar.Bye()
    assert avatar.parse(b"\x01\x00\x02\x00") == avatar.Audio(b"\x01\x00\x02\x00")


@pytest.mark.parametrize(
    ("data", "code"),
    [
        ("not json", "bad_json"),
        ("[1, 2]", "bad_json"),
        ('{"type":"dance"}', "unknown_type"),
        ('{"text":"no type"}', "unknown_type"),
        ('{"type":"text"}', "bad_message"),
        ('{"type":"text","text":"   "}', "bad_message"),
        ('{"type":"text","text":"' + "a" * 1001 + '"}', "bad_message"),
        ('{"type":"played"}', "bad_message"),
        ('{"type":"played","mark":7}', "bad_message"),
    ],
)
def test_recoverable_mistakes_get_an_error_event_only(data: str, code: str) -> None:
    err = refused(data)
    assert err.code == code
    assert err.close_code is None, "the session can go on after this one"


def test_framing_errors_close() -> None:
    odd = refused(b"\x00\x01\x02")
    assert (odd.code, odd.close_code) == ("bad_audio", avatar.CLOSE_INVALID)
    big = refused(b"\x00" * (avatar.MAX_AUDIO_BYTES + 2))
    assert (big.code, big.close_code) == ("too_big", avatar.CLOSE_TOO_BIG)
    long_text = refused(json.dumps({"type": "text", "text": "a" * avatar.MAX_TEXT_BYTES}))
    assert long_text.close_code == avatar.CLOSE_TOO_BIG


def test_agent_audio_goes_out_in_whole_samples_of_at_most_250_ms() -> None:
    pcm = bytes(range(256)) * 100 + b"\x07"  # 25601 bytes: one stray byte
    chunks = avatar.audio_chunks(pcm, 16000)
    assert all(len(c) % 2 == 0 for c in chunks)
    assert max(len(c) for c in chunks) == 16000 * 250 // 1000 * 2
    assert b"".join(chunks) == pcm[:-1]


class FakeSocket:
    """Records what the transport sends."""

    def __init__(self) -> None:
        self.sent: list[str | bytes] = []

    async def send_text(self, text: str) -> None:
        self.sent.append(text)

    async def send_bytes(self, data: bytes) -> None:
        self.sent.append(data)

    def kinds(self) -> list[str]:
        return ["audio" if isinstance(m, bytes) else json.loads(m)["type"] for m in self.sent]


async def test_transport_holds_the_loop_until_ready_and_translates_events() -> None:
    socket = FakeSocket()
    transport = AvatarTransport(socket, 16000, playback_marks=True)  # type: ignore[arg-type]
    greeting = asyncio.create_task(transport.send_audio(b"\x00\x00" * 1600))
    await asyncio.sleep(0)  # give it every chance to jump the gate
    await transport.send_json(avatar.simple("ready"))
    assert socket.kinds() == ["ready"], "nothing from the loop before ready"
    transport.open_gate()
    await greeting
    await transport.send_mark("r1.0")
    await transport.notify("agent_text", text="Hello.", mark="r1.0")
    await transport.notify("user_transcript", text="hi", final=False)
    await transport.send_clear()
    await transport.notify("interrupted")  # said once, by send_clear
    await transport.notify("conversation_ended")
    await transport.notify("conversation_ended")  # once only
    assert socket.kinds() == [
        "ready",
        "audio",
        "mark",
        "agent_text",
        "transcript",
        "interrupted",
        "conversation_ended",
    ]
    transcript = json.loads(socket.sent[4])
    assert transcript == {"type": "transcript", "text": "hi", "final": False, "source": "voice"}
    await transport.aclose()


async def test_transport_confirms_marks_itself_for_clients_without_playback_marks() -> None:
    socket = FakeSocket()
    transport = AvatarTransport(socket, 16000, playback_marks=False)  # type: ignore[arg-type]
    transport.open_gate()
    heard: asyncio.Queue[str] = asyncio.Queue()
    transport.on_mark = heard.put_nowait
    await transport.send_audio(b"\x00\x00" * 160)  # 10 ms
    await transport.send_mark("r1.0")
    await transport.send_audio(b"\x00\x00" * 16000)  # 1 s
    await transport.send_mark("r1.1")
    async with asyncio.timeout(5):
        assert await heard.get() == "r1.0"
    await transport.send_clear()  # a barge-in: the rest was never heard
    assert heard.empty()
    await transport.aclose()
    assert heard.empty()
