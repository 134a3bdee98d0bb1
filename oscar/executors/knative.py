"""Knative services for synchronous `/run` calls on the cloud path, as upstream does.

With `OSCAR_SERVERLESS_BACKEND=knative`, each service gets a ksvc `<name>` (cluster-local,
min/max scale from `synchronous`, `containerConcurrency: 1`) whose container runs upstream's
watchdog, which pipes each request body to the supervisor; `/run/<name>` reverse-proxies the
request to the ksvc's URL and returns its answer.
"""

from __future__ import annotations

from typing import Any

import httpx

from oscar.executors.kubernetes_job import (
    CONFIG_DIR,
    CONTAINER_NAME,
    MINIO_CREDENTIALS_MOUNT,
    SUPERVISOR_DIR,
    service_env,
)
from oscar.models.service import Service

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
                        {"name": "minio-credentials", "secret": {"secretName": "minio"}},
                    ],
                },
            }
        },
    }


class KnativeBackend:
    """Creates, deletes and calls the ksvc of each service."""

    def __init__(self, api_client: Any, namespace: str) -> None:
        from kubernetes import client

        self._custom = client.CustomObjectsApi(api_client)
        self._errors = client.exceptions.ApiException
        self.namespace = namespace

    def apply(self, service: Service) -> None:
        """Create or replace the service's ksvc."""
        body = ksvc_manifest(service, self.namespace)
        try:
            self._custom.create_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, body
            )
        except self._errors as exc:
            if exc.status != 409:
                raise
            current = self._custom.get_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, service.name
            )
            body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            self._custom.replace_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, service.name, body
            )

    def delete(self, name: str) -> None:
        """Delete the ksvc (absent is fine)."""
        try:
            self._custom.delete_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, name
            )
        except self._errors as exc:
            if exc.status != 404:
                raise

    def url(self, name: str) -> str:
        """Where the ksvc answers: its `status.url`, else the cluster-local address."""
        ksvc = self._custom.get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, name
        )
        return str(
            (ksvc.get("status") or {}).get("url")
            or f"http://{name}.{self.namespace}.svc.cluster.local"
        )

    async def call(self, name: str, body: bytes, timeout: float) -> httpx.Response:
        """POST the body to the ksvc and return its answer (upstream's reverse proxy)."""
        async with httpx.AsyncClient(timeout=timeout) as http:
            return await http.post(self.url(name), content=body)
