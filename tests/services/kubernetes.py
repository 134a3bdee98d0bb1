"""A real Kubernetes control plane built from source, with etcd and kwok-simulated nodes.

`kube-apiserver`, `kube-controller-manager` and `kube-scheduler` are built from the
`k8s.io/kubernetes` Go module through the module proxy (a throwaway go.mod that pins every
`k8s.io/*` staging module to its published `v0.Y.Z`); etcd comes from Debian's `etcd-server`;
`kwok` (https://kwok.sigs.k8s.io) plays the kubelet of simulated nodes, so Jobs get Pods that the
real scheduler binds and kwok runs to completion. No container runtime is involved. `helm` is
built too, for the chart tests.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import os
import re
import shutil
import ssl
import subprocess
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.services import common

NAME = "kubernetes"
VERSION = "v1.34.4"
KWOK_VERSION = "v0.7.0"
HELM_VERSION = "v3.19.0"
COMPONENTS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
DATA_DIR = Path(__file__).with_name("kubernetes_data")
KWOK_STAGES = DATA_DIR / "kwok-stages.yaml"
FAKE_NODE_ANNOTATION = "kwok.x-k8s.io/node"
NOT_READY_TAINT = "node.kubernetes.io/not-ready"
BUILD_TIMEOUT = 3 * 3600  # a cold build on 2 busy cores; the proxy download is part of it
SERVICE_CIDR = "10.0.0.0/24"
# Controllers that need a cloud, real volumes or metrics are off: they only log errors here.
CONTROLLERS = ",".join(
    [
        "*",
        "-cloud-node-lifecycle-controller",
        "-node-ipam-controller",
        "-node-route-controller",
        "-service-lb-controller",
        "-persistentvolume-attach-detach-controller",
        "-horizontal-pod-autoscaler-controller",
        "-storage-version-migrator-controller",
    ]
)


def bin_dir() -> Path:
    """The cached binaries of this version (control plane, kwok and helm)."""
    return common.cache_dir(NAME, VERSION) / "bin"


def helm_binary() -> Path:
    """The cached `helm` binary."""
    return bin_dir() / "helm"


def _etcd() -> str | None:
    return shutil.which("etcd")


def is_installed() -> bool:
    """Whether every binary the control plane needs is present."""
    names = (*COMPONENTS, "kwok", "helm")
    return _etcd() is not None and all((bin_dir() / n).is_file() for n in names)


# --- building ----------------------------------------------------------------------------------


def _go_env(gobin: Path | None = None) -> dict[str, str]:
    # CGO off: static binaries, no C toolchain. GOWORK off and -mod=mod: a user's go.work or
    # GOFLAGS=-mod=vendor must not leak into these module-mode builds.
    env = {**os.environ, "CGO_ENABLED": "0", "GOWORK": "off", "GOFLAGS": "-mod=mod"}
    if gobin is not None:
        env["GOBIN"] = str(gobin)
    return env


def _run_go(args: list[str], *, env: dict[str, str], cwd: Path, what: str) -> str:
    """Run a Go command, printing a progress line now and then; return its output.

    `common.run` would stay silent until the end, and a 15-minute silent build looks hung.
    """
    started = time.monotonic()
    deadline = started + BUILD_TIMEOUT
    tail: deque[str] = deque(maxlen=60)
    output: list[str] = []
    downloads = packages = 0
    process = subprocess.Popen(
        args, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert process.stdout is not None
    with process:
        for line in process.stdout:
            output.append(line)
            tail.append(line.rstrip())
            elapsed = time.monotonic() - started
            if line.startswith("go: downloading"):
                downloads += 1
                if downloads % 100 == 0:
                    print(f"[testenv]   {what}: {downloads} modules downloaded", flush=True)
            elif not line.startswith(("go:", "#", " ", "\t", "{", "}")):
                packages += 1  # `go build -v` prints each package as it compiles it
                if packages % 200 == 0:
                    print(
                        f"[testenv]   {what}: {packages} packages ({elapsed:.0f}s), {line.strip()}",
                        flush=True,
                    )
            if time.monotonic() > deadline:
                process.kill()
                break
    if process.returncode != 0:
        raise common.ServiceUnavailableError(
            f"{what} failed ({process.returncode}): {' '.join(args)}\n" + "\n".join(tail)
        )
    print(f"[testenv]   {what}: done in {time.monotonic() - started:.0f}s", flush=True)
    return "".join(output)


def _go_install(module: str, program: str, target: Path) -> None:
    """`go install module@version` into a scratch folder, then move the binary into place."""
    scratch = target / f".build-{program}"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    print(f"[testenv] go install {module}", flush=True)
    _run_go(["go", "install", "-v", module], env=_go_env(scratch), cwd=scratch, what=program)
    os.replace(scratch / program, target / program)
    shutil.rmtree(scratch, ignore_errors=True)


def _staging_modules(kubernetes_mod: str) -> list[str]:
    """The `k8s.io/*` modules kubernetes' own go.mod replaces with `./staging/src/...`."""
    return re.findall(r"^\s*(k8s\.io/[\w.-]+) => \./staging/src/", kubernetes_mod, re.MULTILINE)


