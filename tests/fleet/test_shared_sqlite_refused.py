"""A replica refuses a SQLite database on a network share, and says what to do instead."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import app.stores.database as database
from app.stores.database import (
    DatabaseLocationError,
    create_db_engine,
    filesystem_type,
    refuse_network_sqlite,
)

MOUNTS = """\
/dev/sda1 / ext4 rw,relatime 0 0
tmpfs /tmp tmpfs rw 0 0
fileserver:/export /mnt/shared nfs4 rw,vers=4.2 0 0
//nas/team /mnt/team\\040drive cifs rw 0 0
"""


def test_the_file_system_is_read_from_the_longest_mount() -> None:
    assert filesystem_type(Path("/mnt/shared/tourline/tourline.db"), MOUNTS) == "nfs4"
    assert filesystem_type(Path("/mnt/team drive/tourline.db"), MOUNTS) == "cifs"
    assert filesystem_type(Path("/mnt/sharedness/tourline.db"), MOUNTS) == "ext4"
    assert filesystem_type(Path("/tmp/x.db"), MOUNTS) == "tmpfs"


def test_sqlite_on_a_network_share_is_refused_with_what_to_do() -> None:
    with pytest.raises(DatabaseLocationError) as refused:
        refuse_network_sqlite(Path("/mnt/shared/tourline/tourline.db"), MOUNTS)
    message = str(refused.value)
    assert "/mnt/shared/tourline/tourline.db" in message and "nfs4" in message
    assert "DATABASE_URL=postgresql://" in message and "TOURLINE_DATA_DIR" in message
    refuse_network_sqlite(Path("/srv/tourline/tourline.db"), MOUNTS)  # a local disk is fine


def test_opening_the_database_checks_where_it_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'tourline.db'}"
    create_db_engine(url).dispose()  # this machine's temp dir is local
    monkeypatch.setattr(database, "filesystem_type", lambda path, mounts=None: "nfs4")
    with pytest.raises(DatabaseLocationError, match="PostgreSQL"):
        create_db_engine(url)


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"TOURLINE_VECTOR_STORE": "qdrant"}, "TOURLINE_VECTOR_STORE=qdrant needs QDRANT_URL"),
        ({"TOURLINE_VECTOR_STORE": "postgres"}, "needs a PostgreSQL DATABASE_URL"),
    ],
)
def test_serve_refuses_stores_it_cannot_use_in_one_sentence(
    tmp_path: Path, env: dict[str, str], says: str
) -> None:
    """A replica started with a vector store its settings can't serve exits at once, with
    the sentence that says what is missing, not a traceback from inside the server."""
    run_env = {**os.environ, "TOURLINE_DATA_DIR": str(tmp_path), **env}
    run_env.pop("DATABASE_URL", None)
    run_env.pop("QDRANT_URL", None)
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "serve", "--port", "1"],
        env=run_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 4, done.stderr
    assert says in done.stderr and "Traceback" not in done.stderr, done.stderr
