"""OIDC logins for oscar-cli with any provider: discovery, the device-code flow (RFC 8628) and
the refresh-token exchange (with rotation), plus oidc-agent accounts.

A cluster's entry in the configuration file keeps upstream's `oidc_refresh_token` and
`oidc_account_name`; ours adds `oidc_issuer`, `oidc_client_id`, `oidc_token_endpoint` and
`oidc_scopes` beside them (the entry's model keeps unknown keys, and upstream's oscar-cli
ignores them), so that one entry says all that is needed to get an access token again. An entry
with a refresh token and none of these is upstream's: EGI Check-in's token endpoint and client.
"""

from __future__ import annotations

import contextlib
import functools
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import httpx

from cli import config as config_file
from cli.errors import ClientError

EGI_TOKEN_URL = "https://aai.egi.eu/auth/realms/egi/protocol/openid-connect/token"  # noqa: S105 - a URL
EGI_CLIENT_ID = "token-portal"
EGI_SCOPES = "openid email profile eduperson_entitlement"
DEFAULT_SCOPES = "openid profile email"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
# An access token this close to its expiry is refreshed before use: a request must not carry a
# token that expires on its way.
EXPIRY_MARGIN = 30.0
# RFC 8628 §3.2: the interval to use when the provider names none; §3.5: `slow_down` adds 5 s.
DEFAULT_INTERVAL = 5.0
SLOW_DOWN_STEP = 5.0
_TIMEOUT = 30.0


class LoginExpiredError(ClientError):
    """The provider no longer accepts the stored refresh token (expired, revoked, or not its)."""


@dataclass(frozen=True)
class Provider:
    """What a client needs from an issuer's discovery document."""

    issuer: str
    token_endpoint: str
    device_authorization_endpoint: str = ""


@dataclass(frozen=True)
class Login:
    """The provider and client a cluster's users log in with."""

    provider: Provider
    client_id: str
    scopes: str


@dataclass
class Tokens:
    """An access token (with when it stops being usable) and the refresh token to get another."""

    access_token: str
    refresh_token: str
    expires_at: float  # time.monotonic() seconds

    def fresh(self) -> bool:
        """Whether the access token is good for a request sent now."""
        return time.monotonic() < self.expires_at - EXPIRY_MARGIN


def _seconds(value: Any, default: float) -> float:
    """A duration from a provider's answer; missing, zero or malformed means `default`."""
    try:
        return float(value) or default
    except (TypeError, ValueError):
        return default


def _tokens(data: dict[str, Any], previous_refresh_token: str = "") -> Tokens:
    access = data.get("access_token")
    if not isinstance(access, str) or not access:
        raise ClientError("the OIDC provider's token answer has no access_token")
    lifetime = _seconds(data.get("expires_in"), 300.0)
    refresh = data.get("refresh_token")
    return Tokens(
        access,
        refresh if isinstance(refresh, str) and refresh else previous_refresh_token,
        time.monotonic() + lifetime,
    )


@functools.cache
def _http(verify: bool) -> httpx.Client:
    """One HTTP client per process for the provider (and `/auth/config`): loading the CA
    certificates costs tens of milliseconds per client, and a run talks to the provider up to
    four times (discovery, device, polls, refresh), so they share it and its connections."""
    return httpx.Client(verify=verify, timeout=_TIMEOUT)


def _send(method: str, url: str, what: str, verify: bool, **kwargs: Any) -> httpx.Response:
    """One request to a provider or a cluster; network failures become one clear line."""
    try:
        return _http(verify).request(method, url, **kwargs)
    except httpx.ConnectError:
        raise ClientError(f"cannot connect to {what} at {url}") from None
    except httpx.TimeoutException:
        raise ClientError(f"{what} at {url} did not answer in time") from None
    except httpx.HTTPError as exc:
        raise ClientError(f"request to {what} at {url} failed: {exc}") from None


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _oauth_error(data: dict[str, Any], status: int) -> str:
    """`error: description` of an OAuth error answer (RFC 6749 §5.2), or the status."""
    error = str(data.get("error") or f"HTTP {status}")
    description = str(data.get("error_description") or "").strip()
    return f"{error}: {description}" if description else error


def discover(issuer: str, verify: bool = True) -> Provider:
    """The issuer's endpoints, from its `/.well-known/openid-configuration` (OIDC Discovery)."""
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    response = _send("GET", url, "the OIDC issuer", verify, follow_redirects=True)
    data = _json(response)
    if response.status_code != 200 or not data:
        raise ClientError(
            f"{issuer} is not an OIDC issuer: GET {url} answered {response.status_code}"
        )
    token_endpoint = data.get("token_endpoint")
    if not isinstance(token_endpoint, str) or not token_endpoint:
        raise ClientError(f"the OIDC issuer {issuer} names no token_endpoint ({url})")
    device = data.get("device_authorization_endpoint")
    return Provider(issuer, token_endpoint, device if isinstance(device, str) else "")