def _build_control_plane(target: Path) -> None:
    """Build the three control-plane binaries from the `k8s.io/kubernetes` module.

    kubernetes' go.mod points its `k8s.io/*` dependencies at `./staging/src/...`, which a module
    download does not have; a throwaway main module replaces each one with the published
    `v0.<minor>.<patch>` tag that matches this release.
    """
    build = common.cache_dir(NAME, VERSION) / "build"
    build.mkdir(exist_ok=True)
    major, minor, patch = VERSION.lstrip("v").split(".")
    download = _run_go(
        ["go", "mod", "download", "-json", f"k8s.io/kubernetes@{VERSION}"],
        env=_go_env(),
        cwd=build,
        what="k8s.io/kubernetes download",
    )
    mod_path = re.search(r'"GoMod":\s*"([^"]+)"', download)
    if not mod_path:
        raise common.ServiceUnavailableError("go mod download did not report kubernetes' go.mod")
    kubernetes_mod = Path(mod_path.group(1)).read_text()
    staging = _staging_modules(kubernetes_mod)
    if len(staging) < 20:  # 31 for v1.33-v1.35: far fewer means the go.mod format changed
        raise common.ServiceUnavailableError(f"only {len(staging)} staging modules found")
    go_directive = re.search(r"^go (\S+)$", kubernetes_mod, re.MULTILINE)
    print(f"[testenv] kubernetes {VERSION}: pinning {len(staging)} staging modules", flush=True)
    replaces = "\n".join(f"\t{m} => {m} v0.{minor}.{patch}" for m in staging)
    (build / "go.mod").write_text(
        f"module oscar.test/k8s-build\n\n"
        f"go {go_directive.group(1) if go_directive else '1.24.0'}\n\n"
        f"require k8s.io/kubernetes {VERSION}\n\nreplace (\n{replaces}\n)\n"
    )
    (build / "go.sum").touch()
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    # What `make` would stamp from git: without it the binaries say v0.0.0-master and clients
    # (and the emulated-version checks of 1.34) see the wrong version.
    stamps = {
        "gitVersion": VERSION,
        "gitMajor": major,
        "gitMinor": minor,
        "gitTreeState": "clean",
        "buildDate": now,
    }
    flags = [
        f"-X {package}.{key}={value}"
        for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version")
        for key, value in stamps.items()
    ]
    scratch = target / ".build-control-plane"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    print(f"[testenv] building {', '.join(COMPONENTS)} (10-20 minutes on 2 cores)", flush=True)
    _run_go(
        [
            "go",
            "build",
            "-v",
            "-p",
            "2",
            "-trimpath",
            "-ldflags",
            "-s -w " + " ".join(flags),
            "-o",
            f"{scratch}/",
            *(f"k8s.io/kubernetes/cmd/{c}" for c in COMPONENTS),
        ],
        env=_go_env(),
        cwd=build,
        what="control plane",
    )
    # Moved only once all three are built, so an interrupted build never counts as installed.
    for component in COMPONENTS:
        os.replace(scratch / component, target / component)
    shutil.rmtree(scratch, ignore_errors=True)


