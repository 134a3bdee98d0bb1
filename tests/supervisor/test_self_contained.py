"""The self-contained supervisor (`scripts/build-supervisor-binary.sh`) in job roots without Python.

The binaries are built once and cached under the test environment's cache, keyed by a hash of
the supervisor's sources, the build script and the versions of what goes into them, so a warm
run does not rebuild. Each variant then runs, as root, in a throwaway root entered with `chroot`
inside a private mount namespace (`unshare --mount`: the `/proc` and `/dev/null` mounted there
vanish with the process) that shares the host's network, so the session MinIO on 127.0.0.1 is
reachable:

* `supervisor-static` in a root holding only Debian's static busybox and the binary: no Python,
  no libc, no dynamic loader (an Alpine/BusyBox or distroless-static job image);
* `supervisor` (glibc) in a root holding busybox and exactly the shared libraries the binary
  and the libraries bundled inside it need from the system (a Debian-slim image without Python).

In both the supervisor processes real events end to end: stage-in from MinIO (or from WebDAV,
through webdavclient3 and lxml), a busybox `sh` script, stage-out to MinIO.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import hashlib
import ipaddress
import json
import os
import re
import select
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fixtures.services import REPO_ROOT
from tests.services import busybox, common, webdav
from tests.supervisor.helpers import b64, fresh_buckets, minio_event, minio_s3, object_keys

pytestmark = [pytest.mark.minio, pytest.mark.slow]

BUILD_SCRIPT = REPO_ROOT / "scripts" / "build-supervisor-binary.sh"
BUILD_TIMEOUT = 1800.0  # a cold build takes about a minute on 2 cores; leave room for a busy CI
RUN_TIMEOUT = 120.0
# Distributions whose versions change what the binaries hold: a new one means a new build.
BUNDLED = (
    "pyinstaller",
    "pyinstaller-hooks-contrib",
    "staticx",
    "boto3",
    "botocore",
    "s3transfer",
    "webdavclient3",
    "lxml",
    "PyYAML",
    "requests",
    "urllib3",
)
# Builds of other source versions kept in the cache (other branches, older commits).
KEEP_BUILDS = 3
# Inside the roots: busybox's folders, for the script and for `command -v`.
ROOT_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
# Run by the host's /bin/sh inside the new mount namespace: mount what a job's container would
# have, then enter the root. `mount --bind` onto a file needs the mount point to exist.
ENTER_ROOT = (
    'root="$1"; shift; '
    'mount -t proc proc "$root/proc" && '
    'mount --bind /dev/null "$root/dev/null" && '
    'exec chroot "$root" "$@"'
)
LARGE = 9 * 1024 * 1024  # above the supervisor's 8 MiB limit for its direct S3 requests


# --- the build, cached ---------------------------------------------------------------------------


def _build_key() -> str:
    """A hash of what decides the binaries' content: sources, build script, interpreter, tools."""
    digest = hashlib.sha256()
    for path in sorted((REPO_ROOT / "supervisor").rglob("*.py")):
        digest.update(path.relative_to(REPO_ROOT).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    digest.update(BUILD_SCRIPT.read_bytes() + b"\0")
    digest.update(sys.version.encode() + b"\0")
    for name in BUNDLED:
        try:
            version = metadata.version(name)
        except metadata.PackageNotFoundError:
            version = "missing"
        digest.update(f"{name}={version}\0".encode())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class Binaries:
    """The two builds, where they are cached, and how long building them took."""

    glibc: Path
    static: Path
    build_seconds: float
    cached: bool


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on `path`: another run building the same key waits for it."""
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _prune_other_builds(current: Path) -> None:
    """Keep the `KEEP_BUILDS` most recently used builds of other keys; delete older ones,
    except one another run is building right now (it holds its lock)."""
    others = sorted(
        (p for p in common.CACHE_ROOT.glob("supervisor-bin-*") if p.is_dir() and p != current),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    for stale in others[KEEP_BUILDS:]:
        with (stale / ".lock").open("a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue
            shutil.rmtree(stale, ignore_errors=True)


def _build(folder: Path) -> float:
    """Run the build script into a scratch folder, then move both binaries into `folder`.

    Only a complete build lands in `folder`, so an interrupted one is never taken as cached.
    """
    scratch = Path(tempfile.mkdtemp(prefix="build-", dir=folder))
    started = time.monotonic()
    try:
        result = subprocess.run(
            [str(BUILD_SCRIPT), str(scratch)],
            env={**os.environ, "PYTHON": sys.executable},
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT,
            check=False,
        )
        (folder / "build.log").write_text(result.stdout + result.stderr)
        assert result.returncode == 0, (
            f"{BUILD_SCRIPT.name} failed ({result.returncode}):\n"
            f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
        )
        seconds = time.monotonic() - started
        for name in ("supervisor", "supervisor-static"):
            os.replace(scratch / name, folder / name)
        # Written last: the mark of a complete build.
        (folder / "build-seconds").write_text(f"{seconds:.1f}\n")
        return seconds
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _report(config: pytest.Config, line: str) -> None:
    """Say `line` on the terminal (`-n 0`; an xdist worker has none), and on stdout, which
    pytest shows with a failing test's output."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():  # else it lands in the captured output
            reporter.write_line(line)
    print(line, flush=True)


@pytest.fixture(scope="module")
def binaries(request: pytest.FixtureRequest) -> Binaries:
    """Both self-contained binaries of the current sources, built once and then cached."""
    folder = common.cache_dir("supervisor-bin", _build_key())
    glibc, static = folder / "supervisor", folder / "supervisor-static"
    done = folder / "build-seconds"
    with _locked(folder / ".lock"):
        cached = done.is_file() and glibc.is_file() and static.is_file()
        if cached:
            seconds = float(done.read_text())
            os.utime(folder)  # most recently used: kept by `_prune_other_builds`
        else:
            seconds = _build(folder)
    _prune_other_builds(folder)
    state = "cached" if cached else "built"
    _report(
        request.config,
        f"[supervisor-bin] {state} in {folder} (a build took {seconds:.0f}s): "
        f"supervisor {glibc.stat().st_size / 2**20:.1f} MiB, "
        f"supervisor-static {static.stat().st_size / 2**20:.1f} MiB",
    )
    return Binaries(glibc=glibc, static=static, build_seconds=seconds, cached=cached)


# --- the job roots -------------------------------------------------------------------------------


def _ldd(path: Path) -> set[Path]:
    """The shared libraries `ldd` resolves for `path` (absolute paths, the loader included)."""
    output = common.run(["ldd", str(path)]).stdout
    found = set()
    for line in output.splitlines():
        match = re.search(r"(?:=>\s*)?(/\S+)\s+\(0x", line)
        if match:
            found.add(Path(match.group(1)))
        elif "not found" in line:
            raise AssertionError(f"ldd {path}: {line.strip()}")
    return found


def _system_libraries(binary: Path) -> set[Path]:
    """What a PyInstaller one-file binary needs from the system: `ldd` of the binary, and of
    every shared library inside it (PyInstaller leaves glibc's own libraries, libm among them,
    to the system) except those it bundles."""
    from PyInstaller.archive.readers import CArchiveReader

    archive = CArchiveReader(str(binary))
    with tempfile.TemporaryDirectory(prefix="supervisor-bundle-") as unpacked:
        inside = Path(unpacked)
        for name, entry in archive.toc.items():
            if entry[-1] != "b":  # "b": a binary (shared library or extension module)
                continue
            target = inside / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(archive.extract(name))
            target.chmod(0o755)
        bundled = {p.name for p in inside.rglob("*")}
        needed: set[Path] = set()
        for library in inside.rglob("*.so*"):
            needed |= {p for p in _ldd(library) if not p.is_relative_to(inside)}
    # The bootloader's own libraries are loaded before it unpacks anything.
    return _ldd(binary) | {p for p in needed if p.name not in bundled}


@dataclass(frozen=True)
class JobRoot:
    """A root folder a supervisor binary runs in, as in a job's container without Python."""

    variant: str  # "static" or "glibc"
    path: Path
    libraries: frozenset[Path]  # copied from the host, at the same paths

    def run(
        self, *argv: str, env: dict[str, str] | None = None, stdin: bytes | None = None
    ) -> subprocess.CompletedProcess[bytes]:
        """Run `argv` inside the root (`chroot` in a private mount namespace) with only `env`."""
        enter = ["unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", ENTER_ROOT]
        return subprocess.run(
            [*enter, "enter-root", str(self.path), *argv],
            input=stdin,
            env={"PATH": ROOT_PATH, "HOME": "/tmp", "TMPDIR": "/tmp", **(env or {})},
            capture_output=True,
            timeout=RUN_TIMEOUT,
            check=False,
        )

    def leftovers(self) -> list[str]:
        """What is left in the root's /tmp (the binaries unpack there at every start)."""
        return sorted(p.name for p in (self.path / "tmp").iterdir())


def _make_root(path: Path, binary: Path, libraries: set[Path]) -> JobRoot:
    busybox.make_root(path)
    shutil.copy2(binary, path / "supervisor")
    for library in libraries:
        target = path / library.relative_to("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(library, target)  # follows the symlink: the real file under the link's name
    for folder in ("tmp", "proc", "dev", "etc"):
        (path / folder).mkdir(exist_ok=True)
    (path / "tmp").chmod(0o1777)
    (path / "dev" / "null").touch()  # the mount point of the host's /dev/null
    variant = "glibc" if libraries else "static"
    return JobRoot(variant=variant, path=path, libraries=frozenset(libraries))


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if not p.is_relative_to(root / "proc")]


@pytest.fixture(scope="module", params=["static", "glibc"])
def job_root(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> JobRoot:
    """A busybox root with one variant of the supervisor at `/supervisor` (see the module)."""
    common.require_installed(busybox.NAME, busybox.is_installed())
    if shutil.which("unshare") is None or shutil.which("chroot") is None or os.geteuid() != 0:
        pytest.fail("these tests enter job roots with unshare and chroot, as root", pytrace=False)
    binaries: Binaries = request.getfixturevalue("binaries")  # built once the rest is there
    path = tmp_path_factory.mktemp(f"root-{request.param}")
    if request.param == "static":
        root = _make_root(path, binaries.static, set())
    else:
        root = _make_root(path, binaries.glibc, _system_libraries(binaries.glibc))
    # Whatever a test proves below, it proves without Python in the root.
    pythons = [p for p in _files(root.path) if p.name.startswith(("python", "libpython"))]
    assert not pythons, pythons
    return root


# --- helpers -------------------------------------------------------------------------------------


@pytest.fixture
def buckets(minio: Any) -> dict[str, str]:
    """Fresh input and output buckets."""
    return fresh_buckets(minio, "in", "out")


def _minio_config(minio: Any, buckets: dict[str, str]) -> dict[str, Any]:
    return {
        "name": "self-contained",
        "input": [{"storage_provider": "minio.default", "path": f"{buckets['in']}/in"}],
        "output": [{"storage_provider": "minio.default", "path": f"{buckets['out']}/out"}],
        "storage_providers": {
            "minio": {"default": {"endpoint": minio.endpoint, "region": "us-east-1"}}
        },
    }


def _job_env(minio: Any, config: dict[str, Any], script: str) -> dict[str, str]:
    """The supervisor's inputs as upstream passes them: base64 variables and MinIO keys."""
    return {
        "FUNCTION_CONFIG": b64(yaml.safe_dump(config)),
        "SCRIPT": b64(script),
        "MINIO_ACCESS_KEY": minio.access_key,
        "MINIO_SECRET_KEY": minio.secret_key,
        "PROVIDER_SECRETS_DIR": "/no-secrets",
    }


def _explain(result: subprocess.CompletedProcess[bytes]) -> str:
    return f"exit {result.returncode}\nstderr:\n{result.stderr.decode(errors='replace')[-4000:]}"


# --- HTTPS: a TLS front for the session MinIO ----------------------------------------------------


def _self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed CA certificate for 127.0.0.1 and its key, as PEM files in `folder`."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "oscar test MinIO")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "tls.crt", folder / "tls.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def _forward(client: socket.socket, context: ssl.SSLContext, target: tuple[str, int]) -> None:
    """Relay one TLS connection to `target` in plain TCP. One thread drives both directions,
    so the TLS socket is never used from two threads at once."""
    try:
        tls = context.wrap_socket(client, server_side=True)
    except (ssl.SSLError, OSError):
        client.close()  # a client that does not trust the certificate hangs up here
        return
    with tls, socket.create_connection(target, timeout=30) as upstream:
        while True:
            readable = [tls] if tls.pending() else select.select([tls, upstream], [], [], 30)[0]
            if not readable:
                return
            try:
                if tls in readable:
                    data = tls.recv(65536)
                    if not data:
                        return
                    upstream.sendall(data)
                if upstream in readable:
                    data = upstream.recv(65536)
                    if not data:
                        return
                    tls.sendall(data)
            except (ssl.SSLError, OSError):
                return


@contextlib.contextmanager
def _tls_front(port: int, cert: Path, key: Path) -> Iterator[int]:
    """Serve TLS on a free loopback port, relayed to `127.0.0.1:port`; yield the TLS port.

    A relay rather than a second MinIO with certificates: SigV4 signs the Host header the client
    sent, which reaches MinIO unchanged, so the session server answers it as is.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)  # so the accept loop sees `stop`
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(30)
            threading.Thread(
                target=_forward, args=(client, context, ("127.0.0.1", port)), daemon=True
            ).start()

    acceptor = threading.Thread(target=accept, name="tls-front", daemon=True)
    acceptor.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        acceptor.join(5)
        listener.close()


# The user script: busybox tools only. Besides transforming the input, it checks what a job
# image without Python must still give the supervisor: a detached grandchild re-parents to the
# supervisor (its prctl through ctypes works in the bundle), and there is no python3 to fall
# back on.
TRANSFORM = """\
set -eu
name=$(basename "$INPUT_FILE_PATH")
tr 'a-z' 'A-Z' < "$INPUT_FILE_PATH" > "$TMP_OUTPUT_DIR/$name.upper"
( sleep 300 & echo $! > "$TMP_INPUT_DIR/orphan.pid" )
orphan=$(cat "$TMP_INPUT_DIR/orphan.pid")
echo "orphan parent: $(awk '/^PPid:/ {print $2}' /proc/$orphan/status) supervisor: $PPID"
echo "python3: $(command -v python3 || echo none)"
echo "ca bundle: $(grep -c 'BEGIN CERTIFICATE' "${SSL_CERT_FILE:-/dev/null}") certificates"
echo "processed $(wc -c < "$INPUT_FILE_PATH") bytes of $STORAGE_OBJECT_KEY"
"""


# --- the tests -----------------------------------------------------------------------------------


def test_the_root_has_no_python_and_only_the_libraries_it_declares(job_root: JobRoot) -> None:
    root = job_root.path
    probe = job_root.run("/bin/sh", "-c", "command -v python3 python || echo no-python")
    assert probe.stdout == b"no-python\n", _explain(probe)
    shared = sorted(str(p.relative_to(root)) for p in _files(root) if ".so" in p.name)
    loader = root / "lib64" / "ld-linux-x86-64.so.2"
    if job_root.variant == "static":
        # No libc, no loader, no shared object at all: every program in it is static.
        assert shared == []
        assert not loader.exists()
        assert busybox.is_static_elf(root / "bin" / "busybox")
        assert busybox.is_static_elf(root / "supervisor")
        libc = job_root.run("/bin/sh", "-c", "ls /lib/*/libc.so.6 /lib64 2>&1 || echo no-libc")
        assert libc.stdout.endswith(b"no-libc\n"), _explain(libc)
    else:
        # glibc's libraries (and zlib), at the host's paths: nothing of Python among them.
        assert loader.is_file()
        assert not busybox.is_static_elf(root / "supervisor")
        names = {p.name for p in job_root.libraries}
        assert {"libc.so.6", "libm.so.6", "ld-linux-x86-64.so.2"} <= names, names
        assert len(shared) == len(job_root.libraries), shared
    version = job_root.run("/supervisor", "--version")
    assert version.returncode == 0, _explain(version)
    assert version.stdout.startswith(b"oscar-supervisor ")
    assert job_root.leftovers() == []


def test_minio_event_end_to_end(job_root: JobRoot, minio: Any, buckets: dict[str, str]) -> None:
    content = b"the quick brown fox\njumps over the lazy dog\n"
    minio_s3(minio).put_object(Bucket=buckets["in"], Key="in/fox story.txt", Body=content)
    env = _job_env(minio, _minio_config(minio, buckets), TRANSFORM)

    started = time.monotonic()
    event = minio_event(buckets["in"], "in/fox story.txt")
    result = job_root.run("/supervisor", env=env, stdin=event)
    elapsed = time.monotonic() - started

    assert result.returncode == 0, _explain(result)
    # The script's output is the response of a storage event.
    lines = result.stdout.decode().splitlines()
    assert f"processed {len(content)} bytes of in/fox story.txt" in lines, lines
    assert "python3: none" in lines, lines
    # The root has no CA bundle: the supervisor's HTTPS requests would trust certifi's, which
    # the binary carries (the `SSL_CERT_FILE` it chose is still there while the script runs).
    certificates = next(line for line in lines if line.startswith("ca bundle:")).split()[2]
    assert int(certificates) > 100, lines
    orphan = re.search(r"^orphan parent: (\d+) supervisor: (\d+)$", result.stdout.decode(), re.M)
    assert orphan, lines
    # Re-parented to the supervisor, not to the host's init: its prctl went through.
    assert orphan[1] == orphan[2], f"the supervisor is not a child subreaper: {orphan[0]}"
    # The detached `sleep 300` was killed with the script, not waited for.
    assert elapsed < RUN_TIMEOUT / 2
    s3 = minio_s3(minio)
    assert object_keys(minio, buckets["out"]) == {"out/fox story.txt.upper"}
    stored = s3.get_object(Bucket=buckets["out"], Key="out/fox story.txt.upper")["Body"].read()
    assert stored == content.upper()
    assert b"Job finished" in result.stderr
    assert job_root.leftovers() == []


def test_large_objects_go_through_the_bundled_boto3(
    job_root: JobRoot, minio: Any, buckets: dict[str, str], tmp_path: Path
) -> None:
    # Above 8 MiB the supervisor stages with boto3's transfer manager (ranged GETs, a multipart
    # upload): this needs boto3, botocore's S3 model and endpoint rules from the bundle.
    block = hashlib.sha256(b"self-contained").hexdigest().encode()  # lowercase hex
    content = (block * (LARGE // len(block) + 1))[:LARGE]
    minio_s3(minio).put_object(Bucket=buckets["in"], Key="in/big.txt", Body=content)
    script = 'tr a-z A-Z < "$INPUT_FILE_PATH" > "$TMP_OUTPUT_DIR/big.upper"\n'
    env = _job_env(minio, _minio_config(minio, buckets), script)

    result = job_root.run("/supervisor", env=env, stdin=minio_event(buckets["in"], "in/big.txt"))

    assert result.returncode == 0, _explain(result)
    copy = tmp_path / "big.upper"
    minio_s3(minio).download_file(buckets["out"], "out/big.upper", str(copy))
    assert copy.read_bytes() == content.upper()
    # Stored as a multipart upload (an ETag "<md5>-<parts>"), so boto3 did the upload.
    head = minio_s3(minio).head_object(Bucket=buckets["out"], Key="out/big.upper")
    assert head["ETag"].strip('"').endswith("-2"), head["ETag"]
    assert job_root.leftovers() == []


def test_a_failing_script_fails_the_job_and_uploads_nothing(
    job_root: JobRoot, minio: Any, buckets: dict[str, str]
) -> None:
    minio_s3(minio).put_object(Bucket=buckets["in"], Key="in/a.txt", Body=b"data")
    script = (
        'echo partial > "$TMP_OUTPUT_DIR/partial.txt"\n'
        'echo "giving up on $STORAGE_OBJECT_KEY" >&2\n'
        "exit 7\n"
    )
    env = _job_env(minio, _minio_config(minio, buckets), script)

    result = job_root.run("/supervisor", env=env, stdin=minio_event(buckets["in"], "in/a.txt"))

    # The script's own exit code, its stderr in the log, and no stage-out.
    assert result.returncode == 7, _explain(result)
    assert b"giving up on in/a.txt" in result.stderr
    assert b"the script failed with exit code 7" in result.stderr
    assert object_keys(minio, buckets["out"]) == set()
    assert job_root.leftovers() == []


@pytest.fixture(scope="module")
def dav(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdav.WebDavServer]:
    """A WsgiDAV server of this module's own (the session one lives in the other xdist lane)."""
    common.require_installed(webdav.NAME, webdav.is_installed())
    with webdav.running(tmp_path_factory.mktemp("dav")) as server:
        yield server


def test_dcache_event_stages_in_over_webdav(
    job_root: JobRoot, minio: Any, buckets: dict[str, str], dav: webdav.WebDavServer
) -> None:
    # webdavclient3 and lxml (its PROPFIND answers are parsed with lxml.etree) from the bundle.
    folder = f"pnfs/{uuid.uuid4().hex[:8]}"
    (dav.root / folder / "in").mkdir(parents=True)
    (dav.root / folder / "in" / "scan.txt").write_bytes(b"detector frame 42\n")
    config = _minio_config(minio, buckets)
    config["input"] = [{"storage_provider": "webdav.dcache", "path": f"{folder}/in"}]
    config["output"].append({"storage_provider": "webdav.dcache", "path": f"{folder}/out"})
    config["storage_providers"]["webdav"] = {
        "dcache": {"hostname": dav.url, "login": dav.username, "password": dav.password}
    }
    event = {
        "event": {"name": "scan.txt", "mask": ["IN_CREATE"]},
        "subscription": "https://dcache.example.org:3880/api/v1/events/channels/c/subscriptions/inotify/s",
    }
    script = 'tr a-z A-Z < "$INPUT_FILE_PATH" > "$TMP_OUTPUT_DIR/scan.upper"\n'
    env = _job_env(minio, config, script)

    result = job_root.run("/supervisor", env=env, stdin=json.dumps(event).encode())

    assert result.returncode == 0, _explain(result)
    assert b"Event type: DCACHE" in result.stderr
    stored = minio_s3(minio).get_object(Bucket=buckets["out"], Key="out/scan.upper")
    assert stored["Body"].read() == b"DETECTOR FRAME 42\n"
    assert (dav.root / folder / "out" / "scan.upper").read_bytes() == b"DETECTOR FRAME 42\n"
    assert job_root.leftovers() == []


def test_https_endpoint_is_verified_with_the_images_ca_bundle(
    job_root: JobRoot, minio: Any, buckets: dict[str, str], tmp_path: Path
) -> None:
    # The supervisor's own HTTPS requests (small objects) use the bundled OpenSSL, whose default
    # CA folder (the build machine's) is not in the root: it must find the image's bundle.
    cert, key = _self_signed_certificate(tmp_path)
    minio_s3(minio).put_object(Bucket=buckets["in"], Key="in/secure.txt", Body=b"over tls\n")
    script = 'tr a-z A-Z < "$INPUT_FILE_PATH" > "$TMP_OUTPUT_DIR/secure.upper"\n'
    bundle = job_root.path / "etc" / "ssl" / "certs" / "ca-certificates.crt"
    with _tls_front(minio.port, cert, key) as port:
        config = _minio_config(minio, buckets)
        config["storage_providers"]["minio"]["default"]["endpoint"] = f"https://127.0.0.1:{port}"
        env = _job_env(minio, config, script)
        event = minio_event(buckets["in"], "in/secure.txt")

        # Without the test CA in the image's bundle the certificate is refused: verification
        # is on, and the fallback (certifi's public CAs) does not trust it either.
        refused = job_root.run("/supervisor", env=env, stdin=event)
        assert refused.returncode == 3, _explain(refused)
        assert b"CERTIFICATE_VERIFY_FAILED" in refused.stderr, _explain(refused)

        # An image with its CA bundle where Debian, Ubuntu and Alpine keep it (as the
        # ca-certificates package installs it) is trusted.
        bundle.parent.mkdir(parents=True, exist_ok=True)
        bundle.write_bytes(cert.read_bytes())
        try:
            result = job_root.run("/supervisor", env=env, stdin=event)
        finally:
            shutil.rmtree(job_root.path / "etc" / "ssl")  # the root serves the other tests too
    assert result.returncode == 0, _explain(result)
    stored = minio_s3(minio).get_object(Bucket=buckets["out"], Key="out/secure.upper")
    assert stored["Body"].read() == b"OVER TLS\n"
    assert job_root.leftovers() == []
