"""A small burst, then a steady rate (typed avatar turns)."""

from __future__ import annotations

from app.channels.rate_limit import TokenBucket


def test_a_burst_then_one_per_interval() -> None:
    now = [0.0]
    bucket = TokenBucket(burst=3, per_second=0.5, clock=lambda: now[0])
    assert [bucket.allow() for _ in range(5)] == [True, True, True, False, False]
    now[0] += 1.0
    assert not bucket.allow()  # half a token back
    now[0] += 1.0
    assert bucket.allow()
    now[0] += 100.0
    assert sum(bucket.allow() for _ in range(10)) == 3  # the burst, never more
