"""Options and helpers shared by every oscar-cli command."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
import yaml

from cli import config as config_file
from cli.client import ClientError, OscarClient

ConfigOption = Annotated[
    Path,
    typer.Option("--config", help="Configuration file.", envvar="OSCAR_CLI_CONFIG"),
]
ClusterOption = Annotated[
    str | None, typer.Option("--cluster", "-c", help="Cluster id (default: the default cluster).")
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
    with _errors_as_one_line(OscarClient(cluster_id, settings, debug)) as client:
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
