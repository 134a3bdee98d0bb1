"""Synchronous services on Knative: the ksvc upstream creates, and `/run` proxied to it.

Knative itself cannot run here (it needs a container runtime), so the real API server gets only
Knative's Service CRD, and a local HTTP server stands in for the ksvc's watchdog; the test sets
the ksvc's `status.url` to it, as Knative's controller would.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from kubernetes import client

from oscar.errors import BackendUnavailableError
from oscar.executors import kube
from oscar.executors.base import SyncResult
from oscar.executors.knative import GROUP, PLURAL, VERSION, KnativeBackend
from oscar.models.validation import parse_service
from tests.fixtures.kube import namespace_with_supervisor_volume
from tests.fixtures.server import RunningServer, free_port
from tests.fixtures.services import minimal_service
from tests.services import common
from tests.services.kubernetes import KubernetesCluster

pytestmark = pytest.mark.kubernetes

KSVC_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "services.serving.knative.dev"},
    "spec": {
        "group": GROUP,
        "names": {
            "kind": "Service",
            "plural": PLURAL,
            "singular": "service",
            "shortNames": ["ksvc"],
        },
        "scope": "Namespaced",
        "versions": [
            {
                "name": VERSION,
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "x-kubernetes-preserve-unknown-fields": True,
                    }
                },
                "subresources": {"status": {}},
            }
        ],
    },
}


@pytest.fixture
def watchdog() -> Iterator[str]:
    """A stand-in for the ksvc's watchdog: answers each POST with what the supervisor would."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            answer = b"watchdog ran the supervisor on: " + body
            # As the watchdog does when the supervisor exits non-zero.
            self.send_response(500 if body == b"fail" else 200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _install_ksvc_crd(api: Any, namespace: str) -> Any:
    """Knative's Service CRD (once per cluster); returns a CustomObjectsApi once it serves."""
    from kubernetes import client

    try:
        client.ApiextensionsV1Api(api).create_custom_resource_definition(KSVC_CRD)
    except client.exceptions.ApiException as exc:
        assert exc.status == 409
    custom = client.CustomObjectsApi(api)
    common.wait_until(
        lambda: custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL) is not None,
        timeout=30,
        what="ksvc CRD established",
    )
    return custom


def test_knative_service_and_run_proxy(
    kubernetes: KubernetesCluster, start_oscar: Callable[..., RunningServer], watchdog: str
) -> None:
    api, namespace = namespace_with_supervisor_volume(kubernetes)
    custom = _install_ksvc_crd(api, namespace)
    env = {
        "OSCAR_SERVERLESS_BACKEND": "knative",
        "OSCAR_REGISTRY": "kubernetes",
        "OSCAR_KUBECONFIG": str(kubernetes.kubeconfig),
        "OSCAR_SERVICES_NAMESPACE": namespace,
    }
    server = start_oscar(extra_env=env)
    http = server.client()
    name = f"sync-{uuid.uuid4().hex[:6]}"
    definition = minimal_service(name, synchronous={"min_scale": 1, "max_scale": 3})
    assert http.post("/system/services", json=definition).status_code == 201

    ksvc: dict[str, Any] = custom.get_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, name
    )
    labels = ksvc["metadata"]["labels"]
    assert labels["networking.knative.dev/visibility"] == "cluster-local"
    template = ksvc["spec"]["template"]
    annotations = template["metadata"]["annotations"]
    assert annotations["autoscaling.knative.dev/min-scale"] == "1"
    assert annotations["autoscaling.knative.dev/max-scale"] == "3"
    assert template["spec"]["containerConcurrency"] == 1
    assert template["spec"]["containers"][0]["command"] == ["/oscar/bin/fwatchdog"]

    custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, PLURAL, name, {"status": {"url": watchdog}}
    )
    answer = http.post(f"/run/{name}", content=b"aGVsbG8=")
    assert answer.status_code == 200
    assert answer.text == "watchdog ran the supervisor on: aGVsbG8="

    assert http.delete(f"/system/services/{name}").status_code == 204
    remaining = custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)["items"]
    assert remaining == []


