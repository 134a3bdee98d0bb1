"""`oscar-cli service put-file|get-file|list-files|delete-file`: a service's storage, directly.

`minio` / `minio.default` use the cluster's `/system/config` `minio_provider`; any other
provider uses the credentials stored with the service (S3, MinIO or WebDAV).
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperCommand

from cli.client import OscarClient
from cli.commands.service import app
from cli.common import (
    DEFAULT_CONFIG,
    ClusterOption,
    ConfigOption,
    DebugOption,
    alias,
    cluster_client,
    fail,
)

PROGRESS_THRESHOLD = 4 * 1024 * 1024  # show a progress bar above this size


class Store:
    """Object operations on one provider."""

    def __init__(self, kind: str, credentials: dict[str, Any]) -> None:
        self.kind = kind
        if kind in {"minio", "s3"}:
            import boto3

            endpoint = credentials.get("endpoint") if kind == "minio" else None
            self._s3 = boto3.client(
                "s3",
                endpoint_url=endpoint or None,
                aws_access_key_id=credentials.get("access_key"),
                aws_secret_access_key=credentials.get("secret_key"),
                region_name=credentials.get("region") or "us-east-1",
                verify=bool(credentials.get("verify", True)),
            )
        elif kind == "webdav":
            from webdav3.client import Client

            host = str(credentials.get("hostname", ""))
            self._dav = Client(
                {
                    "webdav_hostname": host if "://" in host else f"https://{host}",
                    "webdav_login": credentials.get("login", ""),
                    "webdav_password": credentials.get("password", ""),
                }
            )
        else:
            fail(f"storage provider type '{kind}' is not supported by this command")

    @staticmethod
    def _split(path: str) -> tuple[str, str]:
        bucket, _, key = path.strip("/").partition("/")
        return bucket, key

    def put(self, local: Path, remote: str, progress: bool = True) -> None:
        size = local.stat().st_size
        if self.kind == "webdav":
            self._dav.upload_sync(remote_path=remote, local_path=str(local))
            return
        bucket, key = self._split(remote)
        with _progress(size if progress else 0, f"uploading {local.name}") as advance:
            self._s3.upload_file(str(local), bucket, key, Callback=advance)

    def get(self, remote: str, local: Path, progress: bool = True) -> None:
        if self.kind == "webdav":
            self._dav.download_sync(remote_path=remote, local_path=str(local))
            return
        bucket, key = self._split(remote)
        size = self._s3.head_object(Bucket=bucket, Key=key)["ContentLength"]
        label = f"downloading {posixpath.basename(key)}"
        with _progress(size if progress else 0, label) as advance:
            self._s3.download_file(bucket, key, str(local), Callback=advance)

    def list(self, remote: str) -> list[tuple[str, int, str]]:
        if self.kind == "webdav":
            return [
                (info["path"], int(info.get("size") or 0), info.get("modified") or "")
                for info in self._dav.list(remote, get_info=True)
            ]
        bucket, prefix = self._split(remote)
        rows = []
        for page in self._s3.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=prefix
        ):
            rows += [
                (o["Key"], o["Size"], o["LastModified"].isoformat())
                for o in page.get("Contents", [])
            ]
        return rows

    def delete(self, remote: str) -> None:
        if self.kind == "webdav":
            self._dav.clean(remote)
            return
        bucket, key = self._split(remote)
        self._s3.delete_object(Bucket=bucket, Key=key)


@contextmanager
def _progress(size: int, label: str) -> Iterator[Callable[[int], None]]:
    """A progress bar for transfers over PROGRESS_THRESHOLD bytes; a no-op below."""
    if size <= PROGRESS_THRESHOLD:
        yield lambda _: None
        return
    with typer.progressbar(length=size, label=label) as bar:
        yield bar.update


def _store(client: OscarClient, service: str, provider: str) -> Store:
    kind, _, identifier = provider.partition(".")
    identifier = identifier or "default"
    if kind == "minio" and identifier == "default":
        credentials = client.request("GET", "/system/config").json()["minio_provider"]
        return Store("minio", credentials)
    definition = client.request("GET", f"/system/services/{service}").json()
    credentials = (definition.get("storage_providers") or {}).get(kind, {}).get(identifier)
    if not credentials:
        fail(f"service '{service}' has no storage provider '{kind}.{identifier}'")
    return Store(kind, credentials)


def _default_remote(client: OscarClient, service: str, provider: str) -> str:
    definition = client.request("GET", f"/system/services/{service}").json()
    for entry in definition.get("input") or []:
        if entry.get("storage_provider") in (provider, f"{provider}.default"):
            return entry["path"]
    fail(f"service '{service}' has no input on '{provider}': give the REMOTE path")


ProviderArgument = Annotated[
    str, typer.Argument(metavar="STORAGE_PROVIDER", help="e.g. minio.default")
]
ServiceArgument = Annotated[str, typer.Argument(metavar="SERVICE_NAME")]
NoProgressOption = Annotated[
    bool, typer.Option("--no-progress", help="Do not show a progress bar.")
]
PROVIDER_TYPES = {"minio", "s3", "webdav", "onedata", "rucio"}


def _looks_like_provider(value: str) -> bool:
    kind, dot, name = value.partition(".")
    return value == "minio" or (bool(dot) and bool(name) and kind in PROVIDER_TYPES)


def _is_provider(value: str) -> bool:
    return _looks_like_provider(value) and not Path(value).exists()


@app.command("put-file")
def put_file(
    name: ServiceArgument,
    args: Annotated[
        list[str], typer.Argument(metavar="[STORAGE_PROVIDER] LOCAL_FILE [REMOTE_FILE]")
    ],
    no_progress: NoProgressOption = False,
    cluster: ClusterOption = None,
    config: ConfigOption = DEFAULT_CONFIG,
    debug: DebugOption = False,
) -> None:
    """Upload a file (STORAGE_PROVIDER defaults to minio.default, REMOTE_FILE to the input
    folder)."""
    provider = args.pop(0) if len(args) > 1 and _is_provider(args[0]) else "minio.default"
    if not 1 <= len(args) <= 2:
        fail("usage: put-file SERVICE_NAME [STORAGE_PROVIDER] LOCAL_FILE [REMOTE_FILE]")
    local, remote = Path(args[0]), (args[1] if len(args) == 2 else None)
    if not local.is_file():
        fail(f"{local} is not a file")
    with cluster_client(config, cluster, debug) as client:
        target = remote or posixpath.join(_default_remote(client, name, provider), local.name)
        _store(client, name, provider).put(local, target, progress=not no_progress)
    typer.echo(f"uploaded {local} to {provider}:{target}")


LATEST_FLAG = "--download-latest-into"
_LATEST_BARE = "\0here"  # upstream's flag takes its value only as `--download-latest-into=DIR`


class _GetFileCommand(TyperCommand):
    """As with cobra's optional flag values: a bare `--download-latest-into` has no value."""

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:
        args = [f"{LATEST_FLAG}={_LATEST_BARE}" if a == LATEST_FLAG else a for a in args]
        return super().parse_args(ctx, args)


