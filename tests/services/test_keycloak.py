"""Smoke tests: the Keycloak realms of tests/fixtures/oidc.py mint the tokens the tests rely on."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest

from tests.fixtures.oidc import (
    AUDIENCE,
    EGI_ENTITLEMENT,
    ENTITLEMENT_ATTRIBUTE,
    GROUP,
    OTHER_GROUP,
    OidcRealm,
    unverified,
)

pytestmark = pytest.mark.keycloak


def _audiences(claims: dict[str, Any]) -> list[str]:
    audience = claims.get("aud", [])
    return [audience] if isinstance(audience, str) else list(audience)


def _verified(realm: OidcRealm, token: str) -> dict[str, Any]:
    """The token's claims, checked as a resource server would: JWKS signature, issuer, `aud`."""
    key = jwt.PyJWKClient(realm.jwks_uri, cache_keys=False).get_signing_key_from_jwt(token)
    return jwt.decode(token, key, algorithms=["RS256"], audience=AUDIENCE, issuer=realm.issuer)


def test_discovery_names_the_realm_issuer(oidc_realm: OidcRealm, other_realm: OidcRealm) -> None:
    for realm in (oidc_realm, other_realm):
        document = httpx.get(realm.discovery_url, timeout=30).json()
        assert document["issuer"] == realm.issuer
        assert document["jwks_uri"] == realm.jwks_uri
        assert document["device_authorization_endpoint"] == realm.device_endpoint
    assert oidc_realm.issuer == f"{oidc_realm.keycloak.url}/realms/oscar"
    assert other_realm.issuer != oidc_realm.issuer


def test_owner_token_has_subject_audience_and_groups(oidc_realm: OidcRealm) -> None:
    tokens = oidc_realm.tokens("owner")
    assert {"access_token", "refresh_token", "id_token", "expires_in"} <= tokens.keys()
    claims = _verified(oidc_realm, tokens["access_token"])
    assert claims["sub"] == oidc_realm.users["owner"].subject
    assert AUDIENCE in _audiences(claims)
    assert claims["groups"] == [GROUP]
    assert claims["preferred_username"] == "owner"
    assert claims["email"] == oidc_realm.users["owner"].email
    _, outsider = unverified(oidc_realm.token("outsider"))
    assert outsider["groups"] == [OTHER_GROUP]


def test_no_audience_client_leaves_oscar_out_of_aud(oidc_realm: OidcRealm) -> None:
    _, claims = unverified(oidc_realm.token("owner", "no-audience"))
    assert AUDIENCE not in _audiences(claims)
    assert claims["sub"] == oidc_realm.users["owner"].subject


def test_userinfo_groups_client_puts_groups_only_in_userinfo(oidc_realm: OidcRealm) -> None:
    token = oidc_realm.token("owner", "userinfo-groups")
    _, claims = unverified(token)
    assert "groups" not in claims
    assert AUDIENCE in _audiences(claims)
    userinfo = httpx.get(
        oidc_realm.userinfo_endpoint, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ).json()
    assert userinfo["sub"] == oidc_realm.users["owner"].subject
    assert userinfo["groups"] == [GROUP]


def test_egi_user_carries_the_entitlement_and_no_group(oidc_realm: OidcRealm) -> None:
    claims = _verified(oidc_realm, oidc_realm.token("egi"))
    assert claims[ENTITLEMENT_ATTRIBUTE] == [EGI_ENTITLEMENT]
    assert not claims.get("groups")
    _, owner = unverified(oidc_realm.token("owner"))
    assert ENTITLEMENT_ATTRIBUTE not in owner


def test_short_lived_and_not_before_clients(oidc_realm: OidcRealm) -> None:
    short = oidc_realm.tokens("owner", "short-lived")
    _, claims = unverified(short["access_token"])
    # Keycloak counts expires_in from its clock at answer time, so a second boundary makes it 1
    assert short["expires_in"] in (1, 2)
    assert claims["exp"] - claims["iat"] == 2

    _, claims = unverified(oidc_realm.token("owner", "not-before"))
    assert claims["nbf"] > time.time() + 23 * 3600  # Keycloak kept the hardcoded claim


