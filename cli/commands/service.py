"""`oscar-cli service ...`: list, inspect, invoke services and read their job logs."""

from __future__ import annotations

import base64
from pathlib import Path
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
    alias_group,
    cluster_client,
    endpoint_client,
    fail,
    group_options,
    show,
)

app = typer.Typer(help="Manage and invoke services.", no_args_is_help=True)
logs_app = typer.Typer(help="Job logs of a service.", no_args_is_help=True)
app.add_typer(logs_app, name="logs")
alias_group(app, ["log", "l"], logs_app)
group_options(app)
group_options(logs_app, cluster=True)  # upstream: `service logs -c ID ...` applies to all below

NameArgument = Annotated[str, typer.Argument(metavar="SERVICE_NAME", help="Service name.")]
FileOption = Annotated[Path | None, typer.Option("--file-input", "-f", help="Input file.")]
TextOption = Annotated[str | None, typer.Option("--text-input", "-i", help="Input text.")]
EndpointOption = Annotated[
    str | None, typer.Option("--endpoint", "-e", help="Call this endpoint with --token instead.")
]
TokenOption = Annotated[str | None, typer.Option("--token", "-t", help="Service token.")]


@app.command("list")
def list_services(
    cluster: ClusterOption = None,
    config: ConfigOption = DEFAULT_CONFIG,
    debug: DebugOption = False,
    output: OutputOption = Output.TABLE,
) -> None:
    """List the services of a cluster."""
    with cluster_client(config, cluster, debug) as client:
        services = client.request("GET", "/system/services").json()
    if output != Output.TABLE:
        show(services, output)
        return
    rows = [
        {"name": s["name"], "image": s["image"], "cpu": s.get("cpu"), "memory": s.get("memory")}
        for s in services
    ]
    show(rows, output, ["name", "image", "cpu", "memory"])


@app.command("get")
def get(
    name: NameArgument,
    cluster: ClusterOption = None,
    config: ConfigOption = DEFAULT_CONFIG,
    debug: DebugOption = False,
    output: OutputOption = Output.YAML,
) -> None:
    """Show a service's definition."""
    with cluster_client(config, cluster, debug) as client:
        service = client.request("GET", f"/system/services/{name}").json()
    show(service, Output.YAML if output == Output.TABLE else output)


@app.command("delete")
def delete(
    names: Annotated[
        list[str], typer.Argument(metavar="SERVICE_NAME...", help="Services to delete.")
    ],
    cluster: ClusterOption = None,
    config: ConfigOption = DEFAULT_CONFIG,
    debug: DebugOption = False,
) -> None:
    """Delete services by name."""
    with cluster_client(config, cluster, debug) as client:
        for name in names:
            client.request("DELETE", f"/system/services/{name}", expect=(204,))
            typer.echo(f"service '{name}' deleted")


def _payload(file_input: Path | None, text_input: str | None) -> bytes:
    if (file_input is None) == (text_input is None):
        fail("give exactly one of --file-input/-f and --text-input/-i")
    if file_input is not None:
        try:
            return base64.b64encode(file_input.read_bytes())
        except OSError as exc:
            fail(f"cannot read {file_input}: {exc.strerror}")
    return base64.b64encode((text_input or "").encode())


def _invoke(
    kind: str,
    name: str,
    body: bytes,
    cluster: str | None,
    config: Path,
    debug: bool,
    endpoint: str | None,
    token: str | None,
) -> bytes:
    """POST the body to `/run` or `/job` with the service token (given, or read from the
    configured cluster)."""
    if endpoint and not token:
        fail("--endpoint needs --token")
    opened = (
        endpoint_client(endpoint, debug) if endpoint else cluster_client(config, cluster, debug)
    )
    with opened as client:
        if not endpoint:
            token = client.request("GET", f"/system/services/{name}").json()["token"]
        return client.request(
            "POST",
            f"/{kind}/{name}",
            content=body,
            expect=(201,) if kind == "job" else (200,),
            headers={"Authorization": f"Bearer {token}"},
            auth=None,
        ).content


@app.command("run")
def run(
    name: NameArgument,
    file_input: FileOption = None,
    text_input: TextOption = None,
    output_file: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the decoded answer here.")
    ] = None,
    endpoint: EndpointOption = None,
    token: TokenOption = None,
    cluster: ClusterOption = None,
    config: ConfigOption = DEFAULT_CONFIG,
    debug: DebugOption = False,
) -> None:
    """Invoke a service synchronously (input base64-encoded, answer decoded when base64)."""
    answer = _invoke(
        "run", name, _payload(file_input, text_input), cluster, config, debug, endpoint, token
    )
    try:
        decoded = base64.b64decode(answer, validate=True)
    except ValueError:
        decoded = answer
    if output_file is not None:
        output_file.write_bytes(decoded)
        typer.echo(f"answer written to {output_file}")
    else:
        typer.echo(decoded.decode(errors="replace"), nl=False)


