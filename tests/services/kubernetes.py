"""A real Kubernetes control plane built from source, with etcd and kwok-simulated nodes.

`kube-apiserver`, `kube-controller-manager` and `kube-scheduler` are built from the
`k8s.io/kubernetes` Go module through the module proxy (a throwaway go.mod that pins every
`k8s.io/*` staging module to its published `v0.Y.Z`); etcd comes from Debian's `etcd-server`;
`kwok` (https://kwok.sigs.k8s.io) plays the kubelet of simulated nodes, so Jobs get Pods that the
real scheduler binds and kwok runs to completion. No container runtime is involved.
"""

from __future__ import annotations

import datetime
import os
import re
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
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
FAKE_NODE_ANNOTATION = "kwok.x-k8s.io/node"


def bin_dir() -> Path:
    """The cached binaries of this version (control plane, kwok and helm)."""
    return common.cache_dir(NAME, VERSION) / "bin"


def _etcd() -> str | None:
    return shutil.which("etcd")


def is_installed() -> bool:
    """Whether every binary the control plane needs is present."""
    names = (*COMPONENTS, "kwok", "helm")
    return _etcd() is not None and all((bin_dir() / n).is_file() for n in names)


def _go_env(gobin: Path | None = None) -> dict[str, str]:
    env = {**os.environ, "CGO_ENABLED": "0", "GOWORK": "off", "GOFLAGS": "-mod=mod"}
    if gobin is not None:
        env["GOBIN"] = str(gobin)
    return env


def _staging_modules(kubernetes_mod: str) -> list[str]:
    """The `k8s.io/*` modules kubernetes' own go.mod replaces with `./staging/src/...`."""
    return re.findall(r"^\s*(k8s\.io/[\w.-]+) => \./staging/src/", kubernetes_mod, re.MULTILINE)


def _build_control_plane(target: Path) -> None:
    build = common.cache_dir(NAME, VERSION) / "build"
    build.mkdir(exist_ok=True)
    minor = VERSION.lstrip("v").split(".")[1]
    download = common.run(
        ["go", "mod", "download", "-json", f"k8s.io/kubernetes@{VERSION}"],
        env=_go_env(),
        cwd=build,
        timeout=1800,
    )
    mod_path = re.search(r'"GoMod":\s*"([^"]+)"', download.stdout)
    if not mod_path:
        raise common.ServiceUnavailableError("go mod download did not report kubernetes' go.mod")
    staging = _staging_modules(Path(mod_path.group(1)).read_text())
    print(f"[testenv] kubernetes {VERSION}: pinning {len(staging)} staging modules", flush=True)
    replaces = "\n".join(f"\t{m} => {m} v0.{minor}.{VERSION.split('.')[2]}" for m in staging)
    (build / "go.mod").write_text(
        f"module oscar.test/k8s-build\n\ngo 1.24.0\n\nrequire k8s.io/kubernetes {VERSION}\n\n"
        f"replace (\n{replaces}\n)\n"
    )
    (build / "go.sum").touch()
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    major = VERSION.lstrip("v").split(".")[0]
    flags = [
        f"-X k8s.io/component-base/version.{key}={value}"
        for key, value in (
            ("gitVersion", VERSION),
            ("gitMajor", major),
            ("gitMinor", minor),
            ("gitTreeState", "clean"),
            ("buildDate", now),
        )
    ]
    flags += [
        f.replace("k8s.io/component-base/version", "k8s.io/client-go/pkg/version") for f in flags
    ]
    packages = [f"k8s.io/kubernetes/cmd/{c}" for c in COMPONENTS]
    print(f"[testenv] building {', '.join(COMPONENTS)} (10-20 minutes on 2 cores)", flush=True)
    common.run(
        [
            "go",
            "build",
            "-trimpath",
            "-ldflags",
            "-s -w " + " ".join(flags),
            "-o",
            str(target),
            *packages,
        ],
        env=_go_env(),
        cwd=build,
        timeout=7200,
    )


