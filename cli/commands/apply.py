"""`oscar-cli apply FDL` and `oscar-cli delete FDL`, across the clusters the FDL names.

An FDL's `functions.oscar` is a list of `{<cluster_id>: <service>}`; as upstream, each entry goes
to the cluster of the configuration file named by its key (`default-cluster` means the default
one), unless `-c ID` or `--default` redirects every entry. Every target cluster is resolved and
checked before anything is sent, so an unknown id fails with nothing half-applied.

The FDL's `bridges` (ours) go to the cluster that receives their service (else the `-c` or
default cluster): applied after the services they feed, deleted before them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from cli import config as config_file
from cli.client import ClientError, OscarClient
from cli.commands.bridge import delete_bridge, send_bridges
from cli.common import (
    DEFAULT_CONFIG,
    ConfigOption,
    DebugOption,
    fail,
    run_logins,
)
from oscar.models.fdl import FDLError, load_fdl

FDLArgument = Annotated[Path, typer.Argument(metavar="FDL_FILE", help="FDL file.")]
TargetOption = Annotated[
    str | None,
    typer.Option("--cluster", "-c", help="Send every entry to this cluster instead."),
]
DefaultOption = Annotated[
    bool, typer.Option("--default", help="Send every entry to the default cluster.")
]
DEFAULT_CLUSTER_KEY = "default-cluster"  # upstream's FDL key for "the default cluster"


@dataclass
class Entry:
    """One FDL entry and the cluster it goes to."""

    key: str
    cluster_id: str
    service: dict[str, Any]
    original: str = ""  # the service's name in the file (before `-n`)


@dataclass
class BridgeEntry:
    """One of the FDL's bridges and the cluster it goes to."""

    cluster_id: str
    bridge: dict[str, Any]


@dataclass
class Plan:
    """Where every service and bridge of an FDL goes."""

    entries: list[Entry]
    bridges: list[BridgeEntry]


def _rename_bucket(path: str, old: str, new: str) -> str:
    """`old/sub/` → `new/sub/` when the path's bucket is the service's own (case-insensitive)."""
    stripped = path.strip(" ")
    body = stripped.strip("/")
    if not body:
        return path
    bucket, _, rest = body.partition("/")
    if bucket.lower() != old.lower():
        return path
    renamed = f"{new}/{rest}" if rest else new
    if stripped.startswith("/"):
        renamed = "/" + renamed
    if stripped.endswith("/") and not renamed.endswith("/"):
        renamed += "/"
    return renamed


def _override_name(service: dict[str, Any], new: str) -> None:
    """Upstream's `-n`: rename the service and the buckets named after it."""
    old = str(service.get("name") or "").strip()
    if not old or old == new:
        service["name"] = new
        return
    for key in ("input", "output"):
        for io in service.get(key) or []:
            if io.get("path"):
                io["path"] = _rename_bucket(io["path"], old, new)
    mount = service.get("mount") or {}
    if mount.get("path"):
        mount["path"] = _rename_bucket(mount["path"], old, new)
    service["name"] = new


def _plan(
    fdl_path: Path,
    settings: config_file.CliConfig,
    target: str | None,
    use_default: bool,
    name: str | None,
) -> Plan:
    """Parse the FDL and resolve every entry's cluster; fail before anything is sent."""
    try:
        fdl = load_fdl(fdl_path)
    except FDLError as exc:
        for error in exc.errors:
            where = f"{fdl_path}:{error.line}" if error.line else str(fdl_path)
            typer.secho(f"{where}: {error.field or 'file'}: {error.message}", err=True, fg="red")
        fail(f"{fdl_path} is not a valid FDL file")
    known = ", ".join(sorted(settings.oscar)) or "none"
    entries: list[Entry] = []
    for index, item in enumerate(fdl.services):
        if use_default:
            cluster_id, source = settings.default, "--default"
        elif target:
            cluster_id, source = target, "-c"
        elif item.cluster_id == DEFAULT_CLUSTER_KEY:
            cluster_id, source = settings.default, f"'{DEFAULT_CLUSTER_KEY}' in {fdl_path}"
        else:
            cluster_id, source = item.cluster_id, f"functions.oscar[{index}] of {fdl_path}"
        if not cluster_id:
            fail("no default cluster is set: use `oscar-cli cluster default -s ID`")
        if cluster_id not in settings.oscar:
            fail(f"cluster '{cluster_id}' (from {source}) is not configured (known: {known})")
        service = item.service.model_dump(mode="json", by_alias=True, exclude={"token"})
        service["cluster_id"] = cluster_id
        if name and name.strip():
            _override_name(service, name.strip())
        entries.append(Entry(item.cluster_id, cluster_id, service, item.service.name))
    bridges: list[BridgeEntry] = []
    for bridge in fdl.bridges:
        data = bridge.private()
        if "credentials" not in bridge.model_fields_set:
            data.pop("credentials")  # left out: an update keeps the stored ones
        feeds = next((e for e in entries if e.original == bridge.service), None)
        if feeds is not None:
            # Where its service goes, under the name it is deployed with (`-n`).
            cluster_id, data["service"] = feeds.cluster_id, feeds.service["name"]
        else:
            cluster_id = settings.default if use_default else (target or settings.default)
            if not cluster_id:
                fail("no default cluster is set: use `oscar-cli cluster default -s ID`")
            if cluster_id not in settings.oscar:
                fail(
                    f"cluster '{cluster_id}' (for bridge '{bridge.name}') is not configured "
                    f"(known: {known})"
                )
        bridges.append(BridgeEntry(cluster_id, data))
    return Plan(entries, bridges)


