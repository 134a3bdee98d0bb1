"""A real OIDC provider: Keycloak, the Quarkus distribution from Maven Central.

`install()` fetches `org.keycloak:keycloak-quarkus-dist:<version>:zip` with Maven (so through
whatever mirror `~/.m2/settings.xml` names), unpacks it into the cache and runs `kc.sh build`
once (H2 `dev-file` database, health endpoints, unused features disabled), so that every start
is `kc.sh start --optimized` with no re-augmentation. Two more things are made at install time,
both only to start faster:

* a **database template**: Keycloak is started once on an empty H2 file, creates its schema and
  the `master` realm with the bootstrap admin (`KC_BOOTSTRAP_ADMIN_USERNAME`/`_PASSWORD`), and
  is stopped; each run starts on a copy of that file (`-Dkc.db-url-path=<workdir>`, the hook of
  Keycloak's default H2 URL), skipping the schema migration and master-realm setup (about 8 s
  of CPU);
* a **JVM AOT cache** (JEP 483/514/515, Java 24+): a training run on a copy of the template
  starts, creates a realm, mints tokens and renders the login pages, then the JVM writes
  `keycloak.aot` at exit (`-XX:AOTCacheOutput`); each run reads it (`-XX:AOTCache`), with its
  classes already loaded and linked.

**Java**: Keycloak 26.7 supports OpenJDK 17, 21 and 25 and suggests the newest for performance.
This module runs it on Java 25 (`/usr/lib/jvm/temurin-25-jdk-amd64`, or
`$OSCAR_KEYCLOAK_JAVA_HOME`), set as `JAVA_HOME` for the Keycloak process only, for the AOT
cache, which needs Java 24+ (the default Java 17 only has AppCDS archives). Measured on this
2-core machine, launch to `/health/ready` from the database template, C1 only and the serial
collector: Java 17 about 8 s of CPU and 7-8 s of wall time; Java 25 8 s and 6-7 s; Java 17 with an
AppCDS archive about 6 s and 5 s; Java 25 with the AOT cache about 6 s and 4.2-5 s (the best).
With kc.sh's default JVM options (G1, C2) starting takes about twice the CPU, and on an empty
database (schema migration, master realm) about 19 s. The AOT cache is tied to the exact JDK
build and these JVM options: both are in the install stamp, so a new JDK means a new install.

Each run binds HTTP and the management interface (health) to free loopback ports, with
`--hostname-strict=false`, so a realm's issuer is `http://127.0.0.1:<port>/realms/<realm>`.
`--cache=local`: no JGroups cluster, so nothing listens beyond loopback.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
import zipfile
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.services import common

NAME = "keycloak"
VERSION = "26.7.3"
COORDINATE = f"org.keycloak:keycloak-quarkus-dist:{VERSION}:zip"
JAVA_HOME = Path(os.environ.get("OSCAR_KEYCLOAK_JAVA_HOME", "/usr/lib/jvm/temurin-25-jdk-amd64"))
# The bootstrap admin of the master realm, created once in the database template (loopback only).
ADMIN_USERNAME = "admin"
ADMIN_PASSWORD = "oscar-testenv-admin"
START_TIMEOUT = 120.0
STOP_TIMEOUT = 30.0
# Writing the AOT cache at exit runs a second JVM: about 20 s, more on a busy machine.
AOT_STOP_TIMEOUT = 600.0

# Features enabled by default that no test uses: fewer providers to start.
FEATURES_DISABLED = (
    "account",
    "admin",  # the admin console UI; the admin REST API (admin-api) stays
    "admin-fine-grained-authz",
    "authorization",
    "ciba",
    "client-types",
    "docker",
    "identity-brokering-api",
    "impersonation",
    "kerberos",
    "kubernetes-service-accounts",
    "logout-all-sessions",
    "opentelemetry",
    "organization",
    "par",
    "passkeys",
    "passkeys-conditional-ui-authenticator",
    "recovery-codes",
    "step-up-authentication",
    "step-up-authentication-saml",
    "token-exchange-standard",
    "twitter-broker",
    "update-email",
    "web-authn",
    "workflows",
)
BUILD_OPTIONS = (
    "--db=dev-file",
    "--health-enabled=true",
    f"--features-disabled={','.join(FEATURES_DISABLED)}",
)
# kc.sh's defaults, less G1 and its tuning, plus C1 only (a short-lived test server never gains
# from C2's slow compilations; half the start-up CPU on 2 cores) and the serial collector.
JAVA_OPTS = (
    "-XX:MetaspaceSize=96M",
    "-XX:MaxMetaspaceSize=256m",
    "-Xms64m",
    "-Xmx512m",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-XX:-UsePerfData",
    "-XX:+ExitOnOutOfMemoryError",
    "-Dfile.encoding=UTF-8",
    "-Djava.security.egd=file:/dev/urandom",
)


def _folder() -> Path:
    return common.cache_dir(NAME, VERSION)


def _home() -> Path:
    """The unpacked and built distribution."""
    return _folder() / "dist"


def _template() -> Path:
    """The H2 database file after Keycloak's first start (schema, master realm, admin)."""
    return _folder() / "template" / "data" / "h2" / "keycloakdb.mv.db"


