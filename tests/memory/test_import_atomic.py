"""``tourline import`` is all or nothing, and says what it refused and why.

Issue 12, item 8: a stored record that differs from the file's was skipped silently (exit
0), a corrupt line left half an import behind, a field of the wrong type gave a traceback,
and a file cut short was imported as far as it went. Each test here runs the real command
on a real store (SQLite, and PostgreSQL through ``db_url``) and checks the store afterwards
by exporting it again: a refused import must leave exactly what was there before.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.memory.conftest import OpenService
from tests.memory.seeding import seed
from tests.memory.test_backup_cli import records, tourline

pytestmark = pytest.mark.slow

INVALID = 2  # usage errors and unusable files
CONFLICTS = 6  # `--on-conflict fail` (the default) found stored records that differ


@pytest.fixture
def seeded(open_service: OpenService, data_dir: Path) -> None:
    memory = open_service()
    seed(memory, data_dir)
    memory.close()  # the CLI processes need the data dir's owner lock


@pytest.fixture
def env(db_url: str) -> dict[str, str]:
    """What the CLI needs to use the test's database (SQLite lives in the data dir)."""
    return {} if db_url.startswith("sqlite") else {"DATABASE_URL": db_url}


def stored(data_dir: Path, env: dict[str, str], tmp_path: Path) -> list[dict[str, Any]]:
    """Everything in the store now, as the records of a fresh export."""
    target = tmp_path / f"now-{uuid.uuid4().hex[:8]}.jsonl"
    result = tourline(data_dir, "export", "-o", str(target), **env)
    assert result.returncode == 0, result.stderr
    return records(target)


def body(found: list[dict[str, Any]]) -> list[str]:
    """The records but the end line, in a stable order (an export sorts by key)."""
    return sorted(json.dumps(r, sort_keys=True) for r in found if r["type"] != "end")


def lines_of(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def write(path: Path, lines: list[dict[str, Any]], tail: str = "") -> Path:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines) + tail)
    return path