def _default_output(definition: dict[str, Any], provider: str | None) -> tuple[str, str]:
    """The service's first output (on `provider`, if given): (provider, path)."""
    for entry in definition.get("output") or []:
        own = str(entry.get("storage_provider") or "minio.default")
        if (
            provider is None
            or own in (provider, f"{provider}.default")
            or f"{own}.default" == (provider)
        ):
            return (provider or own), str(entry.get("path") or "")
    where = f" on '{provider}'" if provider else ""
    fail(f"service '{definition.get('name')}' has no output{where}: give the REMOTE_PATH")


def _latest_target(value: str, base: str) -> Path:
    """Upstream's destination for --download-latest-into[=VALUE]."""
    if not value:
        return Path(".") / base
    path = Path(value)
    if value.endswith(("/", "\\")) or path.is_dir() or not path.suffix:
        return path / base
    return path


@app.command("get-file", cls=_GetFileCommand)
def get_file(
    name: ServiceArgument,
    args: Annotated[
        list[str] | None,
        typer.Argument(metavar="[STORAGE_PROVIDER] [REMOTE_PATH] [LOCAL_FILE]"),
    ] = None,
    download_latest_into: Annotated[
        str | None,
        typer.Option(
            LATEST_FLAG,
            metavar="[=DEST]",
            help="Download the newest file under REMOTE_PATH (default: the first output's "
            "path); `=DEST` names a folder or file (default: the current folder).",
        ),
    ] = None,
    no_progress: NoProgressOption = False,
    cluster: ClusterOption = None,
    config: ConfigOption = DEFAULT_CONFIG,
    debug: DebugOption = False,
) -> None:
    """Download a file (STORAGE_PROVIDER defaults to the service's first output provider);
    prints the local path written."""
    args = list(args or [])
    latest = download_latest_into is not None
    latest_value = "" if download_latest_into in (None, _LATEST_BARE) else download_latest_into
    provider: str | None = None
    remote: str | None = None
    local: str | None = None
    if len(args) > 3:
        fail("usage: get-file SERVICE_NAME [STORAGE_PROVIDER] [REMOTE_PATH] [LOCAL_FILE]")
    if len(args) == 3 and not _looks_like_provider(args[0]):
        fail(f"invalid storage provider '{args[0]}'")
    if args and _looks_like_provider(args[0]):
        provider = args.pop(0)
    if args:
        remote = args.pop(0)
    if args:
        local = args.pop(0)
    elif remote is not None and not latest:
        local = posixpath.basename(remote.rstrip("/")) or None
    if remote is None and not latest:
        fail("REMOTE_PATH is required (or use --download-latest-into)")
    if latest and latest_value and local:
        fail(f"{LATEST_FLAG}=DEST already names the destination: do not give LOCAL_FILE too")
    with cluster_client(config, cluster, debug) as client:
        if provider is None or remote is None:
            definition = client.request("GET", f"/system/services/{name}").json()
            provider, default_path = _default_output(definition, provider)
            remote = remote if remote is not None else default_path
        store = _store(client, name, provider)
        if latest:
            entries = [e for e in store.list(remote) if not e[0].endswith("/")]
            if not entries:
                fail(f"nothing under {provider}:{remote}")
            newest = max(entries, key=lambda e: e[2])[0]
            bucket = remote.strip("/").split("/", 1)[0]
            remote = newest if store.kind == "webdav" else f"{bucket}/{newest}"
            base = posixpath.basename(newest)
            target = Path(local) if local else _latest_target(latest_value, base)
        else:
            target = Path(local or posixpath.basename(remote))
        target = target.absolute()
        target.parent.mkdir(parents=True, exist_ok=True)
        store.get(remote, target, progress=not no_progress)
    typer.echo(str(target))


