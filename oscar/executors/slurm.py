"""Slurm executor: the control plane submits each job to Slurm itself and asks Slurm about it.

The scheduler adapter is data, as in dask-jobqueue: the commands are class attributes, the batch
scripts are template files (`templates/slurm_job.sh`, `templates/slurm_array.sh`), and Slurm
states map to ours through a table with an explicit set of terminal states. Every command goes
through one transport helper that takes an argument list (never a shell string) and raises
`oscar.errors` types carrying the command, exit code, stdout and stderr (`slurm_commands`,
which the interLink plugin shares). Nothing waits for a
job: `submit` returns the Slurm id once `sbatch` accepted it, `submit_batch` packs a burst of
one service's jobs into one job array of at most `array_tasks` tasks (handles `<array id>_<task>`,
or `<array id>_<task>.<k>` for the k-th of several jobs one task runs one after another), and
`poll` answers from the files each batch script writes in a job's folder (`exit_status` when its
supervisor ends; `started`, `ended`, `cancelled` for a job sharing its task), asking one `squeue`
(at most every `squeue_interval` seconds) only about the jobs without an answer there.

Slurm jobs outlive the control plane: a restarted one re-attaches to the ids it recorded (the
base class's `recover`/`shutdown`). The job folder must be on a filesystem the Slurm nodes share
with the control plane, and the nodes need the same Python environment.
"""

from __future__ import annotations

import logging
import math
import os
import re
import shlex
import shutil
import sys
import threading
import time
import uuid
from collections.abc import Collection
from pathlib import Path
from string import Template
from typing import Any

from oscar.errors import ExecutorError
from oscar.executors import jobdir
from oscar.executors.base import Executor, Observation
from oscar.executors.slurm_commands import LocalTransport, SlurmClient, observe
from oscar.models.job import Job, JobStatus
from oscar.models.quantity import parse_quantity
from oscar.models.service import Service, slurm_flag_words
from oscar.models.storage import MinIOProvider

log = logging.getLogger("oscar.executors.slurm")

TEMPLATE = Path(__file__).with_name("templates") / "slurm_job.sh"
ARRAY_TEMPLATE = TEMPLATE.with_name("slurm_array.sh")
# What the batch scripts write in a job's folder when the supervisor ends on its own.
EXIT_STATUS = "exit_status"
# A job folder's record of the array it was last handed over in: "<array name>\n<task>\n",
# the task being `4`, or `4.1` for the second job of a task that runs several.
ARRAY_RECORD = "array"
# The markers of a job that shares its array task with others (the task runs them in turn):
# `queued` is written at submission; the task renames it to `started` when the job's turn
# comes, or a cancel renames it to `cancelled` first (one rename wins, atomically); `stop` asks
# the task to stop the job while it runs; `ended` is the task's word that a job it stopped or
# that was killed is over (one that ended on its own writes `exit_status`).
QUEUED, STARTED, CANCELLED, STOP, ENDED = "queued", "started", "cancelled", "stop", "ended"
# oscar's handle of a job: a Slurm id, or `<array>_<task>.<k>` for the k-th job of a task that
# runs several (the `.k` is oscar's, never given to Slurm).
HANDLE = re.compile(r"(?P<slurm_id>[0-9]+(?:_[0-9]+)?)(?:\.(?P<position>[0-9]+))?", re.ASCII)
WAITING = "waiting for the earlier events of its array task"
FLAGS_ANNOTATIONS = ("slurm-job.vk.io/flags", "job.vk.io/flags")


class _ScriptTemplate(Template):
    """`@{name}` placeholders, so the shell's own `$` stays verbatim in the template."""

    delimiter = "@"


def slurm_flags(service: Service) -> list[str]:
    """Extra `sbatch` flags from the service's annotations (current and older names).

    Each token becomes its own `#SBATCH` line. The same check as at service creation
    (`slurm_flag_words`) runs again here, for services stored before it existed: a token with
    a line break or NUL (which would end the directive and start a command), one that is not an
    option, or one that oscar sets itself or that redirects files, identity or environment
    (`--output`, `--chdir`, `--export`, ...) is refused.
    """
    flags: list[str] = []
    for key in FLAGS_ANNOTATIONS:
        if key not in service.annotations:
            continue
        try:
            words = slurm_flag_words(key, service.annotations[key])
        except ValueError as exc:
            raise ExecutorError(str(exc)) from None
        flags += (_single_line(f"annotation {key}: the Slurm flag", w) for w in words)
    return flags