def _aot_cache() -> Path:
    return _folder() / "keycloak.aot"


def _java_release() -> str:
    """The JDK build (`release` file), part of the install stamp: the AOT cache is tied to it."""
    release = JAVA_HOME / "release"
    if not release.is_file():
        return ""
    for line in release.read_text().splitlines():
        if line.startswith("JAVA_RUNTIME_VERSION="):
            return line.split("=", 1)[1].strip('"')
    return ""


def _stamp() -> str:
    return json.dumps(
        {
            "version": VERSION,
            "build": BUILD_OPTIONS,
            "java": _java_release(),
            "java_opts": JAVA_OPTS,
        },
        indent=1,
    )


# oidc-agent, the OIDC client oscar-cli's `-o ACCOUNT` asks: installed with the provider the
# CLI tests log in to.
OIDC_AGENT_PACKAGES = ["oidc-agent-cli"]


def _oidc_agent_installed() -> bool:
    return shutil.which("oidc-agent") is not None and shutil.which("oidc-gen") is not None


def _install_oidc_agent() -> None:
    if _oidc_agent_installed():
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    command = ["apt-get", "install", "-y", "--no-install-recommends", *OIDC_AGENT_PACKAGES]
    print(f"[testenv] {NAME}: {' '.join(command)}", flush=True)
    if common.run(command, env=env, check=False).returncode != 0:
        print(f"[testenv] {NAME}: apt-get update and retry", flush=True)
        common.run(["apt-get", "update"], env=env)
        common.run(command, env=env)


def is_installed() -> bool:
    """Whether the built distribution, its database template and AOT cache match this module,
    and oidc-agent is there."""
    marker = _folder() / ".complete"
    return (
        _oidc_agent_installed()
        and (JAVA_HOME / "bin" / "java").is_file()
        and marker.is_file()
        and marker.read_text() == _stamp()
        and _template().is_file()
        and _aot_cache().is_file()
    )


