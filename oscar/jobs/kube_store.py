"""Job records kept on the Kubernetes Jobs themselves (`OSCAR_JOB_STORE=kubernetes`).

Accepting an event creates the job's Kubernetes Job at once, *suspended* (`spec.suspend`): the
Job is the queue entry and the record, so an accepted event is durable (in etcd) before it is
acknowledged, and the control plane keeps no state of its own. Submitting a queued job resumes
its Job (`KubernetesExecutor.submit` finds it exists and unsuspends it).

The record is in the Job's metadata, which every replica reads:

- labels (so that listings filter on the server): `oscar_record`, `oscar_service`,
  `oscar_status` (upstream's state), `oscar_backend`, `oscar_submitted` (`1` once handed over);
- annotations `oscar/<field>`: creation, queueing, start and end times, exit code, reason,
  attempts, the waiting reason, the owner and the backend's handle.

The event is the Job's `EVENT` variable, as on any Job (base64 in interLink's form). Listings
ask the API server for object metadata only (`PartialObjectMetadataList`), never for the pod
templates that hold the events. Every change is a read and a patch carrying the
`resourceVersion` it read, so the API server refuses it if the Job changed meanwhile; it is then
read again and the guard re-checked (the same guarded updates as the SQLite store).

An event whose Job cannot be made (too large for the `EVENT` variable, or its service is gone)
is recorded Failed on a Job that never runs: suspended, with a placeholder container.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from oscar.errors import ExecutorError, ServiceNotFoundError
from oscar.executors import kube
from oscar.executors.interlink import EVENT_COMMAND
from oscar.executors.kubernetes_job import CONTAINER_NAME, JOB_LABEL
from oscar.jobs.base import JobRecords
from oscar.models.job import TERMINAL, Job, JobStatus, utcnow

log = logging.getLogger("oscar.jobs")

RECORD_LABEL = "oscar_record"
SERVICE_LABEL = "oscar_service"
STATUS_LABEL = "oscar_status"
BACKEND_LABEL = "oscar_backend"
SUBMITTED_LABEL = "oscar_submitted"
PREFIX = "oscar/"
CREATED, QUEUED = PREFIX + "created", PREFIX + "queued"
STARTED, FINISHED = PREFIX + "started", PREFIX + "finished"
EXIT_CODE, REASON, ATTEMPTS = PREFIX + "exit-code", PREFIX + "reason", PREFIX + "attempts"
WAITING, OWNER, BACKEND_ID = PREFIX + "waiting", PREFIX + "owner", PREFIX + "backend-id"
EVENT_ENCODING, DEDUP = PREFIX + "event-encoding", PREFIX + "dedup"
#: What a record-only Job (one that never runs) keeps of its event: etcd refuses objects over
#: about 1.5 MiB, and the API body limit allows much larger events.
RECORD_EVENT_MAX = 512 * 1024
PLACEHOLDER_IMAGE = "oscar-record-only"
_META_ACCEPT = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
# A guarded change retried this many times when other writers keep changing the Job.
_ATTEMPTS = 8
_NAME_CHUNK = 100

#: Builds the Job that runs a job (`KubernetesExecutor.manifest` with its service).
ManifestMaker = Callable[[Job], dict[str, Any]]


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def record_of(metadata: dict[str, Any], event: str = "") -> Job | None:
    """The job recorded in a Job's metadata (a dict as the API sends it); None for a Job that
    is not a record (a synchronous run's) or is being deleted."""
    labels = metadata.get("labels") or {}
    notes = metadata.get("annotations") or {}
    if labels.get(RECORD_LABEL) != "1" or metadata.get("deletionTimestamp"):
        return None
    code = notes.get(EXIT_CODE)
    return Job(
        name=metadata["name"],
        service=labels.get(SERVICE_LABEL, ""),
        status=JobStatus(labels.get(STATUS_LABEL, JobStatus.PENDING.value)),
        event=event,
        backend=labels.get(BACKEND_LABEL, "kubernetes"),
        created=_time(notes.get(CREATED)) or datetime.fromisoformat(metadata["creationTimestamp"]),
        queued_at=_time(notes.get(QUEUED)),
        started_at=_time(notes.get(STARTED)),
        finished_at=_time(notes.get(FINISHED)),
        exit_code=int(code) if code not in (None, "") else None,
        reason=notes.get(REASON, ""),
        attempts=int(notes.get(ATTEMPTS) or 0),
        backend_id=notes.get(BACKEND_ID) or None,
        waiting_reason=notes.get(WAITING, ""),
        owner=notes.get(OWNER, ""),
    )


def event_of(job: dict[str, Any]) -> str:
    """The event a Job carries in its container's `EVENT` variable, decoded."""
    containers = job.get("spec", {}).get("template", {}).get("spec", {}).get("containers") or []
    value = ""
    for container in containers:
        if container.get("name") == CONTAINER_NAME:
            for variable in container.get("env") or []:
                if variable.get("name") == "EVENT":
                    value = variable.get("value", "")
    notes = job.get("metadata", {}).get("annotations") or {}
    if notes.get(EVENT_ENCODING) == "base64":
        return base64.b64decode(value).decode("utf-8", errors="replace")
    return value


def _order(jobs: list[Job]) -> list[Job]:
    return sorted(jobs, key=lambda j: (j.created, j.name))


class KubernetesJobStore(JobRecords):
    """Job records as labels and annotations of suspended-then-resumed Kubernetes Jobs."""

    def __init__(self, api_client: Any, namespace: str, manifest: ManifestMaker) -> None:
        """`manifest` builds the Job that runs a job; it may raise `ExecutorError` or
        `ServiceNotFoundError`, and the job is then recorded Failed with that reason."""
        from kubernetes import client

        self._batch = client.BatchV1Api(api_client)
        self.namespace = namespace
        self._manifest = manifest

    # --- reading -------------------------------------------------------------------------
    def _list_metadata(self, selector: str) -> list[dict[str, Any]]:
        """The metadata of every Job matching `selector`, following `continue` tokens."""
        items: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            response = kube.call(
                "list",
                f"job records in namespace {self.namespace}",
                self._batch.list_namespaced_job,
                self.namespace,
                label_selector=selector,
                limit=500,
                _continue=token,
                _headers={"Accept": _META_ACCEPT},
                _preload_content=False,
            )
            page = json.loads(response.data)
            items.extend(item["metadata"] for item in page.get("items") or [])
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return items

    def _records(self, selector: str) -> list[Job]:
        selector = f"{RECORD_LABEL}=1,{selector}".rstrip(",")
        found = (record_of(metadata) for metadata in self._list_metadata(selector))
        return _order([job for job in found if job is not None])

    def _read(self, name: str) -> dict[str, Any] | None:
        """The whole Job as the API sends it, or None when there is none."""
        try:
            response = kube.call(
                "read",
                f"Job {self.namespace}/{name}",
                self._batch.read_namespaced_job,
                name,
                self.namespace,
                _preload_content=False,
            )
        except kube.NotFoundError:
            return None
        return json.loads(response.data)

    def get(self, name: str) -> Job | None:
        """One job with its event, or None."""
        raw = self._read(name)
        return record_of(raw["metadata"], event_of(raw)) if raw else None

    def summaries(self, service: str, status: JobStatus | None = None) -> list[Job]:
        """A service's jobs, oldest first, from their Jobs' metadata only."""
        selector = f"{SERVICE_LABEL}={service}"
        if status is not None:
            selector += f",{STATUS_LABEL}={status.value}"
        return self._records(selector)

    def count(self, service: str, *statuses: JobStatus) -> int:
        """How many of a service's jobs are in one of `statuses` (all when none is given)."""
        selector = f"{SERVICE_LABEL}={service}"
        if statuses:
            selector += f",{STATUS_LABEL} in ({','.join(s.value for s in statuses)})"
        return len(self._records(selector))

    def counts(self) -> dict[str, dict[str, int]]:
        """Jobs per service and status."""
        found: dict[str, dict[str, int]] = {}
        for job in self._records(""):
            per = found.setdefault(job.service, {})
            per[job.status.value] = per.get(job.status.value, 0) + 1
        return found

    def with_status(self, *statuses: JobStatus) -> list[Job]:
        """Every job in one of `statuses`, oldest first."""
        return self._records(f"{STATUS_LABEL} in ({','.join(s.value for s in statuses)})")

    def queued(
        self, backend: str, limit: int | None = None, before: datetime | None = None
    ) -> list[Job]:
        """Pending jobs of `backend` whose Jobs are still suspended, oldest first."""
        jobs = self._records(
            f"{BACKEND_LABEL}={backend},{STATUS_LABEL}={JobStatus.PENDING.value},"
            f"{SUBMITTED_LABEL}=0"
        )
        if before is not None:
            jobs = [j for j in jobs if (j.queued_at or j.created) < before]
        return jobs if limit is None else jobs[:limit]

    def in_flight(self, backend: str) -> list[Job]:
        """Jobs handed to `backend` that have not ended."""
        return self._records(
            f"{BACKEND_LABEL}={backend},{SUBMITTED_LABEL}=1,"
            f"{STATUS_LABEL} in ({JobStatus.PENDING.value},{JobStatus.RUNNING.value})"
        )

    def events_of(self, names: list[str]) -> dict[str, str]:
        """The events of the named jobs, from their Jobs (one list per 100 names)."""
        found: dict[str, str] = {}
        for start in range(0, len(names), _NAME_CHUNK):
            part = ",".join(names[start : start + _NAME_CHUNK])
            response = kube.call(
                "list",
                f"Jobs in namespace {self.namespace}",
                self._batch.list_namespaced_job,
                self.namespace,
                label_selector=f"{RECORD_LABEL}=1,{JOB_LABEL} in ({part})",
                _preload_content=False,
            )
            for item in json.loads(response.data).get("items") or []:
                if record_of(item["metadata"]) is not None:
                    found[item["metadata"]["name"]] = event_of(item)
        return found

    # --- writing -------------------------------------------------------------------------
    def add(self, job: Job, dedup: str | None = None) -> bool:
        """Create the job's Job, suspended, carrying its record; False when a Job of that name
        exists (callers name a deduplicated event's job after its identity)."""
        manifest: dict[str, Any] | None = None
        if job.status not in TERMINAL:
            try:
                manifest = self._manifest(job)
            except (ExecutorError, ServiceNotFoundError) as exc:
                now = utcnow()
                job = job.model_copy(
                    update={
                        "status": JobStatus.FAILED,
                        "started_at": now,
                        "finished_at": now,
                        "reason": f"could not submit: {exc}",
                    }
                )
        if manifest is None:
            manifest = self._placeholder(job)
        manifest["spec"]["suspend"] = True
        metadata = manifest["metadata"]
        metadata.setdefault("labels", {}).update(
            {
                RECORD_LABEL: "1",
                JOB_LABEL: job.name,
                SERVICE_LABEL: job.service,
                STATUS_LABEL: job.status.value,
                BACKEND_LABEL: job.backend,
                SUBMITTED_LABEL: "0",
            }
        )
        notes = metadata.setdefault("annotations", {})
        notes.update(
            {
                CREATED: job.created.isoformat(),
                QUEUED: (job.queued_at or job.created).isoformat(),
                REASON: job.reason,
                ATTEMPTS: str(job.attempts),
                OWNER: job.owner,
            }
        )
        if dedup:
            notes[DEDUP] = dedup
        if job.started_at:
            notes[STARTED] = job.started_at.isoformat()
        if job.finished_at:
            notes[FINISHED] = job.finished_at.isoformat()
        if job.exit_code is not None:
            notes[EXIT_CODE] = str(job.exit_code)
        container = manifest["spec"]["template"]["spec"]["containers"][0]
        if EVENT_COMMAND in (container.get("args") or []):
            notes[EVENT_ENCODING] = "base64"
        try:
            kube.call(
                "create",
                f"Job {self.namespace}/{job.name}",
                self._batch.create_namespaced_job,
                self.namespace,
                manifest,
            )
        except kube.ConflictError:
            return False
        return True

    def _placeholder(self, job: Job) -> dict[str, Any]:
        """A Job that only records `job` and never runs (it stays suspended)."""
        event = job.event
        if len(event.encode()) > RECORD_EVENT_MAX:
            event = event.encode()[:RECORD_EVENT_MAX].decode("utf-8", errors="ignore")
        labels = {JOB_LABEL: job.name, SERVICE_LABEL: job.service}
        return {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": job.name, "namespace": self.namespace, "labels": dict(labels)},
            "spec": {
                "backoffLimit": 0,
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "restartPolicy": "Never",
                        "containers": [
                            {
                                "name": CONTAINER_NAME,
                                "image": PLACEHOLDER_IMAGE,
                                "command": ["true"],
                                "env": [{"name": "EVENT", "value": event}],
                            }
                        ],
                    },
                },
            },
        }

    def _change(
        self,
        name: str,
        guard: Callable[[Job], bool],
        change: Callable[[Job], tuple[dict[str, str], dict[str, str | None]]],
        suspend: bool | None = None,
    ) -> bool:
        """Patch a record's labels and annotations (None removes one) when `guard` holds for it,
        with the `resourceVersion` read as precondition; False when it is gone or the guard
        fails."""
        for attempt in range(_ATTEMPTS):
            raw = self._read(name)
            job = record_of(raw["metadata"]) if raw else None
            if raw is None or job is None or not guard(job):
                return False
            labels, notes = change(job)
            patch: dict[str, Any] = {
                "metadata": {
                    "resourceVersion": raw["metadata"]["resourceVersion"],
                    "labels": labels,
                    "annotations": notes,
                }
            }
            if suspend is not None:
                patch["spec"] = {"suspend": suspend}
            try:
                kube.call(
                    "update",
                    f"the record of Job {self.namespace}/{name}",
                    self._batch.patch_namespaced_job,
                    name,
                    self.namespace,
                    patch,
                    _content_type="application/merge-patch+json",
                )
            except kube.ConflictError:
                kube.back_off(attempt)
                continue  # changed since it was read: read it again
            except kube.NotFoundError:
                return False
            return True
        raise kube.ConflictError(
            f"the record of Job {self.namespace}/{name} kept changing; try again", 409
        )

    def set_submitted(self, name: str, backend_id: str) -> bool:
        """Record the handle of a queued job (its Job now resumed)."""
        return self._change(
            name,
            lambda j: j.status == JobStatus.PENDING and j.backend_id is None,
            lambda _: ({SUBMITTED_LABEL: "1"}, {BACKEND_ID: backend_id, WAITING: None}),
        )

    def set_waiting(self, name: str, reason: str) -> bool:
        """Why submitted work has not started yet."""
        return self._change(
            name, lambda j: j.status == JobStatus.PENDING, lambda _: ({}, {WAITING: reason})
        )

    def mark_running(self, name: str) -> bool:
        """Pending → Running (counts an attempt)."""
        return self._change(
            name,
            lambda j: j.status == JobStatus.PENDING,
            lambda j: (
                {STATUS_LABEL: JobStatus.RUNNING.value},
                {STARTED: utcnow().isoformat(), WAITING: None, ATTEMPTS: str(j.attempts + 1)},
            ),
        )

    def requeue(self, name: str, reason: str) -> bool:
        """Back to Pending, not submitted, and the Job suspended again (its pods end)."""
        return self._change(
            name,
            lambda j: not j.terminal,
            lambda _: (
                {STATUS_LABEL: JobStatus.PENDING.value, SUBMITTED_LABEL: "0"},
                {
                    STARTED: None,
                    BACKEND_ID: None,
                    WAITING: None,
                    QUEUED: utcnow().isoformat(),
                    REASON: reason,
                },
            ),
            suspend=True,
        )

    def finish(self, name: str, status: JobStatus, exit_code: int | None, reason: str) -> bool:
        """Record the end of a job that had not ended yet."""
        now = utcnow().isoformat()
        return self._change(
            name,
            lambda j: not j.terminal,
            lambda j: (
                {STATUS_LABEL: status.value},
                {
                    FINISHED: now,
                    STARTED: j.started_at.isoformat() if j.started_at else now,
                    EXIT_CODE: str(exit_code) if exit_code is not None else None,
                    REASON: reason,
                    WAITING: None,
                },
            ),
        )

    def delete(self, name: str) -> Job | None:
        """Delete the job's Job (its Pods follow); return the record as it was."""
        raw = self._read(name)
        job = record_of(raw["metadata"], event_of(raw)) if raw else None
        if job is None:
            return None
        return job if kube.delete_job(self._batch, self.namespace, name) else None
