"""The Slurm commands, shared by the Slurm executor and the interLink plugin's Slurm backend.

Every command is an argument list run through one transport (`LocalTransport` on this
machine, `SSHTransport` on a login node) with a deadline, and every failure an `oscar.errors`
type carrying the command, exit code, stdout and stderr. `SlurmClient` is what callers use:
submit, find, states, cancel, partitions; Slurm's states map to ours through `STATES`, whose
terminal ones are `TERMINAL` (`observe`).
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import subprocess
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from oscar.errors import BackendError, BackendTimeoutError, BackendUnavailableError, ExecutorError
from oscar.executors.base import Observation
from oscar.models.job import JobStatus

log = logging.getLogger("oscar.executors.slurm")

# A job id (`123`) or an array task (`123_4`, as squeue -r prints it): nothing else reaches a
# Slurm command (`--user=...` given to scancel would cancel someone's jobs).
SLURM_ID = re.compile(r"[0-9]+(?:_[0-9]+)?", re.ASCII)

STATES: dict[str, JobStatus] = {
    "PENDING": JobStatus.PENDING,
    "REQUEUED": JobStatus.PENDING,
    "REQUEUE_HOLD": JobStatus.PENDING,
    "REQUEUE_FED": JobStatus.PENDING,
    "RESV_DEL_HOLD": JobStatus.PENDING,
    "SPECIAL_EXIT": JobStatus.PENDING,  # requeued and held after a special exit value
    "CONFIGURING": JobStatus.RUNNING,
    "RUNNING": JobStatus.RUNNING,
    "COMPLETING": JobStatus.RUNNING,
    "RESIZING": JobStatus.RUNNING,
    "SIGNALING": JobStatus.RUNNING,
    "STAGE_OUT": JobStatus.RUNNING,
    "STOPPED": JobStatus.RUNNING,
    "SUSPENDED": JobStatus.RUNNING,
    "COMPLETED": JobStatus.SUCCEEDED,
    "FAILED": JobStatus.FAILED,
    "CANCELLED": JobStatus.FAILED,
    "TIMEOUT": JobStatus.FAILED,
    "NODE_FAIL": JobStatus.FAILED,
    "OUT_OF_MEMORY": JobStatus.FAILED,
    "PREEMPTED": JobStatus.FAILED,
    "BOOT_FAIL": JobStatus.FAILED,
    "DEADLINE": JobStatus.FAILED,
}
TERMINAL = frozenset(
    s for s, ours in STATES.items() if ours in (JobStatus.SUCCEEDED, JobStatus.FAILED)
)

# What slurmctld answers (stderr) for an id it does not hold any more.
UNKNOWN_JOB = "Invalid job id"


class LocalTransport:
    """Runs Slurm commands on this machine, each with a deadline.

    The commands get a minimal environment, not the control plane's: `PATH` to find them and
    `SLURM_CONF` to find the cluster (from `env`, i.e. the settings, else inherited). Nothing
    else, because `sbatch` reads `SBATCH_*` variables as options and the control plane's
    secrets have no business in a scheduler command.
    """

    INHERITED = ("PATH", "SLURM_CONF")
    #: Seconds a command may take before the backend counts as not answering.
    command_timeout: float = 60.0
    #: How `sbatch` passes the environment on. Here the commands' environment is the minimal
    #: one above, so all of it may go: anything but `ALL` makes slurmd load the user's login
    #: environment before the job starts, which took 1.2 s of every job on the test cluster.
    export = "--export=ALL"

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self.settings_env = dict(env or {})
        inherited = {key: os.environ[key] for key in self.INHERITED if key in os.environ}
        self.env = {**inherited, **self.settings_env}

    def argv(self, args: Sequence[str]) -> list[str]:
        """The command line that runs `args` (here: as is)."""
        return list(args)

    def execute(self, argv: list[str]) -> subprocess.CompletedProcess[str]:
        """Start the process and wait for it (the one place a process starts)."""
        return subprocess.run(
            argv,
            env=self.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            check=False,
            timeout=self.command_timeout,
        )

    def run(self, args: Sequence[str]) -> str:
        """Run a command; return its stdout.

        Raises `ExecutorError` (argv, exit code, stdout, stderr) when it exits non-zero,
        `BackendTimeoutError` past `command_timeout` and `BackendUnavailableError` when it
        cannot be started at all (not installed, say). Never a raw subprocess exception.
        """
        argv = self.argv(args)
        try:
            result = self.execute(argv)
        except subprocess.TimeoutExpired as exc:
            raise BackendTimeoutError(
                f"{shlex.join(argv)} did not answer within {self.command_timeout:g}s"
            ) from exc
        except OSError as exc:
            raise BackendUnavailableError(f"cannot run {argv[0]}: {exc}") from exc
        if result.returncode != 0:
            output = "; ".join(
                f"{name}: {text.strip()}"
                for name, text in (("stderr", result.stderr), ("stdout", result.stdout))
                if text.strip()
            )
            message = f"{shlex.join(argv)} exited with {result.returncode}"
            raise ExecutorError(
                f"{message} ({output})" if output else message,
                argv=argv,
                exit_code=result.returncode,
                stdout=result.stdout,
                stderr=result.stderr,
            )
        return result.stdout


class SSHTransport(LocalTransport):
    """Runs Slurm commands on a login node: `ssh <host> <command>` (key-based login needed).

    `env` (e.g. `SLURM_CONF`) is set for the command on the login node, where it matters; the
    local `ssh` only inherits `PATH` and the agent socket.
    """

    INHERITED = ("PATH", "SSH_AUTH_SOCK")
    # The login node's environment is the user's login shell's, not ours to pass on.
    export = "--export=NONE"
    #: ssh's own exit status when it could not connect (the remote command never ran).
    SSH_FAILED = 255

    def __init__(self, host: str, env: Mapping[str, str] | None = None) -> None:
        super().__init__()
        self.settings_env = dict(env or {})
        self.host = host

    def argv(self, args: Sequence[str]) -> list[str]:
        """`ssh <host> '<env K=V ...> <command>'`, each argument quoted for the remote shell."""
        remote = list(args)
        if self.settings_env:
            remote = ["env", *(f"{k}={v}" for k, v in self.settings_env.items()), *remote]
        return ["ssh", "-o", "BatchMode=yes", self.host, shlex.join(remote)]

    def run(self, args: Sequence[str]) -> str:
        """Run the command on the login node; a failed connection is `BackendUnavailableError`."""
        try:
            return super().run(args)
        except ExecutorError as exc:
            if exc.exit_code == self.SSH_FAILED:
                raise BackendUnavailableError(f"ssh to {self.host} failed: {exc}") from exc
            raise


def is_handle(value: str) -> bool:
    """Whether `value` is a Slurm job id (`123`) or an array task id (`123_4`)."""
    return SLURM_ID.fullmatch(value) is not None


def _exit_status(field: str) -> tuple[int, int]:
    """`ExitCode=<code>:<signal>` of `scontrol show job` as two integers."""
    code, _, signal = field.partition(":")
    return (int(code) if code.isdigit() else 0, int(signal) if signal.isdigit() else 0)


def observe(slurm_id: str, state: str, reason: str = "", exit_code: str = "") -> Observation:
    """Map Slurm's view of a job (state, `Reason`, `ExitCode`) to an `Observation`."""
    state = state.split("+")[0].split(" ")[0]  # flags such as `CANCELLED by 0`
    reason = "" if reason in ("None", "(null)") else reason
    status = STATES.get(state)
    if status is None:
        # A state this table does not know (a newer Slurm): still in Slurm's hands.
        return Observation(JobStatus.PENDING, reason=f"Slurm state {state or 'unknown'}")
    if status == JobStatus.SUCCEEDED:
        return Observation(JobStatus.SUCCEEDED, 0)
    if status != JobStatus.FAILED:
        return Observation(status, reason=reason if status == JobStatus.PENDING else "")
    code, signal = _exit_status(exit_code)
    why = f"Slurm job {slurm_id} ended {state}"
    if code:
        return Observation(JobStatus.FAILED, code, f"{why} with exit code {code}")
    if signal:
        return Observation(JobStatus.FAILED, 128 + signal, f"{why} by signal {signal}")
    return Observation(JobStatus.FAILED, None, why)


