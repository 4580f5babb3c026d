"""The deployment files keep their contract with the code.

docker-compose.yml: two Tourline replicas on one PostgreSQL and one Qdrant, each with its
own data volume, a healthcheck and time to drain; every variable it sets is one Tourline
reads. deploy/Caddyfile: health-based routing on /readyz and the WebSocket paths.

No Docker engine runs here, so the compose file is checked as data. Where Debian's
``caddy`` is installed (``apt-get install caddy``), the real Caddyfile also runs for real
on loopback in front of two stand-in replicas: a replica whose /readyz says 503 gets no
request, WebSockets go through on /twilio/media and /avatar, and with no replica ready a
Twilio call still gets TwiML it can speak.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
import yaml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket
from websockets.sync.client import connect as ws_connect

from app.channels.livekit.executor import plan_jobs
from app.settings import Settings

REPO = Path(__file__).resolve().parent.parent
COMPOSE = REPO / "docker-compose.yml"
CADDYFILE = REPO / "deploy" / "Caddyfile"
DOCKERFILE = REPO / "Dockerfile"
REPLICAS = ("tourline-1", "tourline-2")
WEBSOCKET_PATHS = ("/twilio/media", "/avatar")
LIVEKIT_VARS = {"LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET"}
GOODBYE_S = 5  # after the drain, a call still on the line hears a goodbye (README)


def _seconds(duration: str) -> float:
    match = re.fullmatch(r"(\d+)(ms|s|m)", duration)
    assert match, duration
    value, unit = int(match[1]), match[2]
    return value / 1000 if unit == "ms" else value * (60 if unit == "m" else 1)


def _expand(value: str, env: dict[str, str]) -> str:
    """Compose's ``${VAR}``, ``${VAR:-default}`` and ``${VAR:?error}``."""

    def one(match: re.Match[str]) -> str:
        name, op, rest = match[1], match[2], match[3] or ""
        if name in env:
            return env[name]
        assert op != ":?", f"{name} is required"
        return rest if op == ":-" else ""

    return re.sub(r"\$\{(\w+)(?:(:-|:\?)([^}]*))?\}", one, value)


def _setting_names() -> set[str]:
    names: set[str] = set()
    for field in Settings.model_fields.values():
        alias = field.validation_alias
        names.update(c for c in getattr(alias, "choices", ()) if isinstance(c, str))
    return names


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


def test_two_replicas_of_the_tourline_image_each_with_its_own_data(compose: dict[str, Any]):
    services = compose["services"]
    image = services["tourline-1"]["image"]
    replicas = [
        name
        for name, svc in services.items()
        if svc.get("image") == image and "command" not in svc and "profiles" not in svc
    ]
    assert sorted(replicas) == list(REPLICAS)
    volumes = [services[name]["volumes"] for name in REPLICAS]
    assert all(len(v) == 1 and v[0].endswith(":/data") for v in volumes)
    assert volumes[0] != volumes[1]  # the data dir (calls, phrases) is per replica
    for name in REPLICAS:
        assert services[name]["build"]["context"] == "."
        assert services[name]["environment"]["TOURLINE_DATA_DIR"] == "/data"


def test_replicas_have_a_healthcheck_and_wait_for_healthy_stores(compose: dict[str, Any]):
    services = compose["services"]
    for name in REPLICAS:
        svc = services[name]
        assert any("/healthz" in part for part in svc["healthcheck"]["test"])
        assert _seconds(svc["healthcheck"]["start_period"]) >= 60  # models load first
        for store in ("postgres", "qdrant"):
            assert svc["depends_on"][store]["condition"] == "service_healthy"
            assert services[store]["healthcheck"]["test"]
    assert "/healthz" in DOCKERFILE.read_text().split("HEALTHCHECK", 1)[1]


def test_replicas_get_longer_to_stop_than_they_drain(compose: dict[str, Any]):
    for name in REPLICAS:
        svc = compose["services"][name]
        drain_s = float(_expand(str(svc["environment"]["TOURLINE_DRAIN_S"]), {}))
        assert svc.get("stop_signal", "SIGTERM") == "SIGTERM"
        assert _seconds(svc["stop_grace_period"]) > drain_s + GOODBYE_S


