"""No credential is readable by a job's script (audit M1, M3).

On main before the fix, `tr '\\0' '\\n' < /proc/$PPID/environ` in a script printed
`MINIO_SECRET_KEY=<admin password>`: the supervisor, the script's parent, held the store's admin
keys in its environment.
"""

from __future__ import annotations

import httpx

from oscar.storage.scoped import service_keys
from tests.fixtures.server import ADMIN_PASSWORD, RunningServer
from tests.fixtures.services import minimal_service, unique_name

PROBE = r"""
for pid in $PPID $$; do tr '\0' '\n' < /proc/$pid/environ; done
# The supervisor runs in the job's folder, where its keys were (its environment may be a
# forked zygote's, which never names them).
secrets="$(readlink /proc/$PPID/cwd)/secrets"
echo "secrets-dir=$secrets"
ls -A "$secrets" 2>&1
cat "$secrets"/*/* 2>&1
cat "$(dirname "$secrets")"/function_config.yaml 2>&1
true
"""


def test_the_script_finds_no_credential_anywhere(server: RunningServer, api: httpx.Client) -> None:
    name = unique_name("probe")
    definition = minimal_service(
        name,
        script=PROBE,
        output=[{"storage_provider": "minio.default", "path": f"{name}/out"}],
        environment={"variables": {"SCRIPT_WRAPPER": "/usr/bin/env MARK=from-service"}},
    )
    assert api.post("/system/services", json=definition).status_code == 201
    token = api.get(f"/system/services/{name}").json()["token"]
    try:
        response = httpx.post(
            f"{server.url}/run/{name}",
            content=b"aGk=",
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        )
        assert response.status_code == 200, response.text
        output = response.text
        assert "secrets-dir=/" in output  # the probe did find where the keys were
        _, job_secret = service_keys(ADMIN_PASSWORD, name)
        for secret in (ADMIN_PASSWORD, job_secret, token):
            assert secret not in output
        assert "MINIO_SECRET_KEY" not in output
        assert "MINIO_ACCESS_KEY" not in output
        assert "MARK=from-service" not in output.splitlines()  # M1: no wrapper from the service
        assert "No such file" in output  # the keys and the configuration were consumed
    finally:
        api.delete(f"/system/services/{name}")
