"""A real `oscar serve` that trusts the test Keycloak's realms, shared by the auth tests."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.fixtures.oidc import AUDIENCE, GROUP, OidcRealm
from tests.fixtures.server import RunningServer, start_server


@pytest.fixture(scope="session")
def oidc_server(
    tmp_path_factory: pytest.TempPathFactory, oidc_realm: OidcRealm, other_realm: OidcRealm
) -> Iterator[RunningServer]:
    """Trusts realms `oscar` and `other`, wants audience `oscar` and group `vo.oscar.test`; the
    realm's `admin` user is a cluster admin; users may define services on local processes;
    no clock-skew leeway (so the expiry test need not wait)."""
    server = start_server(
        tmp_path_factory.mktemp("oidc") / "data",
        extra_env={
            "OSCAR_OIDC_ISSUERS": f"{oidc_realm.issuer},{other_realm.issuer}",
            "OSCAR_OIDC_AUDIENCE": AUDIENCE,
            "OSCAR_OIDC_GROUPS": GROUP,
            "OSCAR_USERS_ADMIN": oidc_realm.users["admin"].subject,
            "OSCAR_OIDC_CLIENT_ID": "oscar-cli",
            "OSCAR_OIDC_LEEWAY": "0",
            "OSCAR_LOCAL_USER_SERVICES": "true",
        },
    )
    yield server
    server.stop()


def bearer(server: RunningServer, token: str) -> httpx.Client:
    """A client of `server` sending `token` as `Authorization: Bearer`."""
    return server.client(auth=False, headers={"Authorization": f"Bearer {token}"})
