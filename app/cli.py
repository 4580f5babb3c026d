"""The ``tourline`` command line: serve, chat by text, back up and forget callers, benchmarks."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from app.settings import get_settings

if TYPE_CHECKING:
    from app.memory.service import MemoryService

EXIT_STORE_LOCKED = 3  # same code as `tourline chat`: another process owns the data dir
EXIT_UNAVAILABLE = 4  # the configured vector backend could not be reached

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
    import uvicorn

    from app.memory.owner_lock import advertise
    from app.web.server import create_app

    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # The data dir's owner lock says where we listen, so `tourline chat` on the same data
    # dir talks to this server instead of failing on the lock.
    advertise(server=local_url(host, port))
    uvicorn.run(create_app(get_settings()), host=host, port=port, log_level=log_level)


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


def _open_memory() -> MemoryService:
    """The data dir's memory, or one clear sentence and a non-zero exit (no traceback)."""
    from app.memory.mem0_engine import VectorBackendUnavailableError
    from app.memory.owner_lock import EmbeddedStoreLockedError
    from app.memory.service import MemoryService

    try:
        return MemoryService.open(get_settings())
    except EmbeddedStoreLockedError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_STORE_LOCKED) from None
    except VectorBackendUnavailableError as exc:
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


@cli.command("import")
def import_cmd(
    file: Annotated[Path, typer.Argument(help="A file written by `tourline export`.")],
) -> None:
    """Restore a backup into this data dir; records already there are left as they are."""
    from app.memory.backup import BackupError, backup_counts, import_file

    if not file.is_file():
        typer.echo(f"error: no backup file {file}", err=True)
        raise typer.Exit(2)
    memory = _open_memory()
    try:
        try:
            progress, advance = _progress_bar(sum(backup_counts(file).values()), "import")
            with progress:
                report = import_file(memory, file, advance)
        except BackupError as exc:
            typer.echo(f"error: {file}: {exc}", err=True)
            raise typer.Exit(2) from None
    finally:
        memory.close()
    inserted = sum(report.inserted.values())
    unchanged = sum(report.unchanged.values())
    conflicts = sum(report.conflicts.values())
    typer.echo(
        f"Imported {inserted} records from {file} ({unchanged} already there"
        + (f", {conflicts} kept as stored because they differ" if conflicts else "")
        + ")"
    )
    if not report.complete:
        typer.echo(
            f"error: {file} was cut short (no end record); import it again once whole", err=True
        )
        raise typer.Exit(1)


@cli.command()
def forget(
    caller_id: Annotated[
        str, typer.Argument(help="Phone number (any format), email or device id.")
    ],
) -> None:
    """Purge every trace of a caller and cancel their bookings (as DELETE /callers/{id})."""
    import json

    from app.domain.identity import InvalidCallerId, normalize_caller_id

    try:
        normalize_caller_id(caller_id)
    except InvalidCallerId as exc:
        typer.echo(f"error: invalid caller id {caller_id!r}: {exc}", err=True)
        raise typer.Exit(2) from None
    memory = _open_memory()
    try:
        removed = memory.forget(caller_id)
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
