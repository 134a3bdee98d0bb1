"""`oscar`: run the control plane (`oscar serve`), check FDL files (`oscar validate`) and import
DCNiOS workflows as bridges of a running control plane (`oscar bridge import`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
import uvicorn
from pydantic import ValidationError

from oscar import __version__
from oscar.errors import ConfigurationError, FieldError, InvalidServiceError

app = typer.Typer(
    help="oscar: an OSCAR-compatible serverless, event-driven FaaS platform.",
    no_args_is_help=True,
    add_completion=False,
)
bridge_app = typer.Typer(
    help="Event bridges of a running control plane.", no_args_is_help=True, add_completion=False
)
app.add_typer(bridge_app, name="bridge")
log = logging.getLogger("oscar")


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _uvicorn_config(application: Any, host: str, port: int) -> uvicorn.Config:
    return uvicorn.Config(
        application,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        server_header=False,
        lifespan="auto",
        timeout_graceful_shutdown=30,
    )


class _QuietSignalsServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to `_serve_all` (two servers, one loop)."""

    def capture_signals(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()


def _bind(host: str, port: int, what: str, *, reuse_port: bool = False) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # The protocol must be explicit: asyncio sets TCP_NODELAY only on sockets whose `proto` is
    # TCP, and accepted connections inherit it. Without it every keep-alive request waited
    # ~40 ms (Nagle's algorithm against the client's delayed ACK).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:  # Linux lets only processes of the same user share the port
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise _fail(f"cannot listen on {host}:{port} for the {what}: {exc.strerror}") from None
    sock.listen(2048)
    return sock


async def _serve_all(servers: list[uvicorn.Server], sockets: list[socket.socket]) -> None:
    """Serve the API and the S3 endpoint together; SIGTERM/SIGINT stop both gracefully."""
    loop = asyncio.get_running_loop()

    def stop() -> None:
        for server in servers:
            server.should_exit = True

    for handled in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(handled, stop)
    tasks = [
        asyncio.ensure_future(server.serve(sockets=[sock]))
        for server, sock in zip(servers, sockets, strict=True)
    ]
    # If one server stops (or fails to bind), stop the other too.
    done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    stop()
    await asyncio.gather(*tasks, return_exceptions=True)
    for task in done:
        error = task.exception()
        if error is not None and not isinstance(error, SystemExit):
            raise error


@app.command()
def serve(
    host: Annotated[
        str | None, typer.Option(help="Address to bind [env OSCAR_HOST; default 127.0.0.1]")
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="API port [env OSCAR_PORT; default 8080]")
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(help="State directory [env OSCAR_DATA_DIR; default ~/.local/share/oscar]"),
    ] = None,
    log_level: Annotated[
        str | None, typer.Option(help="Log level [env OSCAR_LOG_LEVEL; default INFO]")
    ] = None,
    s3_port: Annotated[
        int | None, typer.Option(help="Embedded S3 port [env OSCAR_S3_PORT; default 9000]")
    ] = None,
) -> None:
    """Start the control plane on the embedded default (SQLite registry, no Kubernetes)."""
    from oscar.app import create_app
    from oscar.auth.basic import load_admin_credentials
    from oscar.logging import configure_logging
    from oscar.settings import Settings

    overrides = {
        "host": host,
        "port": port,
        "data_dir": data_dir,
        "log_level": log_level,
        "s3_port": s3_port,
    }
    try:
        settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        raise _fail(f"invalid configuration:\n{exc}", 2) from None
    configure_logging(settings.log_level)
    try:
        admin = load_admin_credentials(settings)
        application = create_app(settings, admin=admin)
    except ConfigurationError as exc:
        raise _fail(str(exc)) from None
    if admin.generated:
        # Printed once, on the start that generated it; never logged.
        typer.echo(
            f"\nGenerated a password for the admin user '{admin.username}':\n\n"
            f"    {admin.password}\n\n"
            f"It is stored in {settings.password_file} (mode 0600) and will not be printed "
            "again. Set OSCAR_PASSWORD to choose your own.\n",
            err=True,
        )
    log.info(
        "oscar %s starting",
        __version__,
        extra={
            "url": f"http://{settings.host}:{settings.port}",
            "data_dir": str(settings.data_dir),
            "admin_user": admin.username,
        },
    )
    # Bind both ports before serving anything, so a busy port is one clear error, not a
    # half-started server.
    reuse = settings.reuse_port
    sockets = [_bind(settings.host, settings.port, "API", reuse_port=reuse)]
    servers = [_QuietSignalsServer(_uvicorn_config(application, settings.host, settings.port))]
    if application.state.s3_app is not None:
        sockets.append(_bind(settings.host, settings.s3_port, "S3", reuse_port=reuse))
        servers.append(
            _QuietSignalsServer(
                _uvicorn_config(application.state.s3_app, settings.host, settings.s3_port)
            )
        )
    asyncio.run(_serve_all(servers, sockets))
    log.info("oscar stopped")