def cluster_oidc(endpoint: str, verify: bool = True) -> dict[str, Any]:
    """The `oidc` part of the cluster's public `GET /auth/config`; a clear error when the
    cluster does not offer OIDC logins (or predates the route)."""
    url = endpoint.rstrip("/") + "/auth/config"
    response = _send("GET", url, "the cluster", verify)
    if response.status_code == 404:
        raise ClientError(
            f"the cluster at {endpoint} does not say which OIDC provider it uses "
            "(no /auth/config): give --oidc-issuer and --oidc-client-id"
        )
    oidc = _json(response).get("oidc")
    if response.status_code != 200 or not isinstance(oidc, dict):
        raise ClientError(f"GET {url} failed ({response.status_code})")
    if not oidc.get("enabled"):
        raise ClientError(
            f"the cluster at {endpoint} does not accept OIDC logins "
            "(its /auth/config says OIDC is disabled)"
        )
    return oidc


def choose_login(
    endpoint: str,
    verify: bool,
    issuer: str | None = None,
    client_id: str | None = None,
    scopes: str | None = None,
    *,
    for_device: bool = True,
) -> Login:
    """The issuer, client and scopes to log in with: those given, else what the cluster's
    `/auth/config` offers (its first issuer), so that users need not know the provider. The
    scopes matter only to a device login (a refresh token keeps those it was granted with)."""
    offered: dict[str, Any] = {}
    if not (issuer and client_id):
        offered = cluster_oidc(endpoint, verify)
    elif for_device and not scopes:  # only the scopes are missing: the cluster's, if it says
        with contextlib.suppress(ClientError):
            offered = cluster_oidc(endpoint, verify)
    issuers = offered.get("issuers") or []
    issuer = issuer or (str(issuers[0]) if issuers else "")
    client_id = client_id or str(offered.get("client_id") or "")
    scopes = scopes or str(offered.get("scopes") or "") or DEFAULT_SCOPES
    if not issuer:
        raise ClientError(f"the cluster at {endpoint} names no OIDC issuer: give --oidc-issuer")
    if not client_id:
        raise ClientError(f"the cluster at {endpoint} names no OIDC client: give --oidc-client-id")
    return Login(discover(issuer, verify), client_id, scopes)


def _countdown(seconds: float) -> str:
    whole = max(0, int(seconds))
    return f"{whole // 60}:{whole % 60:02d}"


