"""The plugin's HTTP API, as interLink's API server calls it (`docs/openapi/plugin-openapi.json`):

- `POST /create` with one `RetrievedPodData` → `{PodUID, PodJID}`; creating a pod twice (a
  retried call, a restarted virtual kubelet) answers the first job, never a second run;
- `POST /delete` with the pod → its run stopped and its folder removed;
- `GET /status` with a list of pods → their `PodStatus`es; an empty list is interLink's 30 s
  ping, answered with the backend's resources (`PingResponse`);
- `GET /getLogs` with a `LogStruct` → the container's log (`Tail`, `Bytes`, `SinceSeconds`,
  `SinceTime`, `Timestamps`; `Follow` streams until the container ends).

Every pod's state is in its folder (`pods.py`), so a restarted plugin answers for the pods of
the previous one. Routes are plain `def`: their work blocks, FastAPI runs it in its threads.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from interlink_plugin.backends.base import PodBackend, RunState
from interlink_plugin.models import CreateResponse, LogRequest, PodStatus, RetrievedPodData
from interlink_plugin.pods import ContainerState, PodError, PodFolder, check_uid, pod_record
from oscar.errors import BackendError

#: How often a followed log is read again.
FOLLOW_INTERVAL = 0.5


def make_backend(kind: Literal["slurm", "local"]) -> PodBackend:
    """The backend named by the `--backend` option."""
    if kind == "slurm":
        from interlink_plugin.backends.slurm import SlurmBackend

        return SlurmBackend()
    from interlink_plugin.backends.local import LocalBackend

    return LocalBackend()


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _container_status(
    name: str,
    image: str,
    seen: ContainerState,
    run: RunState,
    never_started: tuple[int, str] | None,
) -> dict[str, Any]:
    """One container's status in Kubernetes' form, from its state files and its run."""
    state: dict[str, Any]
    if seen.exit_code is not None:
        state = {
            "terminated": {
                "exitCode": seen.exit_code,
                "reason": "Completed" if seen.exit_code == 0 else "Error",
                "startedAt": seen.started,
                "finishedAt": seen.finished or _now(),
            }
        }
    elif run.active and seen.started:
        state = {"running": {"startedAt": seen.started}}
    elif run.active:
        state = {"waiting": {"reason": run.waiting_reason or "ContainerCreating"}}
    else:
        code, message = never_started or (run.exit_code or 1, run.message)
        state = {
            "terminated": {
                "exitCode": code,
                "reason": "Error",
                "message": message,
                "startedAt": seen.started,
                "finishedAt": _now(),
            }
        }
    return {
        "name": name,
        "image": image,
        "imageID": "",
        "ready": "running" in state,
        "restartCount": 0,
        "started": "running" in state,
        "state": state,
    }


def pod_status(folder: PodFolder, record: dict[str, Any], run: RunState) -> PodStatus:
    """The pod's `PodStatus`: each container from its state files, the run for the rest."""
    images = record.get("images") or {}
    failed_init: tuple[int, str] | None = None
    init_statuses = []
    for name in record.get("init_containers") or []:
        seen = folder.state(name)
        init_statuses.append(_container_status(name, images.get(name, ""), seen, run, failed_init))
        if failed_init is None and seen.exit_code not in (None, 0):
            failed_init = (int(seen.exit_code or 1), f"init container {name} failed")
    if record.get("error"):
        failed_init = (1, str(record["error"]))
    statuses = [
        _container_status(name, images.get(name, ""), folder.state(name), run, failed_init)
        for name in record.get("containers") or []
    ]
    return PodStatus(
        name=record.get("name", ""),
        UID=folder.uid,
        namespace=record.get("namespace", ""),
        JID=record.get("job_id", ""),
        containers=statuses,
        initContainers=init_statuses,
    )


async def _json(request: Request) -> Any:
    try:
        return json.loads(await request.body() or b"null")
    except ValueError as exc:
        raise HTTPException(400, f"the body is not JSON: {exc}") from None


