"""Options and helpers shared by every oscar-cli command."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import click
import typer
import yaml

from cli import config as config_file
from cli.client import ClientError, OscarClient
from cli.oidc import Logins

_GROUP_KEY = "oscar_cli_group_options"  # ctx.meta: flags given on a group (`service --config`)
_LOGINS_KEY = "oscar_cli_logins"  # ctx.meta: this run's OIDC access tokens


def _from_group(name: str) -> Callable[[typer.Context, Any, Any], Any]:
    """Option callback: a value given on an enclosing group wins over the environment and the
    default, as with cobra's persistent flags; one given on the command itself wins over all."""

    def resolve(ctx: typer.Context, param: Any, value: Any) -> Any:
        given = ctx.meta.get(_GROUP_KEY, {}).get(name)
        source = ctx.get_parameter_source(param.name)
        if given is not None and (source is None or source.name in ("DEFAULT", "ENVIRONMENT")):
            return type(value)(given) if isinstance(value, Path) else given
        return value

    return resolve


ConfigOption = Annotated[
    Path,
    typer.Option(
        "--config",
        help="Configuration file.",
        envvar="OSCAR_CLI_CONFIG",
        callback=_from_group("config"),
    ),
]
ClusterOption = Annotated[
    str | None,
    typer.Option(
        "--cluster",
        "-c",
        help="Cluster id (default: the default cluster).",
        callback=_from_group("cluster"),
    ),
]
DebugOption = Annotated[
    bool, typer.Option("--debug", help="Show the HTTP exchange (credentials masked).")
]


class Output(StrEnum):
    """Output formats."""

    TABLE = "table"
    JSON = "json"
    YAML = "yaml"


OutputOption = Annotated[Output, typer.Option("--output", "-o", help="Output format.")]
DEFAULT_CONFIG = config_file.DEFAULT_PATH


def fail(message: str) -> NoReturn:
    """Print one error line and exit 1."""
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(1)


def run_logins() -> Logins:
    """The OIDC access tokens of this run. They live in the click context's `meta` (one per
    invocation) rather than in a global, so a process that runs several commands (tests, a
    shell embedding the app) asks the provider again for each, as separate runs would."""
    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return Logins()
    logins = ctx.meta.get(_LOGINS_KEY)
    if not isinstance(logins, Logins):
        logins = ctx.meta[_LOGINS_KEY] = Logins()
    return logins


@contextmanager
def _errors_as_one_line(client: OscarClient) -> Iterator[OscarClient]:
    try:
        yield client
    except ClientError as exc:
        fail(str(exc))
    finally:
        client.close()


@contextmanager
def cluster_client(path: Path, cluster: str | None, debug: bool = False) -> Iterator[OscarClient]:
    """A client for the chosen cluster; configuration and HTTP errors become one clear line."""
    try:
        cluster_id, settings = config_file.load(path).cluster(cluster)
    except config_file.ConfigError as exc:
        fail(str(exc))
    client = OscarClient(cluster_id, settings, debug, logins=run_logins(), config_path=path)
    with _errors_as_one_line(client) as client:
        yield client


@contextmanager
def endpoint_client(endpoint: str, debug: bool = False) -> Iterator[OscarClient]:
    """A client for an endpoint not in the configuration (no credentials of its own)."""
    settings = config_file.ClusterConfig(endpoint=endpoint)
    with _errors_as_one_line(OscarClient("endpoint", settings, debug)) as client:
        yield client


def show(data: Any, output: Output, columns: list[str] | None = None) -> None:
    """Print `data` as JSON, YAML, or a table of `columns` (a list of dicts)."""
    if output == Output.JSON:
        typer.echo(json.dumps(data, indent=2, default=str))
    elif output == Output.YAML:
        typer.echo(yaml.safe_dump(data, sort_keys=False).rstrip())
    else:
        rows = data if isinstance(data, list) else [data]
        columns = columns or sorted({k for row in rows for k in row})
        cells = [
            [str(row.get(c, "") if row.get(c) is not None else "") for c in columns] for row in rows
        ]
        widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
        typer.echo(
            "  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()
        )
        for row in cells:
            typer.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def alias(app: typer.Typer, names: list[str], command: Any) -> None:
    """Register `command` under upstream's short names too (hidden from the help)."""
    for name in names:
        app.command(name, hidden=True)(command)


def alias_group(parent: typer.Typer, names: list[str], group: typer.Typer) -> None:
    """Register a sub-app under upstream's short names too (hidden from the help)."""
    for name in names:
        parent.add_typer(group, name=name, hidden=True)


GroupConfigOption = Annotated[
    Path | None, typer.Option("--config", help="Configuration file.", show_default=False)
]
GroupClusterOption = Annotated[
    str | None, typer.Option("--cluster", "-c", help="Cluster id for every command below.")
]


def _set_defaults(ctx: typer.Context, values: dict[str, str | None]) -> None:
    chosen = {k: v for k, v in values.items() if v is not None}
    ctx.meta[_GROUP_KEY] = {**ctx.meta.get(_GROUP_KEY, {}), **chosen}


def group_options(app: typer.Typer, *, cluster: bool = False) -> None:
    """Accept upstream's persistent flags on the group itself (`service --config F list`,
    `service logs -c ID list NAME`): they become the defaults of every command below."""
    if cluster:

        @app.callback()
        def with_cluster(
            ctx: typer.Context,
            config: GroupConfigOption = None,
            cluster_id: GroupClusterOption = None,
        ) -> None:
            _set_defaults(ctx, {"config": str(config) if config else None, "cluster": cluster_id})

        return

    @app.callback()
    def with_config(ctx: typer.Context, config: GroupConfigOption = None) -> None:
        _set_defaults(ctx, {"config": str(config) if config else None})