@app.command("list-files")
def list_files(
    name: ServiceArgument,
    provider: ProviderArgument,
    remote: Annotated[str, typer.Argument(metavar="REMOTE_PATH")],
    cluster: ClusterOption = None,
    config: ConfigOption = DEFAULT_CONFIG,
    debug: DebugOption = False,
) -> None:
    """List files under a path."""
    with cluster_client(config, cluster, debug) as client:
        for key, size, modified in _store(client, name, provider).list(remote):
            typer.echo(f"{key}\t{size}\t{modified}")


@app.command("delete-file")
def delete_file(
    name: ServiceArgument,
    provider: ProviderArgument,
    remote: Annotated[str, typer.Argument(metavar="REMOTE_FILE")],
    cluster: ClusterOption = None,
    config: ConfigOption = DEFAULT_CONFIG,
    debug: DebugOption = False,
) -> None:
    """Delete a file."""
    with cluster_client(config, cluster, debug) as client:
        _store(client, name, provider).delete(remote)
    typer.echo(f"deleted {provider}:{remote}")


# Upstream's short names.
alias(app, ["pf"], put_file)
alias(app, ["gf"], get_file)
alias(app, ["lsf", "list-file"], list_files)
alias(app, ["df", "del-fil", "remove-file", "rmf"], delete_file)
