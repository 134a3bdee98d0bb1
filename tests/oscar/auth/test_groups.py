"""Groups read from token claims: EGI entitlements and Keycloak group paths."""

from __future__ import annotations

from oscar.auth.oidc import groups_from_claims


def test_egi_entitlements_give_their_vo() -> None:
    claims = {
        "eduperson_entitlement": [
            "urn:mace:egi.eu:group:vo.example.eu:role=member#aai.egi.eu",
            "urn:mace:egi.eu:group:VO.Other.eu:sub:role=vm_operator#aai.egi.eu",
            "urn:mace:example.org:group:not-egi",
        ]
    }
    assert groups_from_claims(claims) == ["vo.example.eu", "vo.other.eu"]


def test_keycloak_group_paths_and_upstream_claim() -> None:
    claims = {"groups": ["/vo.a", "vo.b", "/"], "group_membership": ["/vo.a", "/parent/child"]}
    assert groups_from_claims(claims) == ["vo.a", "vo.b", "parent/child"]


def test_malformed_claims_give_no_groups() -> None:
    assert groups_from_claims({"groups": "vo.a", "eduperson_entitlement": 3}) == []
    assert groups_from_claims({"eduperson_entitlement": "urn:mace:egi.eu:group:vo.x"}) == ["vo.x"]
