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

from oscar.errors import BackendTimeoutError, BackendUnavailableError
from oscar.executors import kube
from oscar.executors.base import SyncResult, SyncRunner
from oscar.executors.kubernetes_job import (
    CONFIG_DIR,
    CONTAINER_NAME,
    MINIO_CREDENTIALS_MOUNT,
    SUPERVISOR_DIR,
    service_env,
)
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
