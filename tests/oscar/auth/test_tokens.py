"""OIDC Bearer tokens against a real Keycloak: what is accepted, what is refused, and why.

Every valid token is minted by Keycloak (password grant on clients set up through its admin
API); the refused ones are Keycloak's tokens with the property under test (expired, not yet
valid, wrong audience, foreign issuer, rotated key) or a real token the test tampered with.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from oscar.auth.oidc import JWKS_REFETCH_SECONDS
from tests.fixtures.oidc import OidcRealm
from tests.fixtures.server import RunningServer
from tests.oscar.auth.conftest import bearer
from tests.services import common

pytestmark = [pytest.mark.keycloak]


def _segments(token: str) -> list[str]:
    return token.split(".")


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def _refused(server: RunningServer, token: str, path: str = "/system/info") -> str:
    answer = bearer(server, token).get(path)
    assert answer.status_code == 401, answer.text
    assert "Bearer" in answer.headers["www-authenticate"]
    return answer.json()["detail"]


def test_a_valid_token_names_its_user(oidc_server: RunningServer, oidc_realm: OidcRealm) -> None:
    token = oidc_realm.token("owner")
    assert bearer(oidc_server, token).get("/system/info").status_code == 200
    created = bearer(oidc_server, token).post(
        "/system/services", json={"name": "tok-owned", "image": "alpine", "script": "echo hi"}
    )
    assert created.status_code == 201, created.text
    service = bearer(oidc_server, token).get("/system/services/tok-owned").json()
    assert service["owner"] == oidc_realm.users["owner"].subject
    assert service["vo"] == "vo.oscar.test"  # the first accepted group the user is in


def test_a_tampered_token_is_refused(oidc_server: RunningServer, oidc_realm: OidcRealm) -> None:
    header, _payload, signature = _segments(oidc_realm.token("stranger"))
    claims = _claims(oidc_realm.token("stranger"))
    claims["sub"] = oidc_realm.users["admin"].subject  # pretend to be the admin
    forged = ".".join([header, _b64(claims), signature])
    assert "signature" in _refused(oidc_server, forged).lower()


def test_unsigned_and_symmetric_tokens_are_refused(
    oidc_server: RunningServer, oidc_realm: OidcRealm
) -> None:
    claims = _claims(oidc_realm.token("owner"))
    unsigned = ".".join([_b64({"alg": "none", "typ": "JWT"}), _b64(claims), ""])
    assert "'none'" in _refused(oidc_server, unsigned)
    # HS256 "signed" with the issuer's public key: the classic algorithm-confusion attack.
    jwks = httpx.get(f"{oidc_realm.issuer}/protocol/openid-connect/certs").json()
    signing = next(key for key in jwks["keys"] if key.get("use") == "sig")
    public_pem = jwt.PyJWK(signing).key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signed = ".".join([_b64({"alg": "HS256", "typ": "JWT"}), _b64(claims)])
    mac = hmac.new(public_pem, signed.encode(), hashlib.sha256).digest()
    hmac_token = signed + "." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
    assert "HS256" in _refused(oidc_server, hmac_token)


def test_an_expired_token_is_refused(oidc_server: RunningServer, oidc_realm: OidcRealm) -> None:
    token = oidc_realm.token("owner", client="short-lived")
    expires = _claims(token)["exp"]
    assert bearer(oidc_server, token).get("/system/info").status_code == 200
    # A deadline on the clock, not a synchronisation sleep: the token's own lifetime must pass.
    common.wait_until(lambda: time.time() > expires + 1, timeout=10, what="the token to expire")
    assert "expired" in _refused(oidc_server, token)


def test_a_token_not_yet_valid_is_refused(
    oidc_server: RunningServer, oidc_realm: OidcRealm
) -> None:
    token = oidc_realm.token("owner", client="not-before")
    assert _claims(token)["nbf"] > time.time() + 3600
    assert "not valid yet" in _refused(oidc_server, token)


def test_a_token_for_another_audience_is_refused(
    oidc_server: RunningServer, oidc_realm: OidcRealm
) -> None:
    token = oidc_realm.token("owner", client="no-audience")
    assert "oscar" not in _claims(token).get("aud", [])
    assert "audience" in _refused(oidc_server, token)


def test_a_token_of_an_untrusted_issuer_is_refused(
    oidc_server: RunningServer, oidc_realm: OidcRealm
) -> None:
    # Keycloak's own admin token: realm `master`, which the server does not trust.
    token = oidc_realm.keycloak.admin_tokens()["access_token"]
    assert "not trusted" in _refused(oidc_server, token)


def test_a_second_trusted_issuer_is_accepted(
    oidc_server: RunningServer, other_realm: OidcRealm
) -> None:
    token = other_realm.token("owner")
    answer = bearer(oidc_server, token).get("/system/config")
    assert answer.status_code == 200, answer.text


def test_keys_rotated_by_the_provider_are_fetched_again(
    oidc_server: RunningServer, oidc_realm: OidcRealm
) -> None:
    before = oidc_realm.token("owner")
    assert bearer(oidc_server, before).get("/system/info").status_code == 200
    new_kid = oidc_realm.rotate_keys()
    after = oidc_realm.token("owner")
    assert (
        jwt.get_unverified_header(after)["kid"]
        == new_kid
        != jwt.get_unverified_header(before)["kid"]
    )
    # The server refetches a JWKS at most once per JWKS_REFETCH_SECONDS: it may refuse the new
    # kid for that long after its last fetch, never longer.
    deadline = JWKS_REFETCH_SECONDS + 5
    common.wait_until(
        lambda: bearer(oidc_server, after).get("/system/info").status_code == 200,
        timeout=deadline,
        what="the token signed with the rotated key to be accepted",
    )


def test_groups_from_userinfo_when_the_token_has_none(
    oidc_server: RunningServer, oidc_realm: OidcRealm
) -> None:
    token = oidc_realm.token("allowed", client="userinfo-groups")
    claims = _claims(token)
    assert "groups" not in claims and "eduperson_entitlement" not in claims
    # OSCAR_OIDC_GROUPS is set: only the userinfo's groups can let this user in.
    assert bearer(oidc_server, token).get("/system/info").status_code == 200


def test_egi_entitlements_count_as_groups(
    oidc_server: RunningServer, oidc_realm: OidcRealm
) -> None:
    token = oidc_realm.token("egi")
    assert "groups" not in _claims(token) or not _claims(token)["groups"]
    assert bearer(oidc_server, token).get("/system/info").status_code == 200


def test_a_user_outside_the_accepted_groups_is_forbidden(
    oidc_server: RunningServer, oidc_realm: OidcRealm
) -> None:
    answer = bearer(oidc_server, oidc_realm.token("outsider")).get("/system/info")
    assert answer.status_code == 403
    assert "vo.oscar.test" in answer.json()["detail"]


def test_users_admin_are_admins(oidc_server: RunningServer, oidc_realm: OidcRealm) -> None:
    assert bearer(oidc_server, oidc_realm.token("admin")).get("/system/logs").status_code == 200
    assert bearer(oidc_server, oidc_realm.token("owner")).get("/system/logs").status_code == 403


def test_basic_admin_and_public_login_config(
    oidc_server: RunningServer, oidc_realm: OidcRealm
) -> None:
    assert oidc_server.client().get("/system/info").status_code == 200
    config = oidc_server.client(auth=False).get("/auth/config").json()["oidc"]
    assert config["enabled"] is True
    assert oidc_realm.issuer in config["issuers"]
    assert config["client_id"] == "oscar-cli"
    no_credentials = oidc_server.client(auth=False).get("/system/info")
    assert no_credentials.status_code == 401
    assert "Bearer" in no_credentials.headers["www-authenticate"]