def install() -> None:
    """Download, unpack and build Keycloak; make the database template and the AOT cache;
    apt-get install oidc-agent."""
    _install_oidc_agent()
    if is_installed():
        print(f"[testenv] {NAME}: {VERSION} cached", flush=True)
        return
    if not (JAVA_HOME / "bin" / "java").is_file():
        raise common.ServiceUnavailableError(
            f"Keycloak's AOT cache needs Java 25 in {JAVA_HOME} (set OSCAR_KEYCLOAK_JAVA_HOME)"
        )
    if shutil.which("mvn") is None:
        raise common.ServiceUnavailableError("Maven (mvn) is needed on PATH")
    folder = _folder()
    (folder / ".complete").unlink(missing_ok=True)
    for stale in ("dist", "download", "template", "training"):
        shutil.rmtree(folder / stale, ignore_errors=True)
    _aot_cache().unlink(missing_ok=True)

    started = time.monotonic()
    print(f"[testenv] {NAME}: fetching {COORDINATE} from Maven Central", flush=True)
    download = folder / "download"
    common.run(
        [
            "mvn",
            "-q",
            "-B",
            "dependency:copy",
            f"-Dartifact={COORDINATE}",
            f"-DoutputDirectory={download}",
        ],
        cwd=folder,
        timeout=900,
    )
    _unpack(download / f"keycloak-quarkus-dist-{VERSION}.zip", folder)
    shutil.rmtree(download)
    print(f"[testenv] {NAME}: kc.sh build {' '.join(BUILD_OPTIONS)}", flush=True)
    common.run([str(_home() / "bin" / "kc.sh"), "build", *BUILD_OPTIONS], env=_env(), timeout=900)
    print(f"[testenv] {NAME}: built in {time.monotonic() - started:.0f}s", flush=True)

    started = time.monotonic()
    template = folder / "template"
    with running(template, _from_template=False):
        pass
    (template / "data" / "h2" / "keycloakdb.trace.db").unlink(missing_ok=True)
    shutil.rmtree(template / "data" / "tmp", ignore_errors=True)
    if not _template().is_file():
        raise common.ServiceUnavailableError(f"Keycloak left no database in {template}")
    print(f"[testenv] {NAME}: database template in {time.monotonic() - started:.0f}s", flush=True)

    started = time.monotonic()
    training = folder / "training"
    with running(training, _aot_output=_aot_cache()) as server:
        _train(server)
    if not _aot_cache().is_file():
        raise common.ServiceUnavailableError(f"the JVM wrote no AOT cache; see {training}")
    shutil.rmtree(training)
    print(f"[testenv] {NAME}: AOT cache in {time.monotonic() - started:.0f}s", flush=True)
    (folder / ".complete").write_text(_stamp())


def _unpack(archive: Path, folder: Path) -> None:
    """Extract the distribution (keeping the scripts' modes) into `folder/dist`."""
    unpacked = folder / "download" / "unpacked"
    with zipfile.ZipFile(archive) as bundle:
        for member in bundle.infolist():
            path = Path(bundle.extract(member, unpacked))
            mode = member.external_attr >> 16
            if mode and not member.is_dir():
                path.chmod(mode & 0o777)
    (top,) = unpacked.iterdir()  # keycloak-<version>/
    top.rename(_home())


def _env() -> dict[str, str]:
    return {
        **os.environ,
        "JAVA_HOME": str(JAVA_HOME),
        "JAVA": str(JAVA_HOME / "bin" / "java"),
        "KC_BOOTSTRAP_ADMIN_USERNAME": ADMIN_USERNAME,
        "KC_BOOTSTRAP_ADMIN_PASSWORD": ADMIN_PASSWORD,
    }


class _AdminAuth(httpx.Auth):
    """Bearer auth with a master-realm admin token, fetched again shortly before it expires."""

    def __init__(self, server: KeycloakServer) -> None:
        self.server = server
        self.token = ""
        self.expires = 0.0

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if time.monotonic() > self.expires:
            self._refresh()
        request.headers["Authorization"] = f"Bearer {self.token}"
        response = yield request
        if response.status_code == 401:
            self._refresh()
            request.headers["Authorization"] = f"Bearer {self.token}"
            yield request

    def _refresh(self) -> None:
        answer = self.server.admin_tokens()
        self.token = answer["access_token"]
        self.expires = time.monotonic() + answer["expires_in"] - 10


@dataclass(frozen=True)
class KeycloakServer:
    """A running Keycloak: its base URL and master-realm admin credentials."""

    url: str
    port: int
    management_port: int
    admin_username: str
    admin_password: str
    log: Path
    workdir: Path
    _clients: list[httpx.Client] = field(default_factory=list, repr=False, compare=False)

    def issuer(self, realm: str) -> str:
        """The OIDC issuer of `realm` (what its tokens carry in `iss`)."""
        return f"{self.url}/realms/{realm}"

    def admin_tokens(self) -> dict[str, Any]:
        """A token response for the bootstrap admin (master realm, `admin-cli`)."""
        answer = httpx.post(
            f"{self.issuer('master')}/protocol/openid-connect/token",
            data={
                "grant_type": "password",
                "client_id": "admin-cli",
                "username": self.admin_username,
                "password": self.admin_password,
            },
            timeout=30,
        )
        answer.raise_for_status()
        return answer.json()

    def admin(self) -> httpx.Client:
        """An HTTP client for the admin REST API (`base_url` = `<url>/admin/realms`).

        It is closed when the server stops.
        """
        client = httpx.Client(
            base_url=f"{self.url}/admin/realms", auth=_AdminAuth(self), timeout=60
        )
        self._clients.append(client)
        return client