def test_other_realm_is_another_issuer(oidc_realm: OidcRealm, other_realm: OidcRealm) -> None:
    claims = _verified(other_realm, other_realm.token("owner"))
    assert claims["iss"] == other_realm.issuer
    assert claims["sub"] == other_realm.users["owner"].subject != oidc_realm.users["owner"].subject
    assert claims["groups"] == [GROUP]
    with pytest.raises(jwt.PyJWTError):  # its keys are not the oscar realm's
        _verified(oidc_realm, other_realm.token("owner"))


def test_rotate_keys_signs_new_tokens_with_a_new_key(oidc_realm: OidcRealm) -> None:
    before = oidc_realm.token("allowed")
    old_kid = unverified(before)[0]["kid"]
    new_kid = oidc_realm.rotate_keys()
    assert new_kid != old_kid
    after = oidc_realm.token("allowed")
    assert unverified(after)[0]["kid"] == new_kid
    published = {key["kid"] for key in httpx.get(oidc_realm.jwks_uri, timeout=30).json()["keys"]}
    assert {old_kid, new_kid} <= published
    assert _verified(oidc_realm, before)["sub"] == _verified(oidc_realm, after)["sub"]


def test_dashboard_client_needs_pkce_on_its_redirect_uris(oidc_realm: OidcRealm) -> None:
    callback = "http://127.0.0.1:8999/ui/"
    oidc_realm.set_client_redirects("oscar-dashboard", [callback], ["http://127.0.0.1:8999"])
    client = oidc_realm.client_representation("oscar-dashboard")
    assert client["redirectUris"] == [callback]
    assert client["webOrigins"] == ["http://127.0.0.1:8999"]

    authorize = f"{oidc_realm.issuer}/protocol/openid-connect/auth"
    request = {
        "client_id": "oscar-dashboard",
        "response_type": "code",
        "scope": "openid",
        "redirect_uri": callback,
        "state": "s",
    }
    # Without a code challenge Keycloak sends the browser back with an error.
    refused = httpx.get(authorize, params=request, timeout=30)
    assert refused.status_code == 302
    assert parse_qs(urlsplit(refused.headers["location"]).query)["error"] == ["invalid_request"]
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    pkce = {"code_challenge": challenge.rstrip(b"=").decode(), "code_challenge_method": "S256"}
    login = httpx.get(authorize, params={**request, **pkce}, timeout=30)
    assert login.status_code == 200
    assert 'id="kc-form-login"' in login.text
    # A redirect URI it was not given is refused outright.
    elsewhere = httpx.get(
        authorize, params={**request, **pkce, "redirect_uri": "http://127.0.0.1:1/"}, timeout=30
    )
    assert elsewhere.status_code == 400


@pytest.mark.browser
def test_device_flow_end_to_end(oidc_realm: OidcRealm) -> None:
    device = httpx.post(oidc_realm.device_endpoint, data={"client_id": "oscar-cli"}, timeout=30)
    device.raise_for_status()
    grant = device.json()
    poll = {
        "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
        "client_id": "oscar-cli",
        "device_code": grant["device_code"],
    }
    pending = httpx.post(oidc_realm.token_endpoint, data=poll, timeout=30)
    polled = time.monotonic()
    assert pending.json()["error"] == "authorization_pending"

    oidc_realm.approve_device_code(grant["verification_uri_complete"], "stranger")

    # A device polls every `interval` seconds (RFC 8628 3.5); sooner gets `slow_down`.
    time.sleep(max(0.0, polled + grant["interval"] - time.monotonic()))
    answer = httpx.post(oidc_realm.token_endpoint, data=poll, timeout=30)
    assert answer.status_code == 200, answer.text
    claims = _verified(oidc_realm, answer.json()["access_token"])
    assert claims["sub"] == oidc_realm.users["stranger"].subject
    assert claims["azp"] == "oscar-cli"
    assert claims["groups"] == [GROUP]
