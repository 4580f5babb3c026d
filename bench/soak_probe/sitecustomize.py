"""Loaded by the soak's server when run with ``bench/soak.py --tracemalloc`` (this folder
on PYTHONPATH): a tracemalloc snapshot every minute into the data dir, so the soak can say
which Python allocations grew between minute 2 and the last (``soak.py`` diffs them).

Never loaded in production: only ``--tracemalloc`` puts this folder on the path.
"""

from __future__ import annotations

import os
import threading
import time
import tracemalloc
from pathlib import Path

FRAMES = 6
EVERY_S = 60.0


def _snapshots(out: Path) -> None:
    minute = 0
    while True:
        time.sleep(EVERY_S)  # a pace, not a synchronisation: one snapshot a minute
        minute += 1
        snapshot = tracemalloc.take_snapshot().filter_traces(
            [tracemalloc.Filter(False, tracemalloc.__file__)]
        )
        snapshot.dump(str(out / f"tracemalloc-{minute:02d}.snap"))


if os.environ.get("TOURLINE_SOAK_TRACEMALLOC"):
    tracemalloc.start(FRAMES)
    _dir = Path(os.environ.get("TOURLINE_DATA_DIR", "."))
    threading.Thread(target=_snapshots, args=(_dir,), name="soak-tracemalloc", daemon=True).start()