@contextmanager
def running(
    workdir: Path, *, _from_template: bool = True, _aot_output: Path | None = None
) -> Iterator[KeycloakServer]:
    """Run Keycloak on free loopback ports, its H2 database in `workdir`, until the block ends."""
    workdir.mkdir(parents=True, exist_ok=True)
    if _from_template:
        h2 = workdir / "data" / "h2"
        h2.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(_template(), h2 / "keycloakdb.mv.db")
    port, management_port = common.free_port(), common.free_port()
    java_opts = list(JAVA_OPTS)
    if _aot_output is not None:
        java_opts.append(f"-XX:AOTCacheOutput={_aot_output}")
    elif _aot_cache().is_file():
        java_opts.append(f"-XX:AOTCache={_aot_cache()}")
    env = {**_env(), "JAVA_OPTS": " ".join(java_opts)}
    command = [
        str(_home() / "bin" / "kc.sh"),
        "start",
        "--optimized",
        f"-Dkc.db-url-path={workdir}",
        # Narayana's transaction log, by default in the distribution's data/ and so shared by
        # concurrent runs. (Its data/tmp keeps gzipped theme files only: the same for all.)
        f"-Dquarkus.transaction-manager.object-store.directory={workdir / 'transaction-logs'}",
        "--http-enabled=true",
        "--http-host=127.0.0.1",
        f"--http-port={port}",
        f"--http-management-port={management_port}",
        "--hostname-strict=false",
        "--cache=local",
        # Without this every readiness poll logs a line.
        "--log-level=INFO,io.smallrye.health:WARN",
    ]
    log = workdir / "keycloak.log"
    with log.open("ab") as output:
        # Its own session: kc.sh runs java as a child, and both are ours to stop.
        process = subprocess.Popen(
            command,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd=workdir,
            start_new_session=True,
        )
    server = KeycloakServer(
        f"http://127.0.0.1:{port}",
        port,
        management_port,
        ADMIN_USERNAME,
        ADMIN_PASSWORD,
        log,
        workdir,
    )

    def ready() -> bool:
        answer = httpx.get(f"http://127.0.0.1:{management_port}/health/ready", timeout=2)
        return answer.status_code == 200

    try:
        common.wait_until(
            ready, timeout=START_TIMEOUT, what="Keycloak", process=process, log=log, interval=0.1
        )
        yield server
    finally:
        for client in server._clients:
            client.close()
        timeout = AOT_STOP_TIMEOUT if _aot_output is not None else STOP_TIMEOUT
        common.stop_process(process, timeout=timeout)
        with contextlib.suppress(ProcessLookupError):  # java, should kc.sh have been killed
            os.killpg(process.pid, signal.SIGKILL)


