"""What mem0 hands a vector store, checked once for every store that takes it.

The embedded Edge store turns a filter into Qdrant conditions and the PostgreSQL store
checks it in Python, but both must accept and refuse the same filters and batches with the
same words.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

RANGE_OPS = ("gt", "gte", "lt", "lte")
SUPPORTED_OPS = frozenset({"eq", "ne", "in", "nin", "contains", "icontains", *RANGE_OPS})


def range_ops(key: str, value: Mapping[str, Any]) -> dict[str, Any]:
    """The range operators of one field's operator dict (may be empty), after refusing
    unknown operators and ranges mixed with other operators (mem0 wants those ANDed)."""
    ops = set(value)
    unknown = ops - SUPPORTED_OPS
    if unknown:
        raise ValueError(
            f"Unsupported filter operator(s) for field {key!r}: {sorted(unknown)}. "
            f"Supported: {sorted(SUPPORTED_OPS)}"
        )
    ranges = {op: value[op] for op in RANGE_OPS if op in value}
    if ranges and ops - set(ranges):
        raise ValueError(
            f"Cannot mix range operators with {sorted(ops - set(ranges))} for field "
            f"{key!r}; use AND to combine them"
        )
    return ranges


def check_batch(
    vectors: Sequence[object],
    payloads: Sequence[object] | None,
    ids: Sequence[object] | None,
) -> None:
    """An insert's payloads and ids, when given, line up with its vectors."""
    if payloads is not None and len(payloads) != len(vectors):
        raise ValueError(f"{len(vectors)} vectors but {len(payloads)} payloads")
    if ids is not None and len(ids) != len(vectors):
        raise ValueError(f"{len(vectors)} vectors but {len(ids)} ids")
