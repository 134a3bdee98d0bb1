"""`oscar-cli cluster ...`: the clusters in the configuration file."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from cli import config as config_file
from cli import oidc
from cli.client import ClientError
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

app = typer.Typer(help="Manage the configured clusters.", no_args_is_help=True)
group_options(app)


def _load(path: config_file.Path) -> config_file.CliConfig:
    try:
        return config_file.load(path)
    except config_file.ConfigError as exc:
        fail(str(exc))


@app.command("add")
def add(
    identifier: Annotated[str, typer.Argument(metavar="IDENTIFIER")],
    endpoint: Annotated[str, typer.Argument(metavar="ENDPOINT")],
    username: Annotated[str | None, typer.Argument(metavar="USERNAME")] = None,
    password: Annotated[str | None, typer.Argument(metavar="PASSWORD")] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin.")
    ] = False,
    oidc_account: Annotated[
        str | None, typer.Option("--oidc-account-name", "-o", help="oidc-agent account.")
    ] = None,
    refresh_token: Annotated[
        str | None, typer.Option("--oidc-refresh-token", "-t", help="OIDC refresh token.")
    ] = None,
    device: Annotated[
        bool,
        typer.Option(
            "--device",
            help="Log in with OIDC's device-code flow: approve a code in any browser.",
        ),
    ] = False,
    oidc_issuer: Annotated[
        str | None,
        typer.Option(
            "--oidc-issuer",
            help="OIDC issuer URL (default: the cluster's first, from its /auth/config; "
            "with -t alone, EGI Check-in).",
        ),
    ] = None,
    oidc_client_id: Annotated[
        str | None,
        typer.Option(
            "--oidc-client-id",
            help="OIDC client id (default: the cluster's, from its /auth/config).",
        ),
    ] = None,
    oidc_scopes: Annotated[
        str | None,
        typer.Option(
            "--oidc-scopes",
            help="Scopes to ask for (default: the cluster's, else 'openid profile email').",
        ),
    ] = None,
    disable_ssl: Annotated[
        bool, typer.Option("--disable-ssl", help="Do not verify TLS certificates.")
    ] = False,
    config: ConfigOption = DEFAULT_CONFIG,
) -> None:
    """Add (or replace) a cluster; the first one becomes the default."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    provider_options = oidc_issuer or oidc_client_id or oidc_scopes
    if device and (username or password is not None or oidc_account or refresh_token):
        fail("--device logs in by itself: give it no USERNAME/PASSWORD, -o or -t")
    if provider_options and not (device or refresh_token):
        fail("--oidc-issuer, --oidc-client-id and --oidc-scopes go with --device or -t")
    if not (device or oidc_account or refresh_token) and (not username or password is None):
        fail(
            "give USERNAME and PASSWORD (or --password-stdin), an OIDC account or refresh "
            "token, or --device"
        )
    settings = _load(config)  # a broken file fails before the user logs in
    verify = not disable_ssl
    extra: dict[str, str] = {}
    try:
        if device or oidc_issuer or oidc_client_id:
            login = oidc.choose_login(
                endpoint, verify, oidc_issuer, oidc_client_id, oidc_scopes, for_device=device
            )
            extra = oidc.login_entry(login)
            if device:
                tokens = oidc.device_login(
                    login,
                    verify,
                    announce=f"Logging in to cluster '{identifier}' with {login.provider.issuer}",
                )
                refresh_token = tokens.refresh_token
        if oidc_scopes and not device:
            extra["oidc_scopes"] = oidc_scopes  # asked for at each refresh
    except ClientError as exc:
        fail(str(exc))
    settings.oscar[identifier] = config_file.ClusterConfig(
        endpoint=endpoint,
        auth_user=username or "",
        auth_password=password or "",
        oidc_account_name=oidc_account or "",
        oidc_refresh_token=refresh_token or "",
        ssl_verify=verify,
        **extra,
    )
    if not settings.default:
        settings.default = identifier
    config_file.save(settings, config)
    typer.echo(f"cluster '{identifier}' added")


@app.command("list")
def list_clusters(
    config: ConfigOption = DEFAULT_CONFIG, output: OutputOption = Output.TABLE
) -> None:
    """List the configured clusters (passwords are never shown)."""
    settings = _load(config)
    rows = [
        {
            "id": cid,
            "endpoint": c.endpoint,
            "user": c.auth_user,
            "ssl_verify": c.ssl_verify,
            "default": cid == settings.default,
        }
        for cid, c in settings.oscar.items()
    ]
    show(rows, output, ["id", "endpoint", "user", "ssl_verify", "default"])


@app.command("default")
def default(
    set_to: Annotated[
        str | None, typer.Option("--set", "-s", help="Make this cluster the default.")
    ] = None,
    config: ConfigOption = DEFAULT_CONFIG,
) -> None:
    """Show or set the default cluster."""
    settings = _load(config)
    if set_to is None:
        if not settings.default:
            fail("no default cluster is set")
        typer.echo(settings.default)
        return
    if set_to not in settings.oscar:
        fail(f"cluster '{set_to}' is not configured")
    settings.default = set_to
    config_file.save(settings, config)
    typer.echo(f"default cluster: {set_to}")


@app.command("delete")
def delete(
    identifier: Annotated[str, typer.Argument(metavar="IDENTIFIER")],
    config: ConfigOption = DEFAULT_CONFIG,
) -> None:
    """Remove a cluster from the configuration."""
    settings = _load(config)
    if identifier not in settings.oscar:
        fail(f"cluster '{identifier}' is not configured")
    del settings.oscar[identifier]
    if settings.default == identifier:
        settings.default = next(iter(settings.oscar), "")
    config_file.save(settings, config)
    typer.echo(f"cluster '{identifier}' deleted")


@app.command("info")
def info(
    cluster: ClusterOption = None,
    show_config: Annotated[
        bool, typer.Option("--config-info", help="Also show /system/config.")
    ] = False,
    config: ConfigOption = DEFAULT_CONFIG,
    debug: DebugOption = False,
    output: OutputOption = Output.YAML,
) -> None:
    """Show the cluster's /system/info (and /system/config without credentials)."""
    with cluster_client(config, cluster, debug) as client:
        data = client.request("GET", "/system/info").json()
        if show_config:
            cfg = client.request("GET", "/system/config").json()
            cfg.get("minio_provider", {}).pop("secret_key", None)
            data = {"info": data, "config": cfg}
    show(data, output)


@app.command("status")
def status(
    cluster: ClusterOption = None, config: ConfigOption = DEFAULT_CONFIG, debug: DebugOption = False
) -> None:
    """Check that the cluster answers and the credentials work."""
    with cluster_client(config, cluster, debug) as client:
        client.request("GET", "/health")
        client.request("GET", "/system/info")
        typer.echo(f"cluster '{client.cluster_id}' at {client.cluster.endpoint}: ok")


# Upstream's short names. `d` is both `delete`'s and `default`'s there; cobra resolves it to the
# first registered, `delete`, and so do we.
alias(app, ["a"], add)
alias(app, ["d", "del", "remove", "rm"], delete)
alias(app, ["i"], info)
alias(app, ["ls"], list_clusters)