# Partition (default marked *), availability, nodes, CPUs allocated/idle/other/total, memory
# per node (MB, "+" when nodes differ), generic resources, time limit, node state.
SINFO_FORMAT = "%P|%a|%D|%C|%m|%G|%l|%T"
_GPU_GRES = re.compile(r"gpu(?::[^:(,]+)?:(\d+)")


def _partition_of(fields: list[str]) -> dict[str, Any]:
    name, avail, nodes, cpus, memory, gres, limit, node_state = fields
    allocated, idle, other, total = (int(n) for n in cpus.split("/"))
    gpus = sum(int(n) for n in _GPU_GRES.findall(gres))
    return {
        "name": name.rstrip("*"),
        "default": name.endswith("*"),
        "available": avail == "up",
        "nodes": int(nodes),
        "cpus": {"allocated": allocated, "idle": idle, "other": other, "total": total},
        "memory_per_node_bytes": int(memory.rstrip("+")) * 1024 * 1024,
        "gpus_per_node": gpus,
        "time_limit": limit,
        "node_states": {node_state: int(nodes)},
    }


def parse_sinfo(text: str) -> list[dict[str, Any]]:
    """`sinfo -o SINFO_FORMAT` lines as one entry per partition: sinfo gives a line per group
    of nodes in the same state, which are summed here."""
    partitions: dict[str, dict[str, Any]] = {}
    for line in text.splitlines():
        fields = line.strip().split("|")
        if len(fields) != 8:
            continue
        try:
            group = _partition_of(fields)
        except ValueError:
            log.warning("unreadable sinfo line %r", line)
            continue
        seen = partitions.setdefault(group["name"], group)
        if seen is not group:
            seen["nodes"] += group["nodes"]
            for key, n in group["cpus"].items():
                seen["cpus"][key] += n
            seen["memory_per_node_bytes"] = min(
                seen["memory_per_node_bytes"], group["memory_per_node_bytes"]
            )
            seen["gpus_per_node"] = max(seen["gpus_per_node"], group["gpus_per_node"])
            for state, n in group["node_states"].items():
                seen["node_states"][state] = seen["node_states"].get(state, 0) + n
    return list(partitions.values())


