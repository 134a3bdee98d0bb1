"""System routes over real HTTP: health, info, config, OpenAPI and docs."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from tests.fixtures.server import RunningServer
from tests.fixtures.services import minimal_service, unique_name


def test_health_needs_no_auth(anon: httpx.Client) -> None:
    response = anon.get("/health")
    assert response.status_code == 200
    assert response.text == "Ok"


@pytest.mark.parametrize("path", ["/system/info", "/system/config", "/system/services"])
def test_system_routes_need_auth(anon: httpx.Client, path: str) -> None:
    response = anon.get(path)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Basic")


def test_info_shape(api: httpx.Client) -> None:
    body = api.get("/system/info").json()
    assert body["oscar_version"] == __import__("oscar").__version__
    assert body["version"]  # upstream's API version (tests/compat/test_go_payloads.py)
    assert {"git_commit", "architecture", "kubernetes_version", "name"} <= set(body)


def test_config_has_minio_provider_with_region(api: httpx.Client) -> None:
    body = api.get("/system/config").json()
    provider = body["minio_provider"]
    assert provider["endpoint"].startswith("http")
    assert provider["region"]
    assert provider["access_key"] and provider["secret_key"]
    assert isinstance(body["oidc_groups"], list)
    assert body["config"]["name"] == body["name"]


def test_trailing_slash_is_tolerated(api: httpx.Client) -> None:
    # oscar-python calls /system/config/ with a trailing slash.
    assert api.get("/system/config/").json() == api.get("/system/config").json()
    assert api.get("/system/services/").status_code == 200


def test_openapi_describes_every_route(anon: httpx.Client) -> None:
    spec = anon.get("/openapi.json").json()
    paths = spec["paths"]
    for path in ("/health", "/system/info", "/system/config", "/system/services"):
        assert path in paths
    assert {"get", "post", "put"} <= set(paths["/system/services"])
    assert "delete" in paths["/system/services/{name}"]
    assert "Service" in spec["components"]["schemas"]


def test_docs_page(anon: httpx.Client) -> None:
    response = anon.get("/docs")
    assert response.status_code == 200
    assert "swagger" in response.text.lower()


def test_unknown_route_is_404(api: httpx.Client) -> None:
    assert api.get("/system/nothing-here").status_code == 404


def test_put_config_restricts_the_images_of_new_and_updated_services(
    start_oscar: Callable[..., RunningServer],
) -> None:
    """Upstream's `PUT /system/config` (the dashboard's and the Hub's image allow-list): stored
    durably, read back in `GET /system/config`, enforced on create and update with the field."""
    server = start_oscar()
    api = server.client()
    assert api.get("/system/config").json()["allowed_image_repositories"] == []
    before = minimal_service(unique_name("anyimg"), image="docker.io/library/alpine")
    assert api.post("/system/services", json=before).status_code == 201

    answer = api.put(
        "/system/config",
        json={"allowed_image_repositories": ["ghcr.io/grycap/"], "config": {"name": "ignored"}},
    )
    assert answer.status_code == 200 and answer.json() == ["ghcr.io/grycap/"]
    refused = api.post("/system/services", json=minimal_service(unique_name("img"), image="alpine"))
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["field"] == "image"
    spoof = minimal_service(unique_name("img"), image="evil.example/ghcr.io/grycap/x")
    assert api.post("/system/services", json=spoof).status_code == 400
    allowed = minimal_service(unique_name("img"), image="ghcr.io/grycap/imagemagick")
    assert api.post("/system/services", json=allowed).status_code == 201
    # An existing service keeps running; changing it needs an allowed image.
    assert api.put("/system/services", json=before).status_code == 400
    assert (
        api.put("/system/services", json={**before, "image": allowed["image"]}).status_code == 204
    )

    bad = api.put("/system/config", json={"allowed_image_repositories": [""]})
    assert bad.status_code == 400 and "allowed_image_repositories" in bad.text
    assert server.client(auth=False).put("/system/config", json={}).status_code == 401

    server.stop()
    again = start_oscar(data_dir=server.data_dir).client()
    assert again.get("/system/config").json()["allowed_image_repositories"] == ["ghcr.io/grycap/"]
    assert again.put("/system/config", json={"allowed_image_repositories": []}).json() == []
    assert again.post("/system/services", json=minimal_service(unique_name())).status_code == 201


# --- interLink_available --------------------------------------------------------------------------


def _node(labels: dict[str, str], ready: bool) -> object:
    from kubernetes import client

    condition = client.V1NodeCondition(type="Ready", status="True" if ready else "False")
    return client.V1Node(
        metadata=client.V1ObjectMeta(name="n", labels=labels),
        status=client.V1NodeStatus(conditions=[condition]),
    )


@pytest.mark.parametrize(
    ("nodes", "expected"),
    [
        ({}, False),
        ({"type=virtual-kubelet": [_node({"type": "virtual-kubelet"}, ready=False)]}, False),
        ({"type=virtual-kubelet": [_node({"type": "virtual-kubelet"}, ready=True)]}, True),
        (
            {
                "virtual-node.interlink/type=virtual-kubelet": [
                    _node({"virtual-node.interlink/type": "virtual-kubelet"}, ready=True)
                ]
            },
            True,
        ),
        ("refused", False),
    ],
)
def test_interlink_available_asks_for_ready_virtual_nodes(
    monkeypatch: pytest.MonkeyPatch, nodes: object, expected: bool
) -> None:
    """One label-selector list per virtual-node label; a NotReady node, or a cluster that
    refuses to list nodes, means no interLink."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    from oscar.executors import kube

    selectors: list[str] = []

    class Core:
        def __init__(self, api: object) -> None:
            pass

        def list_node(self, label_selector: str, **kwargs: object) -> client.V1NodeList:
            selectors.append(label_selector)
            if nodes == "refused":
                raise ApiException(status=403, reason="Forbidden")
            assert isinstance(nodes, dict)
            return client.V1NodeList(items=nodes.get(label_selector, []))

    monkeypatch.setattr(client, "CoreV1Api", Core)
    assert kube.interlink_available(object()) is expected
    assert set(selectors) <= {"type=virtual-kubelet", "virtual-node.interlink/type=virtual-kubelet"}


@pytest.mark.kubernetes
def test_config_reports_interlink_from_the_clusters_virtual_nodes(
    kubernetes: object, start_oscar: Callable[..., RunningServer], api: httpx.Client
) -> None:
    """With the Kubernetes executor, `interLink_available` is true once the cluster has a
    Ready interLink virtual node (kwok registers one with the virtual kubelet's labels and
    taint); with the local executor it is false, and no cluster is asked."""
    import uuid

    from tests.services.kubernetes import KubernetesCluster

    assert isinstance(kubernetes, KubernetesCluster)
    assert api.get("/system/config").json()["interLink_available"] is False
    kubernetes.create_fake_node(
        f"vk-avail-{uuid.uuid4().hex[:6]}",
        labels={"virtual-node.interlink/type": "virtual-kubelet", "type": "virtual-kubelet"},
        taints=[
            {"key": "virtual-node.interlink/no-schedule", "value": "true", "effect": "NoSchedule"}
        ],
    )
    env = {
        "OSCAR_EXECUTOR": "kubernetes",
        "OSCAR_KUBECONFIG": str(kubernetes.kubeconfig),
        "OSCAR_SERVICES_NAMESPACE": f"svc-{uuid.uuid4().hex[:6]}",
    }
    body = start_oscar(extra_env=env).client().get("/system/config").json()
    assert body["interLink_available"] is True
    assert body["config"]["interLink_available"] is True
    assert api.get("/system/config").json()["interLink_available"] is False
