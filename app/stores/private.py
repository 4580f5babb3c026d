"""What callers said stays the owner's: the data dir is 0700 and every file in it 0600.

Set once per process with the umask, so every store (SQLite, Qdrant's segments, mem0's
history, call timelines, backups) creates its files private without knowing about it.
"""

from __future__ import annotations

import os
from pathlib import Path

PRIVATE_UMASK = 0o077


def make_private(data_dir: Path | None = None) -> None:
    """Files and folders this process creates from now on are the owner's only; an existing
    ``data_dir`` is closed to others too."""
    os.umask(PRIVATE_UMASK)
    if data_dir is not None:
        data_dir.mkdir(parents=True, exist_ok=True)
        data_dir.chmod(0o700)