class SlurmState(NamedTuple):
    """Slurm's view of one job: its state, `Reason` and `ExitCode` (`code:signal`)."""

    state: str
    reason: str = ""
    exit_code: str = ""


class SlurmClient:
    """The Slurm commands, through one transport: submit, find, states, cancel, partitions.

    Shared by the executor (oscar jobs) and the interLink plugin (pods); every command is an
    argument list and every failure an `oscar.errors` type. A command that times out means "ask
    again later" (`BackendUnavailableError`; a hung slurmctld, typically).
    """

    # --no-requeue: a batch job Slurm re-ran on its own (after a node failure) would find its
    # credential files consumed; the caller records the failure and retries are new jobs.
    # The transport adds its `--export`: the job gets only the transport's minimal environment,
    # then the batch script sources the job's own.
    submit_command = ("sbatch", "--parsable", "--no-requeue")
    # -r: one line per array task (`123_4`), pending ones too (not `123_[4-9]`).
    queue_command = ("squeue", "-h", "-r", "-o", "%i %T %r", "-j")
    show_command = ("scontrol", "show", "job", "--oneliner")
    cancel_command = ("scancel",)
    # USR1 to the batch shell alone (not its children, not other steps): the array script's
    # word to stop the one job of the task whose folder holds `stop`, and go on.
    nudge_command = ("scancel", "--batch", "--signal=USR1")
    # A job whose sbatch answer was lost (a timeout, a crash) is found again by its unique name.
    find_command = ("squeue", "-h", "--states=all", "-o", "%i", "--name")
    partitions_command = ("sinfo", "-h", "-o", SINFO_FORMAT)

    def __init__(self, transport: LocalTransport) -> None:
        self.transport = transport

    def ask(self, args: list[str]) -> str:
        """Run a command whose timeout means "ask again later"."""
        try:
            return self.transport.run(args)
        except BackendTimeoutError as exc:
            raise BackendUnavailableError(str(exc)) from exc

    def submit(self, script: Path, *options: str) -> str:
        """`sbatch` the batch script; its Slurm id (an array's own id) once Slurm accepted it.

        `options` (oscar's own, e.g. `--array=0-9`) come on the command line, where they win
        over the script's `#SBATCH` lines, the service's flags included.
        """
        argv = [*self.submit_command, self.transport.export, *options, str(script)]
        # On a timeout Slurm may have queued the job anyway: callers look it up by name.
        output = self.ask(argv)
        slurm_id = output.strip().split(";")[0]  # "<id>;<cluster>" on multi-cluster setups
        if not slurm_id.isdigit():
            raise ExecutorError(
                f"sbatch answered {output!r}, not a job id",
                argv=argv,
                exit_code=0,
                stdout=output,
            )
        return slurm_id

    def find(self, job_name: str) -> str | None:
        """The newest Slurm job named `job_name`, if Slurm has one (for an array: its own id,
        whatever squeue prints for its tasks, `123_4` or `123_[5-9]`)."""
        ids = self.ask([*self.find_command, job_name]).split()
        found = {i.split("_")[0] for i in ids}
        return max((i for i in found if i.isdigit()), key=int, default=None)

    def states(self, ids: Collection[str]) -> dict[str, SlurmState]:
        """One `squeue` for every job (array tasks `<id>_<n>` too: squeue is given each array
        once); `scontrol` only for jobs it no longer lists or lists as ended (for the final
        state and exit code). A job Slurm no longer knows has state ''.

        A Slurm that does not answer, or answers with an error, is `BackendUnavailableError`.
        """
        ids = list(dict.fromkeys(ids))
        if not ids:
            return {}
        queued = self._queue(list(dict.fromkeys(i.split("_")[0] for i in ids)))
        answer: dict[str, SlurmState] = {}
        for slurm_id in ids:
            state, reason = queued.get(slurm_id, ("", ""))
            if state and state not in TERMINAL:
                answer[slurm_id] = SlurmState(state, reason)
            else:
                answer[slurm_id] = self._final(slurm_id)
        return answer

    def _queue(self, ids: list[str]) -> dict[str, tuple[str, str]]:
        """`squeue` state and reason per id (finished and unknown jobs are absent)."""
        try:
            text = self.ask([*self.queue_command, ",".join(ids)])
        except ExecutorError as exc:
            if UNKNOWN_JOB in exc.stderr:  # squeue fails when a lone id is unknown
                return {}
            raise BackendUnavailableError(f"cannot list Slurm jobs: {exc}") from exc
        found: dict[str, tuple[str, str]] = {}
        for line in text.splitlines():
            parts = line.split(None, 2)
            if len(parts) >= 2:
                found[parts[0]] = (parts[1], parts[2] if len(parts) > 2 else "")
        return found

    def _final(self, slurm_id: str) -> SlurmState:
        """The state of one job from `scontrol show job` (it stays there `MinJobAge` s)."""
        try:
            text = self.ask([*self.show_command, slurm_id])
        except ExecutorError as exc:
            if UNKNOWN_JOB in exc.stderr:
                return SlurmState("")
            raise BackendUnavailableError(f"cannot show Slurm job {slurm_id}: {exc}") from exc
        fields = dict(re.findall(r"(\w+)=(\S*)", text))
        return SlurmState(
            fields.get("JobState", ""), fields.get("Reason", ""), fields.get("ExitCode", "")
        )

    def cancel(self, slurm_id: str) -> None:
        """`scancel` the job (or the one array task `<id>_<n>`), queued or running; a finished
        or unknown job is fine."""
        if not is_handle(slurm_id):
            # Never pass anything else to scancel: `--user=...` would cancel someone's jobs.
            log.warning("not cancelling %r: not a Slurm job id", slurm_id)
            return
        try:
            self.transport.run([*self.cancel_command, slurm_id])
        except ExecutorError as exc:
            if UNKNOWN_JOB not in exc.stderr:
                raise

    def nudge(self, slurm_id: str) -> None:
        """Send USR1 to the batch shell of a running job (an array task that stops one of its
        jobs on it); a job that ended meanwhile, or that Slurm no longer knows, is fine."""
        if not is_handle(slurm_id):
            log.warning("not signalling %r: not a Slurm job id", slurm_id)
            return
        try:
            self.transport.run([*self.nudge_command, slurm_id])
        except ExecutorError as exc:
            # Ended meanwhile: "Job/step already completing or completed", or unknown.
            if UNKNOWN_JOB not in exc.stderr and "complet" not in exc.stderr:
                raise

    def partitions(self) -> dict[str, Any]:
        """The partitions (`sinfo`, `parse_sinfo`), or `error` when Slurm does not answer."""
        try:
            return {
                "backend": "slurm",
                "partitions": parse_sinfo(self.ask([*self.partitions_command])),
            }
        except BackendError as exc:  # a failed command, or Slurm not answering
            return {"backend": "slurm", "partitions": [], "error": str(exc)}
