"""Hypothesis settings for the wire fuzz tests: a few seconds in all, nothing left on disk.

``deadline=None`` because the machine is shared: a slow example under load is not a bug.
``database=None`` keeps a ``.hypothesis`` folder out of the checkout; a failure prints the
example to reproduce it instead.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

settings.register_profile(
    "fuzz",
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("fuzz")

MAX_CLOSE_REASON_BYTES = 123
"""RFC 6455 5.5: a close frame's reason, after its 2-byte code, fits in 125 bytes."""

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40)
)
json_values: st.SearchStrategy[Any] = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
"""Any JSON value (NaN and Infinity too: Python's json reads and writes them)."""


def dumps(value: Any) -> str:
    return json.dumps(value)


def assert_clear_reason(reason: str) -> None:
    """One readable line that the socket can send as its close reason (the first 120
    characters are), with no traceback or multi-kilobyte echo of the input in it."""
    assert reason.strip(), "an error without a reason"
    assert reason.isascii() and reason.isprintable(), reason
    assert len(reason) <= 200, reason
    assert len(reason[:120].encode()) <= MAX_CLOSE_REASON_BYTES
    assert "Traceback" not in reason


def key_paths(value: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every key path inside a message (so any one field can be swapped out)."""
    paths = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, inner in value.items():
            paths += key_paths(inner, (*prefix, key))
    return paths