def test_run_sync_answers_and_fails_like_the_watchdog(
    kubernetes: KubernetesCluster, watchdog: str
) -> None:
    """The backend as a `SyncRunner`: 2xx is exit code 0, anything else non-zero with the
    status in the log; Kubernetes and connection errors leave as `oscar.errors` types."""
    api = kubernetes.api_client()
    namespace = f"kn-{uuid.uuid4().hex[:6]}"
    client.CoreV1Api(api).create_namespace({"metadata": {"name": namespace}})
    custom = _install_ksvc_crd(api, namespace)
    backend = KnativeBackend(api, namespace)
    assert backend.backend == ""  # Knative scales and queues its own pods: no Job slot taken
    service = parse_service(minimal_service(f"kn-{uuid.uuid4().hex[:6]}", token="k" * 64))

    with pytest.raises(kube.NotFoundError):  # no ksvc yet: a BackendError, not an ApiException
        asyncio.run(backend.run_sync(service, b"x", 10))
    backend.apply(service)
    backend.apply(service)  # replaces the existing one
    custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, PLURAL, service.name, {"status": {"url": watchdog}}
    )
    assert asyncio.run(backend.run_sync(service, b"aGk=", 10)) == SyncResult(
        0, b"watchdog ran the supervisor on: aGk=", ""
    )
    failed = asyncio.run(backend.run_sync(service, b"fail", 10))
    assert failed.exit_code == 1
    assert failed.log.startswith("the Knative Service answered HTTP 500")

    closed = f"http://127.0.0.1:{free_port()}"
    custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, PLURAL, service.name, {"status": {"url": closed}}
    )
    with pytest.raises(BackendUnavailableError, match="cannot reach the Knative Service"):
        asyncio.run(backend.run_sync(service, b"x", 10))
    backend.delete(service.name)
    backend.delete(service.name)  # absent is fine
    assert custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)["items"] == []


def _pod(namespace: str, ksvc: str, index: int) -> dict[str, Any]:
    """A pod of the ksvc that no node will take (its status is set by the test, as the
    kubelet would)."""
    return {
        "metadata": {
            "name": f"{ksvc}-{index}",
            "namespace": namespace,
            "labels": {f"{GROUP}/service": ksvc},
        },
        "spec": {
            "nodeSelector": {"oscar.test/nowhere": "true"},
            "containers": [{"name": "user-container", "image": "alpine"}],
        },
    }


def _set_ready(core: Any, namespace: str, pod: str, ready: bool) -> None:
    condition = {"type": "Ready", "status": "True" if ready else "False"}
    core.patch_namespaced_pod_status(pod, namespace, {"status": {"conditions": [condition]}})


def test_runtime_status_follows_the_ksvc_and_its_pods(kubernetes: KubernetesCluster) -> None:
    """`/deployment` on Knative: the ksvc's Ready condition decides ready/failed/pending, its
    pods the instances; a missing ksvc is `unavailable`."""
    api = kubernetes.api_client()
    core = client.CoreV1Api(api)
    namespace = f"kn-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"metadata": {"name": namespace}})
    custom = _install_ksvc_crd(api, namespace)
    backend = KnativeBackend(api, namespace)
    service = parse_service(minimal_service(f"kn-{uuid.uuid4().hex[:6]}", token="k" * 64))

    missing = backend.runtime_status(service)
    assert missing.state == "unavailable" and missing.resource_kind == "unavailable"
    backend.apply(service)
    pending = backend.runtime_status(service)
    assert (pending.state, pending.active_instances) == ("pending", 0)
    assert pending.resource_kind == "knative_service" and pending.namespace == namespace

    def conditions(ready: str, message: str = "") -> None:
        entry = {"type": "Ready", "status": ready, "lastTransitionTime": "2026-12-02T01:00:00Z"}
        config = {"type": "ConfigurationsReady", "status": ready, "message": message}
        status = {"status": {"conditions": [entry, config]}}
        custom.patch_namespaced_custom_object_status(
            GROUP, VERSION, namespace, PLURAL, service.name, status
        )

    conditions("False", "Revision failed: image pull back-off")
    failed = backend.runtime_status(service)
    assert failed.state == "failed" and failed.reason == "Revision failed: image pull back-off"
    assert failed.last_transition_time == "2026-12-02T01:00:00Z"

    for index in (0, 1):
        core.create_namespaced_pod(namespace, _pod(namespace, service.name, index))
    _set_ready(core, namespace, f"{service.name}-0", True)
    _set_ready(core, namespace, f"{service.name}-1", False)
    degraded = backend.runtime_status(service)
    assert (degraded.state, degraded.active_instances, degraded.affected_instances) == (
        "degraded",
        2,
        1,
    )

    conditions("True")
    ready = backend.runtime_status(service)
    assert (ready.state, ready.active_instances, ready.affected_instances) == ("ready", 2, 0)
    assert ready.reason == "Runtime service is ready."
    # No kubelet serves these pods' logs: nothing to show, and no error.
    assert backend.runtime_logs(service, 10, False) == []
