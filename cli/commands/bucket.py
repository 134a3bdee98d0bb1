"""`oscar-cli bucket ...`: buckets through the cluster's `/system/buckets` API."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.common import (
    DEFAULT_CONFIG,
    ClusterOption,
    ConfigOption,
    DebugOption,
    Output,
    OutputOption,
    alias,
    cluster_client,
    group_options,
    show,
)

app = typer.Typer(help="Manage buckets of the cluster's default store.", no_args_is_help=True)
group_options(app)
BucketArgument = Annotated[str, typer.Argument(metavar="BUCKET_NAME")]


@app.command("list")
def list_buckets(
    cluster: ClusterOption = None,
    config: ConfigOption = DEFAULT_CONFIG,
    debug: DebugOption = False,
    output: OutputOption = Output.TABLE,
) -> None:
    """List buckets."""
    with cluster_client(config, cluster, debug) as client:
        buckets = client.request("GET", "/system/buckets").json()
    show(buckets, output, ["bucket_name", "visibility", "allowed_users", "owner"])


@app.command("get")
def get(
    bucket: BucketArgument,
    prefix: Annotated[str, typer.Option("--prefix", help="Only keys with this prefix.")] = "",
    page: Annotated[str, typer.Option("--page", help="Continue from this page token.")] = "",
    limit: Annotated[
        int, typer.Option("--limit", min=0, help="Objects per page (0: the server's limit).")
    ] = 0,
    all_pages: Annotated[bool, typer.Option("--all", help="Fetch every page.")] = False,
    cluster: ClusterOption = None,
    config: ConfigOption = DEFAULT_CONFIG,
    debug: DebugOption = False,
    output: OutputOption = Output.TABLE,
) -> None:
    """List a bucket's objects."""
    objects: list[dict[str, object]] = []
    with cluster_client(config, cluster, debug) as client:
        while True:
            params: dict[str, str | int] = {"prefix": prefix}
            if limit:
                params["limit"] = limit
            if page:
                params["page"] = page
            answer = client.request("GET", f"/system/buckets/{bucket}", params=params).json()
            objects += answer.get("objects") or []
            page = answer.get("next_page") or ""
            if not (all_pages and page):
                break
    if output != Output.TABLE:
        show({**answer, "objects": objects, "next_page": page}, output)
        return
    show(objects, output, ["object_name", "size_bytes", "last_modified"])
    if page:
        typer.echo(f"(more: --page {page})")


@app.command("create")
def create(
    bucket: BucketArgument,
    visibility: Annotated[
        str, typer.Option("--visibility", help="private, public or restricted.")
    ] = "private",
    allowed_users: Annotated[
        list[str] | None, typer.Option("--allowed-user", help="Users of a restricted bucket.")
    ] = None,
    cluster: ClusterOption = None,
    config: ConfigOption = DEFAULT_CONFIG,
    debug: DebugOption = False,
) -> None:
    """Create a bucket."""
    body = {"bucket_name": bucket, "visibility": visibility, "allowed_users": allowed_users or []}
    with cluster_client(config, cluster, debug) as client:
        client.request("POST", "/system/buckets", json=body, expect=(201,))
    typer.echo(f"bucket '{bucket}' created")


@app.command("delete")
def delete(
    bucket: BucketArgument,
    cluster: ClusterOption = None,
    config: ConfigOption = DEFAULT_CONFIG,
    debug: DebugOption = False,
) -> None:
    """Delete an empty bucket."""
    with cluster_client(config, cluster, debug) as client:
        client.request("DELETE", f"/system/buckets/{bucket}", expect=(204,))
    typer.echo(f"bucket '{bucket}' deleted")


# Upstream's short names.
alias(app, ["ls"], list_buckets)
alias(app, ["g"], get)
