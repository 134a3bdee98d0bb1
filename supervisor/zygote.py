"""A warm supervisor: one process that has imported the supervisor forks one child per job.

Starting Python and importing the supervisor costs more than a trivial job (about 0.15 s, and
0.5 s with boto3, against a few milliseconds), so the local executor keeps one of these and
asks it for a child per job. The zygote itself never runs a job: it only forks. Each child is
isolated as a freshly started supervisor would be: its own session and process group, the
job's cgroups joined before the script starts, exactly the job's environment, working
folder, standard streams (passed as file descriptors) and argv, and the supervisor's own
timeout. A child that crashes fails only its own job.

The wire: a SOCK_SEQPACKET socket on fd `--fd` (the control plane holds the other end); every
message is one JSON object, requests with their three standard-stream fds attached.

    → {"op": "spawn", "id": ..., "argv": [...], "env": {...}, "cwd": ..., "join": [...]}
    ← {"op": "spawned", "id": ..., "pid": ...}   or   {"op": "error", "id": ..., "error": ...}
    ← {"op": "exited", "id": ..., "status": <returncode: the code, or -signal>}
    → {"op": "kill", "id": ...}                  (SIGKILL the child's process group)

When the control plane goes away (end of file on the socket) every child is killed and the
zygote exits; a child whose zygote dies is killed by the kernel (`PR_SET_PDEATHSIG`).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import json
import os
import selectors
import signal
import socket
import sys
import threading
from typing import Any

PR_SET_PDEATHSIG = 1
MAX_MESSAGE = 1 << 20  # the largest request: an environment of up to ~1 MiB
_STREAMS = 3


def _warm_up(with_boto3: bool) -> None:
    """Import what every job needs, so children start warm.

    boto3 only when asked: small objects travel without it (`supervisor.staging.s3_direct`),
    and a zygote without it is a third of the size, which every fork pays for (measured: about
    a fifth more jobs per second on two cores). A job moving a large object loads it itself.
    """
    import supervisor.__main__
    import supervisor.pipeline
    import supervisor.staging.s3
    import supervisor.staging.webdav  # noqa: F401

    if with_boto3:
        import boto3

        # The default session caches the models it loaded; every child's client reuses them.
        boto3.client(
            "s3",
            endpoint_url="http://127.0.0.1:9",
            aws_access_key_id="warm-up",
            aws_secret_access_key="warm-up",  # noqa: S106 - not a credential
            region_name="us-east-1",
        )
    # Nothing allocated so far is ever freed: keep the collector off those pages, so forked
    # children share them instead of copying them on the first collection.
    gc.collect()
    gc.freeze()


def _die_with_parent() -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _join_in_background(groups: list[str]) -> None:
    """Move this process into the job's groups while the supervisor reads its configuration and
    stages the input in; the script starts only once that is done (`BEFORE_SCRIPT`).

    A cgroup move waits for the kernel (an RCU grace period: ~10 ms on a busy host, most of a
    warm job's start) but costs no CPU, so it overlaps the supervisor's own start. The
    supervisor is the job's too, but it is killed by its process group until it has joined.
    """
    from supervisor.errors import SupervisorError
    from supervisor.runner import BEFORE_SCRIPT

    failure: list[BaseException] = []

    def join() -> None:
        try:
            for procs in groups:
                with open(procs, "w") as handle:
                    handle.write("0")  # the writer's whole process moves
        except OSError as exc:
            failure.append(exc)

    joiner = threading.Thread(target=join, name="join-cgroups", daemon=True)
    joiner.start()

    def joined() -> None:
        joiner.join()
        if failure:
            raise SupervisorError(f"the job's cgroups could not be joined: {failure[0]}")

    BEFORE_SCRIPT.append(joined)


def _child(request: dict[str, Any], fds: list[int], control: socket.socket) -> None:
    """Become the job's supervisor; never returns."""
    code = 1
    try:
        os.setsid()
        _die_with_parent()
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
        control.close()
        os.closerange(_STREAMS, os.sysconf("SC_OPEN_MAX") if hasattr(os, "sysconf") else 1024)
        for number in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGPIPE):
            signal.signal(number, signal.SIG_DFL)
        signal.set_wakeup_fd(-1)
        _join_in_background(request.get("join", []))
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        from supervisor.__main__ import main

        sys.argv = ["supervisor", *request["argv"]]
        code = main(request["argv"])
    except BaseException as exc:  # whatever happens, the child ends here
        with contextlib.suppress(Exception):
            os.write(2, f"oscar - ERROR - the supervisor could not start: {exc!r}\n".encode())
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code if isinstance(code, int) and 0 <= code < 256 else 1)


