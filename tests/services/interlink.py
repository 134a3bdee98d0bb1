"""interLink's real virtual kubelet and API server, built from the vendored source snapshot.

The source lives in ``../shared/vendor/interlink`` (next to the repository; override with
``OSCAR_INTERLINK_SRC``), read-only: ``install()`` copies it to a work folder and runs
``go build ./cmd/virtual-kubelet ./cmd/interlink`` into the testenv cache (about 9 minutes cold on
2 cores). Its ``PROVENANCE.md`` says which upstream commit it is and what was verified.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.services import common
from tests.services.kubernetes import KubernetesCluster, _go_env, _run_go

NAME = "interlink"
# The upstream commit of the vendored snapshot (PROVENANCE.md); bump with the snapshot.
VERSION = "0.6.2-f6321757"
PROGRAMS = ("virtual-kubelet", "interlink")
REPO_ROOT = Path(__file__).resolve().parents[2]
SOURCE_ENV = "OSCAR_INTERLINK_SRC"
# The virtual kubelet pings the plugin every 30 s; the node turns Ready on the first success.
READY_TIMEOUT = 90


def source_dir() -> Path:
    """The vendored interLink source: `$OSCAR_INTERLINK_SRC` or `../shared/vendor/interlink`."""
    override = os.environ.get(SOURCE_ENV)
    if override:
        return Path(override).resolve()
    return (REPO_ROOT.parent / "shared" / "vendor" / "interlink").resolve()


def bin_dir() -> Path:
    """The cached binaries of this version."""
    return common.cache_dir(NAME, VERSION) / "bin"


def binary(program: str) -> Path:
    """The cached path of one of `PROGRAMS`."""
    return bin_dir() / program


def _source_digest(source: Path) -> str:
    """A digest of the files the build reads (go.mod, go.sum, cmd/, pkg/)."""
    digest = hashlib.sha256()
    files = [source / "go.mod", source / "go.sum"]
    for folder in ("cmd", "pkg"):
        files.extend(sorted(p for p in (source / folder).rglob("*") if p.is_file()))
    for path in files:
        digest.update(str(path.relative_to(source)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def is_installed() -> bool:
    """Whether both binaries are in the cache, built from the source there is now (if any).

    A changed snapshot (its digest differs from the one stamped at build time) needs a rebuild;
    without the source at hand (e.g. only the cache was restored) the binaries count as is.
    """
    if not all(binary(p).is_file() and os.access(binary(p), os.X_OK) for p in PROGRAMS):
        return False
    source = source_dir()
    stamp = bin_dir() / "SOURCE_DIGEST"
    if not (source / "go.mod").is_file() or not stamp.is_file():
        return True
    return stamp.read_text().strip() == _source_digest(source)


def install() -> None:
    """Copy the vendored source to a work folder and build both programs (once; cached)."""
    if is_installed():
        print(f"[testenv] interlink {VERSION}: cached at {bin_dir()}", flush=True)
        return
    if shutil.which("go") is None:
        raise common.ServiceUnavailableError("interLink is built with Go (not on PATH)")
    source = source_dir()
    if not (source / "go.mod").is_file():
        raise common.ServiceUnavailableError(
            f"no interLink source at {source}; set {SOURCE_ENV} to the vendored snapshot"
        )
    provenance = source / "PROVENANCE.md"
    commit = VERSION.rsplit("-", 1)[-1]
    if provenance.is_file() and commit not in provenance.read_text():
        print(
            f"[testenv] interlink: warning: {provenance} does not name commit {commit}; "
            "bump VERSION in tests/services/interlink.py with the snapshot",
            flush=True,
        )
    target = bin_dir()
    target.mkdir(parents=True, exist_ok=True)
    digest = _source_digest(source)
    work = common.cache_dir(NAME, VERSION) / "src"
    shutil.rmtree(work, ignore_errors=True)
    # The snapshot is read-only in CI; the copy must be writable (go may touch go.sum).
    shutil.copytree(source, work, ignore=shutil.ignore_patterns(".git"))
    for path in (work, *work.rglob("*")):
        path.chmod(path.stat().st_mode | 0o200)
    scratch = target / ".build"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    print(
        f"[testenv] building interLink {', '.join(PROGRAMS)} from {source} "
        "(about 9 minutes cold on 2 cores)",
        flush=True,
    )
    _run_go(
        [
            "go",
            "build",
            "-v",
            "-trimpath",
            "-ldflags",
            "-s -w",
            "-o",
            f"{scratch}/",
            "./cmd/virtual-kubelet",
            "./cmd/interlink",
        ],
        env=_go_env(),
        cwd=work,
        what="interlink",
    )
    # Moved only once both are built, so an interrupted build never counts as installed.
    for program in PROGRAMS:
        os.replace(scratch / program, target / program)
    (target / "SOURCE_DIGEST").write_text(digest + "\n")
    shutil.rmtree(scratch, ignore_errors=True)
    shutil.rmtree(work, ignore_errors=True)
    if not is_installed():
        raise common.ServiceUnavailableError(f"interlink build incomplete in {target}")
    print(f"[testenv] interlink {VERSION}: installed in {target}", flush=True)


# --- running ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PluginEndpoint:
    """Where an interLink plugin (the "sidecar") listens: plain HTTP on `host:port`."""

    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


@dataclass
class _Process:
    """One restartable child: its command, environment and log file."""

    name: str
    args: list[str]
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> subprocess.Popen[bytes]:
        with self.log.open("ab") as handle:
            handle.write(f"\n=== [testenv] starting {self.name} at {time.time():.3f}\n".encode())
            handle.flush()
            self.process = subprocess.Popen(
                self.args, env=self.env, stdout=handle, stderr=subprocess.STDOUT
            )
        return self.process

    def stop(self) -> None:
        if self.process is not None:
            common.stop_process(self.process)

    @property
    def pid(self) -> int | None:
        alive = self.process is not None and self.process.poll() is None
        return self.process.pid if alive and self.process is not None else None


@dataclass
class InterlinkNode:
    """A virtual node: interLink's API server and one virtual kubelet, in front of a plugin.

    `restart_virtual_kubelet()` and `restart_api_server()` stop one of the two processes and
    start it again with the same ports and configuration (for restart-mid-job tests);
    `restart()` does both. Logs: `virtual_kubelet_log`, `api_server_log`.
    """

    name: str
    plugin: PluginEndpoint
    cluster: KubernetesCluster
    workdir: Path
    api_server_port: int
    kubelet_port: int
    api_server_config: Path
    virtual_kubelet_config: Path
    _api_server: _Process = field(repr=False)
    _virtual_kubelet: _Process = field(repr=False)

    @property
    def api_server_url(self) -> str:
        """The interLink API server's base URL (what the virtual kubelet calls)."""
        return f"http://127.0.0.1:{self.api_server_port}"

    @property
    def api_server_log(self) -> Path:
        return self._api_server.log

    @property
    def virtual_kubelet_log(self) -> Path:
        return self._virtual_kubelet.log

    @property
    def pids(self) -> dict[str, int]:
        """The pids of the running processes, by component (`interlink`, `virtual-kubelet`)."""
        found = {"interlink": self._api_server.pid, "virtual-kubelet": self._virtual_kubelet.pid}
        return {name: pid for name, pid in found.items() if pid is not None}

    def read_node(self) -> Any:
        """The Node object as the API server has it now."""
        from kubernetes import client

        with self.cluster.api_client() as api:
            return client.CoreV1Api(api).read_node(self.name)

    def is_ready(self, since: datetime.datetime | None = None) -> bool:
        """Whether the Node is Ready (with a heartbeat at or after `since`, when given)."""
        node = self.read_node()
        for condition in node.status.conditions or []:
            if condition.type == "Ready" and condition.status == "True":
                beat = condition.last_heartbeat_time
                return since is None or (beat is not None and beat >= since)
        return False

    def wait_ready(
        self, timeout: float = READY_TIMEOUT, since: datetime.datetime | None = None
    ) -> Any:
        """Wait until the Node is Ready (the first ping takes up to 30 s); return it."""
        return common.wait_until(
            lambda: self.read_node() if self.is_ready(since) else None,
            timeout=timeout,
            interval=0.5,
            what=f"interLink virtual node {self.name} Ready",
            process=[p for p in self._processes() if p is not None],
            log=self.virtual_kubelet_log,
        )

    def _processes(self) -> list[subprocess.Popen[bytes] | None]:
        return [self._api_server.process, self._virtual_kubelet.process]

    @staticmethod
    def _start(server: _Process, port: int, timeout: float, what: str, log: Path) -> None:
        """Start one of the node's servers and wait until its port answers."""
        common.wait_until(
            lambda: common.port_open(port),
            timeout=timeout,
            what=what,
            process=server.start(),
            log=log,
        )

    def _start_api_server(self) -> None:
        self._start(
            self._api_server,
            self.api_server_port,
            30,
            f"interLink API server for {self.name}",
            self.api_server_log,
        )

    def _start_virtual_kubelet(self) -> None:
        self._start(
            self._virtual_kubelet,
            self.kubelet_port,
            60,
            f"virtual kubelet {self.name}",
            self.virtual_kubelet_log,
        )

    def restart_api_server(self) -> None:
        """Stop the interLink API server and start it again (same port and config)."""
        self._api_server.stop()
        self._start_api_server()

    def restart_virtual_kubelet(self, wait_ready: bool = True) -> None:
        """Stop the virtual kubelet and start it again; by default wait for a fresh Ready."""
        self._virtual_kubelet.stop()
        # Node heartbeats have a resolution of one second.
        since = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
        self._start_virtual_kubelet()
        if wait_ready:
            self.wait_ready(since=since)

    def restart(self) -> None:
        """Restart both: the API server first, then the virtual kubelet (waiting for Ready)."""
        self.restart_api_server()
        self.restart_virtual_kubelet()

    def stop(self) -> None:
        """Stop the virtual kubelet, then the API server (idempotent)."""
        self._virtual_kubelet.stop()
        self._api_server.stop()


