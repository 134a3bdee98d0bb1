"""`oscar-cli`: drive OSCAR clusters (ours or upstream) from the terminal.

Commands, arguments, flags and short names follow upstream's Go oscar-cli (`cmd/*.go`); the
short names (`svc`, `ls`, `rm`, ...) are registered as hidden aliases.
"""

from __future__ import annotations

import typer

from cli.commands import (  # noqa: F401 - storage adds commands
    apply,
    bridge,
    bucket,
    cluster,
    hub,
    service,
    storage,
)
from cli.common import DEFAULT_CONFIG, ConfigOption, alias, alias_group
from oscar import __version__

app = typer.Typer(
    help="oscar-cli: drive OSCAR clusters from the terminal.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(cluster.app, name="cluster")
alias_group(app, ["c"], cluster.app)
app.add_typer(service.app, name="service")
alias_group(app, ["services", "svc", "s"], service.app)
app.add_typer(bucket.app, name="bucket")
alias_group(app, ["b", "buckets"], bucket.app)
app.add_typer(hub.app, name="hub")
alias_group(app, ["h"], hub.app)
app.add_typer(bridge.app, name="bridge")  # ours: upstream oscar-cli has no bridges
alias_group(app, ["br", "bridges"], bridge.app)
app.command("apply")(apply.apply)
alias(app, ["a"], apply.apply)
app.command("delete")(apply.delete)
alias(app, ["d", "del", "remove", "rm"], apply.delete)

INTERACTIVE_EXIT = 2


@app.command("interactive")
def interactive(config: ConfigOption = DEFAULT_CONFIG) -> None:
    """Upstream's terminal UI: not supported by this oscar-cli (use the commands)."""
    typer.secho(
        "error: `interactive` (upstream's terminal UI) is not supported by this oscar-cli; "
        "use the commands (`oscar-cli --help`) or the OSCAR dashboard",
        err=True,
        fg=typer.colors.RED,
    )
    raise typer.Exit(INTERACTIVE_EXIT)


alias(app, ["ui"], interactive)


@app.command("version")
def version() -> None:
    """Print the version (as upstream: `version:` and `git commit:` lines)."""
    typer.echo(f"version: {__version__}")
    typer.echo("git commit: ")


alias(app, ["v"], version)


def main() -> None:
    """Console-script entry point."""
    app()
