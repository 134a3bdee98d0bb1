"""Kubernetes executor: one `batch/v1` Job per job, as upstream (reference §4).

`submit` creates the Job and returns its name, the handle. `poll` answers for every job in
flight with one label-selector list of their Jobs and one of their Pods (per 100 jobs), never
a request per job; no thread waits and no watch runs per job. `cancel` and `cleanup` delete
the Job and, at once rather than whenever the garbage collector gets to them, its Pods.

Without Knative, a synchronous `/run` is a Job too: `run_sync` creates it, polls it from a
small async loop until it ends or the timeout passes, returns its Pod's log, and deletes it.
Every API call goes through `kube.call`, so errors leave as `oscar.errors` types.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import re
from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator
from typing import Any

import yaml

from oscar.errors import BackendError, BackendUnavailableError, ExecutorError
from oscar.executors import kube
from oscar.executors.base import Executor, Observation, SyncResult, SyncRunner
from oscar.executors.interlink import is_virtual_node, to_interlink
from oscar.executors.jobdir import function_config
from oscar.executors.kubernetes_job import (
    CONTAINER_NAME,
    JOB_LABEL,
    SupervisorSource,
    job_manifest,
)
from oscar.models.job import Job, JobStatus, new_job_name
from oscar.models.service import Service
from oscar.models.storage import MinIOProvider
from oscar.storage.scoped import job_store

log = logging.getLogger("oscar.executors")

#: The label Kubernetes puts on a Job's Pods.
POD_JOB_LABEL = "job-name"
GONE = "the Kubernetes Job no longer exists"
DELETED = "the Kubernetes Job was deleted"
# Names per set-based selector: 100 job names keep a list URL under ~7 KB, which proxies in
# front of an API server accept (a longer one would be refused, not just slow).
SELECTOR_CHUNK = 100
_LABEL_VALUE = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?")
# Container waiting reasons that only mean "starting": the pod's own message says more.
_STARTING = frozenset({"ContainerCreating", "PodInitializing"})
# Linux's limit on one environment string (MAX_ARG_STRLEN), which `EVENT=<event>` must fit.
EVENT_ENV_MAX = 128 * 1024 - len("EVENT=")


class KubernetesExecutor(Executor, SyncRunner):
    """Submits Jobs to a Kubernetes API server and polls them in batches."""

    name = "kubernetes"
    backend = "kubernetes"
    call_kind = "kubernetes_job"
    poll_interval = 1.0
    default_concurrency = 500

    def __init__(
        self,
        api_client: Any,
        namespace: str,
        timeout: float = 3600,
        *,
        store: MinIOProvider | None = None,
        job_store_endpoint: str | None = None,
        supervisor: SupervisorSource | None = None,
        cloud_node: str = "",
        keep_records: bool = False,
    ) -> None:
        """`timeout` is given to each job's supervisor, which kills the script after it.

        `store` (the default store with its admin keys) is used to derive each service's own
        keys, put in its Secret before its first Job; without it, that Secret is expected to
        exist already. The pods' `minio.default` is at `job_store_endpoint`, by default the
        store's own endpoint (`OSCAR_JOB_MINIO_ENDPOINT`); `supervisor` says how the
        supervisor reaches the pods (by default: installed on the nodes). Jobs of services
        without `interlink_node_name` go to the virtual node `cloud_node` when given
        (`OSCAR_CLOUD_INTERLINK_NODE`). With `keep_records` the Jobs are the job records
        (`OSCAR_JOB_STORE=kubernetes`): cancelling stops a Job's work but keeps the Job.
        """
        super().__init__()
        self._api = api_client
        self._store = store
        self._job_store_endpoint = job_store_endpoint or None
        self.supervisor = supervisor or SupervisorSource()
        self.cloud_node = cloud_node
        self.keep_records = keep_records
        self._secrets_applied: set[str] = set()
        # Service name → digest of the configuration Secret last written by this process.
        self._configs_applied: dict[str, str] = {}
        from kubernetes import client

        self._batch = client.BatchV1Api(api_client)
        self._core = client.CoreV1Api(api_client)
        self.namespace = namespace
        self.timeout = timeout

    # --- the job lifecycle ---------------------------------------------------------------
    def submit(self, job: Job, service: Service) -> str:
        """Create the Job (an existing Job of that name is the same work, kept); return its name.

        When the Jobs are the job records, the job's Job was made when its event was accepted:
        it is only resumed, and made here only if it is gone meanwhile."""
        if self.keep_records:
            self._ensure_store_secret(service)
            self._ensure_config_secret(service)
            try:
                self._resume(job.name)
            except kube.NotFoundError:
                pass
            else:
                return job.name
        return self._create(job, service, self.timeout)

    def poll(self, handles: Collection[str]) -> dict[str, Observation]:
        """What the Jobs and their Pods say, from one list of each per 100 handles."""
        wanted = list(dict.fromkeys(handles))
        answers = {
            h: Observation(JobStatus.FAILED, reason=f"{h!r} is not a Kubernetes Job name")
            for h in wanted
            if not _LABEL_VALUE.fullmatch(h)
        }
        valid = [h for h in wanted if h not in answers]
        jobs: dict[str, Any] = {}
        pods: dict[str, list[Any]] = defaultdict(list)
        for chunk in _chunks(valid, SELECTOR_CHUNK):
            names = ",".join(chunk)
            for item in self._list_jobs(f"{JOB_LABEL} in ({names})"):
                jobs[item.metadata.name] = item
            for pod in self._list_pods(f"{POD_JOB_LABEL} in ({names})"):
                pods[(pod.metadata.labels or {}).get(POD_JOB_LABEL, "")].append(pod)
        answers.update({h: observe(jobs.get(h), pods.get(h, [])) for h in valid})
        return answers

    def cancel(self, handle: str) -> None:
        """Delete the Job and its Pods, queued or running; a Job already gone is fine.

        When the Jobs are the job records, the Job is suspended instead (Kubernetes ends its
        Pods; ours are deleted at once too) and kept, so that a job that timed out still
        shows why; deleting the job deletes its Job.
        """
        if not self.keep_records:
            self._delete(handle)
            return
        with contextlib.suppress(kube.NotFoundError):
            kube.call(
                "suspend",
                f"Job {self.namespace}/{handle}",
                self._batch.patch_namespaced_job,
                handle,
                self.namespace,
                {"spec": {"suspend": True}},
            )
        self._delete_pods(handle)

    def logs(self, job: Job, tail: int | None = None) -> str:
        """The log of the Job's Pod, container `oscar-container` ('' before it ran)."""
        pod = latest_pod(self._list_pods(f"{POD_JOB_LABEL}={job.backend_id or job.name}"))
        if pod is None:
            return ""
        extra = {"tail_lines": tail} if tail is not None else {}
        try:
            text = kube.call(
                "read",
                f"the log of Pod {self.namespace}/{pod.metadata.name}",
                self._core.read_namespaced_pod_log,
                pod.metadata.name,
                self.namespace,
                container=CONTAINER_NAME,
                **extra,
            )
        except kube.KubeError as exc:
            # 404: the pod went away; 400: its container has not started (or never will).
            if exc.status in (400, 404):
                return ""
            raise
        return str(text or "")

    def cleanup(self, job: Job) -> None:
        """Delete the Job and its Pods (kept until now for the logs); absent is fine."""
        self._delete(job.backend_id or job.name)

    # --- synchronous runs ----------------------------------------------------------------
    async def run_sync(self, service: Service, body: bytes, timeout: float) -> SyncResult:
        """Run a Job on `body` and return its exit code and Pod log; the Job is deleted after,
        also when the call is cancelled (the client went away) or times out."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        job = Job(
            name=new_job_name(service.name),
            service=service.name,
            event=body.decode("utf-8", errors="replace"),
            backend=self.name,
        )
        creating = asyncio.ensure_future(asyncio.to_thread(self._create, job, service, timeout))
        try:
            # Shielded: a cancelled call must not leave the creation running unseen; the
            # clean-up below waits for it before deleting.
            await asyncio.shield(creating)
            observed = await self._wait(job.name, deadline)
            if observed is None:
                reason = f"the run did not finish within the {timeout:g}s timeout"
                return SyncResult(124, b"", reason)
            text = await asyncio.to_thread(self.logs, job)
            code = observed.exit_code
            if code is None:
                code = 0 if observed.status == JobStatus.SUCCEEDED else 1
            if code != 0 and observed.reason:
                text = f"{text.rstrip()}\n{observed.reason}\n".lstrip()
            return SyncResult(code, text.encode(), text)
        finally:
            await asyncio.shield(self._discard_after(creating, job.name))

    async def _wait(self, name: str, deadline: float) -> Observation | None:
        """Poll one Job until it ends (its observation) or `deadline` passes (None)."""
        loop = asyncio.get_running_loop()
        interval = 0.1
        while True:
            try:
                observed = (await asyncio.to_thread(self.poll, [name]))[name]
            except BackendUnavailableError as exc:
                log.warning("cannot poll synchronous run %s yet: %s", name, exc)
            else:
                if observed.terminal:
                    return observed
            remaining = deadline - loop.time()
            if remaining <= 0:
                return None
            await asyncio.sleep(min(interval, remaining))
            interval = min(interval * 2, self.poll_interval)

    async def _discard_after(self, creating: asyncio.Future[str], name: str) -> None:
        with contextlib.suppress(Exception):
            await creating  # its failure was reported by run_sync already
        try:
            await asyncio.to_thread(self._delete, name)
        except BackendError as exc:
            log.warning("could not delete the Job of synchronous run %s: %s", name, exc)

    # --- API calls -----------------------------------------------------------------------
    def manifest(self, job: Job, service: Service, timeout: float | None = None) -> dict[str, Any]:
        """The Job that runs `job` (interLink's form for a virtual node); `ExecutorError` when
        the event cannot travel in a Job. Nothing is created."""
        self._check_event_size(len(job.event.encode()))
        manifest = job_manifest(
            service,
            job.event,
            job.name,
            namespace=self.namespace,
            supervisor_timeout=self.timeout if timeout is None else timeout,
            minio_credentials=kube.store_secret_name(service.name),
            config_secret=kube.job_config_secret_name(service.name),
            supervisor=self.supervisor,
        )
        node = service.interlink_node_name or self.cloud_node
        if node and self._virtual_node(node):
            manifest = to_interlink(manifest, node)
            # The interLink form carries the event base64-encoded: a third longer.
            self._check_event_size(len(_event_value(manifest).encode()))
        return manifest

    def _create(self, job: Job, service: Service, timeout: float) -> str:
        manifest = self.manifest(job, service, timeout)
        self._ensure_store_secret(service)
        self._ensure_config_secret(service)
        try:
            kube.call(
                "create",
                f"Job {self.namespace}/{job.name}",
                self._batch.create_namespaced_job,
                self.namespace,
                manifest,
            )
        except kube.ConflictError:
            # The Job exists: created before by a control plane that stopped before recording
            # the handle, or kept suspended as the job's record (OSCAR_JOB_STORE=kubernetes).
            # Either way it is this job's work: it is resumed (a no-op when it runs), never
            # started a second time.
            self._resume(job.name)
        return job.name

    def _resume(self, name: str) -> None:
        """Unsuspend a Job (`NotFoundError` when there is none)."""
        kube.call(
            "resume",
            f"Job {self.namespace}/{name}",
            self._batch.patch_namespaced_job,
            name,
            self.namespace,
            {"spec": {"suspend": False}},
        )

    @staticmethod
    def _check_event_size(size: int) -> None:
        if size >= EVENT_ENV_MAX:
            # As upstream, the Job carries the event in its EVENT variable, and Linux refuses
            # to start a process with one environment string over 128 KiB.
            raise ExecutorError(
                f"the event is {size} bytes; Kubernetes Jobs carry it in their EVENT variable, "
                f"which holds less than {EVENT_ENV_MAX} bytes: upload large inputs to the "
                "service's input bucket instead"
            )

    def job_config(self, service: Service) -> dict[str, str]:
        """The data of the Secret `oscar-job-<service>` the pods mount at `/oscar/config`:
        the supervisor's `function_config.yaml` (as on the local and Slurm backends: the
        service's environment secrets included, `minio.default` with the endpoint pods reach
        and no keys) and `script.sh`."""
        config = function_config(service, self._store, self._job_store_endpoint)
        return {
            "function_config.yaml": yaml.safe_dump(config, sort_keys=False),
            "script.sh": service.script,
        }

    def _ensure_config_secret(self, service: Service) -> None:
        """Write the service's configuration Secret when it differs from what this process
        last wrote (the first Job of a service after a start, or after the service changed)."""
        data = self.job_config(service)
        digest = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
        if self._configs_applied.get(service.name) == digest:
            return
        kube.apply_job_config_secret(self._api, self.namespace, service.name, data)
        self._configs_applied[service.name] = digest

    def _ensure_store_secret(self, service: Service) -> None:
        """Write the service's scoped store keys once per process (keys are stable, so a
        restart rewriting them is harmless)."""
        if self._store is None or service.name in self._secrets_applied:
            return
        keys = job_store(self._store, service.name)
        kube.apply_store_secret(self._api, self.namespace, service.name, keys)
        self._secrets_applied.add(service.name)

    def _virtual_node(self, name: str) -> bool:
        """Whether `name` is an interLink virtual node right now (checked at every submission,
        not only at start-up as upstream does, so nodes that join later are used)."""
        try:
            node = kube.call("read", f"node {name}", self._core.read_node, name)
        except kube.NotFoundError:
            return False
        return is_virtual_node(node.metadata.labels)

    def _list_jobs(self, selector: str) -> list[Any]:
        return _all_pages(
            "list",
            f"Jobs in namespace {self.namespace}",
            self._batch.list_namespaced_job,
            self.namespace,
            label_selector=selector,
        )

    def _list_pods(self, selector: str) -> list[Any]:
        return _all_pages(
            "list",
            f"Pods in namespace {self.namespace}",
            self._core.list_namespaced_pod,
            self.namespace,
            label_selector=selector,
        )

    def _delete(self, name: str) -> None:
        """Delete the Job, then its Pods (the garbage collector would, but only later)."""
        kube.delete_job(self._batch, self.namespace, name)
        self._delete_pods(name)

    def _delete_pods(self, name: str) -> None:
        with contextlib.suppress(kube.NotFoundError):  # the namespace itself is gone
            kube.call(
                "delete",
                f"the Pods of Job {self.namespace}/{name}",
                self._core.delete_collection_namespaced_pod,
                self.namespace,
                label_selector=f"{POD_JOB_LABEL}={name}",
            )


# --- reading Jobs and Pods (pure functions of the API objects) ---------------------------------


def observe(job: Any | None, pods: Iterable[Any]) -> Observation:
    """A job's state from its `V1Job` (None when it does not exist) and its `V1Pod`s."""
    if job is None:
        return Observation(JobStatus.FAILED, reason=GONE)
    if job.metadata.deletion_timestamp is not None:
        return Observation(JobStatus.FAILED, reason=DELETED)
    conditions = {
        c.type: c
        for c in (job.status.conditions if job.status else None) or []
        if c.status == "True"
    }
    pod = latest_pod(pods)
    if "Complete" in conditions or "SuccessCriteriaMet" in conditions:
        return Observation(JobStatus.SUCCEEDED, 0)
    # Since Kubernetes 1.31 SuccessCriteriaMet and FailureTarget come first, and Complete and
    # Failed once every pod has terminated: the outcome is known from the first.
    failed = conditions.get("Failed") or conditions.get("FailureTarget")
    if failed is not None:
        code, detail = exit_status(pod)
        reason = failed.message or failed.reason or "the Kubernetes Job failed"
        return Observation(JobStatus.FAILED, code, f"{reason}: {detail}" if detail else reason)
    if pod is None:
        return Observation(JobStatus.PENDING, reason="waiting for the Job controller's Pod")
    if (pod.status.phase if pod.status else None) in ("Running", "Succeeded", "Failed", "Unknown"):
        # A pod that ended before its Job's condition was written has run all the same.
        return Observation(JobStatus.RUNNING)
    return Observation(JobStatus.PENDING, reason=waiting_reason(pod))


