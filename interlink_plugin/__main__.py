"""`oscar-interlink-plugin serve`: the plugin's HTTP server."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

app = typer.Typer(add_completion=False, help=__doc__, no_args_is_help=True)


@app.callback()
def _root() -> None:
    """oscar's interLink plugin (the sidecar interLink's API server forwards pods to)."""


@app.command()
def serve(
    backend: Annotated[
        str, typer.Option(help="Where pods run: 'slurm' (batch jobs) or 'local' (processes).")
    ] = "slurm",
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (interLink's SidecarPort).")] = 4000,
    state_dir: Annotated[
        Path,
        typer.Option(help="Where pods' folders and the pod → job table live (survives restarts)."),
    ] = Path("~/.local/share/oscar-interlink-plugin"),
    volumes: Annotated[
        str,
        typer.Option(
            help="How natively run containers see their volumes: 'bind' (private bind mounts at "
            "their mountPath; needs root), 'map' (mount paths rewritten to the volumes' folders) "
            "or 'auto' (bind when possible)."
        ),
    ] = "auto",
) -> None:
    """Serve the plugin API until interrupted."""
    import uvicorn

    from interlink_plugin.server import create_app

    if backend not in ("slurm", "local"):
        raise typer.BadParameter("must be 'slurm' or 'local'", param_hint="--backend")
    if volumes not in ("auto", "bind", "map"):
        raise typer.BadParameter("must be 'auto', 'bind' or 'map'", param_hint="--volumes")
    kind: Literal["slurm", "local"] = "slurm" if backend == "slurm" else "local"
    application = create_app(kind, state_dir.expanduser(), volumes=volumes)
    uvicorn.run(application, host=host, port=port, log_level="info", access_log=False)


def main() -> None:
    """Console script entry point."""
    app()


if __name__ == "__main__":
    main()
