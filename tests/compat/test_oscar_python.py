"""The official upstream client `oscar-python` (PyPI) works against `oscar serve` unchanged."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from oscar_python.client import Client

from tests.fixtures.server import RunningServer
from tests.fixtures.services import EXAMPLES_DIR

pytestmark = pytest.mark.slow


@pytest.fixture
def server_and_client(
    start_oscar: Callable[..., RunningServer],
) -> tuple[RunningServer, Client]:
    running = start_oscar()
    options = {
        "cluster_id": "local",
        "endpoint": running.url,
        "user": running.username,
        "password": running.password,
        "ssl": "False",
    }
    return running, Client(options)


def test_service_lifecycle_from_fdl(
    server_and_client: tuple[RunningServer, Client], tmp_path: Path
) -> None:
    running, client = server_and_client
    fdl = EXAMPLES_DIR / "word-count" / "word-count.yaml"
    script = (EXAMPLES_DIR / "word-count" / "word-count.sh").read_text()

    created = client.create_service(str(fdl))
    assert created.status_code == 201

    listed = json.loads(client.list_services().text)
    assert [s["name"] for s in listed] == ["word-count"]

    service = json.loads(client.get_service("word-count").text)
    assert service["script"] == script
    assert service["memory"] == "128Mi"
    assert len(service["token"]) == 64
    token = service["token"]

    # Update from an edited copy of the FDL (the client reads the script next to it).
    copy_dir = tmp_path / "fdl"
    shutil.copytree(fdl.parent, copy_dir)
    copied = copy_dir / fdl.name
    document = yaml.safe_load(copied.read_text())
    document["functions"]["oscar"][0]["local"]["memory"] = "512Mi"
    copied.write_text(yaml.safe_dump(document))
    assert client.update_service("word-count", str(copied)).status_code == 204
    updated = json.loads(client.get_service("word-count").text)
    assert updated["memory"] == "512Mi"
    assert updated["token"] == token

    with pytest.raises(ValueError, match="already present"):
        client.create_service(str(fdl))

    assert client.remove_service("word-count").status_code == 204
    assert json.loads(client.list_services().text) == []
    assert running.client().get("/system/services/word-count").status_code == 404


def test_cluster_info_and_config(server_and_client: tuple[RunningServer, Client]) -> None:
    _, client = server_and_client
    info = json.loads(client.get_cluster_info().text)
    assert info["version"]
    config = json.loads(client.get_cluster_config().text)
    assert config["minio_provider"]["region"]


def test_storage_client_reads_default_provider(
    server_and_client: tuple[RunningServer, Client],
) -> None:
    running, client = server_and_client
    client.create_service(str(EXAMPLES_DIR / "hello-sync" / "hello-sync.yaml"))
    name = yaml.safe_load((EXAMPLES_DIR / "hello-sync" / "hello-sync.yaml").read_text())[
        "functions"
    ]["oscar"][0]["local"]["name"]
    storage = client.create_storage_client(name)
    default = storage.storage_providers["minio"]["default"]
    config = running.client().get("/system/config").json()["minio_provider"]
    assert default == config
    assert default["secret_key"] != "hidden"
