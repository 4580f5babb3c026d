"""The secret avatar tokens are signed with, when ``TOURLINE_AVATAR_SECRET`` is unset.

The server then signs with a secret it makes once in its data dir (``avatar_secret``, private
like the rest of the data dir): the operator's own tools on that data dir (``tourline chat``,
``tourline token``) can vouch for a caller, and nobody else can. Several servers, or a back
end that mints tokens, need the setting. Kept apart from ``tokens`` so that reading it does
not import the JWT library (``tourline chat``'s first line stays fast).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Final

__all__ = ["SECRET_FILE", "signing_secret"]

SECRET_BYTES: Final = 32
SECRET_FILE: Final = "avatar_secret"
"""The data dir's own signing secret, used when ``TOURLINE_AVATAR_SECRET`` is unset."""


def signing_secret(configured: str | None, data_dir: Path) -> str:
    """``TOURLINE_AVATAR_SECRET`` if set, else the data dir's own secret (made on first use,
    readable by the data dir's owner only)."""
    if configured:
        return configured
    path = Path(data_dir) / SECRET_FILE
    try:
        found = path.read_text().strip()
    except FileNotFoundError:
        found = ""
    if found:
        return found
    path.parent.mkdir(parents=True, exist_ok=True)
    made = secrets.token_hex(SECRET_BYTES)
    draft = path.with_name(f".{SECRET_FILE}.{os.getpid()}")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(made + "\n")
    try:
        os.link(draft, path)  # whole or not at all, and never over another process's secret
    except FileExistsError:
        return path.read_text().strip()
    finally:
        draft.unlink()
    return made
