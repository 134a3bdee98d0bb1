"""Cost of OIDC Bearer tokens on a route: against HTTP Basic, in the same run.

    python benchmarks/auth_bench.py [--requests 300]

Starts a real Keycloak (scripts/testenv.sh install keycloak) with a realm made through its admin
API, and a real `oscar serve` trusting it. Times `GET /system/services` (the route every client
calls first; it also filters by visibility) with the admin's Basic credentials (the baseline),
with one user's token (verified once, then remembered until it expires), and with a token seen
for the first time (signature check, and the userinfo call when the token lacks groups). The
three are interleaved, so they see the same machine.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from benchmarks.stats import Row, format_table, timing_row  # noqa: E402
from tests.fixtures.oidc import AUDIENCE, GROUP, make_realm, oscar_clients  # noqa: E402
from tests.fixtures.server import start_server  # noqa: E402
from tests.services import keycloak  # noqa: E402

PATH = "/system/services"


def _timed(client: httpx.Client, headers: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    answer = client.get(PATH, headers=headers)
    elapsed = time.perf_counter() - started
    answer.raise_for_status()
    return elapsed


def rows(requests: int = 300) -> list[Row]:
    """Run the measurements against a fresh Keycloak and server; the table's rows."""
    with tempfile.TemporaryDirectory() as tmp, keycloak.running(Path(tmp) / "kc") as provider:
        realm = make_realm(
            provider,
            "bench",
            groups=[GROUP],
            users={"user": {"groups": [GROUP]}},
            clients=oscar_clients(),
            workdir=Path(tmp) / "realm",
        )
        server = start_server(
            Path(tmp) / "data",
            extra_env={"OSCAR_OIDC_ISSUERS": realm.issuer, "OSCAR_OIDC_AUDIENCE": AUDIENCE},
        )
        try:
            basic = server.client(timeout=60)
            anonymous = server.client(auth=False, timeout=60)
            remembered = {"Authorization": f"Bearer {realm.token('user')}"}
            # Fresh tokens are minted before the clock starts: only oscar's work is timed.
            fresh = [realm.token("user") for _ in range(requests)]
            fresh_userinfo = [realm.token("user", "userinfo-groups") for _ in range(requests)]
            samples: dict[str, list[float]] = {k: [] for k in ("basic", "kept", "new", "info")}
            _timed(anonymous, remembered)  # warm: keys fetched, token remembered
            for index in range(requests):
                samples["basic"].append(_timed(basic))
                samples["kept"].append(_timed(anonymous, remembered))
                bearer = {"Authorization": f"Bearer {fresh[index]}"}
                samples["new"].append(_timed(anonymous, bearer))
                bearer = {"Authorization": f"Bearer {fresh_userinfo[index]}"}
                samples["info"].append(_timed(anonymous, bearer))
        finally:
            server.stop()
    note = f"n={requests}, GET {PATH}"
    baseline = samples["basic"]
    return [
        timing_row(
            "OIDC token, remembered", samples["kept"], baseline, baseline_name="Basic", note=note
        ),
        timing_row(
            "OIDC token, first use", samples["new"], baseline, baseline_name="Basic", note=note
        ),
        timing_row(
            "OIDC token, first use + userinfo",
            samples["info"],
            baseline,
            baseline_name="Basic",
            note=note,
        ),
    ]


def main() -> None:
    """Run the measurements and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    print(format_table(rows(args.requests)))


if __name__ == "__main__":
    main()
