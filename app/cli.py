"""The ``tourline`` command line: serve, chat by text, back up and forget callers, benchmarks."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from app.settings import get_settings

if TYPE_CHECKING:
    from app.memory.service import MemoryService

EXIT_STORE_LOCKED = 3  # same code as `tourline chat`: another process owns the data dir
EXIT_UNAVAILABLE = 4  # the configured stores cannot be reached or used as set

cli = typer.Typer(
    name="tourline",
    help="Tourline: a voice agent that books apartment tours and remembers every caller.",
    no_args_is_help=True,
    add_completion=False,
)


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "0.0.0.0",
    port: Annotated[int, typer.Option(help="TCP port to listen on.")] = 8000,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
) -> None:
    """Start the HTTP/WebSocket server (Twilio webhooks, media streams, health)."""
    from app.memory.owner_lock import advertise
    from app.memory.service import check_store_settings
    from app.stores.database import StoreSetupError
    from app.web.native_memory import cap_malloc_arenas
    from app.web.serving import serve as serve_app

    cap_malloc_arenas()  # before the models start their threads
    try:
        check_store_settings(get_settings())
    except StoreSetupError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_UNAVAILABLE) from None
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # The data dir's owner lock says where we listen, so `tourline chat` on the same data
    # dir talks to this server instead of failing on the lock.
    advertise(server=local_url(host, port))
    serve_app(get_settings(), host=host, port=port, log_level=log_level)


def local_url(host: str, port: int) -> str:
    """The URL a process on this machine reaches a server bound to ``host``:``port`` at."""
    host = host.strip().strip("[]")
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


@cli.command()
def chat(
    caller: Annotated[
        str, typer.Option(help="Who is calling: a phone number, email or device id.")
    ] = "+14155550100",
    server: Annotated[
        str | None,
        typer.Option(
            envvar="TOURLINE_SERVER_URL",
            help="Talk to the server at this URL (e.g. http://127.0.0.1:8000) over its avatar "
            "socket. Default: the server that owns TOURLINE_DATA_DIR, if one runs; "
            "else this process opens the data dir itself.",
        ),
    ] = None,
) -> None:
    """Talk to the agent by text. Reads one caller line per input line when piped."""
    from app.channels.chat import run_chat

    code = asyncio.run(run_chat(get_settings(), caller, sys.stdin, sys.stdout, server=server))
    raise typer.Exit(code)


@cli.command()
def token(
    subject: Annotated[str, typer.Argument(help="The caller: a phone number, email or user id.")],
    ttl: Annotated[float, typer.Option(help="Seconds until the token expires.")] = 3600.0,
) -> None:
    """Print an avatar token for SUBJECT, signed with TOURLINE_AVATAR_SECRET or else this data
    dir's own secret (for testing an avatar client as a known caller; a real app gets its
    tokens from its sign-in back end)."""
    from app.channels.avatar.secret import signing_secret
    from app.channels.avatar.tokens import TokenError, mint_token
    from app.domain.identity import InvalidCallerId, normalize_caller_id

    settings = get_settings()
    secret = signing_secret(settings.avatar_secret, settings.data_dir)
    try:
        typer.echo(mint_token(secret, normalize_caller_id(subject), ttl))
    except (TokenError, InvalidCallerId) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def _open_memory() -> MemoryService:
    """The data dir's memory, or one clear sentence and a non-zero exit (no traceback)."""
    from app.memory.mem0_engine import VectorBackendUnavailableError
    from app.memory.owner_lock import EmbeddedStoreLockedError
    from app.memory.service import MemoryService
    from app.stores.database import StoreSetupError

    try:
        return MemoryService.open(get_settings())
    except EmbeddedStoreLockedError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_STORE_LOCKED) from None
    except VectorBackendUnavailableError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_UNAVAILABLE) from None
    except StoreSetupError as exc:  # a store the settings cannot use as asked
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_UNAVAILABLE) from None


def _progress_bar(total: int, label: str) -> tuple[Any, Callable[[str, int], None]]:
    """A rich progress bar on stderr and the callback that advances it."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(
        TextColumn(label + " [bold]{task.description:<9}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=False,
    )
    task = progress.add_task("", total=total or None)

    def advance(kind: str, n: int) -> None:
        progress.update(task, advance=n, description=kind)

    return progress, advance


@cli.command("export")
def export_cmd(
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="File to write (.jsonl, or .jsonl.gz to compress)."),
    ] = None,
) -> None:
    """Back up everything (calls, exchanges, snapshots, memories, bookings) as JSONL."""
    from datetime import UTC, datetime

    from app.memory.backup import PLURALS, count_records, export_file, points_of

    target = output or Path(f"tourline-backup-{datetime.now(UTC):%Y%m%d-%H%M%S}.jsonl")
    memory = _open_memory()
    try:
        memory.flush(60)  # work resumed at open (a crashed consolidation) lands first
        total = sum(count_records(memory.engine, points_of(memory)).values())
        progress, advance = _progress_bar(total, "export")
        with progress:
            written = export_file(memory, target, advance)
        memory.note_backup(target.resolve(), records=sum(written.values()), counts=written)
    finally:
        memory.close()
    summary = ", ".join(f"{n} {PLURALS[kind]}" for kind, n in written.items())
    typer.echo(f"Exported {summary} to {target}")


# `tourline import` exits with: 0 imported; 1 the database refused the write (rolled back);
# 2 usage or an unusable file; 3 EXIT_STORE_LOCKED, or the database stayed busy; 4
# EXIT_UNAVAILABLE; 6 stored records differ from the file's under --on-conflict fail. Every
# code but 0 means nothing was imported. (5 is `tourline chat`'s refused token.)
EXIT_IMPORT_FAILED = 1
EXIT_INVALID = 2
EXIT_CONFLICTS = 6


class OnConflict(StrEnum):
    """What `tourline import` does with a stored record that differs from the file's."""

    FAIL = "fail"
    SKIP = "skip"
    REPLACE = "replace"