@app.command("job")
def job(
    name: NameArgument,
    file_input: FileOption = None,
    text_input: TextOption = None,
    endpoint: EndpointOption = None,
    token: TokenOption = None,
    cluster: ClusterOption = None,
    config: ConfigOption = DEFAULT_CONFIG,
    debug: DebugOption = False,
) -> None:
    """Invoke a service asynchronously (creates a job)."""
    _invoke("job", name, _payload(file_input, text_input), cluster, config, debug, endpoint, token)
    typer.echo(f"job created for service '{name}'")


@logs_app.command("list")
def logs_list(
    name: NameArgument,
    status: Annotated[
        list[str] | None,
        typer.Option(
            "--status",
            "-s",
            help="Only these statuses (Pending, Running, Succeeded, Failed); comma-separated "
            "or repeated.",
        ),
    ] = None,
    cluster: ClusterOption = None,
    config: ConfigOption = DEFAULT_CONFIG,
    debug: DebugOption = False,
    output: OutputOption = Output.TABLE,
) -> None:
    """List a service's jobs."""
    given = [s.strip().lower() for value in status or [] for s in value.split(",")]
    wanted = {s for s in given if s} or None
    jobs: dict[str, dict[str, object]] = {}
    with cluster_client(config, cluster, debug) as client:
        page = ""
        while True:
            params = {"page": page} if page else {}
            answer = client.request("GET", f"/system/logs/{name}", params=params).json()
            jobs.update(answer.get("jobs") or {})
            page = answer.get("next_page") or ""
            if not page:
                break
    rows = [
        {"name": job_name, **details}
        for job_name, details in jobs.items()
        if wanted is None or str(details.get("status", "")).lower() in wanted
    ]
    columns = ["name", "status", "creation_time", "start_time", "finish_time"]
    # Beyond upstream's table: where the job runs and why it waits or failed.
    columns += ["backend", "backend_id", "waiting_reason", "reason"]
    show(rows, output, columns)


@logs_app.command("get")
def logs_get(
    name: NameArgument,
    job_name: Annotated[str | None, typer.Argument(metavar="JOB_NAME")] = None,
    latest: Annotated[bool, typer.Option("--latest", "-l", help="The newest job.")] = False,
    timestamps: Annotated[
        bool, typer.Option("--show-timestamps", "-t", "--timestamps", help="Show timestamps.")
    ] = False,
    tail: Annotated[
        int | None, typer.Option("--tail", min=0, help="Only the last N lines.")
    ] = None,
    cluster: ClusterOption = None,
    config: ConfigOption = DEFAULT_CONFIG,
    debug: DebugOption = False,
) -> None:
    """Print a job's log."""
    with cluster_client(config, cluster, debug) as client:
        if job_name is None:
            if not latest:
                fail("give a JOB name or --latest")
            jobs = client.request("GET", f"/system/logs/{name}").json().get("jobs") or {}
            if not jobs:
                fail(f"service '{name}' has no jobs")
            job_name = max(jobs, key=lambda j: jobs[j].get("creation_time") or "")
        text = client.request(
            "GET",
            f"/system/logs/{name}/{job_name}",
            params={
                **({"timestamps": "true"} if timestamps else {}),
                **({"tail": str(tail)} if tail is not None else {}),
            },
        ).text
    typer.echo(text, nl=False)


@logs_app.command("delete")
def logs_delete(
    name: NameArgument,
    jobs: Annotated[list[str] | None, typer.Argument(metavar="JOB_NAME...")] = None,
    succeeded: Annotated[
        bool, typer.Option("--succeeded", "-s", help="All succeeded jobs.")
    ] = False,
    all_jobs: Annotated[bool, typer.Option("--all", "-a", help="Every job.")] = False,
    cluster: ClusterOption = None,
    config: ConfigOption = DEFAULT_CONFIG,
    debug: DebugOption = False,
) -> None:
    """Delete jobs: named ones, the succeeded ones, or all."""
    if (succeeded or all_jobs) and jobs:
        fail("--succeeded and --all take no JOB_NAME")
    if not jobs and not succeeded and not all_jobs:
        fail("give JOB_NAME..., --succeeded or --all")
    with cluster_client(config, cluster, debug) as client:
        for job_name in jobs or []:
            client.request("DELETE", f"/system/logs/{name}/{job_name}", expect=(204,))
            typer.echo(f"job '{job_name}' deleted")
        if succeeded or all_jobs:
            params = {"all": "true"} if all_jobs else {}
            client.request("DELETE", f"/system/logs/{name}", params=params, expect=(204,))
            typer.echo("all jobs deleted" if all_jobs else "succeeded jobs deleted")


# Upstream's short names.
alias(app, ["ls"], list_services)
alias(app, ["g"], get)
alias(app, ["d", "del", "remove", "rm"], delete)
alias(app, ["invoke", "r"], run)
alias(app, ["j"], job)
alias(logs_app, ["ls"], logs_list)
alias(logs_app, ["g"], logs_get)
alias(logs_app, ["d", "del", "remove", "rm"], logs_delete)
