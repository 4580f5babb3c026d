"""The shared model pool: bounded, fair between calls, urgent work first."""

from __future__ import annotations

import asyncio
import threading

from app.voice.compute_pool import BACKGROUND, NORMAL, URGENT, ComputePool


class Gate:
    """A job that blocks its worker thread until released, so the queue order is visible."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()

    def __call__(self) -> str:
        self.started.set()
        assert self.release.wait(10), "test gate never released"
        return "gate"


async def wait_started(gate: Gate) -> None:
    assert await asyncio.to_thread(gate.started.wait, 10)


async def test_a_second_call_is_served_before_the_first_calls_backlog() -> None:
    pool = ComputePool(workers=1)
    order: list[str] = []
    gate = Gate()
    try:
        blocker = asyncio.ensure_future(pool.run("call-a", gate))
        await wait_started(gate)
        jobs = [asyncio.ensure_future(pool.run("call-a", order.append, f"a{i}")) for i in range(4)]
        jobs.append(asyncio.ensure_future(pool.run("call-b", order.append, "b0")))
        await asyncio.sleep(0)  # one loop pass: every submission reaches the queue
        assert pool.queued == 5
        gate.release.set()
        await asyncio.gather(blocker, *jobs)
        assert order.index("b0") <= 1, order  # not behind all of call-a's backlog
    finally:
        pool.shutdown()


async def test_urgent_work_jumps_the_queue_and_background_comes_last() -> None:
    pool = ComputePool(workers=1)
    order: list[str] = []
    gate = Gate()
    try:
        blocker = asyncio.ensure_future(pool.run("call-a", gate))
        await wait_started(gate)
        later = [
            asyncio.ensure_future(
                pool.run("warm", order.append, "background", priority=BACKGROUND)
            ),
            asyncio.ensure_future(pool.run("call-b", order.append, "normal", priority=NORMAL)),
            asyncio.ensure_future(pool.run("call-c", order.append, "urgent", priority=URGENT)),
        ]
        await asyncio.sleep(0)
        gate.release.set()
        await asyncio.gather(blocker, *later)
        assert order == ["urgent", "normal", "background"]
    finally:
        pool.shutdown()


async def test_a_cancelled_job_is_skipped_and_errors_reach_the_caller() -> None:
    pool = ComputePool(workers=1)
    ran: list[str] = []
    gate = Gate()
    try:
        blocker = asyncio.ensure_future(pool.run("call-a", gate))
        await wait_started(gate)
        doomed = asyncio.ensure_future(pool.run("call-a", ran.append, "doomed"))
        await asyncio.sleep(0)
        doomed.cancel()
        gate.release.set()
        await blocker

        def boom() -> None:
            raise ValueError("model exploded")

        try:
            await pool.run("call-a", boom)
        except ValueError as exc:
            assert "exploded" in str(exc)
        else:  # pragma: no cover - the assertion below reports it
            raise AssertionError("the job's exception was swallowed")
        assert ran == []
    finally:
        pool.shutdown()


async def test_light_jobs_do_not_wait_for_heavy_ones() -> None:
    pool = ComputePool(workers=1)
    gate = Gate()
    try:
        blocker = asyncio.ensure_future(pool.run("call-a", gate))
        await wait_started(gate)
        assert await pool.run_light(sum, [1, 2, 3]) == 6  # heavy worker still blocked
        gate.release.set()
        await blocker
    finally:
        pool.shutdown()


async def test_later_work_never_takes_the_last_free_worker() -> None:
    pool = ComputePool(workers=2)
    first, second, urgent = Gate(), Gate(), Gate()
    try:
        a = asyncio.ensure_future(pool.run("call-a", first, priority=NORMAL))
        await wait_started(first)
        b = asyncio.ensure_future(pool.run("call-b", second, priority=NORMAL))
        await asyncio.sleep(0)  # one loop pass: the job reaches the queue
        assert pool.queued == 1 and not second.started.is_set()
        c = asyncio.ensure_future(pool.run("call-c", urgent, priority=URGENT))
        await wait_started(urgent)  # the reserved worker serves the caller who is waiting
        assert not second.started.is_set()
        urgent.release.set()
        first.release.set()
        await wait_started(second)
        second.release.set()
        assert await asyncio.gather(a, b, c) == ["gate"] * 3
    finally:
        pool.shutdown()
