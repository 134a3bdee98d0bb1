"""`oscar bridge import`: a DCNiOS workflow into a running control plane, as its admin."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import yaml

from tests.fixtures.server import RunningServer, clean_env, free_port

SECRET = "dcache-secret-77"
FLOW = """\
nifi:
  endpoint: https://nifi.example.org
  user: admin
  password: nifi-secret
  dCache:
    - name: DCache_Watch
      endpoint: http://127.0.0.1:{port}/api/v1
      user: duser
      password: {secret}
      folder: /data/in
      statefile: state
  OSCAR:
    - name: invoke
      endpoint: https://oscar.example.org
      service: imported
      token: token-secret
  connection:
    - from: DCache_Watch
      to: invoke
"""


def _oscar(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "oscar", "bridge", "import", *args],
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_import_with_the_data_dirs_password(
    start_oscar: Callable[..., RunningServer], tmp_path: Path
) -> None:
    # No OSCAR_PASSWORD: the server generates one into its data directory.
    server = start_oscar(password=None)
    api = server.client()
    service = {
        "name": "imported",
        "image": "alpine",
        "script": "echo\n",
        "input": [{"storage_provider": "webdav.dav", "path": "data/in"}],
        "storage_providers": {
            "webdav": {"dav": {"hostname": f"http://127.0.0.1:{free_port()}", "login": "u"}}
        },
    }
    assert api.post("/system/services", json=service).status_code == 201
    flow, dcache_port = tmp_path / "flow.yaml", free_port()
    flow.write_text(FLOW.format(port=dcache_port, secret=SECRET))
    secrets = (SECRET, "nifi-secret", "token-secret", server.password or "?")

    dry = _oscar(str(flow), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    (bridge,) = yaml.safe_load(dry.stdout)
    assert (bridge["name"], bridge["type"], bridge["service"]) == (
        "dcache-watch",
        "dcache",
        "imported",
    )
    assert bridge["credentials"] == {"user": "********", "password": "********"}
    assert "warning: " in dry.stderr and "statefile" in dry.stderr
    assert api.get("/system/bridges/dcache-watch").status_code == 404  # nothing sent

    args = (str(flow), "--endpoint", server.url, "--data-dir", str(server.data_dir))
    done = _oscar(*args)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "bridge 'dcache-watch' created"
    stored = api.get("/system/bridges/dcache-watch").json()
    assert stored["endpoint"] == f"http://127.0.0.1:{dcache_port}/api/v1"
    assert stored["folder"] == "/data/in"
    assert stored["credentials"] == {"password": "********", "user": "********"}
    again = _oscar(*args)
    assert again.returncode == 0 and again.stdout.strip() == "bridge 'dcache-watch' updated"
    for result in (dry, done, again):
        assert not any(s in result.stdout + result.stderr for s in secrets)

    wrong = _oscar(*args, OSCAR_PASSWORD="not-the-password")
    assert wrong.returncode == 1
    assert "bad credentials (401)" in wrong.stderr and "not-the-password" not in wrong.stderr
    nobody = _oscar(str(flow), "--endpoint", server.url, "--data-dir", str(tmp_path / "empty"))
    assert nobody.returncode == 1 and "no admin password: set OSCAR_PASSWORD" in nobody.stderr
    down = _oscar(*args[:2], f"http://127.0.0.1:{free_port()}", *args[3:])
    assert down.returncode == 1 and "is oscar serve running?" in down.stderr
    assert "Traceback" not in wrong.stderr + nobody.stderr + down.stderr


def test_import_reports_the_servers_refusal(
    start_oscar: Callable[..., RunningServer], tmp_path: Path
) -> None:
    server = start_oscar()
    flow = tmp_path / "flow.yaml"
    flow.write_text(FLOW.format(port=free_port(), secret=SECRET))
    # The service does not exist: the server refuses the bridge and says why.
    result = _oscar(str(flow), "--endpoint", server.url, OSCAR_PASSWORD=server.password or "")
    assert result.returncode == 1
    assert "bridge 'dcache-watch'" in result.stderr
    assert "service 'imported' does not exist" in result.stderr

    broken = tmp_path / "broken.yaml"
    broken.write_text(FLOW.format(port=1, secret=SECRET).replace("      service: imported\n", ""))
    result = _oscar(str(broken), "--dry-run")
    assert result.returncode == 1
    assert f"{broken}:13: nifi.OSCAR[0].service: is required" in result.stderr