def device_login(
    login: Login,
    verify: bool = True,
    *,
    out: TextIO | None = None,
    announce: str = "",
) -> Tokens:
    """Run the device authorization grant (RFC 8628): show the user where to approve the code,
    then poll the token endpoint at the pace the provider asks until the user approves, denies,
    or the code expires. `out` (stderr) gets the instructions and the progress, so that stdout
    stays for results."""
    out = out or sys.stderr
    provider = login.provider
    if not provider.device_authorization_endpoint:
        raise ClientError(
            f"the OIDC issuer {provider.issuer} does not offer the device-code flow "
            "(its discovery document has no device_authorization_endpoint)"
        )
    response = _send(
        "POST",
        provider.device_authorization_endpoint,
        "the OIDC provider",
        verify,
        data={"client_id": login.client_id, "scope": login.scopes},
    )
    started = time.monotonic()
    data = _json(response)
    if response.status_code != 200:
        raise ClientError(
            f"the OIDC provider refused a device login for client '{login.client_id}' "
            f"({_oauth_error(data, response.status_code)})"
        )
    device_code = data.get("device_code")
    user_code = data.get("user_code")
    # `verification_url` is the name some providers used before RFC 8628 settled it.
    uri = data.get("verification_uri") or data.get("verification_url")
    if not (isinstance(device_code, str) and isinstance(user_code, str) and uri):
        raise ClientError("the OIDC provider's device answer lacks device_code, user_code or URI")
    complete = data.get("verification_uri_complete")
    expires_in = _seconds(data.get("expires_in"), 600.0)
    interval = _seconds(data.get("interval"), DEFAULT_INTERVAL)
    lines = [announce] if announce else []
    if complete:
        lines += ["Open this address in a browser and approve the login:", "", f"  {complete}", ""]
        lines.append(f"or open {uri} and enter the code {user_code}")
    else:
        lines += [f"Open {uri} in a browser and enter the code {user_code}"]
    print("\n".join(lines), file=out, flush=True)
    deadline = started + expires_in
    progress = _Progress(out)
    try:
        while True:
            remaining = deadline - time.monotonic()
            progress.show(remaining)
            if remaining <= 0:
                break
            time.sleep(min(interval, remaining))
            try:
                response = _http(verify).post(
                    provider.token_endpoint,
                    data={
                        "grant_type": DEVICE_GRANT,
                        "device_code": device_code,
                        "client_id": login.client_id,
                    },
                )
            except httpx.TimeoutException:
                interval += SLOW_DOWN_STEP  # RFC 8628 §3.5: back off when the provider is slow
                continue
            except httpx.HTTPError as exc:
                raise ClientError(
                    f"cannot reach the OIDC token endpoint {provider.token_endpoint}: {exc}"
                ) from None
            data = _json(response)
            if response.status_code == 200:
                tokens = _tokens(data)
                if not tokens.refresh_token:
                    raise ClientError(
                        "the OIDC provider gave no refresh token, so the login cannot be kept "
                        "(ask for the offline_access scope with --oidc-scopes)"
                    )
                progress.done("approved")
                return tokens
            error = data.get("error")
            if error == "authorization_pending":
                continue
            if error == "slow_down":
                interval += SLOW_DOWN_STEP
                continue
            if error == "access_denied":
                progress.done("denied")
                raise ClientError("the login was denied at the OIDC provider")
            if error == "expired_token":
                break
            raise ClientError(
                "the OIDC provider refused the device login "
                f"({_oauth_error(data, response.status_code)})"
            )
    finally:
        progress.close()
    progress.done("expired")
    raise ClientError(
        f"the login code {user_code} expired before it was approved: run the command again"
    )


@dataclass
class _Progress:
    """A countdown while the user approves: one rewritten line on a terminal, else a line
    every half minute (a log file should not get one per poll)."""

    out: TextIO
    _last: float = field(default=-1.0)
    _open: bool = False

    def show(self, remaining: float) -> None:
        text = f"waiting for the approval ({_countdown(remaining)} left)"
        if self.out.isatty():
            print(f"\r{text} ", end="", file=self.out, flush=True)
            self._open = True
        elif self._last < 0 or self._last - remaining >= 30:
            print(text, file=self.out, flush=True)
            self._last = remaining

    def done(self, outcome: str) -> None:
        self.close()
        print(f"login {outcome}", file=self.out, flush=True)

    def close(self) -> None:
        if self._open:
            print(file=self.out, flush=True)
            self._open = False


def refresh(
    token_endpoint: str,
    client_id: str,
    refresh_token: str,
    scopes: str = "",
    verify: bool = True,
) -> Tokens:
    """Exchange a refresh token for an access token (RFC 6749 §6). `scopes` empty asks for the
    scopes first granted. The answer's refresh token, when the provider rotates it, replaces
    the one given; `LoginExpiredError` when the provider no longer accepts it."""
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": client_id}
    if scopes:
        form["scope"] = scopes
    response = _send("POST", token_endpoint, "the OIDC token endpoint", verify, data=form)
    data = _json(response)
    if response.status_code == 200:
        return _tokens(data, refresh_token)
    if data.get("error") == "invalid_grant":
        raise LoginExpiredError(_oauth_error(data, response.status_code))
    raise ClientError(
        f"the OIDC token endpoint {token_endpoint} refused the refresh token "
        f"({_oauth_error(data, response.status_code)})"
    )


def login_entry(login: Login) -> dict[str, str]:
    """The keys a cluster's configuration entry keeps for a login with `login`."""
    return {
        "oidc_issuer": login.provider.issuer,
        "oidc_client_id": login.client_id,
        "oidc_token_endpoint": login.provider.token_endpoint,
    }


def _extra(cluster: config_file.ClusterConfig, key: str) -> str:
    return str((cluster.model_extra or {}).get(key) or "")


def relogin_hint(cluster_id: str, cluster: config_file.ClusterConfig) -> str:
    """The command that logs in to the cluster again, with the provider it used."""
    command = f"oscar-cli cluster add {cluster_id} {cluster.endpoint} --device"
    for key, flag in (("oidc_issuer", "--oidc-issuer"), ("oidc_client_id", "--oidc-client-id")):
        if _extra(cluster, key):
            command += f" {flag} {_extra(cluster, key)}"
    return command


