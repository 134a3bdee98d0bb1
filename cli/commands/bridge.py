"""`oscar-cli bridge ...`: event bridges (`/system/bridges`, ours; upstream has no such API).

`apply` and `import` create a bridge or, when one of that name exists, replace its definition.
Credentials are never printed: the server answers them masked (`********`), `import --dry-run`
masks them, and a masked value sent back keeps the stored one.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
import yaml

from cli.client import ClientError, OscarClient
from cli.common import (
    DEFAULT_CONFIG,
    ClusterOption,
    ConfigOption,
    DebugOption,
    Output,
    OutputOption,
    alias,
    cluster_client,
    fail,
    group_options,
    show,
)
from oscar.bridges.dcnios import Conversion, DcniosError, describe
from oscar.bridges.dcnios import load as load_dcnios
from oscar.errors import FieldError
from oscar.models.bridge import MASK, InvalidBridgeError, parse_bridge
from oscar.models.fdl import compose_with_lines, line_of, yaml_problem

app = typer.Typer(help="Manage event bridges (watched stores and queues).", no_args_is_help=True)
group_options(app)

NameArgument = Annotated[str, typer.Argument(metavar="BRIDGE_NAME", help="Bridge name.")]
COLUMNS = ["name", "type", "service", "state", "last_event", "lag", "events", "errors", "message"]


def _age(seconds: float | None) -> str:
    """`42s`, `3m05s`, `2h07m`, `4d03h`: how long ago the last event was recorded."""
    if seconds is None:
        return ""
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d{whole % 86400 // 3600:02d}h"


def _has_masked(bridge: dict[str, Any]) -> bool:
    credentials = bridge.get("credentials")
    return isinstance(credentials, dict) and MASK in credentials.values()


def send_bridges(client: OscarClient, bridges: list[dict[str, Any]]) -> None:
    """Create each bridge, or replace its definition when the name exists (409 on POST).

    A bridge with masked credentials (`********`, as `get` shows them) is only ever an update:
    created, it would store the mask as its password.
    """
    where = client.cluster_id
    for bridge in bridges:
        name = bridge["name"]
        try:
            if _has_masked(bridge):
                found = client.request("GET", f"/system/bridges/{name}", expect=(200, 404))
                if found.status_code == 404:
                    raise ClientError(
                        f"it does not exist on '{where}' and its credentials are masked "
                        f"({MASK}): give them in clear to create it"
                    )
                created = False
            else:
                response = client.request(
                    "POST", "/system/bridges", json=bridge, expect=(201, 404, 405, 409)
                )
                if response.status_code in (404, 405):
                    raise ClientError(
                        f"cluster '{where}' has no bridges API (POST /system/bridges answered "
                        f"{response.status_code}): it does not support bridges"
                    )
                created = response.status_code == 201
            if not created:
                client.request("PUT", f"/system/bridges/{name}", json=bridge, expect=(200,))
        except ClientError as exc:
            raise ClientError(f"bridge '{name}': {exc}") from None
        typer.echo(f"bridge '{name}' {'created' if created else 'updated'} on '{where}'")


def delete_bridge(client: OscarClient, name: str) -> bool:
    """Delete a bridge; False when there was none (404)."""
    response = client.request("DELETE", f"/system/bridges/{name}", expect=(204, 404))
    return response.status_code == 204


@app.command("list")
def list_bridges(
    cluster: ClusterOption = None,
    config: ConfigOption = DEFAULT_CONFIG,
    debug: DebugOption = False,
    output: OutputOption = Output.TABLE,
) -> None:
    """List the bridges of a cluster and what each is doing."""
    with cluster_client(config, cluster, debug) as client:
        bridges = client.request("GET", "/system/bridges").json()
    if output != Output.TABLE:
        show(bridges, output)
        return
    rows = []
    for bridge in bridges:
        status = bridge.get("status") or {}
        rows.append(
            {
                "name": bridge.get("name"),
                "type": bridge.get("type"),
                "service": bridge.get("service"),
                "state": status.get("state"),
                "last_event": _age(status.get("last_event_age")),
                "lag": status.get("lag"),
                "events": status.get("events"),
                "errors": status.get("errors"),
                "message": status.get("message"),
            }
        )
    show(rows, output, COLUMNS)


@app.command("get")
def get(
    name: NameArgument,
    cluster: ClusterOption = None,
    config: ConfigOption = DEFAULT_CONFIG,
    debug: DebugOption = False,
    output: OutputOption = Output.YAML,
) -> None:
    """Show a bridge's definition (credentials masked) and status."""
    with cluster_client(config, cluster, debug) as client:
        bridge = client.request("GET", f"/system/bridges/{name}").json()
    show(bridge, Output.YAML if output == Output.TABLE else output)


