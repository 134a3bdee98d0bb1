"""OIDC Bearer tokens: which issuers are trusted, checking a token, and who it names.

A token is accepted only when its `iss` is one of `OSCAR_OIDC_ISSUERS`, its signature verifies
with a key of that issuer's JWKS (found through the issuer's discovery document), and `exp`,
`nbf`, `iat` and, when `OSCAR_OIDC_AUDIENCE` is set, `aud` hold. A `kid` the cached JWKS does
not know makes it be fetched again (a provider that rotated its keys), at most once per
`JWKS_REFETCH_SECONDS` per issuer so that tokens with made-up kids cannot make us hammer the
provider. Only asymmetric algorithms are accepted: an `HS256` token "signed" with a public key,
or `alg: none`, never verifies.

Groups come from EGI Check-in's `eduperson_entitlement` URNs
(`urn:mace:egi.eu:group:<vo>[:...]`) and from Keycloak's `groups` (or upstream's
`group_membership`) claim; when the access token carries none of those claims, the issuer's
userinfo endpoint is asked, as upstream does. With `OSCAR_OIDC_GROUPS` set, a user must be in
one of them (403 otherwise); subjects listed in `OSCAR_USERS_ADMIN` are admins.

Everything here blocks (HTTP to the provider): callers run it off the event loop.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt

from oscar.auth.principal import Principal
from oscar.errors import BackendUnavailableError, ForbiddenError, UnauthorizedError
from oscar.settings import Settings

log = logging.getLogger("oscar.auth.oidc")

EGI_GROUP_PREFIX = "urn:mace:egi.eu:group:"
GROUP_CLAIMS = ("groups", "group_membership", "eduperson_entitlement")
# Asymmetric algorithms only: never HS* (a public key used as an HMAC secret) nor `none`.
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"]
DISCOVERY_TTL_SECONDS = 3600.0
JWKS_TTL_SECONDS = 3600.0
JWKS_REFETCH_SECONDS = 1.0
PROVIDER_TIMEOUT_SECONDS = 10.0
CACHE_SIZE = 4096  # verified tokens remembered until they expire


def _normal(issuer: str) -> str:
    return issuer.rstrip("/")


def groups_from_claims(claims: dict[str, Any]) -> list[str]:
    """The groups a token's (or userinfo's) claims name, each once, in claim order.

    EGI entitlements give their VO (`urn:mace:egi.eu:group:vo.example.eu:role=member#aai...`
    gives `vo.example.eu`); Keycloak group paths lose their leading `/`.
    """
    groups: list[str] = []
    for claim in ("groups", "group_membership"):
        value = claims.get(claim)
        for group in value if isinstance(value, list) else []:
            if isinstance(group, str) and group.strip("/"):
                groups.append(group.strip().lstrip("/"))
    entitlements = claims.get("eduperson_entitlement")
    if isinstance(entitlements, str):
        entitlements = [entitlements]
    for urn in entitlements if isinstance(entitlements, list) else []:
        if isinstance(urn, str) and urn.strip().lower().startswith(EGI_GROUP_PREFIX):
            vo = urn.strip().lower()[len(EGI_GROUP_PREFIX) :].split(":")[0].split("#")[0]
            if vo:
                groups.append(vo)
    return list(dict.fromkeys(groups))


@dataclass
class _Issuer:
    """One trusted issuer: its discovery document and JWKS, fetched lazily and cached."""

    url: str
    discovery: dict[str, Any] = field(default_factory=dict)
    discovered_at: float = float("-inf")
    keys: dict[str, jwt.PyJWK] = field(default_factory=dict)
    keys_fetched_at: float = float("-inf")
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass(frozen=True)
class _Verified:
    principal: Principal
    expires: float


class OidcVerifier:
    """Turns a Bearer token into a `Principal`, or raises `UnauthorizedError` (401),
    `ForbiddenError` (403: valid, but not in an accepted group) or `BackendUnavailableError`
    (the issuer cannot be reached)."""

    def __init__(self, settings: Settings, http: httpx.Client | None = None) -> None:
        self._issuers = {_normal(url): _Issuer(_normal(url)) for url in settings.oidc_issuers}
        self._audience = list(settings.oidc_audience)
        self._groups = set(settings.oidc_groups)
        self._admins = set(settings.users_admin)
        self._leeway = settings.oidc_leeway
        self._http = http or httpx.Client(timeout=PROVIDER_TIMEOUT_SECONDS)
        self._cache: OrderedDict[str, _Verified] = OrderedDict()
        self._cache_lock = threading.Lock()

    @property
    def issuers(self) -> list[str]:
        """The trusted issuers, as configured."""
        return list(self._issuers)

    def close(self) -> None:
        """Release the HTTP connections to the providers."""
        self._http.close()

    def authenticate(self, token: str) -> Principal:
        """The principal a token names (cached until the token expires)."""
        digest = hashlib.sha256(token.encode()).hexdigest()
        with self._cache_lock:
            hit = self._cache.get(digest)
            if hit is not None and hit.expires > time.time():
                self._cache.move_to_end(digest)
                return self._authorised(hit.principal)
        claims, issuer = self._verify(token)
        principal = self._principal(token, claims, issuer)
        with self._cache_lock:
            self._cache[digest] = _Verified(principal, float(claims["exp"]))
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return self._authorised(principal)

    # --- verification ------------------------------------------------------------------------
    def _verify(self, token: str) -> tuple[dict[str, Any], _Issuer]:
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise UnauthorizedError("the Bearer token is not a valid JWT") from None
        iss = unverified.get("iss")
        issuer = self._issuers.get(_normal(iss)) if isinstance(iss, str) else None
        if issuer is None:
            raise UnauthorizedError(f"the token's issuer {iss!r} is not trusted by this cluster")
        if header.get("alg") not in ALGORITHMS:
            raise UnauthorizedError(f"tokens signed with {header.get('alg')!r} are not accepted")
        key = self._key(issuer, str(header.get("kid") or ""))
        try:
            claims = jwt.decode(
                token,
                key=key,
                algorithms=[header["alg"]],
                issuer=iss,
                audience=self._audience or None,
                leeway=self._leeway,
                options={
                    "require": ["exp", "iss", "sub"],
                    "verify_aud": bool(self._audience),
                },
            )
        except jwt.ExpiredSignatureError:
            raise UnauthorizedError("the token has expired") from None
        except jwt.ImmatureSignatureError:
            raise UnauthorizedError("the token is not valid yet (nbf/iat in the future)") from None
        except (jwt.InvalidAudienceError, jwt.MissingRequiredClaimError) as exc:
            if isinstance(exc, jwt.MissingRequiredClaimError) and exc.claim != "aud":
                raise UnauthorizedError(f"the token has no {exc.claim!r} claim") from None
            raise UnauthorizedError(
                f"the token's audience does not name this cluster ({', '.join(self._audience)})"
            ) from None
        except jwt.PyJWTError as exc:
            raise UnauthorizedError(f"the token was refused: {exc}") from None
        return claims, issuer

    def _key(self, issuer: _Issuer, kid: str) -> jwt.PyJWK:
        with issuer.lock:
            now = time.monotonic()
            stale = now - issuer.keys_fetched_at > JWKS_TTL_SECONDS
            unknown = kid not in issuer.keys and (kid or len(issuer.keys) != 1)
            if stale or (unknown and now - issuer.keys_fetched_at > JWKS_REFETCH_SECONDS):
                issuer.keys = self._fetch_keys(issuer)
                issuer.keys_fetched_at = now
            if not kid and len(issuer.keys) == 1:
                return next(iter(issuer.keys.values()))
            found = issuer.keys.get(kid)
        if found is None:
            raise UnauthorizedError(f"no key {kid!r} in the JWKS of {issuer.url}")
        return found

    def _fetch_keys(self, issuer: _Issuer) -> dict[str, jwt.PyJWK]:
        jwks = self._get_json(str(self._discovery(issuer).get("jwks_uri") or ""), issuer)
        keys: dict[str, jwt.PyJWK] = {}
        for entry in jwks.get("keys", []) if isinstance(jwks, dict) else []:
            if entry.get("use", "sig") != "sig":
                continue
            try:
                keys[str(entry.get("kid") or "")] = jwt.PyJWK(entry)
            except jwt.PyJWTError:
                continue  # a key type we cannot use (or malformed): other keys still count
        log.info("fetched %d signing keys of %s", len(keys), issuer.url)
        return keys

    def _discovery(self, issuer: _Issuer) -> dict[str, Any]:
        if time.monotonic() - issuer.discovered_at > DISCOVERY_TTL_SECONDS:
            document = self._get_json(f"{issuer.url}/.well-known/openid-configuration", issuer)
            if _normal(str(document.get("issuer", ""))) != issuer.url:
                raise BackendUnavailableError(
                    f"the discovery document of {issuer.url} names another issuer "
                    f"({document.get('issuer')!r})"
                )
            issuer.discovery = document
            issuer.discovered_at = time.monotonic()
        return issuer.discovery

    def _get_json(self, url: str, issuer: _Issuer, token: str = "") -> dict[str, Any]:
        if not url:
            raise BackendUnavailableError(f"the OIDC provider {issuer.url} names no such endpoint")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            response = self._http.get(url, headers=headers)
        except httpx.HTTPError as exc:
            raise BackendUnavailableError(
                f"cannot reach the OIDC provider {issuer.url}: {exc}"
            ) from None
        if token and response.status_code in (401, 403):
            raise UnauthorizedError(f"the OIDC provider {issuer.url} refused the token")
        if response.status_code != 200:
            raise BackendUnavailableError(
                f"the OIDC provider {issuer.url} answered {response.status_code} for {url}"
            )
        try:
            document = response.json()
        except ValueError:
            raise BackendUnavailableError(f"{url} did not answer JSON") from None
        if not isinstance(document, dict):
            raise BackendUnavailableError(f"{url} did not answer a JSON object")
        return document

    # --- identity ----------------------------------------------------------------------------
    def _principal(self, token: str, claims: dict[str, Any], issuer: _Issuer) -> Principal:
        subject = str(claims["sub"])
        if not any(claim in claims for claim in GROUP_CLAIMS):
            with issuer.lock:
                endpoint = str(self._discovery(issuer).get("userinfo_endpoint") or "")
            userinfo = self._get_json(endpoint, issuer, token)
            if str(userinfo.get("sub", "")) != subject:
                raise UnauthorizedError("the userinfo of the token names another subject")
            claims = {**userinfo, **claims}
        name = str(claims.get("name") or claims.get("preferred_username") or "")
        return Principal(
            "admin" if subject in self._admins else "user",
            subject,
            subject=subject,
            groups=tuple(groups_from_claims(claims)),
            display_name=name,
            issuer=issuer.url,
        )

    def _authorised(self, principal: Principal) -> Principal:
        if principal.is_admin or not self._groups or self._groups & set(principal.groups):
            return principal
        raise ForbiddenError(
            f"user {principal.subject} is in none of the groups this cluster accepts "
            f"({', '.join(sorted(self._groups))})"
        )
