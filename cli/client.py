"""HTTP access to one OSCAR cluster, with errors turned into one clear line each."""

from __future__ import annotations

import re
import sys
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


class OscarClient:
    """A thin client for one cluster."""

    def __init__(self, cluster_id: str, cluster: ClusterConfig, debug: bool = False) -> None:
        self.cluster_id = cluster_id
        self.cluster = cluster
        self.debug = debug
        auth = (cluster.auth_user, cluster.auth_password) if cluster.auth_user else None
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