def _train(server: KeycloakServer) -> None:
    """What the tests make Keycloak do, once, for the AOT cache: realm import, tokens, pages."""
    realm = "aot-training"
    mapper = {"protocol": "openid-connect", "consentRequired": False}
    claims = {
        "access.token.claim": "true",
        "id.token.claim": "true",
        "userinfo.token.claim": "true",
    }
    client = {
        "clientId": "training",
        "publicClient": True,
        "standardFlowEnabled": True,
        "directAccessGrantsEnabled": True,
        "redirectUris": ["http://127.0.0.1/callback"],
        "attributes": {
            "oauth2.device.authorization.grant.enabled": "true",
            "pkce.code.challenge.method": "S256",
        },
        "protocolMappers": [
            {
                **mapper,
                "name": "audience",
                "protocolMapper": "oidc-audience-mapper",
                "config": {"included.custom.audience": "training", "access.token.claim": "true"},
            },
            {
                **mapper,
                "name": "groups",
                "protocolMapper": "oidc-group-membership-mapper",
                "config": {**claims, "claim.name": "groups", "full.path": "false"},
            },
            {
                **mapper,
                "name": "attribute",
                "protocolMapper": "oidc-usermodel-attribute-mapper",
                "config": {
                    **claims,
                    "user.attribute": "entitlement",
                    "claim.name": "entitlement",
                    "multivalued": "true",
                    "jsonType.label": "String",
                },
            },
            {
                **mapper,
                "name": "hardcoded",
                "protocolMapper": "oidc-hardcoded-claim-mapper",
                "config": {
                    **claims,
                    "claim.name": "extra",
                    "claim.value": "1",
                    "jsonType.label": "long",
                },
            },
        ],
    }
    user = {
        "username": "trainee",
        "enabled": True,
        "email": "trainee@example.org",
        "emailVerified": True,
        "firstName": "Trainee",
        "lastName": "Test",
        "groups": ["/trainees"],
        "credentials": [{"type": "password", "value": "trainee-password", "temporary": False}],
    }
    admin = server.admin()
    admin.post(
        "",
        json={
            "realm": realm,
            "enabled": True,
            "sslRequired": "none",
            # As tests/fixtures/oidc.py's realms: a cheap password hash.
            "passwordPolicy": "hashAlgorithm(pbkdf2-sha256) and hashIterations(1)",
            "groups": [{"name": "trainees"}],
            "clients": [client],
        },
    ).raise_for_status()
    profile = admin.get(f"/{realm}/users/profile").json()
    admin.put(
        f"/{realm}/users/profile", json={**profile, "unmanagedAttributePolicy": "ENABLED"}
    ).raise_for_status()
    user["attributes"] = {"entitlement": ["a", "b"]}
    admin.post(
        f"/{realm}/partialImport", json={"ifResourceExists": "FAIL", "users": [user]}
    ).raise_for_status()
    admin.get(f"/{realm}/users", params={"username": "trainee", "exact": "true"})
    admin.get(f"/{realm}/clients", params={"clientId": "training"})
    admin.get(f"/{realm}/keys")
    admin.post(
        f"/{realm}/components",
        json={
            "name": "rotated",
            "providerId": "rsa-generated",
            "providerType": "org.keycloak.keys.KeyProvider",
            "config": {"priority": ["200"], "keySize": ["2048"]},
        },
    ).raise_for_status()

    issuer = server.issuer(realm)
    oidc = f"{issuer}/protocol/openid-connect"
    with httpx.Client(timeout=60) as http:
        http.get(f"{issuer}/.well-known/openid-configuration").raise_for_status()
        http.get(f"{oidc}/certs").raise_for_status()
        for _ in range(3):
            tokens = http.post(
                f"{oidc}/token",
                data={
                    "grant_type": "password",
                    "client_id": "training",
                    "scope": "openid",
                    "username": "trainee",
                    "password": "trainee-password",
                },
            )
            tokens.raise_for_status()
            bearer = {"Authorization": f"Bearer {tokens.json()['access_token']}"}
            http.get(f"{oidc}/userinfo", headers=bearer).raise_for_status()
            http.post(
                f"{oidc}/token",
                data={
                    "grant_type": "refresh_token",
                    "client_id": "training",
                    "refresh_token": tokens.json()["refresh_token"],
                },
            ).raise_for_status()
        device = http.post(
            f"{oidc}/auth/device",
            data={
                "client_id": "training",
                "code_challenge": "x" * 43,
                "code_challenge_method": "S256",
            },
        )
        device.raise_for_status()
        # The pages a browser sees: the device verification form, the login form.
        http.get(device.json()["verification_uri_complete"], follow_redirects=True)
        http.get(
            f"{oidc}/auth",
            params={
                "client_id": "training",
                "response_type": "code",
                "scope": "openid",
                "redirect_uri": "http://127.0.0.1/callback",
                "code_challenge": "x" * 43,
                "code_challenge_method": "S256",
            },
            follow_redirects=True,
        ).raise_for_status()
    admin.delete(f"/{realm}").raise_for_status()


@pytest.fixture(scope="session")
def keycloak(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeycloakServer]:
    """A real Keycloak shared by the session (realms are made by fixtures, see tests/fixtures/)."""
    common.require_installed(NAME, is_installed())
    with running(tmp_path_factory.mktemp("keycloak")) as server:
        yield server
