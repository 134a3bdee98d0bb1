"""Knative services for synchronous `/run` calls on the cloud path, as upstream does.

With `OSCAR_SERVERLESS_BACKEND=knative`, each service gets a ksvc `<name>` (cluster-local,
min/max scale from `synchronous`, `containerConcurrency: 1`) whose container runs upstream's
watchdog, which pipes each request body to the supervisor; `/run/<name>` reverse-proxies the
request to the ksvc's URL and returns its answer (`run_sync`: this backend is a `SyncRunner`).
The ksvc's URL is read with the blocking Kubernetes client in a worker thread, never on the
event loop; Kubernetes errors leave as `oscar.errors` types (`kube.call`).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import httpx

from oscar.errors import BackendTimeoutError, BackendUnavailableError, OscarError
from oscar.executors import kube
from oscar.executors.base import SyncResult, SyncRunner
from oscar.executors.kubernetes_job import (
    CONFIG_DIR,
    CONTAINER_NAME,
    MINIO_CREDENTIALS_MOUNT,
    SUPERVISOR_DIR,
    service_env,
)
from oscar.models.deployment import DeploymentLogEntry, DeploymentState, DeploymentStatus
from oscar.models.service import Service
from oscar.models.storage import MinIOProvider
from oscar.storage.scoped import job_store

GROUP, VERSION, PLURAL = "serving.knative.dev", "v1", "services"


def ksvc_manifest(service: Service, namespace: str, base_path: str = "/") -> dict[str, Any]:
    """The Knative Service upstream creates for a service (backends/knative.go)."""
    env = service_env(service, base_path)
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Service",
        "metadata": {
            "name": service.name,
            "namespace": namespace,
            "labels": {
                **service.labels,
                "oscar_service": service.name,
                "networking.knative.dev/visibility": "cluster-local",
            },
        },
        "spec": {
            "template": {
                "metadata": {
                    "annotations": {
                        **service.annotations,
                        "autoscaling.knative.dev/min-scale": str(service.synchronous.min_scale),
                        "autoscaling.knative.dev/max-scale": str(service.synchronous.max_scale),
                    }
                },
                "spec": {
                    "containerConcurrency": 1,
                    "containers": [
                        {
                            "name": CONTAINER_NAME,
                            "image": service.image,
                            "command": [f"{SUPERVISOR_DIR}/fwatchdog"],
                            "env": env,
                            "resources": {"limits": {"cpu": service.cpu, "memory": service.memory}},
                            "volumeMounts": [
                                {"name": "oscar-config", "mountPath": CONFIG_DIR},
                                {"name": "oscar-volume", "mountPath": SUPERVISOR_DIR},
                                {"name": "minio-credentials", "mountPath": MINIO_CREDENTIALS_MOUNT},
                            ],
                        }
                    ],
                    "volumes": [
                        {"name": "oscar-config", "configMap": {"name": service.name}},
                        {
                            "name": "oscar-volume",
                            "persistentVolumeClaim": {"claimName": "oscar-pvc"},
                        },
                        {
                            "name": "minio-credentials",
                            "secret": {"secretName": kube.store_secret_name(service.name)},
                        },
                    ],
                },
            }
        },
    }


class KnativeBackend(SyncRunner):
    """Creates, deletes and calls the ksvc of each service.

    Synchronous runs do not share the Kubernetes executor's concurrency limit (`backend` is
    ''): they run in the ksvc's own pods, which Knative scales between `min_scale` and
    `max_scale` and queues requests for (`containerConcurrency: 1`), so holding a Job slot
    for them would only starve asynchronous jobs.
    """

    backend = ""

    def __init__(self, api_client: Any, namespace: str, store: MinIOProvider | None = None) -> None:
        """`store` (with its admin keys) derives the Secret of each service's own keys."""
        from kubernetes import client

        self._api = api_client
        self._custom = client.CustomObjectsApi(api_client)
        self.namespace = namespace
        self._store = store

    def _call(self, verb: str, name: str, method: Any, *args: Any) -> Any:
        what = f"Knative Service {self.namespace}/{name}"
        return kube.call(verb, what, method, GROUP, VERSION, self.namespace, PLURAL, *args)

    def apply(self, service: Service) -> None:
        """Create or replace the service's ksvc (and the Secret of its store keys)."""
        name = service.name
        if self._store is not None:
            keys = job_store(self._store, name)
            kube.apply_store_secret(self._api, self.namespace, name, keys)
        body = ksvc_manifest(service, self.namespace)
        try:
            self._call("create", name, self._custom.create_namespaced_custom_object, body)
        except kube.ConflictError:
            current = self._call("read", name, self._custom.get_namespaced_custom_object, name)
            body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            self._call("replace", name, self._custom.replace_namespaced_custom_object, name, body)

    def delete(self, name: str) -> None:
        """Delete the ksvc (absent is fine)."""
        with contextlib.suppress(kube.NotFoundError):
            self._call("delete", name, self._custom.delete_namespaced_custom_object, name)

    def url(self, name: str) -> str:
        """Where the ksvc answers: its `status.url`, else the cluster-local address (blocking)."""
        ksvc = self._call("read", name, self._custom.get_namespaced_custom_object, name)
        return str(
            (ksvc.get("status") or {}).get("url")
            or f"http://{name}.{self.namespace}.svc.cluster.local"
        )

    async def _post(self, name: str, body: bytes, timeout: float) -> httpx.Response:
        """POST the body to the ksvc (upstream's reverse proxy); its URL is read off the loop."""
        url = await asyncio.to_thread(self.url, name)
        async with httpx.AsyncClient(timeout=timeout) as http:
            try:
                return await http.post(url, content=body)
            except httpx.TimeoutException as exc:
                raise BackendTimeoutError(
                    f"the Knative Service {name} did not answer within {timeout:g}s"
                ) from exc
            except httpx.TransportError as exc:
                raise BackendUnavailableError(
                    f"cannot reach the Knative Service {name} at {url}: {exc}"
                ) from exc

    async def run_sync(self, service: Service, body: bytes, timeout: float) -> SyncResult:
        """POST the body to the service's ksvc: exit code 0 for a 2xx answer, else 1 (the
        HTTP status and the answer are in the log); the output is the answer's body."""
        answer = await self._post(service.name, body, timeout)
        if answer.is_success:
            return SyncResult(0, answer.content, "")
        text = answer.content.decode("utf-8", errors="replace")
        log = f"the Knative Service answered HTTP {answer.status_code}\n{text}"
        return SyncResult(1, answer.content, log)

    # --- the standing runtime: the ksvc and its pods ---------------------------------------
    def _pods(self, name: str) -> list[Any]:
        from kubernetes import client

        core = client.CoreV1Api(self._api)
        return kube.call(
            "list",
            f"pods of Knative Service {self.namespace}/{name}",
            core.list_namespaced_pod,
            self.namespace,
            label_selector=f"{GROUP}/service={name}",
        ).items

    def runtime_status(self, service: Service) -> DeploymentStatus:
        """The ksvc's Ready condition and its pods (upstream's `knative_service` status)."""
        name = service.name
        try:
            ksvc = self._call("read", name, self._custom.get_namespaced_custom_object, name)
        except kube.NotFoundError:
            return DeploymentStatus(
                service_name=name,
                namespace=self.namespace,
                state="unavailable",
                reason=f"The Knative Service {name} does not exist.",
                resource_kind="unavailable",
            )
        pods = [p for p in self._pods(name) if p.metadata.deletion_timestamp is None]
        affected = sum(1 for p in pods if not _pod_ready(p))
        conditions = {c.get("type"): c for c in (ksvc.get("status") or {}).get("conditions", [])}
        ready = conditions.get("Ready")
        state: DeploymentState = "pending"
        if ready is not None and ready.get("status") == "True":
            state, affected = "ready", 0
        elif ready is not None and ready.get("status") == "False":
            state = "degraded" if pods and affected < len(pods) else "failed"
        return DeploymentStatus(
            service_name=name,
            namespace=self.namespace,
            state=state,
            reason=_unmet_condition(conditions) or _STATE_REASONS[state],
            last_transition_time=(ready or {}).get("lastTransitionTime"),
            active_instances=len(pods),
            affected_instances=affected,
            resource_kind="knative_service",
        )

    def runtime_logs(
        self, service: Service, tail: int, timestamps: bool
    ) -> list[DeploymentLogEntry]:
        """The last `tail` lines of the user container of each of the ksvc's pods; a pod whose
        log the cluster cannot give (not started yet, node gone) contributes nothing."""
        from kubernetes import client

        core = client.CoreV1Api(self._api)
        entries: list[DeploymentLogEntry] = []
        for pod in self._pods(service.name):
            try:
                text = kube.call(
                    "read",
                    f"log of pod {self.namespace}/{pod.metadata.name}",
                    core.read_namespaced_pod_log,
                    pod.metadata.name,
                    self.namespace,
                    container=CONTAINER_NAME,
                    tail_lines=tail,
                    timestamps=timestamps,
                )
            except OscarError:
                continue
            for line in str(text).splitlines():
                stamp, _, message = line.partition(" ") if timestamps else ("", "", line)
                entries.append(DeploymentLogEntry(timestamp=stamp or None, message=message))
        entries.sort(key=lambda e: e.timestamp or "")
        return entries[-tail:] if tail > 0 else []


_STATE_REASONS: dict[str, str] = {
    "ready": "Runtime service is ready.",
    "pending": "Runtime service is still reconciling.",
    "failed": "Runtime service is not ready.",
    "degraded": "Some instances of the runtime service are not ready.",
}


def _unmet_condition(conditions: dict[str, dict[str, Any]]) -> str:
    """What Knative says is wrong: the first unmet condition's message (or reason), the
    configuration's before the route's, as upstream picks it."""
    for key in ("ConfigurationsReady", "RoutesReady", "Ready"):
        condition = conditions.get(key) or {}
        if condition.get("status") != "True" and (
            condition.get("message") or condition.get("reason")
        ):
            return str(condition.get("message") or condition.get("reason"))
    return ""


def _pod_ready(pod: Any) -> bool:
    conditions = (pod.status and pod.status.conditions) or []
    return any(c.type == "Ready" and c.status == "True" for c in conditions)