class Zygote:
    """The fork loop: requests in, children out, exits reported."""

    def __init__(self, control: socket.socket) -> None:
        self.control = control
        self.children: dict[int, str] = {}  # pid → request id
        self.by_id: dict[str, int] = {}
        self.wakeup_read, self.wakeup_write = os.pipe()
        os.set_blocking(self.wakeup_write, False)
        os.set_blocking(self.wakeup_read, False)

    def send(self, message: dict[str, Any]) -> None:
        """One message to the control plane (it is gone: nothing to tell)."""
        with contextlib.suppress(OSError):
            self.control.send(json.dumps(message).encode())

    def spawn(self, request: dict[str, Any], fds: list[int]) -> None:
        """Fork the job's supervisor and report its pid."""
        job_id = str(request.get("id", ""))
        try:
            if len(fds) != _STREAMS:
                raise ValueError(f"expected {_STREAMS} file descriptors, got {len(fds)}")
            pid = os.fork()
        except (OSError, ValueError) as exc:
            for fd in fds:
                os.close(fd)
            self.send({"op": "error", "id": job_id, "error": str(exc)})
            return
        if pid == 0:
            _child(request, fds, self.control)
        for fd in fds:
            os.close(fd)
        self.children[pid] = job_id
        self.by_id[job_id] = pid
        self.send({"op": "spawned", "id": job_id, "pid": pid})

    def kill(self, job_id: str) -> None:
        """SIGKILL a child's process group (only while it is unreaped: its pid is still ours)."""
        pid = self.by_id.get(job_id)
        if pid is None:
            return
        for kill in (os.killpg, os.kill):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                kill(pid, signal.SIGKILL)

    def reap(self) -> None:
        """Report every child that has ended."""
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            job_id = self.children.pop(pid, None)
            if job_id is None:
                continue
            self.by_id.pop(job_id, None)
            self.send({"op": "exited", "id": job_id, "status": os.waitstatus_to_exitcode(status)})

    def receive(self) -> bool:
        """Handle one request; False at the end of the stream (the control plane is gone)."""
        try:
            data, fds, _, _ = socket.recv_fds(self.control, MAX_MESSAGE, _STREAMS)
        except OSError:
            return False
        if not data:
            for fd in fds:
                os.close(fd)
            return False
        try:
            request = json.loads(data)
        except ValueError:
            for fd in fds:
                os.close(fd)
            return True
        if request.get("op") == "spawn":
            self.spawn(request, fds)
        else:
            for fd in fds:
                os.close(fd)
            if request.get("op") == "kill":
                self.kill(str(request.get("id", "")))
        return True

    def serve(self) -> None:
        """Fork on request until the control plane goes away, then kill every child."""
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.set_wakeup_fd(self.wakeup_write)
        selector = selectors.DefaultSelector()
        selector.register(self.control, selectors.EVENT_READ, "control")
        selector.register(self.wakeup_read, selectors.EVENT_READ, "wakeup")
        self.send({"op": "ready", "pid": os.getpid()})
        running = True
        while running:
            for key, _ in selector.select(timeout=1.0):
                if key.data == "wakeup":
                    with contextlib.suppress(BlockingIOError):
                        os.read(self.wakeup_read, 4096)
                elif not self.receive():
                    running = False
            self.reap()
        for job_id in list(self.by_id):
            self.kill(job_id)


def main(argv: list[str] | None = None) -> int:
    """`python -m supervisor.zygote --fd N`: serve the control plane on fd N."""
    parser = argparse.ArgumentParser(prog="supervisor.zygote", description=__doc__)
    parser.add_argument("--fd", type=int, required=True, help="the SOCK_SEQPACKET socket")
    parser.add_argument(
        "--boto3", action="store_true", help="load boto3 too (for jobs moving large objects)"
    )
    args = parser.parse_args(argv)
    # No PR_SET_PDEATHSIG here: it fires when the parent *thread* ends, and the control plane
    # may start the zygote from a worker thread. The end of the socket tells instead.
    control = socket.socket(fileno=args.fd)
    _warm_up(args.boto3)
    Zygote(control).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