def copies(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records of an export under ids the store does not have (a second site's data)."""
    out: list[dict[str, Any]] = []
    for line in lines:
        line = dict(line)
        kind = line["type"]
        if kind == "call":
            line["call_id"] += "-copy"
        elif kind in ("exchange", "snapshot"):
            line["id"] += 1000
            line["call_id"] += "-copy"
        elif kind == "booking":
            line["id"] += 1000
            line["confirmation_code"] = "ZZZZ"
            line["status"] = "cancelled"  # a cancelled tour holds no slot
        elif kind == "memory":
            line["id"] = str(uuid.uuid4())
        out.append(line)
    return out


@pytest.fixture
def backup(seeded: None, data_dir: Path, env: dict[str, str], tmp_path: Path) -> Path:
    target = tmp_path / "backup.jsonl"
    result = tourline(data_dir, "export", "-o", str(target), **env)
    assert result.returncode == 0, result.stderr
    return target


def test_conflicts_refuse_the_import_unless_a_policy_says_what_to_do(
    backup: Path, data_dir: Path, env: dict[str, str], tmp_path: Path
) -> None:
    lines = lines_of(backup)
    edited: list[dict[str, Any]] = []
    for line in lines:
        line = dict(line)
        if line["type"] == "call" and line["call_id"] == "CA-dana-1":
            line["summary"] = "Edited elsewhere"
        elif line["type"] == "exchange" and line["id"] == 3:
            line["text"] = "edited line"
        elif line["type"] == "memory" and line["payload"].get("data") == "Has two cats":
            line["payload"] = {**line["payload"], "data": "Has three cats"}
            cats = line["id"]
        edited.append(line)
    extra = copies([line for line in lines if line["type"] == "call"])[:1]
    changed = write(tmp_path / "changed.jsonl", [*edited[:1], *extra, *edited[1:]])
    changed_lines = lines_of(changed)
    changed_lines[-1]["counts"]["call"] += 1
    write(changed, changed_lines)
    before = stored(data_dir, env, tmp_path)

    refused = tourline(data_dir, "import", str(changed), **env)
    assert refused.returncode == CONFLICTS, refused.stdout + refused.stderr
    assert "Traceback" not in refused.stderr
    assert "3 records differ from what is stored" in refused.stderr
    assert "1 call (CA-dana-1)" in refused.stderr
    assert "1 exchange (3)" in refused.stderr
    assert f"1 memory ({cats})" in refused.stderr
    assert "nothing was imported" in refused.stderr
    assert "--on-conflict skip" in refused.stderr and "--on-conflict replace" in refused.stderr
    assert stored(data_dir, env, tmp_path) == before  # not even the new call went in

    skipped = tourline(data_dir, "import", str(changed), "--on-conflict", "skip", **env)
    assert skipped.returncode == 0, skipped.stderr
    assert "Imported 1 records" in skipped.stdout
    assert "3 that differ kept as stored" in skipped.stdout
    after_skip = stored(data_dir, env, tmp_path)
    assert body([r for r in after_skip if r.get("call_id") != "CA-dana-1-copy"]) == body(before)

    replaced = tourline(data_dir, "import", str(changed), "--on-conflict", "replace", **env)
    assert replaced.returncode == 0, replaced.stderr
    assert "Imported 0 records" in replaced.stdout
    assert "3 that differ replaced with the file's" in replaced.stdout
    assert body(stored(data_dir, env, tmp_path)) == body(lines_of(changed)[1:])

    bogus = tourline(data_dir, "import", str(changed), "--on-conflict", "merge", **env)
    assert bogus.returncode == INVALID and "Traceback" not in bogus.stderr


def test_a_corrupt_line_leaves_the_store_as_it_was(
    backup: Path, data_dir: Path, env: dict[str, str], tmp_path: Path
) -> None:
    """Calls and exchanges come before the bad snapshot line: none of them may stay."""
    lines = lines_of(backup)
    more = copies(lines[1:-1])
    bad_at = next(i for i, line in enumerate(more) if line["type"] == "snapshot")
    text = "".join(json.dumps(line) + "\n" for line in [lines[0], *more[:bad_at]])
    text += '{"type": "snapshot", "id": 9\n'
    text += "".join(json.dumps(line) + "\n" for line in [*more[bad_at:], lines[-1]])
    corrupt = tmp_path / "corrupt.jsonl"
    corrupt.write_text(text)
    before = stored(data_dir, env, tmp_path)

    result = tourline(data_dir, "import", str(corrupt), **env)
    assert result.returncode == INVALID, result.stdout + result.stderr
    assert f"line {bad_at + 2} is not JSON" in result.stderr
    assert "nothing was imported" in result.stderr and "Traceback" not in result.stderr
    assert stored(data_dir, env, tmp_path) == before


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_field_of_the_wrong_type_is_one_sentence_with_its_line(
    backup: Path, tmp_path: Path
) -> None:
    lines = lines_of(backup)
    call = next(i for i, line in enumerate(lines) if line["type"] == "call")
    lines[call]["started_at"] = 42
    bad = write(tmp_path / "bad.jsonl", lines)

    fresh = tmp_path / "fresh"
    result = tourline(fresh, "import", str(bad))
    assert result.returncode == INVALID, result.stdout + result.stderr
    assert result.stderr.count("error:") == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: {bad}: line {call + 1}: 'started_at' must be an ISO 8601 time, got 42; "
        "nothing was imported"
    )
    assert records_in(fresh, tmp_path) == []


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_file_cut_short_imports_nothing(backup: Path, tmp_path: Path) -> None:
    text = backup.read_text()
    whole_lines = text.splitlines(keepends=True)
    for name, cut in (
        ("no-end.jsonl", "".join(whole_lines[:-1])),
        ("mid-line.jsonl", text[: len(text) - len(whole_lines[-1]) - 40]),
    ):
        path = tmp_path / name
        path.write_text(cut)
        into = tmp_path / f"into-{name}"
        result = tourline(into, "import", str(path))
        assert result.returncode == INVALID, (name, result.stdout, result.stderr)
        assert "cut short" in result.stderr and "nothing was imported" in result.stderr
        assert "Traceback" not in result.stderr
        assert records_in(into, tmp_path) == []


def records_in(data_dir: Path, tmp_path: Path) -> list[dict[str, Any]]:
    return [r for r in stored(data_dir, {}, tmp_path) if r["type"] != "end"]
