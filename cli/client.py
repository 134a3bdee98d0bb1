"""HTTP access to one OSCAR cluster, with errors turned into one clear line each."""

from __future__ import annotations

import re
import sys
from collections.abc import Generator
from typing import Any

import httpx

from cli.config import ClusterConfig

_SECRET = re.compile(
    r"(authorization: (?:basic|bearer) )\S+"
    r"|(\"?(?:password|secret_key|access_key|token)\"?\s*[:=]\s*\"?)[^\",\s]+",
    re.IGNORECASE,
)


class ClientError(Exception):
    """A request failed; the message is meant for the user as is."""


def mask(text: str) -> str:
    """Hide credentials in text printed with --debug."""
    return _SECRET.sub(lambda m: (m.group(1) or m.group(2)) + "***", text)


EGI_TOKEN_URL = "https://aai.egi.eu/auth/realms/egi/protocol/openid-connect/token"  # noqa: S105 - a URL
OIDC_CLIENT_ID = "token-portal"
OIDC_SCOPES = "openid email profile eduperson_entitlement"


def _oidc_access_token(cluster_id: str, cluster: ClusterConfig) -> str:
    """An access token from oidc-agent or by exchanging the stored refresh token."""
    if cluster.oidc_account_name:
        try:
            import liboidcagent
        except ImportError:
            raise ClientError("oidc-agent accounts need `pip install liboidcagent`") from None
        try:
            return str(
                liboidcagent.get_access_token(
                    cluster.oidc_account_name, min_valid_period=60, application_hint="oscar-cli"
                )
            )
        except Exception as exc:  # liboidcagent raises its own error family
            raise ClientError(
                f"oidc-agent could not give a token for '{cluster_id}': {exc}"
            ) from None
    extra = cluster.model_extra or {}
    endpoint = str(extra.get("oidc_token_endpoint") or EGI_TOKEN_URL)
    try:
        response = httpx.post(
            endpoint,
            data={
                "grant_type": "refresh_token",
                "refresh_token": cluster.oidc_refresh_token,
                "client_id": str(extra.get("oidc_client_id") or OIDC_CLIENT_ID),
                "scope": OIDC_SCOPES,
            },
            timeout=30,
        )
        response.raise_for_status()
        return str(response.json()["access_token"])
    except (httpx.HTTPError, ValueError, KeyError) as exc:
        raise ClientError(f"cannot refresh the OIDC token for '{cluster_id}': {exc}") from None


class _Bearer(httpx.Auth):
    def __init__(self, token: str) -> None:
        self._token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._token}"
        yield request


class OscarClient:
    """A thin client for one cluster (Basic auth, or an OIDC bearer token)."""

    def __init__(self, cluster_id: str, cluster: ClusterConfig, debug: bool = False) -> None:
        self.cluster_id = cluster_id
        self.cluster = cluster
        self.debug = debug
        auth: httpx.Auth | tuple[str, str] | None = None
        if cluster.auth_user:
            auth = (cluster.auth_user, cluster.auth_password)
        elif cluster.oidc_account_name or cluster.oidc_refresh_token:
            auth = _Bearer(_oidc_access_token(cluster_id, cluster))
        self._http = httpx.Client(
            base_url=cluster.endpoint.rstrip("/"),
            auth=auth,
            verify=cluster.ssl_verify,
            timeout=httpx.Timeout(30, read=400),
            event_hooks={"request": [self._log_request], "response": [self._log_response]}
            if debug
            else {},
        )

    def _log_request(self, request: httpx.Request) -> None:
        headers = "".join(f"{k}: {v}\n" for k, v in request.headers.items())
        print(mask(f"> {request.method} {request.url}\n{headers}"), file=sys.stderr)

    def _log_response(self, response: httpx.Response) -> None:
        response.read()
        body = response.text[:2000]
        print(mask(f"< {response.status_code}\n{body}"), file=sys.stderr)

    def request(
        self, method: str, path: str, *, expect: tuple[int, ...] = (200,), **kwargs: Any
    ) -> httpx.Response:
        """Send a request; raise `ClientError` (one clear line) unless the status is expected."""
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.ConnectError:
            raise ClientError(
                f"cannot connect to cluster '{self.cluster_id}' at {self.cluster.endpoint}"
            ) from None
        except httpx.TimeoutException:
            raise ClientError(f"cluster '{self.cluster_id}' did not answer in time") from None
        except httpx.HTTPError as exc:
            raise ClientError(f"request to '{self.cluster_id}' failed: {exc}") from None
        if response.status_code in expect:
            return response
        if response.status_code == 401:
            raise ClientError(f"bad credentials for cluster '{self.cluster_id}' (401)")
        if response.status_code == 403:
            raise ClientError(f"not allowed on cluster '{self.cluster_id}' (403)")
        try:
            detail = response.json().get("detail") or response.text
        except ValueError:
            detail = response.text
        raise ClientError(f"{method} {path} failed ({response.status_code}): {str(detail).strip()}")

    def close(self) -> None:
        """Close connections."""
        self._http.close()