def split_handle(handle: str) -> tuple[str, int | None] | None:
    """oscar's handle as (the Slurm id, the job's position in its array task or None when the
    task runs only this job); None for anything that is not a handle."""
    match = HANDLE.fullmatch(handle)
    if match is None or (match["position"] is not None and "_" not in match["slurm_id"]):
        return None  # `.k` only ever follows an array task
    position = match["position"]
    return match["slurm_id"], int(position) if position is not None else None


def chunks(n: int, tasks: int) -> list[range]:
    """Positions 0..n-1 as `tasks` contiguous runs whose sizes differ by at most one."""
    size, extra = divmod(n, tasks)
    runs, start = [], 0
    for task in range(tasks):
        end = start + size + (1 if task < extra else 0)
        runs.append(range(start, end))
        start = end
    return runs


def _single_line(what: str, value: str) -> str:
    if any(ch in value for ch in "\n\r\0"):
        raise ExecutorError(f"{what} {value!r} contains a line break or NUL")
    return value


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:  # not written yet (or the folder is gone)
        return ""


def _exit_observation(handle: str, text: str) -> Observation | None:
    """The job's `exit_status` (the text; '' when there is none) as an observation."""
    if not text.isdigit():
        return None
    code = int(text)
    if code == 0:
        return Observation(JobStatus.SUCCEEDED, 0)
    # The words Slurm's own answer gives (it records the same exit code).
    return Observation(
        JobStatus.FAILED, code, f"Slurm job {handle} ended FAILED with exit code {code}"
    )


def _render(template: Path, values: dict[str, str], directives: list[str], **quoted: str) -> str:
    """A batch script: each value checked to be one line and shell-quoted once, each directive
    an `#SBATCH` line, and `quoted` (already quoted by the caller) as given."""
    for key, value in values.items():
        _single_line(key.replace("_", " "), value)
    lines = (f"#SBATCH {shlex.quote(d)}" for d in directives)
    return _ScriptTemplate(template.read_text()).substitute(
        {key: shlex.quote(value) for key, value in values.items()},
        directives="\n".join(lines),
        **quoted,
    )


