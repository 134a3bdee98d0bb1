"""A DCNiOS workflow shaped as upstream's documentation shows it imports and runs.

The example of DCNiOS's user guide (`nifi:` with a `dCache` source, an `OSCAR` destination and
a `connection` between them), with its placeholders filled in, goes through `oscar bridge
import` into a real `oscar serve`; files then closed in dCache become jobs that stage them over
WebDAV (WsgiDAV) and succeed. dCache itself cannot run here: its event API is the STAND-IN of
`tests/fixtures/dcache.py`.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.bridges import DCacheSite
from tests.fixtures.server import RunningServer, clean_env
from tests.fixtures.services import unique_name
from tests.oscar.bridges.test_end_to_end import ENV, all_jobs, wait_for_all
from tests.services import common

WORKFLOW = """\
nifi:
 endpoint: https://nifi.example.org
 user: nifi-admin
 password: {nifi_password}
 dCache:
   - name: dcache
     endpoint: {dcache_api}
     user: {dcache_user}
     password: {dcache_password}
     folder: {folder}
     statefile: dcache-state
 OSCAR:
   - name: edgan3
     endpoint: {oscar}
     service: {service}
     token: {token}
 connection:
   - from: dcache
     to: edgan3
"""


@pytest.mark.webdav
def test_the_documented_dcache_to_oscar_workflow_imports_and_runs(
    webdav: Any,
    dcache_standin: Any,
    start_oscar: Callable[..., RunningServer],
    tmp_path: Path,
) -> None:
    site = DCacheSite(server=webdav, standin=dcache_standin)
    server = start_oscar(extra_env=ENV)
    api = server.client()
    name = unique_name("dn")
    site.prepare(name)
    assert api.post("/system/services", json=site.service(name)).status_code == 201
    token = api.get(f"/system/services/{name}").json()["token"]
    workflow = tmp_path / "dcnios.yaml"
    workflow.write_text(
        WORKFLOW.format(
            nifi_password="nifi-secret-1",
            dcache_api=dcache_standin.url,
            dcache_user="dcache-user",
            dcache_password="dcache-password-0123",
            folder=f"/{name}-in",
            oscar=server.url,
            service=name,
            token=token,
        )
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "oscar",
            "bridge",
            "import",
            str(workflow),
            "--endpoint",
            server.url,
        ],
        env=clean_env(OSCAR_PASSWORD=server.password or ""),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "bridge 'dcache' created" in result.stdout
    printed = result.stdout + result.stderr
    for secret in ("nifi-secret-1", "dcache-password-0123", token):
        assert secret not in printed
    assert "statefile" in result.stderr  # what a bridge does not do is said, not dropped

    bridge = api.get("/system/bridges/dcache").json()
    assert (bridge["type"], bridge["service"]) == ("dcache", name)
    common.wait_until(lambda: dcache_standin.streams_open, timeout=30, what="the event stream")
    names = ["frame-001.fits", "frame-002.fits", "frame 003.fits"]
    site.drop(name, names)
    wait_for_all(server, name, names, timeout=60)
    assert all(job["status"] == "Succeeded" for job in all_jobs(api, name).values())
