"""HTTP access to one OSCAR cluster, with errors turned into one clear line each."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import httpx

from cli.config import ClusterConfig
from cli.errors import ClientError
from cli.oidc import Logins

__all__ = ["ClientError", "OscarClient", "mask"]

_SECRET = re.compile(
    r"(authorization: (?:basic|bearer) )\S+"
    r"|(\"?(?:password|secret_key|access_key|token)\"?\s*[:=]\s*\"?)[^\",\s]+",
    re.IGNORECASE,
)


def mask(text: str) -> str:
    """Hide credentials in text printed with --debug."""
    return _SECRET.sub(lambda m: (m.group(1) or m.group(2)) + "***", text)


class _Bearer(httpx.Auth):
    """Sends an OIDC access token, asked for at each request: the first request of a run gets
    one (errors then surface as one line from `request`), and a long run gets a fresh one when
    the last is about to expire."""

    def __init__(self, token: Callable[[], str]) -> None:
        self._token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._token()}"
        yield request


class OscarClient:
    """A thin client for one cluster (Basic auth, or an OIDC bearer token)."""

    def __init__(
        self,
        cluster_id: str,
        cluster: ClusterConfig,
        debug: bool = False,
        *,
        logins: Logins | None = None,
        config_path: Path | None = None,
    ) -> None:
        """`logins` shares access tokens across the clients of one run; `config_path` is where
        a rotated refresh token is saved (not saved without it)."""
        self.cluster_id = cluster_id
        self.cluster = cluster
        self.debug = debug
        auth: httpx.Auth | tuple[str, str] | None = None
        if cluster.auth_user:
            auth = (cluster.auth_user, cluster.auth_password)
        elif cluster.oidc_account_name or cluster.oidc_refresh_token:
            tokens = logins or Logins()
            auth = _Bearer(lambda: tokens.access_token(cluster_id, cluster, config_path))
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
        try:
            detail = response.json().get("detail") or response.text
        except (ValueError, AttributeError):
            detail = response.text
        detail = str(detail).strip()
        # The server's reason for a 401/403 (an untrusted issuer, a group, an owner, a policy)
        # tells the user what to change.
        reason = f": {' '.join(detail.split())}" if detail else ""
        if response.status_code == 401:
            raise ClientError(f"bad credentials for cluster '{self.cluster_id}' (401){reason}")
        if response.status_code == 403:
            raise ClientError(f"not allowed on cluster '{self.cluster_id}' (403){reason}")
        raise ClientError(f"{method} {path} failed ({response.status_code}): {detail}")

    def close(self) -> None:
        """Close connections."""
        self._http.close()