def _write_yaml(path: Path, data: dict[str, Any]) -> Path:
    import yaml

    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@contextmanager
def running(
    cluster: KubernetesCluster,
    name: str,
    plugin: PluginEndpoint | tuple[str, int],
    workdir: Path,
    *,
    cpu: str = "16",
    memory: str = "64Gi",
    pods: str = "110",
    gpus: int = 0,
    labels: dict[str, str] | None = None,
    wait_ready: bool = True,
    delete_node: bool = True,
) -> Iterator[InterlinkNode]:
    """Start an interLink API server and a virtual kubelet for node `name` in front of `plugin`.

    Waits until the Node is Ready (which needs the plugin to answer the `GET /status` ping with
    200), yields the node and at the end stops both processes and (by default) deletes the Node.
    `gpus` advertises that many `nvidia.com/gpu` on the node.
    """
    if not is_installed():
        raise common.ServiceUnavailableError(
            f"interlink is not installed; run `scripts/testenv.sh install {NAME}`"
        )
    endpoint = plugin if isinstance(plugin, PluginEndpoint) else PluginEndpoint(*plugin)
    workdir.mkdir(parents=True, exist_ok=True)
    data_root = workdir / "interlink-data"
    data_root.mkdir(exist_ok=True)
    api_port, kubelet_port = common.free_port(), common.free_port()
    api_config = _write_yaml(
        workdir / "InterLinkConfig.yaml",
        {
            "InterlinkAddress": "http://127.0.0.1",
            "InterlinkPort": str(api_port),
            "SidecarURL": f"http://{endpoint.host}",
            "SidecarPort": str(endpoint.port),
            "DataRootFolder": f"{data_root}/",
            "VerboseLogging": True,
            "ErrorsOnlyLogging": False,
        },
    )
    resources: dict[str, Any] = {"CPU": cpu, "Memory": memory, "Pods": pods}
    if gpus:
        resources["Accelerators"] = [
            {"ResourceType": "nvidia.com/gpu", "Model": "test", "Available": str(gpus)}
        ]
    vk_config = _write_yaml(
        workdir / "VirtualKubeletConfig.yaml",
        {
            "InterlinkURL": "http://127.0.0.1",
            "InterlinkPort": str(api_port),
            "VerboseLogging": True,
            "ErrorsOnlyLogging": False,
            # No CSR signer here: the kubelet serves a self-signed certificate.
            "DisableCSR": True,
            "KubeletHTTP": {"Insecure": True},
            "HTTP": {"Insecure": True},
            "Resources": resources,
            "NodeLabels": [f"{k}={v}" for k, v in (labels or {}).items()],
        },
    )
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBE", "POD_"))}
    api_server = _Process(
        "interlink",
        [str(binary("interlink"))],
        {**base_env, "INTERLINKCONFIGPATH": str(api_config)},
        workdir / "interlink.log",
    )
    virtual_kubelet = _Process(
        "virtual-kubelet",
        [str(binary("virtual-kubelet")), "-nodename", name, "-configpath", str(vk_config)],
        {
            **base_env,
            "KUBECONFIG": str(cluster.kubeconfig),
            "POD_IP": "127.0.0.1",
            "KUBELET_URL": "127.0.0.1",
            "KUBELET_PORT": str(kubelet_port),
        },
        workdir / "virtual-kubelet.log",
    )
    node = InterlinkNode(
        name=name,
        plugin=endpoint,
        cluster=cluster,
        workdir=workdir,
        api_server_port=api_port,
        kubelet_port=kubelet_port,
        api_server_config=api_config,
        virtual_kubelet_config=vk_config,
        _api_server=api_server,
        _virtual_kubelet=virtual_kubelet,
    )
    try:
        node._start_api_server()
        node._start_virtual_kubelet()
        if wait_ready:
            node.wait_ready()
        yield node
    finally:
        node.stop()
        if delete_node:
            _delete_node(cluster, name)


def _delete_node(cluster: KubernetesCluster, name: str) -> None:
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    with cluster.api_client() as api:
        try:
            client.CoreV1Api(api).delete_node(name)
        except ApiException as error:
            if error.status != 404:
                raise


@pytest.fixture
def interlink(
    kubernetes: KubernetesCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., InterlinkNode]]:
    """Factory: `interlink(name, (host, port), **options)` starts a virtual node for this test.

    Every node started is stopped (and its Node deleted) when the test ends. Options are those
    of `running()` (cpu, memory, pods, gpus, labels, wait_ready).
    """
    common.require_installed(NAME, is_installed())
    with ExitStack() as stack:

        def start(
            name: str, plugin: PluginEndpoint | tuple[str, int], **options: Any
        ) -> InterlinkNode:
            workdir = tmp_path_factory.mktemp(f"interlink-{name}")
            return stack.enter_context(running(kubernetes, name, plugin, workdir, **options))

        yield start