def install() -> None:
    """Build (or find cached) the control plane, kwok and helm; apt-install etcd if missing."""
    if is_installed():
        print(f"[testenv] kubernetes {VERSION}: cached at {bin_dir()}", flush=True)
        return
    if shutil.which("go") is None:
        raise common.ServiceUnavailableError("the Kubernetes control plane is built with Go")
    target = bin_dir()
    target.mkdir(parents=True, exist_ok=True)
    if _etcd() is None:
        print("[testenv] apt-get install etcd-server", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        command = ["apt-get", "install", "-y", "--no-install-recommends", "etcd-server"]
        if common.run(command, env=env, check=False).returncode != 0:
            common.run(["apt-get", "update"], env=env)  # a fresh machine has no package lists
            common.run(command, env=env)
    if not (target / "kwok").is_file():
        _go_install(f"sigs.k8s.io/kwok/cmd/kwok@{KWOK_VERSION}", "kwok", target)
    if not (target / "helm").is_file():
        _go_install(f"helm.sh/helm/v3/cmd/helm@{HELM_VERSION}", "helm", target)
    if not all((target / c).is_file() for c in COMPONENTS):
        _build_control_plane(target)
    if not is_installed():
        raise common.ServiceUnavailableError(f"kubernetes build incomplete in {target}")
    print(f"[testenv] kubernetes {VERSION}: installed in {target}", flush=True)


# --- certificates and kubeconfigs ----------------------------------------------------------------


def _write_pki(pki: Path) -> None:
    """A CA, a serving cert for every component, an admin client cert, service-account keys."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    pki.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)

    def key() -> rsa.RSAPrivateKey:
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def save_key(private: rsa.RSAPrivateKey, file: str) -> None:
        path = pki / file
        path.write_bytes(
            private.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption(),
            )
        )
        path.chmod(0o600)

    def name(common_name: str, org: str | None = None) -> x509.Name:
        parts = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
        if org:
            parts.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
        return x509.Name(parts)

    ca_key = key()
    ca_name = name("oscar-test-ca")
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=7))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    (pki / "ca.crt").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    save_key(ca_key, "ca.key")

    def issue(file: str, subject: x509.Name, usage: Any, sans: list[x509.GeneralName]) -> None:
        private = key()
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(ca_name)
            .public_key(private.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=7))
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        )
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())
        (pki / f"{file}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        save_key(private, f"{file}.key")

    # One serving cert for the API server, controller-manager and scheduler: all on 127.0.0.1.
    issue(
        "serving",
        name("kube-apiserver"),
        ExtendedKeyUsageOID.SERVER_AUTH,
        [
            x509.DNSName("localhost"),
            x509.DNSName("kubernetes"),
            x509.DNSName("kubernetes.default"),
            x509.DNSName("kubernetes.default.svc"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            # The first address of the service range: the in-cluster `kubernetes` Service.
            x509.IPAddress(next(ipaddress.ip_network(SERVICE_CIDR).hosts())),
        ],
    )
    issue("admin", name("oscar-test-admin", "system:masters"), ExtendedKeyUsageOID.CLIENT_AUTH, [])
    service_accounts = key()
    save_key(service_accounts, "sa.key")
    (pki / "sa.pub").write_bytes(
        service_accounts.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def _write_kubeconfig(path: Path, server: str, pki: Path) -> None:
    """A kubeconfig with the admin client certificate (group system:masters), inlined."""
    import yaml

    def b64(file: str) -> str:
        return base64.b64encode((pki / file).read_bytes()).decode()

    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "oscar-test",
                "cluster": {"server": server, "certificate-authority-data": b64("ca.crt")},
            }
        ],
        "users": [
            {
                "name": "admin",
                "user": {
                    "client-certificate-data": b64("admin.crt"),
                    "client-key-data": b64("admin.key"),
                },
            }
        ],
        "contexts": [{"name": "oscar-test", "context": {"cluster": "oscar-test", "user": "admin"}}],
        "current-context": "oscar-test",
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)


# --- running ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class KubernetesCluster:
    """A running control plane with kwok-managed simulated nodes."""

    server: str
    kubeconfig: Path
    version: str
    workdir: Path
    logs: Path
    ca_file: Path
    helm: Path
    pids: dict[str, int]

    def api_client(self) -> Any:
        """A new `kubernetes.client.ApiClient` configured from the kubeconfig (admin user)."""
        from kubernetes import config

        return config.new_client_from_config(config_file=str(self.kubeconfig))

    def kubectl_env(self) -> dict[str, str]:
        """Environment pointing clients (helm, the kubernetes package) at this cluster."""
        return {**os.environ, "KUBECONFIG": str(self.kubeconfig)}

    def create_fake_node(
        self,
        name: str,
        labels: dict[str, str] | None = None,
        taints: list[dict[str, str]] | None = None,
        cpu: str = "32",
        memory: str = "256Gi",
    ) -> Any:
        """Register a Node that kwok manages, wait until it is Ready and schedulable; return it.

        `taints` are dicts with `key`, optional `value` and `effect`; e.g. an interLink-like
        virtual node: ``labels={"type": "virtual-kubelet"}``, ``taints=[{"key":
        "virtual-node.interlink/no-schedule", "value": "true", "effect": "NoSchedule"}]``.
        """
        from kubernetes import client

        core = client.CoreV1Api(self.api_client())
        resources = {"cpu": cpu, "memory": memory, "pods": "110"}
        node = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": name,
                "annotations": {FAKE_NODE_ANNOTATION: "fake"},
                "labels": {
                    "kubernetes.io/hostname": name,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                    "type": "kwok",
                    **(labels or {}),
                },
            },
            "spec": {"taints": taints or []},
            # A registering kubelet reports its capacity in the created object; kwok keeps it.
            "status": {"allocatable": resources, "capacity": resources},
        }
        core.create_node(node)

        def ready() -> Any:
            # Ready, and the node lifecycle controller has lifted the not-ready taint it puts
            # on every new node: before that the scheduler would not place pods here.
            current = core.read_node(name)
            conditions = current.status.conditions or []
            taints = {t.key for t in current.spec.taints or []}
            is_ready = any(c.type == "Ready" and c.status == "True" for c in conditions)
            return current if is_ready and NOT_READY_TAINT not in taints else None

        return common.wait_until(ready, timeout=60, what=f"kwok node {name} Ready")

    def delete_node(self, name: str) -> None:
        """Remove a node (kwok stops managing it; its pods are garbage-collected)."""
        from kubernetes import client

        client.CoreV1Api(self.api_client()).delete_node(name)


def _spawn(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as handle:
        return subprocess.Popen(args, stdout=handle, stderr=subprocess.STDOUT)


@contextmanager
def running(workdir: Path) -> Iterator[KubernetesCluster]:
    """Start etcd, the API server, controller-manager, scheduler and kwok; stop them after.

    Everything listens on free loopback ports; logs go to `workdir/logs/<component>.log`.
    """
    import httpx

    binaries = bin_dir()
    pki = workdir / "pki"
    logs = workdir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    _write_pki(pki)
    etcd_port, peer_port, api_port = common.free_port(), common.free_port(), common.free_port()
    kcm_port, scheduler_port, kwok_port = common.free_port(), common.free_port(), common.free_port()
    server = f"https://127.0.0.1:{api_port}"
    kubeconfig = workdir / "admin.kubeconfig"
    _write_kubeconfig(kubeconfig, server, pki)
    tls = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    tls.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
    processes: dict[str, subprocess.Popen[bytes]] = {}
    serving = [
        f"--tls-cert-file={pki / 'serving.crt'}",
        f"--tls-private-key-file={pki / 'serving.key'}",
    ]

    def start(component: str, args: list[str]) -> subprocess.Popen[bytes]:
        processes[component] = _spawn(args, logs / f"{component}.log")
        return processes[component]

    def wait_healthy(component: str, url: str, timeout: float = 60) -> None:
        with httpx.Client(verify=tls, timeout=2) as http:
            common.wait_until(
                lambda: http.get(url).status_code == 200,
                timeout=timeout,
                interval=0.2,
                what=component,
                process=processes[component],
                log=logs / f"{component}.log",
            )

    try:
        etcd_url = f"http://127.0.0.1:{etcd_port}"
        start(
            "etcd",
            [
                str(_etcd()),
                "--name=oscar-test",
                f"--data-dir={workdir / 'etcd'}",
                f"--listen-client-urls={etcd_url}",
                f"--advertise-client-urls={etcd_url}",
                f"--listen-peer-urls=http://127.0.0.1:{peer_port}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}",
                f"--initial-cluster=oscar-test=http://127.0.0.1:{peer_port}",
                "--quota-backend-bytes=1073741824",
            ],
        )
        wait_healthy("etcd", f"{etcd_url}/health", timeout=30)
        start(
            "kube-apiserver",
            [
                str(binaries / "kube-apiserver"),
                f"--etcd-servers={etcd_url}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={api_port}",
                *serving,
                f"--client-ca-file={pki / 'ca.crt'}",
                f"--service-account-key-file={pki / 'sa.pub'}",
                f"--service-account-signing-key-file={pki / 'sa.key'}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--authorization-mode=Node,RBAC",
                # Saves memory and start-up time; one client does not need fairness queues.
                "--enable-priority-and-fairness=false",
                # etcd 3.4 lacks the watch progress requests that 1.34's watch cache needs
                # for consistent reads ("Too large resource version"); read etcd directly.
                "--watch-cache=false",
                # No kube-proxy nor real endpoints: do not publish 127.0.0.1 as the Service.
                "--endpoint-reconciler-type=none",
                # Pods need no token volumes: nothing runs them for real (kwok only simulates).
                "--disable-admission-plugins=ServiceAccount",
                "--allow-privileged=true",
                "--profiling=false",
            ],
        )
        wait_healthy("kube-apiserver", f"{server}/readyz", timeout=90)
        start(
            "kube-controller-manager",
            [
                str(binaries / "kube-controller-manager"),
                f"--kubeconfig={kubeconfig}",
                "--leader-elect=false",
                "--bind-address=127.0.0.1",
                f"--secure-port={kcm_port}",
                *serving,
                f"--service-account-private-key-file={pki / 'sa.key'}",
                f"--root-ca-file={pki / 'ca.crt'}",
                "--use-service-account-credentials=false",
                f"--controllers={CONTROLLERS}",
                "--concurrent-job-syncs=5",
                "--profiling=false",
            ],
        )
        start(
            "kube-scheduler",
            [
                str(binaries / "kube-scheduler"),
                f"--kubeconfig={kubeconfig}",
                "--leader-elect=false",
                "--bind-address=127.0.0.1",
                f"--secure-port={scheduler_port}",
                *serving,
                "--profiling=false",
            ],
        )
        start(
            "kwok",
            [
                str(binaries / "kwok"),
                f"--kubeconfig={kubeconfig}",
                f"--config={KWOK_STAGES}",
                "--manage-all-nodes=false",
                f"--manage-nodes-with-annotation-selector={FAKE_NODE_ANNOTATION}=fake",
                "--cidr=10.0.1.1/24",
                "--node-ip=10.0.1.1",
                f"--server-address=127.0.0.1:{kwok_port}",
            ],
        )
        # /healthz and /readyz need no credentials on these (--authorization-always-allow-paths).
        wait_healthy("kube-controller-manager", f"https://127.0.0.1:{kcm_port}/healthz")
        wait_healthy("kube-scheduler", f"https://127.0.0.1:{scheduler_port}/readyz")
        wait_healthy("kwok", f"http://127.0.0.1:{kwok_port}/healthz")
        with httpx.Client(base_url=server, verify=tls, timeout=2) as api:
            # The controllers run once this appears: the root-CA publisher fills every namespace.
            common.wait_until(
                lambda: (
                    api.get("/api/v1/namespaces/default/configmaps/kube-root-ca.crt").is_success
                ),
                timeout=60,
                interval=0.2,
                what="kube-controller-manager controllers",
                process=processes["kube-controller-manager"],
                log=logs / "kube-controller-manager.log",
            )
        yield KubernetesCluster(
            server=server,
            kubeconfig=kubeconfig,
            version=VERSION,
            workdir=workdir,
            logs=logs,
            ca_file=pki / "ca.crt",
            helm=helm_binary(),
            pids={component: process.pid for component, process in processes.items()},
        )
    finally:
        for process in reversed(processes.values()):
            common.stop_process(process)


@pytest.fixture(scope="session")
def kubernetes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubernetesCluster]:
    """A real Kubernetes control plane with kwok, shared by the session."""
    common.require_installed(NAME, is_installed())
    with running(tmp_path_factory.mktemp("kubernetes")) as cluster:
        yield cluster
