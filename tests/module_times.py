"""Wall and CPU time per test module at the end of a run, and the slow modules first under
``--dist loadscope`` (a pytest plugin).

Why: the suite is held to a wall-time budget on 2 cores (docs/benchmarks.md, "Test suite"),
and pytest's ``--durations`` names slow tests, not the modules ``--dist loadscope`` hands to
a worker whole. A module's wall time is the sum of its tests' setup, call and teardown; its
CPU is this process's plus its reaped children's (``tourline serve``, CLI subprocesses,
Chromium: a server's CPU lands on the module whose teardown stops it). Under xdist each
worker measures and the controller adds up, per module and per worker, so one glance shows
the critical path and what it costs.

The order: xdist hands out modules in order of their number of tests, most first, so the
real-server modules (one to three long tests each) came last and a worker could start a
80-second voice booking while the other had nothing left to do. Here the modules named in
``EXPECTED_S`` go first, longest first; the rest follow in xdist's order. A new slow module
belongs in the table (the summary above shows what it costs).
"""

from __future__ import annotations

import resource
from collections import OrderedDict, defaultdict
from collections.abc import Generator
from typing import Any

import pytest

SHOWN = 15
EXPECTED_S: dict[str, float] = {
    # module: wall seconds alone on 2 cores (``--durations``, this plugin's summary); the
    # order matters more than the numbers. Measured 2026-11-24 unless marked "est.".
    "tests/avatar/test_avatar_socket.py": 150,
    "tests/telephony/test_phone_call_e2e.py": 75,
    "tests/fleet/test_replicas.py": 75,  # est.: 3 replicas and 33 calls
    "tests/telephony/test_metrics_call.py": 38,
    "tests/avatar/test_browser.py": 35,
    "tests/memory/test_restart_recall.py": 35,
    "tests/telephony/test_sigterm_goodbye.py": 35,
    "tests/telephony/test_barge_in.py": 32,
    "tests/test_chat_cli.py": 30,  # est.: a server and ~15 CLI processes
    "tests/memory/test_memory_api.py": 30,  # est.: six servers
    "tests/test_deploy_files.py": 25,  # est.: two servers behind Caddy
    "tests/livekit/test_livekit_voice_call.py": 22,
    "tests/telephony/test_media_stream_bad_input.py": 21,
    "tests/telephony/test_media_flood.py": 20,
    "tests/memory/test_any_caller_id.py": 20,  # est.
    "tests/memory/test_vector_backends.py": 20,  # est.
    "tests/messaging/test_sms_e2e.py": 20,  # est.
    "tests/avatar/test_avatar_identity.py": 16,
    "tests/memory/test_backup_cli.py": 15,  # est.
    "tests/memory/test_durability.py": 15,  # est.
    "tests/test_server_limits.py": 15,  # est.
    "tests/fleet/test_consolidation_claims.py": 15,  # est.
    "tests/fleet/test_shared_sqlite_refused.py": 10,  # est.
    "tests/messaging/test_chat_sends.py": 10,  # est.
    "tests/messaging/test_crash.py": 10,  # est.
    "tests/livekit/test_livekit_worker.py": 10,  # est.
    "tests/test_demo_memory.py": 10,  # est.
    "tests/test_server.py": 8,  # est.
    "tests/avatar/test_ops_browser.py": 8,
}
_mark = 0.0


def _cpu_s() -> float:
    """CPU seconds (user + system) of this process and of the children it has waited for."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def pytest_runtest_logstart(nodeid: str, location: tuple[str, int | None, str]) -> None:
    global _mark
    _mark = _cpu_s()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Any, None]:
    global _mark
    outcome = yield
    now = _cpu_s()
    # A plain float attribute: xdist sends a report's __dict__ to the controller as is.
    outcome.get_result().cpu_s = now - _mark
    _mark = now


class _Totals:
    def __init__(self) -> None:
        self.wall: defaultdict[str, float] = defaultdict(float)
        self.cpu: defaultdict[str, float] = defaultdict(float)
        self.worker_of: dict[str, str] = {}
        self.worker_wall: defaultdict[str, float] = defaultdict(float)
        self.worker_cpu: defaultdict[str, float] = defaultdict(float)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        module = report.nodeid.split("::", 1)[0]
        node = getattr(report, "node", None)
        worker = str(node.gateway.id) if node is not None else "main"
        cpu = float(getattr(report, "cpu_s", 0.0))
        self.wall[module] += report.duration
        self.cpu[module] += cpu
        self.worker_of[module] = worker
        self.worker_wall[worker] += report.duration
        self.worker_cpu[worker] += cpu

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if not self.wall:
            return
        write = terminalreporter.write_line
        terminalreporter.section(f"slowest {SHOWN} modules (wall s, CPU s incl. servers)")
        for module in sorted(self.wall, key=self.wall.__getitem__, reverse=True)[:SHOWN]:
            write(
                f"{self.wall[module]:8.1f} {self.cpu[module]:8.1f}  "
                f"{self.worker_of[module]:>4}  {module}"
            )
        for worker in sorted(self.worker_wall):
            write(
                f"worker {worker}: {self.worker_wall[worker]:.1f} s busy, "
                f"{self.worker_cpu[worker]:.1f} CPU-s"
            )


def pytest_configure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput"):  # the controller (or a run without xdist)
        config.pluginmanager.register(_Totals(), "module-times-totals")


class _SlowFirst(OrderedDict[str, Any]):
    """xdist's queue of modules: a worker asking for work gets the slowest one left."""

    def popitem(self, last: bool = True) -> tuple[str, Any]:
        if last or not self:
            return super().popitem(last)
        scope = max(self, key=lambda s: EXPECTED_S.get(s.split("::", 1)[0], 0.0))
        return scope, self.pop(scope)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling  # type: ignore[import-untyped]

    scheduler = LoadScopeScheduling(config, log)
    scheduler.workqueue = _SlowFirst()
    return scheduler