def latest_pod(pods: Iterable[Any]) -> Any | None:
    """The Pod that speaks for the Job: the newest not being deleted, else the newest."""

    def key(pod: Any) -> tuple[bool, float]:
        created = pod.metadata.creation_timestamp
        return (pod.metadata.deletion_timestamp is None, created.timestamp() if created else 0.0)

    return max(pods, key=key, default=None)


def waiting_reason(pod: Any) -> str:
    """Why a Pending pod has not started: the scheduler's message, else its containers'."""
    status = pod.status
    for condition in (status.conditions if status else None) or []:
        if condition.type == "PodScheduled" and condition.status == "False":
            return condition.message or condition.reason or "waiting to be scheduled"
    containers = [
        *((status.init_container_statuses if status else None) or []),
        *((status.container_statuses if status else None) or []),
    ]
    for container in containers:
        waiting = container.state.waiting if container.state else None
        if waiting is not None and waiting.reason and waiting.reason not in _STARTING:
            return f"{waiting.reason}: {waiting.message}" if waiting.message else waiting.reason
    if not pod.spec or not pod.spec.node_name:
        return "waiting to be scheduled"
    return f"starting on node {pod.spec.node_name}"


def exit_status(pod: Any | None) -> tuple[int | None, str]:
    """The exit code and message of the pod's container that ended (ours first, then init)."""
    status = pod.status if pod is not None else None
    if status is None:
        return None, ""
    ours = [c for c in status.container_statuses or [] if c.name == CONTAINER_NAME]
    failed_init = [
        c
        for c in status.init_container_statuses or []
        if c.state and c.state.terminated and c.state.terminated.exit_code != 0
    ]
    for container in (*ours, *failed_init):
        ended = (container.state and container.state.terminated) or (
            container.last_state and container.last_state.terminated
        )
        if ended is not None:
            detail = ": ".join(p for p in (ended.reason, ended.message) if p)
            if container.name != CONTAINER_NAME:
                detail = f"init container {container.name}: {detail or 'failed'}"
            return ended.exit_code, detail
    return None, ""


def _event_value(manifest: dict[str, Any]) -> str:
    container = manifest["spec"]["template"]["spec"]["containers"][0]
    return next((e.get("value", "") for e in container["env"] if e["name"] == "EVENT"), "")


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _all_pages(verb: str, what: str, method: Any, *args: Any, **kwargs: Any) -> list[Any]:
    """Every item of a list call, following `continue` tokens (500 objects per page)."""
    items: list[Any] = []
    token: str | None = None
    while True:
        page = kube.call(verb, what, method, *args, limit=500, _continue=token, **kwargs)
        items.extend(page.items or [])
        token = page.metadata._continue if page.metadata else None
        if not token:
            return items
