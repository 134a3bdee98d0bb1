"""Warm supervisors for the local executor: a zygote (`supervisor/zygote.py`) forks one per job.

`SupervisorPool.spawn` answers with a `PooledProcess`, which the executor uses as it would a
`subprocess.Popen` (`pid`, `poll`, `wait`, `kill`). The zygote is started on first use and
again after it died; jobs whose zygote died end as killed (their children die with it).

At most `size` children run at once (the dispatcher's concurrency limit keeps below it; a
request past it raises `PoolFullError`), and the zygote itself never runs job code, so its
memory stays what its imports cost.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from oscar.errors import BackendUnavailableError, ExecutorError
from oscar.executors.jobdir import INHERITED, REPO_ROOT

log = logging.getLogger("oscar.executors")
MAX_MESSAGE = 1 << 20
START_TIMEOUT = 60.0
SPAWN_TIMEOUT = 30.0


class PoolFullError(BackendUnavailableError):
    """Every slot of the pool is busy (the dispatcher tries again later)."""


class PooledProcess:
    """One job's supervisor forked by the zygote, seen as a `subprocess.Popen` would be."""

    def __init__(self, pool: SupervisorPool, job_id: str, pid: int) -> None:
        self._pool = pool
        self.job_id = job_id
        self.pid = pid
        self.returncode: int | None = None
        self._ended = threading.Event()

    def _end(self, status: int) -> None:
        self.returncode = status
        self._ended.set()

    def poll(self) -> int | None:
        """The exit status once the process ended (a negative signal number if killed)."""
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the end; `subprocess.TimeoutExpired` after `timeout` seconds."""
        if not self._ended.wait(timeout):
            raise subprocess.TimeoutExpired(f"supervisor {self.pid}", timeout or 0)
        assert self.returncode is not None
        return self.returncode

    def kill(self) -> None:
        """SIGKILL the process and its process group (the zygote does it while the pid is
        still its unreaped child, so it can never hit a recycled pid)."""
        if self.returncode is None:
            self._pool.kill(self.job_id)


class SupervisorPool:
    """A zygote process and the children it forked for this control plane (any thread)."""

    def __init__(
        self,
        size: int,
        mark: tuple[str, str] | None = None,
        on_exit: Callable[[], None] | None = None,
        python: str = sys.executable,
    ) -> None:
        self.size = size
        #: An environment variable (name, value) the zygote and every child it forks carry in
        #: their initial environment, so that a restarted control plane finds them in /proc.
        self.mark = mark
        self.on_exit = on_exit or (lambda: None)
        self.python = python
        self._lock = threading.Lock()
        self._control: socket.socket | None = None
        self._zygote: subprocess.Popen[bytes] | None = None
        self._children: dict[str, PooledProcess] = {}
        self._replies: dict[str, tuple[threading.Event, list[dict[str, Any]]]] = {}

    # --- the zygote ----------------------------------------------------------------------
    def _start(self) -> socket.socket:
        """Start the zygote and wait until it is warm (the lock is held)."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        # The allow-list jobs get: nothing of the control plane's own settings or secrets.
        env = {key: os.environ[key] for key in INHERITED if key in os.environ}
        env["PYTHONPATH"] = str(REPO_ROOT)
        if self.mark:
            env[self.mark[0]] = self.mark[1]
        try:
            self._zygote = subprocess.Popen(
                [self.python, "-m", "supervisor.zygote", "--fd", str(theirs.fileno())],
                pass_fds=[theirs.fileno()],
                env=env,
                cwd="/",
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                start_new_session=True,
            )
        finally:
            theirs.close()
        ours.settimeout(START_TIMEOUT)
        try:
            ready = json.loads(ours.recv(MAX_MESSAGE) or b"{}")
        except (OSError, ValueError) as exc:
            ready = {"error": str(exc)}
        if ready.get("op") != "ready":
            self._zygote.kill()
            self._zygote.wait()
            ours.close()
            raise ExecutorError(f"the supervisor pool did not start: {ready}")
        ours.settimeout(None)
        self._control = ours
        threading.Thread(target=self._read, args=(ours,), daemon=True, name="zygote").start()
        log.info("supervisor pool started (zygote pid %s)", ready.get("pid"))
        return ours

    def _read(self, control: socket.socket) -> None:
        """Replies and exits from the zygote, until it goes away."""
        while True:
            try:
                data = control.recv(MAX_MESSAGE)
            except OSError:
                data = b""
            if not data:
                break
            message = json.loads(data)
            job_id = str(message.get("id", ""))
            if message.get("op") == "exited":
                with self._lock:
                    child = self._children.pop(job_id, None)
                if child is not None:
                    child._end(int(message["status"]))
                    self.on_exit()
                continue
            with self._lock:
                if message.get("op") == "spawned":
                    # Registered here, before the next message (its exit, maybe) is read.
                    child = PooledProcess(self, job_id, int(message["pid"]))
                    self._children[job_id] = child
                    message["child"] = child
                waiting = self._replies.get(job_id)
            if waiting is not None:
                waiting[1].append(message)
                waiting[0].set()
        self._lost(control)

    def _lost(self, control: socket.socket) -> None:
        """The zygote is gone: its children died with it; the next spawn starts another."""
        with self._lock:
            if self._control is control:
                self._control = None
            orphans = list(self._children.values())
            self._children.clear()
            for event, _ in self._replies.values():
                event.set()
        control.close()
        if self._zygote is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._zygote.wait(5)
        for child in orphans:
            child._end(-signal.SIGKILL)
        if orphans:
            log.error("the supervisor pool's zygote died; %d job(s) were killed", len(orphans))
            self.on_exit()

    # --- jobs ----------------------------------------------------------------------------
    def spawn(
        self,
        argv: Sequence[str],
        env: Mapping[str, str],
        cwd: Path,
        streams: tuple[IO[bytes], IO[bytes], IO[bytes]],
        join: Sequence[Path] = (),
    ) -> PooledProcess:
        """Fork a supervisor with `argv`, exactly `env`, in `cwd`, on the `streams` (stdin,
        stdout, stderr), after it joined the cgroups whose `cgroup.procs` files are `join`."""
        job_id = uuid.uuid4().hex
        request = {
            "op": "spawn",
            "id": job_id,
            "argv": list(argv),
            "env": dict(env),
            "cwd": str(cwd),
            "join": [str(path) for path in join],
        }
        payload = json.dumps(request).encode()
        if len(payload) > MAX_MESSAGE:
            raise ExecutorError(f"the job's environment is too large ({len(payload)} bytes)")
        event = threading.Event()
        replies: list[dict[str, Any]] = []
        with self._lock:
            if len(self._children) + len(self._replies) >= self.size:
                raise PoolFullError(f"all {self.size} supervisor slots are busy")
            control = self._control or self._start()
            self._replies[job_id] = (event, replies)
        try:
            try:
                socket.send_fds(control, [payload], [s.fileno() for s in streams])
            except OSError as exc:
                raise ExecutorError(f"the supervisor pool is unreachable: {exc}") from exc
            if not event.wait(SPAWN_TIMEOUT) or not replies:
                self.kill(job_id)  # should the answer still come, the job must not run
                raise ExecutorError("the supervisor pool did not start the job")
            reply = replies[0]
            if reply.get("op") != "spawned":
                raise ExecutorError(f"the supervisor pool could not start the job: {reply}")
            child: PooledProcess = reply["child"]
            return child
        finally:
            with self._lock:
                self._replies.pop(job_id, None)

    def kill(self, job_id: str) -> None:
        """Ask the zygote to SIGKILL a child's process group."""
        with self._lock:
            control = self._control
        if control is not None:
            with contextlib.suppress(OSError):
                control.send(json.dumps({"op": "kill", "id": job_id}).encode())

    def close(self) -> None:
        """Stop the zygote; the children it still has are killed with it."""
        with self._lock:
            control, zygote = self._control, self._zygote
        if control is not None:
            with contextlib.suppress(OSError):
                control.shutdown(socket.SHUT_RDWR)
        if zygote is not None:
            try:
                zygote.wait(10)
            except subprocess.TimeoutExpired:
                zygote.kill()
                zygote.wait()
