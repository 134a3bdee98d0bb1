"""`oscar-cli`: drive OSCAR clusters (ours or upstream) from the terminal."""

from __future__ import annotations

import typer

from cli.commands import apply, bucket, cluster, service, storage  # noqa: F401 - storage adds commands
from oscar import __version__

app = typer.Typer(
    help="oscar-cli: drive OSCAR clusters from the terminal.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(cluster.app, name="cluster")
app.add_typer(service.app, name="service")
app.add_typer(bucket.app, name="bucket")
app.command("apply")(apply.apply)
app.command("delete")(apply.delete)


@app.command()
def version() -> None:
    """Print the client version."""
    typer.echo(f"oscar-cli {__version__}")


def main() -> None:
    """Console-script entry point."""
    app()
