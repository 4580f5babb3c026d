"""The OpenAI-compatible STT/TTS options against a fake server on loopback.

The real cloud is out of reach here; this proves the request shapes we send (multipart WAV
for transcription, JSON with ``response_format=pcm`` for speech) and how we read answers.
"""

from __future__ import annotations

import io
import json
import threading
import wave
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import numpy as np
import pytest

from app.audio.stt import OpenAISTT, load_stt
from app.audio.tts import OpenAITTS, load_tts
from app.settings import Settings

PCM_24K = (np.sin(np.arange(24000) * 2 * np.pi * 300 / 24000) * 9000).astype("<i2").tobytes()


class _FakeOpenAI(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    requests: ClassVar[list[dict[str, Any]]] = []

    def log_message(self, *args: Any) -> None:  # keep pytest output clean
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        record = {"path": self.path, "auth": self.headers.get("Authorization"), "body": body}
        type(self).requests.append(record)
        if self.path.endswith("/audio/transcriptions"):
            wav_at = body.index(b"RIFF")
            with wave.open(io.BytesIO(body[wav_at:])) as wav:
                record["wav"] = (wav.getframerate(), wav.getnchannels(), wav.getnframes())
            payload = json.dumps({"text": " Saturday at eleven, please. "}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        elif self.path.endswith("/audio/speech"):
            record["json"] = json.loads(body)
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(0, len(PCM_24K), 4801):  # odd sizes: samples straddle chunks
                part = PCM_24K[i : i + 4801]
                self.wfile.write(f"{len(part):X}\r\n".encode() + part + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()


@pytest.fixture
def fake_openai(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    _FakeOpenAI.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeOpenAI)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


def test_openai_stt_sends_a_16k_wav(fake_openai: str) -> None:
    stt = OpenAISTT(api_key="sk-test", base_url=fake_openai, model="whisper-1", timeout=5)
    text = stt.transcribe(np.zeros(16000, dtype=np.int16))
    assert text == "Saturday at eleven, please."
    (request,) = _FakeOpenAI.requests
    assert request["path"] == "/v1/audio/transcriptions"
    assert request["auth"] == "Bearer sk-test"
    assert request["wav"] == (16000, 1, 16000)
    assert b'name="model"' in request["body"] and b"whisper-1" in request["body"]
    assert stt.transcribe(b"") == ""  # empty turns never leave the machine
    assert len(_FakeOpenAI.requests) == 1


def test_openai_tts_streams_whole_samples(fake_openai: str) -> None:
    tts = OpenAITTS(base_url=fake_openai, model="gpt-4o-mini-tts", voice="alloy", timeout=5)
    assert tts.sample_rate == 24000
    chunks = list(tts.synthesize("Your tour is booked."))
    assert chunks and all(len(c) % 2 == 0 for c in chunks)
    assert b"".join(chunks) == PCM_24K
    (request,) = _FakeOpenAI.requests
    assert request["path"] == "/v1/audio/speech"
    assert request["json"]["response_format"] == "pcm"
    assert request["json"]["input"] == "Your tour is booked."
    assert request["auth"] == "Bearer unused"  # keyless compatible servers still work
    assert list(tts.synthesize("  ")) == []


def test_factories_choose_openai_when_configured(fake_openai: str) -> None:
    settings = Settings(openai_api_key="sk-test", openai_base_url=fake_openai)
    assert isinstance(load_stt(settings), OpenAISTT)
    assert isinstance(load_tts(settings), OpenAITTS)