def create_app(
    kind: Literal["slurm", "local"],
    state_dir: Path,
    backend: PodBackend | None = None,
    volumes: str = "auto",
) -> FastAPI:
    """The plugin's application, keeping its pods under `state_dir`; `volumes` as the
    `--volumes` option (`auto`, `bind`, `map`)."""
    pods_backend = backend or make_backend(kind)
    if volumes != "auto":
        pods_backend.bind_mounts = volumes == "bind"
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    (state_dir / "pods").mkdir(exist_ok=True, mode=0o700)
    creating = threading.Lock()  # one create at a time: the same pod is never started twice
    app = FastAPI(title="oscar interLink plugin", summary=__doc__.splitlines()[0])

    def folder_of(uid: str) -> PodFolder:
        try:
            return PodFolder(state_dir, uid)
        except PodError as exc:
            raise HTTPException(400, str(exc)) from None

    @app.post("/create", response_model=CreateResponse)
    def create(data: RetrievedPodData) -> CreateResponse:
        """Prepare the pod's folder and start it; a pod that cannot run is recorded as failed
        with the reason (its status says why) instead of being refused."""
        meta = data.pod.get("metadata") or {}
        folder = folder_of(str(meta.get("uid", "")))
        with creating:
            if folder.exists():
                return CreateResponse(PodUID=folder.uid, PodJID=folder.read_record()["job_id"])
            try:
                record = folder.prepare(
                    data, runtime=pods_backend.runtime, bind=pods_backend.bind_mounts
                )
                record["job_id"] = pods_backend.start(folder, data.pod)
            except PodError as exc:
                # Nothing of the pod was prepared: only its containers are reported, failed
                # with the reason.
                record = {
                    **pod_record(folder.uid, data.pod),
                    "init_containers": [],
                    "images": {},
                    "job_id": "",
                    "error": str(exc),
                }
            except BackendError as exc:
                raise HTTPException(
                    502, f"the {pods_backend.name} backend refused the pod: {exc}"
                ) from None
            record["backend"] = pods_backend.name
            folder.write_record(record)
        return CreateResponse(PodUID=folder.uid, PodJID=record["job_id"])

    @app.post("/delete")
    async def delete(request: Request) -> Response:
        """Stop the pod's run and remove its folder; an unknown pod is fine."""
        pod = await _json(request) or {}
        folder = folder_of(str((pod.get("metadata") or {}).get("uid", "")))
        await run_in_threadpool(forget, folder)
        return PlainTextResponse("")

    def forget(folder: PodFolder) -> None:
        if folder.exists():
            job = folder.read_record().get("job_id", "")
            if job:
                pods_backend.stop(job)
            folder.remove()

    def statuses(pods: list[dict[str, Any]]) -> list[PodStatus]:
        known: list[tuple[PodFolder, dict[str, Any]]] = []
        for pod in pods:
            uid = str((pod.get("metadata") or {}).get("uid", ""))
            try:
                folder = PodFolder(state_dir, check_uid(uid))
            except PodError:
                continue
            if folder.exists():
                known.append((folder, folder.read_record()))
        runs = pods_backend.states([r["job_id"] for _, r in known if r.get("job_id")])
        over = RunState(False, exit_code=1, message="the pod was never started")
        return [pod_status(f, r, runs.get(r.get("job_id", ""), over)) for f, r in known]

    @app.get("/status")
    async def status(request: Request) -> Response:
        """The pods' statuses; for `[]` (the ping) the backend's resources."""
        pods = await _json(request)
        if not pods:
            resources = await run_in_threadpool(pods_backend.resources)
            return JSONResponse({"status": "ok", "resources": resources})
        if not isinstance(pods, list):
            raise HTTPException(400, "the body must be a list of pods")
        answer = await run_in_threadpool(statuses, pods)
        return JSONResponse([s.model_dump() for s in answer])

    @app.get("/getLogs")
    async def get_logs(request: Request) -> Response:
        """The container's log, as `kubectl logs` asked for it."""
        try:
            ask = LogRequest.model_validate(await _json(request))
        except ValidationError as exc:
            raise HTTPException(400, str(exc)) from None
        folder = folder_of(ask.pod_uid)
        if not ask.opts.follow:
            return PlainTextResponse(await run_in_threadpool(read_logs, folder, ask))
        await run_in_threadpool(check_container, folder, ask)
        # A sync generator: Starlette iterates it in its thread pool.
        return StreamingResponse(_follow(folder, ask), media_type="text/plain")

    def check_container(folder: PodFolder, ask: LogRequest) -> None:
        if not folder.exists():
            raise HTTPException(404, f"no pod {ask.pod_uid} here")
        record = folder.read_record()
        names = [*(record.get("init_containers") or []), *(record.get("containers") or [])]
        if ask.container_name not in names:
            raise HTTPException(404, f"pod {ask.pod_uid} has no container {ask.container_name!r}")

    def read_logs(folder: PodFolder, ask: LogRequest) -> str:
        check_container(folder, ask)
        return folder.logs(ask.container_name, ask.opts)

    def _follow(folder: PodFolder, ask: LogRequest) -> Iterator[bytes]:
        lines = list(folder.log_lines(ask.container_name))
        yield folder.logs(ask.container_name, ask.opts, lines).encode()
        sent = len(lines)
        while True:
            done = folder.state(ask.container_name).finished is not None or not folder.exists()
            lines = list(folder.log_lines(ask.container_name))
            for stamp, text in lines[sent:]:
                yield (f"{stamp} {text}\n" if ask.opts.timestamps else f"{text}\n").encode()
            sent = len(lines)
            if done:
                return
            time.sleep(FOLLOW_INTERVAL)

    return app
