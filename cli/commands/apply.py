"""`oscar-cli apply FDL` and `oscar-cli delete FDL`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.common import (
    DEFAULT_CONFIG,
    ClusterOption,
    ConfigOption,
    DebugOption,
    cluster_client,
    fail,
)
from oscar.models.fdl import FDLError, load_fdl

FDLArgument = Annotated[Path, typer.Argument(metavar="FDL", help="FDL file.")]


def _services(path: Path, name: str | None) -> list[tuple[str, dict[str, object]]]:
    try:
        fdl = load_fdl(path)
    except FDLError as exc:
        for error in exc.errors:
            where = f"{path}:{error.line}" if error.line else str(path)
            typer.secho(f"{where}: {error.field or 'file'}: {error.message}", err=True, fg="red")
        fail(f"{path} is not a valid FDL file")
    chosen = [
        (entry.cluster_id, entry.service.model_dump(mode="json", by_alias=True, exclude={"token"}))
        for entry in fdl.services
        if name is None or entry.service.name == name
    ]
    if not chosen:
        fail(f"no service named '{name}' in {path}")
    return chosen


def apply(
    fdl: FDLArgument,
    cluster: ClusterOption = None,
    name: Annotated[
        str | None, typer.Option("--name", "-n", help="Apply only this service.")
    ] = None,
    config: ConfigOption = DEFAULT_CONFIG,
    debug: DebugOption = False,
) -> None:
    """Create or update the services of an FDL file (PUT when the service exists, else POST)."""
    for _, service in _services(fdl, name):
        with cluster_client(config, cluster, debug) as client:
            exists = (
                client.request(
                    "GET", f"/system/services/{service['name']}", expect=(200, 404)
                ).status_code
                == 200
            )
            method = "PUT" if exists else "POST"
            client.request(method, "/system/services", json=service, expect=(201, 204))
            verb = "updated" if exists else "created"
            typer.echo(f"service '{service['name']}' {verb} on '{client.cluster_id}'")


def delete(
    fdl: FDLArgument,
    cluster: ClusterOption = None,
    name: Annotated[
        str | None, typer.Option("--name", "-n", help="Delete only this service.")
    ] = None,
    config: ConfigOption = DEFAULT_CONFIG,
    debug: DebugOption = False,
) -> None:
    """Delete the services of an FDL file."""
    for _, service in _services(fdl, name):
        with cluster_client(config, cluster, debug) as client:
            client.request("DELETE", f"/system/services/{service['name']}", expect=(204,))
            typer.echo(f"service '{service['name']}' deleted from '{client.cluster_id}'")