def install() -> None:
    """Build (or find cached) the control plane, kwok and helm; apt-install etcd."""
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
            common.run(["apt-get", "update"], env=env)
            common.run(command, env=env)
    if not (target / "kwok").is_file():
        print(f"[testenv] go install kwok {KWOK_VERSION}", flush=True)
        common.run(
            ["go", "install", f"sigs.k8s.io/kwok/cmd/kwok@{KWOK_VERSION}"],
            env=_go_env(target),
            cwd=target,
            timeout=3600,
        )
    if not (target / "helm").is_file():
        print(f"[testenv] go install helm {HELM_VERSION}", flush=True)
        common.run(
            ["go", "install", f"helm.sh/helm/v3/cmd/helm@{HELM_VERSION}"],
            env=_go_env(target),
            cwd=target,
            timeout=3600,
        )
    if not all((target / c).is_file() for c in COMPONENTS):
        _build_control_plane(target)
    if not is_installed():
        raise common.ServiceUnavailableError(f"kubernetes build incomplete in {target}")


# --- certificates and kubeconfigs ----------------------------------------------------------------


def _write_pki(pki: Path) -> None:
    """A CA, the API server's serving cert, an admin client cert and the service-account keys."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    pki.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)

    def key() -> rsa.RSAPrivateKey:
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def save_key(private: rsa.RSAPrivateKey, name: str) -> None:
        path = pki / name
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

    import ipaddress

    issue(
        "apiserver",
        name("kube-apiserver"),
        ExtendedKeyUsageOID.SERVER_AUTH,
        [
            x509.DNSName("localhost"),
            x509.DNSName("kubernetes.default.svc"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.IPAddress(ipaddress.ip_address("10.0.0.1")),
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
    import base64

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
    _processes: list[subprocess.Popen[bytes]] = field(default_factory=list, repr=False)

    def api_client(self) -> Any:
        """A `kubernetes.client.ApiClient` configured from the kubeconfig."""
        from kubernetes import config

        return config.new_client_from_config(config_file=str(self.kubeconfig))

    def kubectl_env(self) -> dict[str, str]:
        """Environment pointing clients (helm, kubernetes client) at this cluster."""
        return {**os.environ, "KUBECONFIG": str(self.kubeconfig)}

    def create_fake_node(
        self,
        name: str,
        labels: dict[str, str] | None = None,
        taints: list[dict[str, str]] | None = None,
        cpu: str = "32",
        memory: str = "256Gi",
    ) -> Any:
        """Register a Node that kwok manages (it turns Ready and runs the pods bound to it)."""
        from kubernetes import client

        core = client.CoreV1Api(self.api_client())
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
            "status": {
                "allocatable": {"cpu": cpu, "memory": memory, "pods": "110"},
                "capacity": {"cpu": cpu, "memory": memory, "pods": "110"},
            },
        }
        created = core.create_node(node)
        common.wait_until(
            lambda: any(
                c.type == "Ready" and c.status == "True"
                for c in (core.read_node(name).status.conditions or [])
            ),
            timeout=60,
            what=f"kwok node {name} Ready",
        )
        return created


def _spawn(
    args: list[str], log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    with log.open("ab") as handle:
        return subprocess.Popen(args, stdout=handle, stderr=subprocess.STDOUT, env=env)


@contextmanager
def running(workdir: Path) -> Iterator[KubernetesCluster]:
    """Start etcd, the API server, controller-manager, scheduler and kwok; stop them after."""
    import httpx

    binaries = bin_dir()
    pki = workdir / "pki"
    logs = workdir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    _write_pki(pki)
    etcd_port, peer_port, api_port = common.free_port(), common.free_port(), common.free_port()
    server = f"https://127.0.0.1:{api_port}"
    kubeconfig = workdir / "admin.kubeconfig"
    _write_kubeconfig(kubeconfig, server, pki)
    processes: list[subprocess.Popen[bytes]] = []
    cluster = KubernetesCluster(server, kubeconfig, VERSION, workdir, processes)
    try:
        etcd_url = f"http://127.0.0.1:{etcd_port}"
        processes.append(
            _spawn(
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
                logs / "etcd.log",
            )
        )
        common.wait_until(
            lambda: httpx.get(f"{etcd_url}/health", timeout=1).json().get("health") == "true",
            timeout=30,
            what="etcd",
            process=processes[-1],
            log=logs / "etcd.log",
        )
        processes.append(
            _spawn(
                [
                    str(binaries / "kube-apiserver"),
                    f"--etcd-servers={etcd_url}",
                    "--bind-address=127.0.0.1",
                    "--advertise-address=127.0.0.1",
                    f"--secure-port={api_port}",
                    f"--tls-cert-file={pki / 'apiserver.crt'}",
                    f"--tls-private-key-file={pki / 'apiserver.key'}",
                    f"--client-ca-file={pki / 'ca.crt'}",
                    f"--service-account-key-file={pki / 'sa.pub'}",
                    f"--service-account-signing-key-file={pki / 'sa.key'}",
                    "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                    "--service-cluster-ip-range=10.0.0.0/24",
                    "--authorization-mode=Node,RBAC",
                    "--enable-priority-and-fairness=false",
                    # etcd 3.4 lacks the watch progress requests that 1.34's watch cache needs
                    # for consistent reads ("Too large resource version"); read etcd directly.
                    "--watch-cache=false",
                    "--endpoint-reconciler-type=none",
                    "--disable-admission-plugins=ServiceAccount",
                    "--allow-privileged=true",
                    "--profiling=false",
                    f"--cert-dir={pki}",
                ],
                logs / "kube-apiserver.log",
            )
        )
        tls = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        tls.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
        api = httpx.Client(base_url=server, verify=tls, timeout=2)
        common.wait_until(
            lambda: api.get("/readyz").status_code == 200,
            timeout=90,
            interval=0.3,
            what="kube-apiserver",
            process=processes[-1],
            log=logs / "kube-apiserver.log",
        )
        processes.append(
            _spawn(
                [
                    str(binaries / "kube-controller-manager"),
                    f"--kubeconfig={kubeconfig}",
                    "--leader-elect=false",
                    "--bind-address=127.0.0.1",
                    "--secure-port=0",
                    f"--service-account-private-key-file={pki / 'sa.key'}",
                    f"--root-ca-file={pki / 'ca.crt'}",
                    "--use-service-account-credentials=false",
                    "--controllers=*,-nodeipam,-route,-service",
                    "--concurrent-job-syncs=5",
                ],
                logs / "kube-controller-manager.log",
            )
        )
        processes.append(
            _spawn(
                [
                    str(binaries / "kube-scheduler"),
                    f"--kubeconfig={kubeconfig}",
                    "--leader-elect=false",
                    "--bind-address=127.0.0.1",
                    "--secure-port=0",
                ],
                logs / "kube-scheduler.log",
            )
        )
        processes.append(
            _spawn(
                [
                    str(binaries / "kwok"),
                    f"--kubeconfig={kubeconfig}",
                    "--manage-all-nodes=false",
                    f"--manage-nodes-with-annotation-selector={FAKE_NODE_ANNOTATION}=fake",
                    "--cidr=10.0.1.1/24",
                    "--node-ip=10.0.1.1",
                    "--server-address=",
                ],
                logs / "kwok.log",
            )
        )
        # Every component must stay up; the namespace "default" appears once the API is usable.
        common.wait_until(
            lambda: api.get("/api/v1/namespaces/default").status_code == 200,
            timeout=60,
            what="kubernetes default namespace",
            process=processes[1],
            log=logs / "kube-apiserver.log",
        )
        for process, name in zip(
            processes[2:], ("kube-controller-manager", "kube-scheduler", "kwok"), strict=True
        ):
            if process.poll() is not None:
                raise common.ServiceUnavailableError(
                    f"{name} exited with {process.returncode}: see {logs / (name + '.log')}"
                )
        api.close()
        yield cluster
    finally:
        for process in reversed(processes):
            common.stop_process(process)


@pytest.fixture(scope="session")
def kubernetes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubernetesCluster]:
    """A real Kubernetes control plane with kwok, shared by the session."""
    common.require_installed(NAME, is_installed())
    with running(tmp_path_factory.mktemp("kubernetes")) as cluster:
        yield cluster
