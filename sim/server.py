"""Start the real ``tourline serve`` on loopback, for end-to-end tests and benchmarks."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RunningServer:
    process: subprocess.Popen
    base_url: str
    data_dir: Path
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def clean_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The test's environment without any cloud keys, pointed at its own data dir."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OPENAI_", "TWILIO_", "TOURLINE_", "QDRANT_")) and k != "DATABASE_URL"
    }
    env["TOURLINE_DATA_DIR"] = str(data_dir)
    # A harness stops its server when it is done, calls or no calls: no drain unless a test
    # asks for one (TOURLINE_DRAIN_S in ``extra``), so teardown is never a 20 s wait.
    env["TOURLINE_DRAIN_S"] = "0"
    # Benchmarks and tests run more calls at once than a 2-core default capacity (10) takes;
    # admission past capacity is tested on its own (TOURLINE_MAX_CALLS in ``extra``).
    env["TOURLINE_MAX_CALLS"] = "1000"
    if phrases := os.environ.get("TOURLINE_PHRASE_CACHE_DIR"):  # a cache, not configuration
        env["TOURLINE_PHRASE_CACHE_DIR"] = phrases
    env.update(extra)
    return env


@contextmanager
def running_server(data_dir: Path, timeout_s: float = 120.0, **env: str) -> Iterator[RunningServer]:
    """``tourline serve`` on a free loopback port; waits until /healthz says ready."""
    port = free_port()
    log_path = data_dir / "server.log"
    data_dir.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=clean_env(data_dir, **env),
        )
    server = RunningServer(process, f"http://127.0.0.1:{port}", data_dir, log_path)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{server.log()}")
            try:
                if httpx.get(f"{server.base_url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"server not ready in {timeout_s}s:\n{server.log()}")
            time.sleep(0.1)  # polling for readiness, not synchronizing on a guess
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