def _load(config: Path) -> config_file.CliConfig:
    try:
        return config_file.load(config)
    except config_file.ConfigError as exc:
        fail(str(exc))


def _clients(
    settings: config_file.CliConfig, plan: Plan, debug: bool, config: Path
) -> dict[str, OscarClient]:
    targets = [e.cluster_id for e in plan.entries] + [b.cluster_id for b in plan.bridges]
    logins = run_logins()  # clusters sharing one OIDC login exchange its refresh token once
    return {
        cid: OscarClient(cid, settings.oscar[cid], debug, logins=logins, config_path=config)
        for cid in dict.fromkeys(targets)
    }


def apply(
    fdl: FDLArgument,
    cluster: TargetOption = None,
    use_default: DefaultOption = False,
    name: Annotated[
        str | None,
        typer.Option("--name", "-n", help="Deploy under this service (and bucket) name."),
    ] = None,
    config: ConfigOption = DEFAULT_CONFIG,
    debug: DebugOption = False,
) -> None:
    """Create or edit the FDL's services, each on the cluster its entry names, then its bridges."""
    settings = _load(config)
    plan = _plan(fdl, settings, cluster, use_default, name)
    clients: dict[str, OscarClient] = {}
    try:
        clients = _clients(settings, plan, debug, config)
        # As upstream: reach every target cluster first. A service with replicas gets the
        # credentials of all of them (`clusters`) so its jobs can delegate; upstream gives them
        # to every service, but a service that never delegates should not hold admin passwords.
        for client in clients.values():
            client.request("GET", "/system/config")
        shared = {
            cid: {
                "endpoint": settings.oscar[cid].endpoint,
                "auth_user": settings.oscar[cid].auth_user,
                "auth_password": settings.oscar[cid].auth_password,
                "ssl_verify": settings.oscar[cid].ssl_verify,
            }
            for cid in clients
        }
        typer.echo(f'Applying file "{fdl.name}"...')
        for entry in plan.entries:
            client, service = clients[entry.cluster_id], entry.service
            if service.get("replicas"):
                service["clusters"] = {**(service.get("clusters") or {}), **shared}
            exists = (
                client.request(
                    "GET", f"/system/services/{service['name']}", expect=(200, 404)
                ).status_code
                == 200
            )
            method = "PUT" if exists else "POST"
            client.request(method, "/system/services", json=service, expect=(200, 201, 204))
            verb = "updated" if exists else "created"
            typer.echo(f"service '{service['name']}' {verb} on '{entry.cluster_id}'")
        # After the services: a bridge is refused unless its service exists.
        for item in plan.bridges:
            send_bridges(clients[item.cluster_id], [item.bridge])
    except ClientError as exc:
        fail(str(exc))
    finally:
        for client in clients.values():
            client.close()


def delete(
    fdl: FDLArgument,
    cluster: TargetOption = None,
    use_default: DefaultOption = False,
    name: Annotated[
        str | None,
        typer.Option("--name", "-n", help="The name the services were applied with (`apply -n`)."),
    ] = None,
    config: ConfigOption = DEFAULT_CONFIG,
    debug: DebugOption = False,
) -> None:
    """Delete the FDL's bridges, then its services, each from the cluster its entry names."""
    settings = _load(config)
    plan = _plan(fdl, settings, cluster, use_default, name)
    clients: dict[str, OscarClient] = {}
    try:
        clients = _clients(settings, plan, debug, config)
        typer.echo(f'Deleting file "{fdl.name}"...')
        # Before the services, so no bridge is left feeding a service that is gone.
        for item in plan.bridges:
            bridge_name = item.bridge["name"]
            if delete_bridge(clients[item.cluster_id], bridge_name):
                typer.echo(f"bridge '{bridge_name}' deleted from '{item.cluster_id}'")
            else:
                typer.echo(f"bridge '{bridge_name}' was not on '{item.cluster_id}'")
        for entry in plan.entries:
            service_name = entry.service["name"]
            client = clients[entry.cluster_id]
            client.request("DELETE", f"/system/services/{service_name}", expect=(204,))
            typer.echo(f"service '{service_name}' deleted from '{entry.cluster_id}'")
    except ClientError as exc:
        fail(str(exc))
    finally:
        for client in clients.values():
            client.close()