@cli.command("import")
def import_cmd(
    file: Annotated[Path, typer.Argument(help="A file written by `tourline export`.")],
    on_conflict: Annotated[
        OnConflict,
        typer.Option(
            "--on-conflict",
            help="A stored record that differs from the file's: fail (import nothing, list "
            "them), skip (keep the stored one) or replace (take the file's).",
        ),
    ] = OnConflict.FAIL,
    restore_forgotten: Annotated[
        bool,
        typer.Option(
            "--restore-forgotten",
            help="Also import the callers forgotten (tourline forget) after this backup was "
            "taken; without it they stay forgotten.",
        ),
    ] = False,
) -> None:
    """Restore a backup into this data dir, all or nothing (a failed import changes nothing).

    Callers forgotten after the backup was taken are left out unless --restore-forgotten."""
    from sqlalchemy.exc import DBAPIError, OperationalError

    from app.memory.backup import BackupError, ConflictError, backup_counts, import_file

    def fail(code: int, why: str) -> NoReturn:
        typer.echo(f"error: {file}: {why}; nothing was imported", err=True)
        raise typer.Exit(code)

    if not file.is_file():
        typer.echo(f"error: no backup file {file}", err=True)
        raise typer.Exit(EXIT_INVALID)
    try:
        total = sum(backup_counts(file).values())
    except BackupError as exc:
        fail(EXIT_INVALID, str(exc))
    memory = _open_memory()
    try:
        memory.flush(60)  # work resumed at open (a crashed consolidation) lands first
        progress, advance = _progress_bar(2 * total, "import")
        with progress:
            report = import_file(
                memory, file, on_conflict.value, advance, restore_forgotten=restore_forgotten
            )
    except BackupError as exc:
        fail(EXIT_INVALID, str(exc))
    except ConflictError as exc:
        typer.echo(
            f"error: {file}: {exc}; nothing was imported. Run it again with --on-conflict "
            "skip to keep the stored records, or --on-conflict replace to take the file's.",
            err=True,
        )
        raise typer.Exit(EXIT_CONFLICTS) from None
    except OperationalError as exc:
        if "locked" in str(exc.orig) or "lock" in type(exc.orig).__name__.lower():
            fail(EXIT_STORE_LOCKED, "the database is busy (another process is writing to it)")
        fail(EXIT_IMPORT_FAILED, f"the database failed ({_first_line(exc.orig or exc)})")
    except DBAPIError as exc:
        fail(EXIT_IMPORT_FAILED, f"the database refused it ({_first_line(exc.orig or exc)})")
    finally:
        memory.close()
    inserted = sum(report.inserted.values())
    unchanged = sum(report.unchanged.values())
    conflicts = report.conflict_count
    done = {"skip": "kept as stored", "replace": "replaced with the file's"}
    typer.echo(
        f"Imported {inserted} records from {file} ({unchanged} already there"
        + (f", {conflicts} that differ {done[on_conflict.value]}" if conflicts else "")
        + ")"
    )
    left_out = sum(report.forgotten.values())
    if left_out:
        callers = len(report.forgotten_callers)
        typer.echo(
            f"Left out {left_out} records of {callers} caller{'s' if callers != 1 else ''} "
            "forgotten after this backup was taken (tourline forget); they stay forgotten. "
            "Run it again with --restore-forgotten to bring them back."
        )


def _first_line(error: BaseException) -> str:
    """A database error's first line: the rest is SQL and parameters."""
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


@cli.command()
def forget(
    caller_id: Annotated[
        str, typer.Argument(help="Phone number (any format), email or device id.")
    ],
) -> None:
    """Purge every trace of a caller and cancel their bookings (as DELETE /callers/{id})."""
    import json

    from app.domain.identity import InvalidCallerId, masked, normalize_caller_id
    from app.memory.worker import brief

    try:
        cid = normalize_caller_id(caller_id)
    except InvalidCallerId as exc:
        typer.echo(f"error: invalid caller id {caller_id!r}: {exc}", err=True)
        raise typer.Exit(2) from None
    memory = _open_memory()
    try:
        removed = memory.forget(cid)
    except Exception as exc:
        typer.echo(
            f"error: could not forget {masked(cid)}: {brief(exc)}; nothing is lost by "
            "running the same command again",
            err=True,
        )
        raise typer.Exit(1) from None
    finally:
        memory.close()
    typer.echo(json.dumps(removed))


@cli.command()
def bench(
    name: Annotated[str, typer.Argument(help="Which benchmark: planner.")] = "planner",
) -> None:
    """Run a benchmark from bench/ and update docs/benchmarks.md."""
    import runpy

    script = Path(__file__).resolve().parent.parent / "bench" / f"{name}.py"
    if not script.exists():
        typer.echo(f"No benchmark named {name!r} (looked for {script}).", err=True)
        raise typer.Exit(2)
    sys.argv = [str(script)]
    runpy.run_path(str(script), run_name="__main__")


def main() -> None:
    """Console-script entry point."""
    from app.stores.private import make_private

    make_private()  # exports and backups hold what callers said: 0600 wherever they go
    cli()


if __name__ == "__main__":
    main()
