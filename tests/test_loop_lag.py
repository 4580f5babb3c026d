"""The server notices when its event loop is held, and says how long, per second."""

from __future__ import annotations

import asyncio
import contextlib
import time

from app.web.loop_lag import LoopLag


async def test_a_held_loop_shows_up_as_lateness_in_that_second() -> None:
    lag = LoopLag()
    watching = asyncio.create_task(lag.watch())
    await asyncio.sleep(0)  # let the first tick start
    before = time.time()
    time.sleep(0.15)  # a blocking call on the loop: what the monitor is for, not a wait
    while not lag.by_second():  # the tick that was due during the block wakes up late
        await asyncio.sleep(0)
    watching.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await watching
    assert lag.worst_since(before) >= 100


def test_each_second_keeps_its_worst_and_only_a_minute_is_kept() -> None:
    lag = LoopLag()
    lag.record(1000.2, 5.0)
    lag.record(1000.7, 40.0)
    lag.record(1000.9, 3.0)
    lag.record(1001.1, 7.0)
    assert lag.by_second() == [(1000, 40.0), (1001, 7.0)]
    assert lag.worst_since(1001.0) == 7.0
    for second in range(1002, 1100):
        lag.record(second, 1.0)
    assert len(lag.by_second()) == 60 and lag.worst_since(0) == 1.0


def hold_the_loop() -> None:
    time.sleep(0.3)  # a blocking call on the loop: what the watchdog is for, not a wait


async def test_a_stall_is_logged_with_what_held_the_loop(caplog) -> None:
    lag = LoopLag()
    watching = asyncio.create_task(lag.watch())
    await asyncio.sleep(0)  # let the first tick start
    with caplog.at_level("WARNING", logger="tourline.loop"):
        hold_the_loop()
        while not lag.by_second():
            await asyncio.sleep(0)
    watching.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await watching
    assert lag.stalls == 1
    stalls = [r.getMessage() for r in caplog.records if "event loop held" in r.getMessage()]
    assert len(stalls) == 1 and "hold_the_loop" in stalls[0]
