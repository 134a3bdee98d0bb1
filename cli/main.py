"""`oscar-cli` entry point. Cluster, apply, service and storage commands arrive with their issue."""

from __future__ import annotations

import typer

from oscar import __version__

app = typer.Typer(help="oscar-cli: drive OSCAR clusters from the terminal.", no_args_is_help=True)


@app.command()
def version() -> None:
    """Print the client version."""
    typer.echo(f"oscar-cli {__version__}")


@app.callback()
def _root() -> None:
    """Keep `version` a sub-command while it is the only one."""


def main() -> None:
    """Console-script entry point."""
    app()
