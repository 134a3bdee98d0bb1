"""Synchronous services on Knative: the ksvc upstream creates, and `/run` proxied to it.

Knative itself cannot run here (it needs a container runtime), so the real API server gets only
Knative's Service CRD, and a local HTTP server stands in for the ksvc's watchdog; the test sets
the ksvc's `status.url` to it, as Knative's controller would.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from oscar.executors.knative import GROUP, PLURAL, VERSION
from tests.fixtures.kube import namespace_with_supervisor_volume
from tests.fixtures.server import RunningServer
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
            self.send_response(200)
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


def test_knative_service_and_run_proxy(
    kubernetes: KubernetesCluster, start_oscar: Callable[..., RunningServer], watchdog: str
) -> None:
    from kubernetes import client

    api, namespace = namespace_with_supervisor_volume(kubernetes)
    extensions = client.ApiextensionsV1Api(api)
    try:
        extensions.create_custom_resource_definition(KSVC_CRD)
    except client.exceptions.ApiException as exc:
        assert exc.status == 409
    custom = client.CustomObjectsApi(api)
    common.wait_until(
        lambda: custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL) is not None,
        timeout=30,
        what="ksvc CRD established",
    )
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