@app.command()
def validate(
    files: Annotated[list[Path], typer.Argument(help="FDL files to check", exists=False)],
) -> None:
    """Check FDL files without a server: every error is printed with its file, field and line.
    A bridge whose service is in the same file is checked against it (the input it feeds)."""
    from oscar.models.fdl import load_fdl

    failed = False
    for path in files:
        try:
            fdl = load_fdl(path)
            _check_bridge_targets(fdl)
        except InvalidServiceError as exc:
            failed = True
            for err in exc.errors:
                where = f"{path}:{err.line}" if err.line else str(path)
                typer.echo(f"{where}: {err.field or 'file'}: {err.message}", err=True)
            continue
        names = ", ".join(f"{s.service.name} (cluster {s.cluster_id})" for s in fdl.services)
        if fdl.bridges:
            names += "; bridges: " + ", ".join(f"{b.name} → {b.service}" for b in fdl.bridges)
        typer.echo(f"{path}: ok: {names}")
    if failed:
        raise typer.Exit(1)


def _check_bridge_targets(fdl: Any) -> None:
    """`InvalidServiceError` for each bridge the service it names in the file cannot take."""
    from oscar.bridges.manager import check_target
    from oscar.models.bridge import InvalidBridgeError

    services = {entry.service.name: entry.service for entry in fdl.services}
    errors: list[FieldError] = []
    for index, bridge in enumerate(fdl.bridges):
        service = services.get(bridge.service)
        if service is None:
            continue  # it may exist on the cluster already: the server checks it then
        try:
            check_target(bridge, service)
        except InvalidBridgeError as exc:
            for err in exc.errors:
                field = f"bridges[{index}].{err.field}"
                errors.append(FieldError(field, err.message, fdl.line_of(field)))
    if errors:
        raise InvalidServiceError(errors)


@bridge_app.command("import")
def bridge_import(
    file: Annotated[Path, typer.Argument(metavar="DCNIOS_FILE", help="DCNiOS workflow YAML")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the bridges (credentials masked); send none")
    ] = False,
    endpoint: Annotated[
        str | None,
        typer.Option(help="The control plane's API (default: http://127.0.0.1:<OSCAR_PORT>)"),
    ] = None,
    user: Annotated[
        str | None, typer.Option(help="Admin user (default: OSCAR_USERNAME, else oscar)")
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            help="The server's state directory, for its admin-password file when "
            "OSCAR_PASSWORD is not set (default: OSCAR_DATA_DIR, else ~/.local/share/oscar)"
        ),
    ] = None,
) -> None:
    """Turn a DCNiOS workflow's source → OSCAR connections into bridges of a running control
    plane (create, or update by name). The password is never taken on the command line."""
    import os

    import httpx
    import yaml

    from oscar.bridges.dcnios import DcniosError, describe, load
    from oscar.settings import Settings

    try:
        # DCNiOS reads the user's AWS_* variables and ~/.aws/credentials; so does the import
        # (the invoking user's, not settings of the control plane).
        conversion = load(file, environ=dict(os.environ))
    except DcniosError as exc:
        for err in exc.errors:
            typer.echo(describe(err, str(file)), err=True)
        raise _fail(f"{file} cannot be converted: nothing was sent") from None
    for warning in conversion.warnings:
        typer.echo(f"warning: {describe(warning, str(file))}", err=True)
    if not conversion.bridges:
        raise _fail(f"{file} connects no source to an OSCAR destination: no bridge to import")
    if dry_run:
        typer.echo(yaml.safe_dump(conversion.masked(), sort_keys=False).rstrip())
        return
    overrides = {"username": user, "data_dir": data_dir}
    try:
        settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        raise _fail(f"invalid configuration:\n{exc}", 2) from None
    password = _admin_password(settings)
    url = (endpoint or f"http://127.0.0.1:{settings.port}").rstrip("/")
    with httpx.Client(base_url=url, auth=(settings.username, password), timeout=30) as client:
        for bridge in conversion.bridges:
            try:
                verb = _send_bridge(client, bridge)
            except httpx.TransportError as exc:
                what = type(exc).__name__
                raise _fail(f"cannot reach {url} ({what}): is oscar serve running?") from None
            except _RefusedError as exc:
                raise _fail(f"bridge '{bridge['name']}': {exc}") from None
            typer.echo(f"bridge '{bridge['name']}' {verb}")


class _RefusedError(Exception):
    """The control plane refused a bridge; the message is its answer."""


def _send_bridge(client: Any, bridge: dict[str, Any]) -> str:
    """POST the bridge, or PUT it when the name exists; `created` or `updated`."""
    response = client.post("/system/bridges", json=bridge)
    verb = "created"
    if response.status_code == 409:
        response = client.put(f"/system/bridges/{bridge['name']}", json=bridge)
        verb = "updated"
    if response.status_code in (200, 201):
        return verb
    if response.status_code == 401:
        raise _RefusedError("bad credentials (401): check --user and OSCAR_PASSWORD or --data-dir")
    try:
        detail = response.json().get("detail") or response.text
    except ValueError:
        detail = response.text
    raise _RefusedError(f"{response.request.method} answered {response.status_code}: {detail}")


def _admin_password(settings: Any) -> str:
    """OSCAR_PASSWORD, else the data directory's admin-password file (never generated here)."""
    if settings.password is not None and settings.password.get_secret_value():
        return str(settings.password.get_secret_value())
    path = settings.password_file
    try:
        password = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise _fail(
            f"no admin password: set OSCAR_PASSWORD, or point --data-dir at the server's data "
            f"directory ({path}: {exc.strerror})"
        ) from None
    if not password:
        raise _fail(f"{path} is empty: set OSCAR_PASSWORD")
    return password


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(f"oscar {__version__}")


def main() -> None:
    """Console-script entry point."""
    sys.exit(app())