def test_every_variable_set_is_one_tourline_reads(compose: dict[str, Any]):
    known = _setting_names() | LIVEKIT_VARS
    for name, svc in compose["services"].items():
        if svc.get("image") == compose["services"]["tourline-1"]["image"]:
            unknown = set(svc["environment"]) - known
            assert not unknown, f"{name} sets {unknown}, which app/settings.py does not read"
    for required in ("DATABASE_URL", "QDRANT_URL", "TOURLINE_PUBLIC_URL", "TWILIO_AUTH_TOKEN"):
        assert required in compose["services"]["tourline-1"]["environment"]
    assert "TOURLINE_API_KEY" in compose["services"]["tourline-1"]["environment"]


def test_the_replicas_settings_share_postgres_and_qdrant(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    """The compose environment, read by Settings: one database and a Qdrant server, so a
    LiveKit worker on it runs one process per job."""
    given = {
        "POSTGRES_PASSWORD": "pw",
        "QDRANT_API_KEY": "qk",
        "TOURLINE_DOMAIN": "voice.example.com",
        "TWILIO_AUTH_TOKEN": "tok",
        "TOURLINE_API_KEY": "key",
    }
    env = {
        k: _expand(str(v), given)
        for k, v in compose["services"]["tourline-1"]["environment"].items()
    }
    for key in list(os.environ):
        if key.startswith(("TOURLINE_", "QDRANT_", "OPENAI_", "TWILIO_", "SMTP_")):
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("TOURLINE_DATA_DIR", str(tmp_path))
    settings = Settings()
    assert settings.resolved_database_url.startswith("postgresql+psycopg://tourline:pw@postgres:")
    assert settings.qdrant_url == "http://qdrant:6333" and settings.qdrant_api_key == "qk"
    assert settings.public_url == "https://voice.example.com"
    assert settings.drain_s == 20
    assert not settings.llm_enabled  # empty optional keys mean the offline defaults
    assert plan_jobs(settings).processes
    postgres = compose["services"]["postgres"]["environment"]
    assert postgres["POSTGRES_USER"] == "tourline" and postgres["POSTGRES_DB"] == "tourline"


def test_the_proxy_routes_to_the_replicas_on_readyz_with_websockets(compose: dict[str, Any]):
    caddy = compose["services"]["caddy"]
    assert "./deploy/Caddyfile:/etc/caddy/Caddyfile:ro" in caddy["volumes"]
    assert caddy["environment"]["TOURLINE_UPSTREAMS"].split() == [f"{r}:8000" for r in REPLICAS]
    assert {"80:80", "443:443"} <= set(caddy["ports"])  # ACME and HTTPS
    text = CADDYFILE.read_text()
    assert text.count("health_uri /readyz") == 1 and "import upstream_health" in text
    matcher = re.search(r"@websockets path (.+)", text)
    assert matcher and set(matcher[1].split()) == set(WEBSOCKET_PATHS)


# --------------------------------------------------------------- the real Caddy, if any

CADDY = shutil.which("caddy")
needs_caddy = pytest.mark.skipif(
    CADDY is None, reason="caddy not installed (apt-get install caddy)"
)


def _caddy_env(tmp_path: Path, site: str, upstreams: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        TOURLINE_DOMAIN=site,
        TOURLINE_UPSTREAMS=upstreams,
        CADDY_ADMIN="off",
        HOME=str(tmp_path),
        XDG_DATA_HOME=str(tmp_path / "data"),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
    )
    return env


@needs_caddy
def test_caddy_reads_the_caddyfile_as_intended(tmp_path: Path):
    adapted = subprocess.run(
        [CADDY or "caddy", "adapt", "--config", str(CADDYFILE), "--adapter", "caddyfile"],
        env=_caddy_env(tmp_path, "voice.example.com", "tourline-1:8000 tourline-2:8000"),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    proxies: list[tuple[list[str], dict[str, Any]]] = []

    def walk(node: Any, paths: list[str]) -> None:
        if isinstance(node, dict):
            for match in node.get("match", []):
                paths = paths + match.get("path", [])
            if node.get("handler") == "reverse_proxy":
                proxies.append((paths, node))
            for value in node.values():
                walk(value, paths)
        elif isinstance(node, list):
            for value in node:
                walk(value, paths)

    walk(json.loads(adapted), [])
    assert len(proxies) == 2
    assert sorted(p for paths, _ in proxies for p in paths) == sorted(WEBSOCKET_PATHS)
    for _, proxy in proxies:
        assert [u["dial"] for u in proxy["upstreams"]] == [f"{r}:8000" for r in REPLICAS]
        assert proxy["health_checks"]["active"]["uri"] == "/readyz"
        assert proxy["health_checks"]["active"]["expect_status"] == 200


class _Replica:
    """A stand-in for one Tourline replica: /readyz as set, and it says who answered."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.ready = True
        self.port = _free_port()

        async def readyz(request: Request) -> Response:
            return Response(status_code=200 if self.ready else 503)

        async def voice(request: Request) -> Response:
            return PlainTextResponse(self.name)

        async def echo(websocket: WebSocket) -> None:
            await websocket.accept()
            text = await websocket.receive_text()
            await websocket.send_text(f"{self.name}:{websocket.url.path}:{text}")
            await websocket.close()

        app = Starlette(
            routes=[
                Route("/readyz", readyz),
                Route("/twilio/voice", voice, methods=["POST"]),
                *(WebSocketRoute(path, echo) for path in WEBSOCKET_PATHS),
            ]
        )
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> _Replica:
        self.thread.start()
        _wait_until(lambda: self.server.started, "replica started")
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until(condition: Any, what: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for: {what}"
        time.sleep(0.05)


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[tuple[str, _Replica, _Replica]]:
    """Real Caddy on the real Caddyfile, in front of two stand-in replicas."""
    port = _free_port()
    with _Replica("one") as one, _Replica("two") as two:
        upstreams = f"127.0.0.1:{one.port} 127.0.0.1:{two.port}"
        proc = subprocess.Popen(
            [CADDY or "caddy", "run", "--config", str(CADDYFILE), "--adapter", "caddyfile"],
            env=_caddy_env(tmp_path, f"http://127.0.0.1:{port}", upstreams),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            _wait_until(lambda: _answers(base), "caddy listening")
            yield base, one, two
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def _answers(base: str) -> bool:
    try:
        httpx.post(f"{base}/twilio/voice", timeout=5)
    except httpx.TransportError:
        return False
    return True


def _who_answers(base: str) -> str:
    response = httpx.post(f"{base}/twilio/voice", timeout=10)
    return response.text if response.status_code == 200 else f"status {response.status_code}"


@needs_caddy
def test_caddy_routes_only_to_ready_replicas_and_upgrades_websockets(fleet):
    base, one, two = fleet
    two.ready = False  # full or draining

    # Health checks run every 2 s (the first one after 2 s): wait until twenty answers in a
    # row come from "one" (least_conn alone picks either: 1 chance in a million).
    streak: list[str] = []

    def only_one_answers() -> bool:
        streak.append(_who_answers(base))
        return streak[-20:] == ["one"] * 20

    _wait_until(only_one_answers, "the not-ready replica taken out of rotation")
    # Out for good, not by chance (least_conn alone would pick "two" half the time).
    assert [_who_answers(base) for _ in range(20)] == ["one"] * 20
    ws_base = base.replace("http://", "ws://")
    for path in WEBSOCKET_PATHS:
        with ws_connect(f"{ws_base}{path}", open_timeout=10) as socket_:
            socket_.send("hello")
            assert socket_.recv(timeout=10) == f"one:{path}:hello"

    one.ready = False  # every replica full or draining: callers still hear a sentence
    _wait_until(lambda: "<Say>" in _who_answers(base), "the busy TwiML", timeout_s=30)
    response = httpx.post(f"{base}/twilio/voice", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/xml")
    assert "lines are busy" in response.text and "<Hangup/>" in response.text