def _invalid(path: Path, errors: list[FieldError]) -> NoReturn:
    for error in errors:
        typer.secho(describe(error, str(path)), err=True, fg="red")
    fail(f"{path} holds invalid bridge definitions: nothing was sent")


def read_bridges(path: Path) -> list[dict[str, Any]]:
    """The bridge definitions of a YAML or JSON file: one bridge, a list, or a mapping with a
    `bridges` list (an FDL's); all checked here first, so a bad file sends nothing."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"cannot read {path}: {exc.strerror if isinstance(exc, OSError) else 'not UTF-8'}")
    try:
        data, lines = compose_with_lines(text)
    except yaml.YAMLError as exc:
        _invalid(path, [yaml_problem(exc)])
    if isinstance(data, dict) and "bridges" in data and "type" not in data:
        items, prefix = data["bridges"], "bridges"
    elif isinstance(data, list):
        items, prefix = data, ""
    else:
        items, prefix = [data], None  # one bridge: its fields are the paths
    if not isinstance(items, list):
        _invalid(path, [FieldError("bridges", "must be a list", line_of("bridges", lines))])
    errors: list[FieldError] = []
    bridges: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        if isinstance(item, dict):
            # `get -o yaml` output applies unchanged: its status is the server's, not a field.
            item = {k: v for k, v in item.items() if k != "status"}
        try:
            parse_bridge(item, prefix="" if prefix is None else f"{prefix}[{index}]")
        except InvalidBridgeError as exc:
            errors += [FieldError(e.field, e.message, line_of(e.field, lines)) for e in exc.errors]
            continue
        bridges.append(item)
    if errors:
        _invalid(path, errors)
    if not bridges:
        fail(f"{path} holds no bridge definition")
    return bridges


@app.command("apply")
def apply(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="YAML or JSON: a bridge or a list.")],
    cluster: ClusterOption = None,
    config: ConfigOption = DEFAULT_CONFIG,
    debug: DebugOption = False,
) -> None:
    """Create the file's bridges, or update those that exist."""
    bridges = read_bridges(file)
    with cluster_client(config, cluster, debug) as client:
        send_bridges(client, bridges)


@app.command("delete")
def delete(
    names: Annotated[list[str], typer.Argument(metavar="BRIDGE_NAME...", help="Bridges.")],
    cluster: ClusterOption = None,
    config: ConfigOption = DEFAULT_CONFIG,
    debug: DebugOption = False,
) -> None:
    """Stop and delete bridges (their jobs stay)."""
    with cluster_client(config, cluster, debug) as client:
        for name in names:
            client.request("DELETE", f"/system/bridges/{name}", expect=(204,))
            typer.echo(f"bridge '{name}' deleted")


def convert_dcnios(path: Path) -> Conversion:
    """Convert a DCNiOS workflow, printing its warnings on stderr; exit 1 when it cannot be
    converted or yields no bridge."""
    try:
        # DCNiOS reads the user's AWS_* variables and ~/.aws/credentials; so does the import.
        conversion = load_dcnios(path, environ=dict(os.environ))
    except DcniosError as exc:
        for error in exc.errors:
            typer.secho(describe(error, str(path)), err=True, fg="red")
        fail(f"{path} cannot be converted: nothing was sent")
    for warning in conversion.warnings:
        typer.secho(f"warning: {describe(warning, str(path))}", err=True, fg="yellow")
    if not conversion.bridges:
        fail(f"{path} connects no source to an OSCAR destination: no bridge to import")
    return conversion


@app.command("import")
def import_dcnios(
    file: Annotated[Path, typer.Argument(metavar="DCNIOS_FILE", help="DCNiOS workflow YAML.")],
    dry: Annotated[
        bool, typer.Option("--dry-run", help="Print the bridges (credentials masked); send none.")
    ] = False,
    cluster: ClusterOption = None,
    config: ConfigOption = DEFAULT_CONFIG,
    debug: DebugOption = False,
) -> None:
    """Turn a DCNiOS workflow's source → OSCAR connections into bridges and apply them."""
    conversion = convert_dcnios(file)
    if dry:
        typer.echo(yaml.safe_dump(conversion.masked(), sort_keys=False).rstrip())
        return
    with cluster_client(config, cluster, debug) as client:
        send_bridges(client, conversion.bridges)


# Short names, as for the other groups.
alias(app, ["ls"], list_bridges)
alias(app, ["g"], get)
alias(app, ["a"], apply)
alias(app, ["d", "del", "remove", "rm"], delete)