class Logins:
    """The access tokens of one oscar-cli run, by login: a command that talks to a cluster
    several times, or to several clusters with one login (`apply`), exchanges the refresh token
    once, and a rotated refresh token is saved to the configuration file at once (the old one
    may no longer work)."""

    def __init__(self) -> None:
        self._tokens: dict[tuple[str, ...], Tokens] = {}
        self._endpoints: dict[str, str] = {}
        self._lock = threading.Lock()

    def access_token(
        self, cluster_id: str, cluster: config_file.ClusterConfig, config_path: Path | None = None
    ) -> str:
        """A usable access token for the cluster's OIDC login (oidc-agent or refresh token)."""
        with self._lock:
            if cluster.oidc_account_name:
                return self._from_agent(cluster_id, cluster.oidc_account_name)
            return self._from_refresh_token(cluster_id, cluster, config_path)

    def _from_agent(self, cluster_id: str, account: str) -> str:
        key = ("oidc-agent", account)
        cached = self._tokens.get(key)
        if cached and cached.fresh():
            return cached.access_token
        try:
            import liboidcagent
        except ImportError:
            raise ClientError("oidc-agent accounts need `pip install liboidcagent`") from None
        try:
            token, _issuer, expires_at = liboidcagent.get_token_response(
                account, min_valid_period=60, application_hint="oscar-cli"
            )
        except Exception as exc:  # liboidcagent raises its own error family
            raise ClientError(
                f"oidc-agent could not give a token for '{cluster_id}': {exc}"
            ) from None
        # oidc-agent answers with the wall-clock expiry; keep it on the monotonic clock.
        lifetime = float(expires_at or 0) - time.time() if expires_at else 60.0
        self._tokens[key] = Tokens(str(token), "", time.monotonic() + lifetime)
        return str(token)

    def _token_endpoint(self, cluster: config_file.ClusterConfig) -> str:
        stored = _extra(cluster, "oidc_token_endpoint")
        issuer = _extra(cluster, "oidc_issuer")
        if stored or not issuer:
            return stored or EGI_TOKEN_URL
        if issuer not in self._endpoints:
            self._endpoints[issuer] = discover(issuer, cluster.ssl_verify).token_endpoint
        return self._endpoints[issuer]

    def _from_refresh_token(
        self, cluster_id: str, cluster: config_file.ClusterConfig, config_path: Path | None
    ) -> str:
        endpoint = self._token_endpoint(cluster)
        client_id = _extra(cluster, "oidc_client_id") or (
            "" if _extra(cluster, "oidc_issuer") else EGI_CLIENT_ID
        )
        if not client_id:
            raise ClientError(f"cluster '{cluster_id}' has an oidc_issuer but no oidc_client_id")
        # Upstream's entries (no issuer) ask for EGI's scopes, as upstream does; a login with a
        # known issuer keeps the scopes it was granted unless the entry names some.
        scopes = _extra(cluster, "oidc_scopes") or (
            "" if _extra(cluster, "oidc_issuer") else EGI_SCOPES
        )
        key = (endpoint, client_id, cluster.oidc_refresh_token)
        cached = self._tokens.get(key)
        if cached and cached.fresh():
            return cached.access_token
        current = cached.refresh_token if cached else cluster.oidc_refresh_token
        try:
            tokens = refresh(endpoint, client_id, current, scopes, cluster.ssl_verify)
        except LoginExpiredError as exc:
            raise LoginExpiredError(
                f"the OIDC login of cluster '{cluster_id}' has expired or was revoked ({exc}); "
                f"log in again: {relogin_hint(cluster_id, cluster)}"
            ) from None
        except ClientError as exc:
            raise ClientError(f"cannot refresh the OIDC token for '{cluster_id}': {exc}") from None
        self._tokens[key] = tokens
        if tokens.refresh_token != current and config_path is not None:
            save_rotated(config_path, current, tokens.refresh_token)
        return tokens.access_token


def save_rotated(config_path: Path, old: str, new: str) -> None:
    """Replace a rotated refresh token in every entry that holds it (re-read first, so that
    nothing else changed in the file meanwhile is lost). A file that cannot be written only
    warns: this run has its token, the next one will log in again if it must."""
    try:
        settings = config_file.load(config_path)
        changed = False
        for entry in settings.oscar.values():
            if entry.oidc_refresh_token == old:
                entry.oidc_refresh_token = new
                changed = True
        if changed:
            config_file.save(settings, config_path)
    except (config_file.ConfigError, OSError) as exc:
        print(
            f"warning: cannot save the new OIDC refresh token to {config_path}: {exc}",
            file=sys.stderr,
        )