class SlurmExecutor(Executor):
    """Submits jobs with `sbatch` (bursts as job arrays), follows them through the status files
    the batch scripts write and `squeue`/`scontrol`, cancels with `scancel`."""

    name = "slurm"
    #: The most tasks of one job array: a bigger batch runs several of its jobs in each task,
    #: one after another (Slurm pays a task's start-up, about a second here, once for them;
    #: sites prefer fewer, longer tasks). Set from OSCAR_SLURM_ARRAY_TASKS.
    array_tasks = 256
    # The cheap part of a poll (a stat per job) runs this often; squeue is throttled apart.
    poll_interval = 0.1
    default_concurrency = 1000
    batch_size = 1000
    batch_window = 1.0
    #: Seconds before `squeue` is asked again about a job without a status file (a poll in
    #: between answers from its last answer, so a fast poll never floods slurmctld).
    squeue_interval = 0.5

    def __init__(
        self,
        jobs_dir: Path,
        store: MinIOProvider,
        transport: LocalTransport,
        timeout: float,
        poll_interval: float = 0.1,
    ) -> None:
        super().__init__()
        if "%" in str(jobs_dir):  # sbatch expands %j, %u, ... in --output
            raise ValueError(f"the Slurm jobs folder {jobs_dir} must not contain '%'")
        _single_line("the Slurm jobs folder", str(jobs_dir))
        self.jobs_dir = jobs_dir
        self.jobs_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Job arrays' scripts, manifests and early output; the dot keeps it apart from the
        # job folders, whose names never start with one.
        self.arrays_dir = jobs_dir / ".arrays"
        self.store = store
        self.transport = transport
        self.slurm = SlurmClient(transport)
        self.timeout = timeout
        self.poll_interval = poll_interval
        self._lock = threading.Lock()
        # handle -> job folder, for the status files (filled by submit, submit_batch, recover).
        self._folders: dict[str, Path] = {}
        # handle -> (when Slurm was asked, what it said), the squeue throttle.
        self._asked: dict[str, tuple[float, Observation]] = {}

    def _folder(self, job: Job) -> Path:
        return jobdir.job_folder(self.jobs_dir, job.name)

    def _follow(self, handle: str, folder: Path) -> None:
        with self._lock:
            self._folders[handle] = folder

    # --- the batch scripts ---------------------------------------------------------------
    @staticmethod
    def _resources(service: Service) -> list[str]:
        """The per-job (per array task) options: CPUs, memory, then the service's flags."""
        cpus = max(1, math.ceil(float(parse_quantity(service.cpu))))
        memory_mb = max(1, math.ceil(float(parse_quantity(service.memory)) / 2**20))
        return [f"--cpus-per-task={cpus}", f"--mem={memory_mb}M", *slurm_flags(service)]

    def directives(self, job: Job, service: Service, folder: Path) -> list[str]:
        """The `sbatch` options of the job, one `#SBATCH` line each (the annotations last, so
        they may override ours)."""
        return [
            f"--job-name={job.name}",
            f"--output={folder}/log",
            f"--chdir={folder}",
            *self._resources(service),
        ]

    def batch_script(self, job: Job, service: Service, folder: Path) -> str:
        """The batch script for a job (exposed for tests and docs)."""
        values = {
            "job_name": job.name,
            "service": service.name,
            "folder": str(folder),
            "image": service.image,
            "python": sys.executable,
        }
        wrapper_args = shlex.join(["exec", "--bind", str(folder), f"docker://{service.image}"])
        return _render(
            TEMPLATE,
            values,
            self.directives(job, service, folder),
            wrapper_args=shlex.quote(wrapper_args),
        )

    def array_script(self, name: str, service: Service, array_dir: Path) -> str:
        """The batch script of a job array named `name` whose manifest is in `array_dir`
        (exposed for tests and docs); `--array` itself comes on sbatch's command line."""
        values = {
            "array_name": name,
            "service": service.name,
            "image": service.image,
            "python": sys.executable,
            "manifest": str(array_dir / "manifest"),
        }
        directives = [
            f"--job-name={name}",
            # Each task's own output goes to its job's log as soon as the script knows the
            # job (its first lines); until then, and for slurmstepd's own messages (a
            # cancellation, the time limit), this per-task file keeps what /dev/null would lose.
            f"--output={array_dir}/%a.out",
            f"--chdir={array_dir}",
            *self._resources(service),
        ]
        return _render(
            ARRAY_TEMPLATE,
            values,
            directives,
            image_arg=shlex.quote(shlex.quote(f"docker://{service.image}")),
        )

    def _prepare(self, job: Job, service: Service, folder: Path) -> None:
        """The job's folder: configuration, script, event, store keys and its environment."""
        env = jobdir.prepare_job(folder, service, job.event.encode(), self.store, self.timeout)
        # The job gets exactly this environment (sbatch passes on only the transport's minimal
        # one, then the script sources the file): the supervisor's allow-listed variables plus
        # this installation's code.
        # The supervisor runs on the node from this installation (nodes share the filesystem).
        env["PYTHONPATH"] = str(jobdir.REPO_ROOT)
        jobdir.private_file(
            folder / "env", "".join(f"{k}={shlex.quote(v)}\n" for k, v in env.items())
        )

    # --- the lifecycle -------------------------------------------------------------------
    def submit(self, job: Job, service: Service) -> str:
        """`sbatch` the job; return its Slurm id once Slurm accepted it.

        Once only: a recorded Slurm id is returned instead (a restarted control plane), and a
        job whose `sbatch` answer was lost is found by name before anything is submitted again.
        """
        folder = self._folder(job)
        # A recorded id, or an earlier attempt (alone or in an array) that Slurm did accept.
        if handed := self._handed_over([folder]):
            self._follow(handed[0], folder)
            return handed[0]
        recorded, script = folder / "slurm_id", folder / "job.sh"
        text = self.batch_script(job, service, folder)  # refuses bad flags before any write
        self._prepare(job, service, folder)
        jobdir.private_file(script, text)
        slurm_id = self.slurm.submit(script)
        self._record(recorded, slurm_id)
        self._follow(slurm_id, folder)
        return slurm_id

    def submit_batch(self, jobs: list[Job], service: Service) -> list[str]:
        """One `sbatch --array` for the jobs; their handles, in order.

        n jobs make t = min(n, `array_tasks`) tasks, each running a contiguous run of them (sizes
        differing by at most one) one after another: a task of one job gives it the handle
        `<array id>_<task>` (as before there were several), a task of several `<array
        id>_<task>.<k>`, k its position in the task. Each job keeps its own folder, log,
        response and exit status. Slurm's time limit is per task: a service's `--time` flag
        must allow for the jobs its tasks run in turn (oscar does not change it).

        All or none: the array is submitted once every job's folder is ready, and Slurm accepts
        or refuses it whole. Once only, as `submit`: a job whose folder records its handle gets
        it back, and one whose array's `sbatch` answer was lost is found by the array's unique
        name; only the others go into a new array. A lone job is an ordinary `submit`.
        """
        if len(jobs) > self.batch_size:
            raise ValueError(f"{len(jobs)} jobs in one batch, more than {self.batch_size}")
        if len(jobs) == 1:
            return [self.submit(jobs[0], service)]
        folders = [self._folder(job) for job in jobs]
        for folder in folders:
            _single_line("the job folder", str(folder))  # one manifest line per job
        handles = self._handed_over(folders)
        left = [i for i in range(len(jobs)) if i not in handles]
        if left:
            name = f"{service.name}-array-{uuid.uuid4().hex[:12]}"
            array_dir = self.arrays_dir / name
            text = self.array_script(name, service, array_dir)  # refuses bad flags first
            array_dir.mkdir(mode=0o700, parents=True)
            runs = chunks(len(left), min(len(left), self.array_tasks))
            # The manifest: one line per job, `<task> <folder>`, in the order the task runs them.
            lines, suffixes = [], {}
            for task, run in enumerate(runs):
                for k, position in enumerate(run):
                    i = left[position]
                    suffixes[i] = f"{task}.{k}" if len(run) > 1 else str(task)
                    self._prepare(jobs[i], service, folders[i])
                    if len(run) > 1:
                        self._queue_marker(folders[i])
                    jobdir.private_file(folders[i] / ARRAY_RECORD, f"{name}\n{suffixes[i]}\n")
                    lines.append(f"{task} {folders[i]}\n")
            jobdir.private_file(array_dir / "manifest", "".join(lines))
            script = array_dir / "array.sh"
            jobdir.private_file(script, text)
            array_id = self.slurm.submit(script, f"--array=0-{len(runs) - 1}")
            for i in left:
                handles[i] = f"{array_id}_{suffixes[i]}"
                self._record(folders[i] / "slurm_id", handles[i])
        for i, folder in enumerate(folders):
            self._follow(handles[i], folder)
        return [handles[i] for i in range(len(jobs))]

    @staticmethod
    def _queue_marker(folder: Path) -> None:
        """The `queued` marker the task claims when the job's turn comes; markers of an earlier
        attempt that never reached Slurm go (that attempt's task never ran)."""
        for stale in (STARTED, CANCELLED, STOP, ENDED, EXIT_STATUS, "pid"):
            (folder / stale).unlink(missing_ok=True)
        jobdir.private_file(folder / QUEUED, "")

    def _handed_over(self, folders: list[Path]) -> dict[int, str]:
        """The handles of the jobs (by position) Slurm already has: recorded in their folder,
        or submitted by an attempt whose sbatch answer was lost, found by name (the array's,
        once per array, or the job's own when it was submitted alone)."""
        handles: dict[int, str] = {}
        arrays: dict[str, str | None] = {}  # array name -> its id, one `find` per array
        for i, folder in enumerate(folders):
            recorded = folder / "slurm_id"
            if recorded.exists():
                handles[i] = recorded.read_text().strip()
            elif handle := self._in_array(folder, arrays) or self._alone(folder):
                handles[i] = handle
                self._record(recorded, handle)
        return handles

    def _in_array(self, folder: Path, arrays: dict[str, str | None]) -> str | None:
        """The job's task in the array it was last handed over in, if Slurm has that array."""
        try:
            name, task = (folder / ARRAY_RECORD).read_text().split()
        except (OSError, ValueError):
            return None
        if not (self.arrays_dir / name / "array.sh").exists():
            return None  # that attempt never reached sbatch
        if name not in arrays:
            arrays[name] = self.slurm.find(name)
        return f"{arrays[name]}_{task}" if arrays[name] else None

    def _alone(self, folder: Path) -> str | None:
        """The job's own Slurm id from an attempt alone (its folder's name is its job name)."""
        return self.slurm.find(folder.name) if (folder / "job.sh").exists() else None

    @staticmethod
    def _record(path: Path, slurm_id: str) -> None:
        # Written aside and renamed, so a crash never leaves a half-written id behind.
        partial = path.with_name(path.name + ".partial")
        jobdir.private_file(partial, slurm_id)
        os.replace(partial, path)

    def recover(self, jobs: Collection[Job]) -> set[str]:
        """Follow the jobs' status files again (their folders by handle); every job's work
        goes on in Slurm (the base behaviour: all re-attached)."""
        for job in jobs:
            if job.backend_id:
                self._follow(job.backend_id, self._folder(job))
        return super().recover(jobs)

    def resources(self) -> dict[str, Any]:
        """The Slurm partitions (`sinfo`): nodes, CPUs allocated/idle/total, memory and GPUs
        per node, time limit; `error` instead when Slurm does not answer."""
        return self.slurm.partitions()

    def poll(self, handles: Collection[str]) -> dict[str, Observation]:
        """Every job's state: from the files its batch script wrote in its folder when there
        are some that say, else from one `squeue` (and `scontrol` for the ended ones) for all
        the others' tasks, asked at most every `squeue_interval` seconds per task (in between,
        Slurm's last answer). A job sharing its task with others is pending while the task runs
        an earlier one, and takes the task's verdict only when it left no word of its own."""
        answer: dict[str, Observation] = {}
        ask: dict[str, str] = {}  # handle -> its Slurm id
        for handle in handles:
            parts = split_handle(handle)
            if parts is None:
                answer[handle] = Observation(
                    JobStatus.FAILED, reason=f"{handle!r} is not a Slurm job id"
                )
            elif (reported := self._reported(handle, parts[1] is not None)) is not None:
                answer[handle] = reported
            else:
                ask[handle] = parts[0]
        slurm = self._ask_slurm(list(dict.fromkeys(ask.values())))
        for handle, slurm_id in ask.items():
            if slurm_id not in slurm:
                continue
            seen = slurm[slurm_id]
            if handle != slurm_id:  # one job of a task that runs several
                seen = self._in_task(handle, slurm_id, seen)
            answer[handle] = seen
        return answer

    def _reported(self, handle: str, shared: bool) -> Observation | None:
        """What the job's folder says (None: nothing yet, Slurm is asked): its `exit_status`;
        for a job sharing its task, also `ended` (stopped or killed) and `cancelled`."""
        with self._lock:
            folder = self._folders.get(handle)
        if folder is None:
            return None
        if not shared:
            return _exit_observation(handle, _read(folder / EXIT_STATUS))
        try:
            # One directory read instead of a stat per marker: this runs every 0.1 s per job.
            names = set(os.listdir(folder))
        except OSError:  # the folder is gone: Slurm is asked
            return None
        if EXIT_STATUS in names and (
            ended := _exit_observation(handle, _read(folder / EXIT_STATUS))
        ):
            return ended
        if ENDED in names:
            text = _read(folder / ENDED)
            if STOP in names:
                return Observation(
                    JobStatus.FAILED, reason=f"job {handle} was cancelled while it ran"
                )
            code = int(text) if text.isdigit() else None
            why = f"job {handle} was killed" + (f" (exit status {code})" if code else "")
            return Observation(JobStatus.FAILED, code, why)
        if CANCELLED in names:
            return Observation(
                JobStatus.FAILED, reason=f"job {handle} was cancelled before it started"
            )
        return None

    def _in_task(self, handle: str, slurm_id: str, task: Observation) -> Observation:
        """One job's state from its task's: a running task runs this job only once it
        `started` it; an ended task's verdict holds for a job that left no word of its own."""
        with self._lock:
            folder = self._folders.get(handle)
        if task.status == JobStatus.RUNNING:
            if folder is not None and not (folder / STARTED).exists():
                return Observation(JobStatus.PENDING, reason=WAITING)
            return task
        if not task.terminal or folder is None:
            return task
        # The task ended: its files may have appeared since they were read above.
        if (reported := self._reported(handle, True)) is not None:
            return reported
        started = (folder / STARTED).exists()
        if started and task.status == JobStatus.FAILED:
            return task  # stopped with its task (scancel of it, the time limit): Slurm's word
        verdict = task.reason or f"Slurm job {slurm_id} ended COMPLETED"
        what = "without an exit status of its own" if started else "before this job started"
        return Observation(JobStatus.FAILED, None, f"{verdict}, {what}")

    def _ask_slurm(self, ids: list[str]) -> dict[str, Observation]:
        """Slurm's view of the jobs (array tasks), asked again only about those asked longest
        ago."""
        now = time.monotonic()
        with self._lock:
            due = [
                i
                for i in ids
                if i not in self._asked or now - self._asked[i][0] >= self.squeue_interval
            ]
        fresh = {
            slurm_id: observe(slurm_id, *seen)
            if seen.state
            else Observation(JobStatus.FAILED, reason=f"Slurm no longer knows job {slurm_id}")
            for slurm_id, seen in (self.slurm.states(due) if due else {}).items()
        }
        with self._lock:
            for slurm_id, seen in fresh.items():
                self._asked[slurm_id] = (now, seen)
            # Forget answers nobody asked about for long (jobs the dispatcher let go of).
            for slurm_id in [i for i, (when, _) in self._asked.items() if now - when > 60]:
                del self._asked[slurm_id]
            return {i: self._asked[i][1] for i in ids if i in self._asked}

    def cancel(self, handle: str) -> None:
        """Stop the job, queued or running; a finished or unknown job is fine. The next poll
        asks Slurm again about it at once.

        A job alone in its Slurm job or array task: `scancel` of it. One of several jobs a task
        runs in turn: only that job (`_cancel_one`); the task goes on with the others.
        """
        with self._lock:
            folder = self._folders.get(handle)
        self._cancel(handle, folder)

    def _cancel(self, handle: str, folder: Path | None) -> None:
        parts = split_handle(handle)
        if parts is None:
            # Never pass anything else to scancel: `--user=...` would cancel someone's jobs.
            log.warning("not cancelling %r: not an oscar Slurm handle", handle)
            return
        slurm_id, position = parts
        if position is None:
            self.slurm.cancel(slurm_id)
        elif folder is None:
            # Without its folder the job cannot be told apart from its task's other jobs, and
            # scancel would stop them all.
            log.warning("not cancelling %s: its job folder is unknown", handle)
            return
        else:
            self._cancel_one(slurm_id, folder)
        with self._lock:
            self._asked.pop(slurm_id, None)

    def _cancel_one(self, slurm_id: str, folder: Path) -> None:
        """Cancel one job of a task running several: before it started, take its `queued`
        marker (the task's own claim races for the same rename, one wins), and the task skips
        it; once started, write `stop` and signal the task's shell, which stops that job only."""
        try:
            os.rename(folder / QUEUED, folder / CANCELLED)
            return
        except FileNotFoundError:
            pass  # started, cancelled already, or gone
        try:
            names = set(os.listdir(folder))
        except OSError:  # the folder is gone: nothing to stop
            return
        if STARTED not in names or names & {EXIT_STATUS, ENDED}:
            return  # nothing runs
        jobdir.private_file(folder / STOP, "")
        self.slurm.nudge(slurm_id)

    def _array_output(self, folder: Path) -> Path | None:
        """The array task's own Slurm output file (early errors, slurmstepd's messages)."""
        try:
            name, task = (folder / ARRAY_RECORD).read_text().split()
        except (OSError, ValueError):
            return None
        return self.arrays_dir / name / f"{task.split('.')[0]}.out"

    def logs(self, job: Job, tail: int | None = None) -> str:
        """The job's Slurm output file (the supervisor's log); for an array task, followed by
        what Slurm wrote to the task's own output file."""
        folder = self._folder(job)
        text = jobdir.read_tail(folder / "log", tail)
        output = self._array_output(folder)
        extra = jobdir.read_tail(output, tail) if output is not None else ""
        if not extra:
            return text
        text += extra if not text or text.endswith("\n") else "\n" + extra
        return jobdir.last_lines(text, tail)

    def cleanup(self, job: Job) -> None:
        """Cancel the Slurm job if one was recorded, then remove the job folder (even when the
        cancel fails, which is then raised), and its array's folder once no job of it is left."""
        folder = self._folder(job)
        recorded = folder / "slurm_id"
        output = self._array_output(folder)
        handle = recorded.read_text().strip() if recorded.exists() else None
        try:
            if handle:
                self._cancel(handle, folder)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
            with self._lock:
                for key in (handle, job.backend_id):
                    if key:
                        self._folders.pop(key, None)
            if output is not None:
                self._forget_array(output.parent)

    @staticmethod
    def _forget_array(array_dir: Path) -> None:
        # Each cleanup removes its own folder first, so the last one of the array sees none
        # left (concurrent cleanups may both remove it: harmless).
        try:
            lines = (array_dir / "manifest").read_text().splitlines()
        except OSError:
            return
        folders = [line.partition(" ")[2] for line in lines]  # `<task> <folder>` lines
        if not any(Path(f).exists() for f in folders):
            shutil.rmtree(array_dir, ignore_errors=True)
