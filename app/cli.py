"""The ``tourline`` command line: serve the agent, chat with it by text, run benchmarks."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from app.settings import get_settings

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

    from app.web.server import create_app

    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    uvicorn.run(create_app(get_settings()), host=host, port=port, log_level=log_level)


@cli.command()
def chat(
    caller: Annotated[
        str, typer.Option(help="Who is calling: a phone number, email or device id.")
    ] = "+14155550100",
) -> None:
    """Talk to the agent by text. Reads one caller line per input line when piped."""
    from app.chat import run_chat

    raise typer.Exit(asyncio.run(run_chat(get_settings(), caller, sys.stdin, sys.stdout)))


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
    cli()


if __name__ == "__main__":
    main()
