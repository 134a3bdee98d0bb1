"""`oscar`: run the control plane (`oscar serve`) and check FDL files (`oscar validate`)."""

from __future__ import annotations

import logging
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from oscar import __version__
from oscar.errors import ConfigurationError, InvalidServiceError

app = typer.Typer(
    help="oscar: an OSCAR-compatible serverless, event-driven FaaS platform.",
    no_args_is_help=True,
    add_completion=False,
)
log = logging.getLogger("oscar")


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


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
) -> None:
    """Start the control plane on the embedded default (SQLite registry, no Kubernetes)."""
    import uvicorn

    from oscar.app import create_app
    from oscar.auth.basic import load_admin_credentials
    from oscar.logging import configure_logging
    from oscar.settings import Settings

    overrides = {"host": host, "port": port, "data_dir": data_dir, "log_level": log_level}
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
    server = uvicorn.Server(
        uvicorn.Config(
            application,
            host=settings.host,
            port=settings.port,
            log_config=None,
            access_log=False,
            server_header=False,
            lifespan="on",
            timeout_graceful_shutdown=30,
        )
    )
    # uvicorn re-raises SIGTERM/SIGINT after its graceful shutdown, which would end the process
    # "killed by signal" (exit 143) or with a KeyboardInterrupt traceback. A finished graceful
    # shutdown is a clean exit: make the re-raised signal a no-op so we exit 0.
    for handled in (signal.SIGTERM, signal.SIGINT):
        signal.signal(handled, lambda *_: None)
    server.run()
    if not server.started:
        raise _fail(f"could not serve on {settings.host}:{settings.port}")
    log.info("oscar stopped")


@app.command()
def validate(
    files: Annotated[list[Path], typer.Argument(help="FDL files to check", exists=False)],
) -> None:
    """Check FDL files without a server: every error is printed with its file, field and line."""
    from oscar.models.fdl import load_fdl

    failed = False
    for path in files:
        try:
            fdl = load_fdl(path)
        except InvalidServiceError as exc:
            failed = True
            for err in exc.errors:
                where = f"{path}:{err.line}" if err.line else str(path)
                typer.echo(f"{where}: {err.field or 'file'}: {err.message}", err=True)
            continue
        names = ", ".join(f"{s.service.name} (cluster {s.cluster_id})" for s in fdl.services)
        typer.echo(f"{path}: ok: {names}")
    if failed:
        raise typer.Exit(1)


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(f"oscar {__version__}")


def main() -> None:
    """Console-script entry point."""
    sys.exit(app())
