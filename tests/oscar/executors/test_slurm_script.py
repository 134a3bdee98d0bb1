"""The Slurm executor without Slurm: the batch script, the state table and the command helper.

The `squeue`/`scontrol` answers below are what the real one-node Slurm of the test environment
prints (tests/oscar/executors/test_slurm_executor.py runs the same paths against it).
"""

from __future__ import annotations

import os
import shlex
import signal
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from oscar.errors import BackendTimeoutError, BackendUnavailableError, ExecutorError
from oscar.executors.base import Observation
from oscar.executors.slurm import WAITING, SlurmExecutor, chunks, split_handle
from oscar.executors.slurm_commands import (
    STATES,
    TERMINAL,
    LocalTransport,
    SSHTransport,
    observe,
)
from oscar.models.job import Job, JobStatus, new_job_name
from oscar.models.service import Service
from oscar.models.storage import MinIOProvider
from oscar.models.validation import parse_service
from tests.fixtures.services import minimal_service
from tests.services import common
from tests.services.slurm import TERMINAL_STATES

Answer = subprocess.CompletedProcess[str] | BaseException


class ScriptedTransport(LocalTransport):
    """Answers each command from `answer(argv)` instead of running it; records every argv."""

    def __init__(self, answer: Callable[[list[str]], Answer]) -> None:
        super().__init__({"SLURM_CONF": "/nowhere/slurm.conf"})
        self.answer = answer
        self.calls: list[list[str]] = []

    def execute(self, argv: list[str]) -> subprocess.CompletedProcess[str]:
        self.calls.append(argv)
        result = self.answer(argv)
        if isinstance(result, BaseException):
            raise result
        return result


def done(argv: list[str], stdout: str = "", code: int = 0, stderr: str = "") -> Answer:
    return subprocess.CompletedProcess(argv, code, stdout, stderr)


def _service(**fields: object) -> Service:
    defaults: dict[str, object] = {"token": "a" * 64, "cpu": "1", "memory": "128Mi"}
    return parse_service(minimal_service(**{**defaults, **fields}))


def _hostile(**fields: object) -> Service:
    """A service with values creation refuses (as if stored before the rules, or sent by a
    registry we do not validate): the executor must stay safe on its own."""
    return _service().model_copy(update=fields)


def _job(service: Service) -> Job:
    return Job(name=new_job_name(service.name), service=service.name, event="x", backend="slurm")


def _executor(tmp_path: Path, transport: LocalTransport | None = None) -> SlurmExecutor:
    transport = transport or ScriptedTransport(lambda argv: done(argv))
    return SlurmExecutor(tmp_path / "jobs", MinIOProvider(), transport, timeout=60)


def _directives(script: str) -> list[str]:
    return [shlex.split(line)[1] for line in script.splitlines() if line.startswith("#SBATCH ")]


# --- the batch script ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("cpu", "memory", "cpus", "mem"),
    [("0.2", "256Mi", 1, "256M"), ("1.5", "1Gi", 2, "1024M"), ("2", "500M", 2, "477M")],
)
def test_cpu_and_memory_become_directives(
    tmp_path: Path, cpu: str, memory: str, cpus: int, mem: str
) -> None:
    service = _service(cpu=cpu, memory=memory)
    job = _job(service)
    folder = tmp_path / job.name
    script = _executor(tmp_path).batch_script(job, service, folder)
    assert _directives(script) == [
        f"--job-name={job.name}",
        f"--output={folder}/log",
        f"--chdir={folder}",
        f"--cpus-per-task={cpus}",
        f"--mem={mem}",
    ]
    assert script.startswith("#!/bin/sh\n#SBATCH ")


def test_each_flag_of_both_annotations_gets_its_own_directive(tmp_path: Path) -> None:
    service = _service(
        annotations={
            "slurm-job.vk.io/flags": "--time=00:10:00 --comment='two words'",
            "job.vk.io/flags": "--qos=low",
        }
    )
    job = _job(service)
    script = _executor(tmp_path).batch_script(job, service, tmp_path / job.name)
    assert _directives(script)[-3:] == ["--time=00:10:00", "--comment=two words", "--qos=low"]
    assert "#SBATCH '--comment=two words'\n" in script


@pytest.mark.parametrize("value", ["--comment='a\nb'", "--comment='a\rb'", "--x='\0'"])
def test_a_flag_with_a_line_break_is_refused(tmp_path: Path, value: str) -> None:
    service = _hostile(annotations={"slurm-job.vk.io/flags": value})
    job = _job(service)
    with pytest.raises(ExecutorError, match=r"slurm-job\.vk\.io/flags"):
        _executor(tmp_path).batch_script(job, service, tmp_path / job.name)


def test_unbalanced_quotes_in_the_flags_are_refused(tmp_path: Path) -> None:
    service = _hostile(annotations={"job.vk.io/flags": "--comment='open"})
    with pytest.raises(ExecutorError, match=r"job\.vk\.io/flags'?: No closing quotation"):
        _executor(tmp_path).batch_script(_job(service), service, tmp_path / "f")


# --- L18: flags may not redirect the job's files, identity or environment --------------------
REFUSED_FLAGS = [
    ("--output=/etc/passwd", "--output"),
    ("--out=/etc/passwd", "--output"),
    ("--output", "--output"),
    ("-o/etc/passwd", "-o"),
    ("-o", "-o"),
    ("-Qo/etc/passwd", "-o"),
    ("--error=/etc/passwd", "--error"),
    ("-e/etc/passwd", "-e"),
    ("--input=/etc/shadow", "--input"),
    ("-i/etc/shadow", "-i"),
    ("--chdir=/", "--chdir"),
    ("-D/", "-D"),
    ("--job-name=other", "--job-name"),
    ("-Jother", "-J"),
    ("--export=ALL", "--export"),
    ("--export", "--export"),
    ("--export-file=/etc/environment", "--export-file"),
    ("--get-user-env", "--get-user-env"),
    ("--get-user-env=10L", "--get-user-env"),
    ("--uid=0", "--uid"),
    ("--gid=0", "--gid"),
    ("--wrap=id", "--wrap"),
    ("--parsable", "--parsable"),
    ("--wait", "--wait"),
    ("-W", "-W"),
    ("--test-only", "--test-only"),
]


@pytest.mark.parametrize("key", ["slurm-job.vk.io/flags", "job.vk.io/flags"])
@pytest.mark.parametrize(("flag", "option"), REFUSED_FLAGS, ids=[f for f, _ in REFUSED_FLAGS])
def test_flags_that_redirect_files_or_identity_are_refused_at_submission(
    tmp_path: Path, key: str, flag: str, option: str
) -> None:
    # A service stored before the rule (creation refuses it too): the executor refuses on its
    # own, before any file of the job is written, naming the annotation and the flag.
    service = _hostile(annotations={key: f"--time=1:00 {flag}"})
    job = _job(service)
    executor = _executor(tmp_path)
    with pytest.raises(ExecutorError) as refused:
        executor.submit(job, service)
    message = str(refused.value)
    assert key in message and repr(flag) in message and option in message
    assert not (tmp_path / "jobs" / job.name).exists()
    assert executor.transport.calls == []  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "flags",
    [
        "--time=1:00 --comment='-o /etc/passwd' --partition=debug",
        "-N1 -n2 -c1 -t10 -pdebug -Aproj -Cgpu -woutput -xone -qlow",
        "--mem=1G --exclusive --requeue --open-mode=append --nice=5 -Q -v -H",
    ],
)
def test_other_flags_still_become_directives(tmp_path: Path, flags: str) -> None:
    service = _service(annotations={"slurm-job.vk.io/flags": flags})
    job = _job(service)
    script = _executor(tmp_path).batch_script(job, service, tmp_path / job.name)
    assert _directives(script)[5:] == shlex.split(flags)


def _render_and_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, service: Service, folder: Path, path: str
) -> subprocess.CompletedProcess[str]:
    """Render the script with a stand-in `python` that writes SCRIPT_WRAPPER and its argv
    to files, then run it with sh as Slurm would."""
    fake_python = tmp_path / "python"
    fake_python.write_text(
        "#!/bin/sh\n"
        'printf %s "$SCRIPT_WRAPPER" > "$OUT/wrapper"\n'
        'printf "%s\\n" "$@" > "$OUT/argv"\n'
    )
    fake_python.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(fake_python))
    folder.mkdir(parents=True)
    (folder / "env").write_text(f"OUT={shlex.quote(str(tmp_path))}\n")
    (folder / "event").write_text("x")
    script = folder / "job.sh"
    script.write_text(_executor(tmp_path).batch_script(_job(service), service, folder))
    return subprocess.run(
        ["/bin/sh", str(script)],
        cwd=tmp_path,
        env={"PATH": path, "SLURM_JOB_ID": "42"},
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )


def test_values_from_the_service_never_run_as_shell(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    image = "alpine$(touch${IFS}PWNED);`touch${IFS}PWNED2`\\n"
    service = _hostile(image=image)
    folder = tmp_path / "it's a $(dir)"
    result = _render_and_run(tmp_path, monkeypatch, service, folder, "/usr/bin:/bin")
    assert result.returncode == 0, result.stderr
    assert not list(tmp_path.rglob("PWNED*"))
    header, runner = result.stdout.splitlines()
    assert f"- oscar - INFO - Slurm job 42 on {os.uname().nodename}: image {image} " in header
    assert runner.endswith("script runner: native (no apptainer/singularity on this node)")
    assert (tmp_path / "argv").read_text().splitlines() == [
        "-m",
        "supervisor",
        "--workdir",
        f"{folder}/work",
    ]
    assert (folder / "exit_status").read_text() == "0\n"  # what poll reads first


def test_the_wrapper_runs_the_script_in_the_image_when_apptainer_exists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "apptainer").write_text("#!/bin/sh\n")
    (bin_dir / "apptainer").chmod(stat.S_IRWXU)
    service = _service(image="ghcr.io/x/y:1.0")
    folder = tmp_path / "job folder"
    result = _render_and_run(tmp_path, monkeypatch, service, folder, f"{bin_dir}:/usr/bin:/bin")
    assert result.returncode == 0, result.stderr
    wrapper = (tmp_path / "wrapper").read_text()
    assert shlex.split(wrapper) == [
        "apptainer",
        "exec",
        "--bind",
        str(folder),
        "docker://ghcr.io/x/y:1.0",
    ]


def _fake_python(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str) -> None:
    fake_python = tmp_path / "python"
    fake_python.write_text("#!/bin/sh\n" + body)
    fake_python.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(fake_python))


def test_a_signalled_batch_shell_stops_the_supervisor_and_reports_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """scancel signals the batch shell, which no longer execs the supervisor: it must pass the
    signal on, and leave no `exit_status` so that Slurm's CANCELLED is what poll reports."""
    _fake_python(tmp_path, monkeypatch, 'echo $$ > "$OUT/pid"\nexec sleep 30\n')
    service = _service()
    folder = tmp_path / "job"
    folder.mkdir()
    (folder / "env").write_text(f"OUT={shlex.quote(str(tmp_path))}\n")
    (folder / "event").write_text("x")
    (folder / "job.sh").write_text(_executor(tmp_path).batch_script(_job(service), service, folder))
    shell = subprocess.Popen(
        ["/bin/sh", str(folder / "job.sh")], cwd=tmp_path, env={"PATH": "/usr/bin:/bin"}
    )
    try:
        pid = common.wait_until(
            lambda: (tmp_path / "pid").exists() and (tmp_path / "pid").read_text().strip(),
            timeout=10,
            what="the supervisor to start",
        )
        shell.terminate()
        assert shell.wait(timeout=10) == 128 + signal.SIGTERM
    finally:
        shell.kill()
    assert (
        not Path(f"/proc/{pid}").exists() or "State:\tZ" in Path(f"/proc/{pid}/status").read_text()
    )
    assert not (folder / "exit_status").exists()


def _array_folders(tmp_path: Path) -> tuple[Path, list[Path]]:
    array_dir = tmp_path / "arrays" / "svc-array-1"
    array_dir.mkdir(parents=True)
    folders = [tmp_path / "jobs" / "svc-one", tmp_path / "jobs" / "it's a $(dir) `x`"]
    for folder in folders:
        folder.mkdir(parents=True)
        (folder / "env").write_text(f"OUT={shlex.quote(str(tmp_path))}\n")
        (folder / "event").write_text("x")
    (array_dir / "manifest").write_text("".join(f"{i} {f}\n" for i, f in enumerate(folders)))
    return array_dir, folders


def _run_array_task(array_dir: Path, task: str, path: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["/bin/sh", str(array_dir / "array.sh")],
        cwd=array_dir,
        env={"PATH": path, "SLURM_ARRAY_JOB_ID": "42", "SLURM_ARRAY_TASK_ID": task},
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )


def test_an_array_task_runs_its_own_job_with_every_value_quoted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_python(
        tmp_path,
        monkeypatch,
        'printf %s "$SCRIPT_WRAPPER" > "$OUT/wrapper"\nprintf "%s\\n" "$@" > "$OUT/argv"\nexit 3\n',
    )
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "apptainer").write_text("#!/bin/sh\n")
    (bin_dir / "apptainer").chmod(stat.S_IRWXU)
    image = "alpine$(touch${IFS}PWNED);`touch${IFS}PWNED2`'\\n"
    service = _hostile(image=image, name="svc$(touch PWNED3)")
    array_dir, folders = _array_folders(tmp_path)
    script = _executor(tmp_path).array_script("svc-array-1", service, array_dir)
    assert _directives(script) == [
        "--job-name=svc-array-1",
        f"--output={array_dir}/%a.out",
        f"--chdir={array_dir}",
        "--cpus-per-task=1",
        "--mem=128M",
    ]
    (array_dir / "array.sh").write_text(script)
    result = _run_array_task(array_dir, "1", f"{bin_dir}:/usr/bin:/bin")
    assert result.returncode == 3, result.stderr
    assert result.stdout == result.stderr == ""  # everything went to the job's own log
    assert not list(tmp_path.rglob("PWNED*"))
    job = folders[1]
    header, runner = (job / "log").read_text().splitlines()
    assert f"Slurm job 42_1 on {os.uname().nodename}: image {image} (job {job.name} " in header
    assert header.endswith(f"of service {service.name})")
    assert shlex.split((tmp_path / "wrapper").read_text()) == [
        "apptainer",
        "exec",
        "--bind",
        str(job),
        f"docker://{image}",
    ]
    assert runner.endswith("script runner: " + (tmp_path / "wrapper").read_text())
    assert (tmp_path / "argv").read_text().splitlines() == [
        "-m",
        "supervisor",
        "--workdir",
        f"{job}/work",
    ]
    assert (job / "exit_status").read_text() == "3\n"
    assert not (folders[0] / "log").exists() and not (folders[0] / "exit_status").exists()


@pytest.mark.parametrize("task", ["", "1;touch PWNED", "-1", "7"])
def test_an_array_task_without_a_job_of_its_own_fails_before_running_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, task: str
) -> None:
    _fake_python(tmp_path, monkeypatch, 'touch "$OUT/ran"\n')
    array_dir, _ = _array_folders(tmp_path)
    (array_dir / "array.sh").write_text(
        _executor(tmp_path).array_script("svc-array-1", _service(), array_dir)
    )
    result = _run_array_task(array_dir, task, "/usr/bin:/bin")
    assert result.returncode == 1 and "oscar: " in result.stderr  # in the task's %a.out
    assert not (tmp_path / "ran").exists() and not list(tmp_path.rglob("PWNED*"))


# --- the state table -------------------------------------------------------------------------
def test_the_terminal_states_are_those_the_test_cluster_knows() -> None:
    assert TERMINAL == TERMINAL_STATES
    assert all(STATES[s] in (JobStatus.SUCCEEDED, JobStatus.FAILED) for s in TERMINAL)


@pytest.mark.parametrize(
    ("state", "reason", "exit_code", "expected"),
    [
        ("PENDING", "BeginTime", "", Observation(JobStatus.PENDING, reason="BeginTime")),
        ("PENDING", "None", "", Observation(JobStatus.PENDING)),
        ("RUNNING", "None", "", Observation(JobStatus.RUNNING)),
        ("COMPLETING", "", "", Observation(JobStatus.RUNNING)),
        ("COMPLETED", "None", "0:0", Observation(JobStatus.SUCCEEDED, 0)),
        (
            "FAILED",
            "NonZeroExitCode",
            "5:0",
            Observation(JobStatus.FAILED, 5, "Slurm job 12 ended FAILED with exit code 5"),
        ),
        (
            "CANCELLED",
            "None",
            "0:15",
            Observation(JobStatus.FAILED, 143, "Slurm job 12 ended CANCELLED by signal 15"),
        ),
        (
            "CANCELLED",
            "BeginTime",
            "0:0",
            Observation(JobStatus.FAILED, None, "Slurm job 12 ended CANCELLED"),
        ),
        (
            "TIMEOUT",
            "TimeLimit",
            "0:0",
            Observation(JobStatus.FAILED, None, "Slurm job 12 ended TIMEOUT"),
        ),
        (
            "OUT_OF_MEMORY",
            "",
            "0:125",
            Observation(JobStatus.FAILED, 253, "Slurm job 12 ended OUT_OF_MEMORY by signal 125"),
        ),
        ("NEW_STATE", "", "", Observation(JobStatus.PENDING, reason="Slurm state NEW_STATE")),
    ],
)
def test_slurm_states_map_to_observations(
    state: str, reason: str, exit_code: str, expected: Observation
) -> None:
    assert observe("12", state, reason, exit_code) == expected


# --- polling ---------------------------------------------------------------------------------
SCONTROL = {
    "7": "JobId=7 JobName=a JobState=COMPLETED Reason=None ExitCode=0:0 RunTime=00:00:01",
    "8": "JobId=8 JobName=b JobState=FAILED Reason=NonZeroExitCode ExitCode=3:0",
    "5_2": "JobId=9 ArrayJobId=5 ArrayTaskId=2 JobState=FAILED Reason=NonZeroExitCode ExitCode=3:0",
}


def _slurm(squeue: str | BaseException, squeue_code: int = 0) -> ScriptedTransport:
    def answer(argv: list[str]) -> Answer:
        if argv[0] == "squeue":
            if isinstance(squeue, BaseException):
                return squeue
            stderr = "slurm_load_jobs error: Invalid job id specified\n" if squeue_code else ""
            return done(argv, squeue, squeue_code, stderr)
        if argv[:3] == ["scontrol", "show", "job"]:
            if argv[-1] in SCONTROL:
                return done(argv, SCONTROL[argv[-1]] + "\n")
            return done(argv, "", 1, "slurm_load_jobs error: Invalid job id specified\n")
        raise AssertionError(f"unexpected command {argv}")

    return ScriptedTransport(answer)


def test_one_squeue_answers_for_every_queued_job(tmp_path: Path) -> None:
    transport = _slurm("5 PENDING Resources\n6 RUNNING None\n")
    answer = _executor(tmp_path, transport).poll(["5", "6"])
    assert answer == {
        "5": Observation(JobStatus.PENDING, reason="Resources"),
        "6": Observation(JobStatus.RUNNING),
    }
    assert transport.calls == [["squeue", "-h", "-r", "-o", "%i %T %r", "-j", "5,6"]]


def test_jobs_gone_from_the_queue_are_asked_one_by_one(tmp_path: Path) -> None:
    transport = _slurm("5 RUNNING None\n8 COMPLETING None\n9 COMPLETED None\n")
    answer = _executor(tmp_path, transport).poll(["5", "7", "8", "9", "10"])
    assert answer["5"] == Observation(JobStatus.RUNNING)
    assert answer["7"] == Observation(JobStatus.SUCCEEDED, 0)
    assert answer["8"] == Observation(JobStatus.RUNNING)  # squeue still lists it as active
    assert answer["9"] == Observation(JobStatus.FAILED, reason="Slurm no longer knows job 9")
    assert answer["10"] == Observation(JobStatus.FAILED, reason="Slurm no longer knows job 10")
    shown = [argv[-1] for argv in transport.calls if argv[0] == "scontrol"]
    assert shown == ["7", "9", "10"]


def test_squeue_failing_because_no_id_is_known_falls_back_to_scontrol(tmp_path: Path) -> None:
    transport = _slurm("", squeue_code=1)
    answer = _executor(tmp_path, transport).poll(["7", "8"])
    assert answer["7"] == Observation(JobStatus.SUCCEEDED, 0)
    assert answer["8"] == Observation(
        JobStatus.FAILED, 3, "Slurm job 8 ended FAILED with exit code 3"
    )


def test_a_hung_squeue_is_backend_unavailable_not_a_crash(tmp_path: Path) -> None:
    transport = _slurm(subprocess.TimeoutExpired(["squeue"], 60))
    with pytest.raises(BackendUnavailableError, match="did not answer within 60s"):
        _executor(tmp_path, transport).poll(["5"])


def test_a_handle_that_is_not_a_slurm_id_is_answered_failed_without_a_command(
    tmp_path: Path,
) -> None:
    transport = _slurm("")
    answer = _executor(tmp_path, transport).poll(["--all"])
    assert answer["--all"].status == JobStatus.FAILED
    assert transport.calls == []
    _executor(tmp_path, transport).cancel("--user=root")
    assert transport.calls == []


def test_array_tasks_are_listed_once_per_array_and_asked_one_by_one_when_gone(
    tmp_path: Path,
) -> None:
    transport = _slurm("5_0 RUNNING None\n5_1 PENDING Resources\n")
    answer = _executor(tmp_path, transport).poll(["5_0", "5_1", "5_2", "7"])
    assert answer["5_0"] == Observation(JobStatus.RUNNING)
    assert answer["5_1"] == Observation(JobStatus.PENDING, reason="Resources")
    assert answer["5_2"] == Observation(
        JobStatus.FAILED, 3, "Slurm job 5_2 ended FAILED with exit code 3"
    )
    assert answer["7"] == Observation(JobStatus.SUCCEEDED, 0)
    assert transport.calls[0] == ["squeue", "-h", "-r", "-o", "%i %T %r", "-j", "5,7"]
    assert [argv[-1] for argv in transport.calls[1:]] == ["5_2", "7"]


def test_cancel_takes_job_and_array_task_ids_only(tmp_path: Path) -> None:
    transport = ScriptedTransport(lambda argv: done(argv))
    executor = _executor(tmp_path, transport)
    for handle in ("5_1", "12"):
        executor.cancel(handle)
    for handle in ("5_x", "5_", "_1", "5_1_2", "5_[1-3]", "--user=root", "\u0665"):
        executor.cancel(handle)
    assert transport.calls == [["scancel", "5_1"], ["scancel", "12"]]


def _batch(
    tmp_path: Path, transport: ScriptedTransport, n: int = 3
) -> tuple[SlurmExecutor, list[Job], list[str]]:
    executor = _executor(tmp_path, transport)
    service = _service()
    jobs = [_job(service) for _ in range(n)]
    return executor, jobs, executor.submit_batch(jobs, service)


def test_a_batch_is_one_sbatch_of_an_array_with_a_manifest(tmp_path: Path) -> None:
    transport = ScriptedTransport(lambda argv: done(argv, "12;cluster\n"))
    _, jobs, handles = _batch(tmp_path, transport)
    assert handles == ["12_0", "12_1", "12_2"]
    ((program, *options, script),) = transport.calls
    assert (program, options[-1]) == ("sbatch", "--array=0-2")  # on the command line: it wins
    manifest = Path(script).with_name("manifest").read_text().splitlines()
    folders = [tmp_path / "jobs" / job.name for job in jobs]
    assert manifest == [f"{task} {folder}" for task, folder in enumerate(folders)]
    for folder, handle in zip(folders, handles, strict=True):
        assert (folder / "slurm_id").read_text() == handle
        assert stat.S_IMODE((folder / "env").stat().st_mode) == 0o600
        assert (folder / "event").read_text() == "x"
    assert "--job-name=" + Path(script).parent.name in _directives(Path(script).read_text())
    assert _executor(tmp_path, transport).submit_batch(jobs, _service()) == handles
    assert len(transport.calls) == 1  # recorded: never submitted twice


def test_poll_reads_status_files_first_and_squeue_at_most_every_interval(tmp_path: Path) -> None:
    def answer(argv: list[str]) -> Answer:
        return done(argv, "12_2 RUNNING None\n" if argv[0] == "squeue" else "12\n")

    transport = ScriptedTransport(answer)
    executor, jobs, handles = _batch(tmp_path, transport)
    (tmp_path / "jobs" / jobs[0].name / "exit_status").write_text("0\n")
    (tmp_path / "jobs" / jobs[1].name / "exit_status").write_text("4\n")
    transport.calls.clear()
    expected = {
        "12_0": Observation(JobStatus.SUCCEEDED, 0),
        "12_1": Observation(JobStatus.FAILED, 4, "Slurm job 12_1 ended FAILED with exit code 4"),
        "12_2": Observation(JobStatus.RUNNING),
    }
    assert executor.poll(handles) == expected
    assert transport.calls == [["squeue", "-h", "-r", "-o", "%i %T %r", "-j", "12"]]
    executor.squeue_interval = 3600.0
    assert executor.poll(handles) == expected  # squeue's last answer, not a new squeue
    assert len(transport.calls) == 1
    executor.cancel("12_2")  # a cancelled job is asked about at once
    assert executor.poll(handles) == expected
    assert [argv[0] for argv in transport.calls] == ["squeue", "scancel", "squeue"]


def test_a_lost_array_sbatch_answer_is_found_by_the_arrays_name(tmp_path: Path) -> None:
    answers: list[Answer] = [subprocess.TimeoutExpired(["sbatch"], 60)]

    def answer(argv: list[str]) -> Answer:
        if argv[0] == "sbatch":
            return answers.pop(0)
        return done(argv, "31_[1-2]\n31_0\n")  # squeue --name, one task running

    transport = ScriptedTransport(answer)
    with pytest.raises(BackendUnavailableError, match="did not answer within 60s"):
        _batch(tmp_path, transport)
    (folder,) = (tmp_path / "jobs" / ".arrays").iterdir()
    jobs = [
        Job(name=Path(line).name, service="x", event="x", backend="slurm")
        for line in (folder / "manifest").read_text().splitlines()
    ]
    assert _executor(tmp_path, transport).submit_batch(jobs, _service()) == ["31_0", "31_1", "31_2"]
    assert [argv[0] for argv in transport.calls] == ["sbatch", "squeue"]
    assert transport.calls[1][-2:] == ["--name", folder.name]


def test_a_job_of_a_lost_array_handed_over_alone_is_not_submitted_again(tmp_path: Path) -> None:
    """The dispatcher may hand a job of a batch whose answer was lost back as a batch of one
    (`submit`): the array Slurm did accept is found first."""
    answers: list[Answer] = [subprocess.TimeoutExpired(["sbatch"], 60)]

    def answer(argv: list[str]) -> Answer:
        if argv[0] == "sbatch":
            return answers.pop(0)
        return done(argv, "31_1\n31_[0,2]\n")

    transport = ScriptedTransport(answer)
    with pytest.raises(BackendUnavailableError):
        _batch(tmp_path, transport)
    (folder,) = (tmp_path / "jobs" / ".arrays").iterdir()
    second = Path((folder / "manifest").read_text().splitlines()[1]).name
    job = Job(name=second, service="x", event="x", backend="slurm")
    assert _executor(tmp_path, transport).submit(job, _service()) == "31_1"
    assert [argv[0] for argv in transport.calls] == ["sbatch", "squeue"]


# --- several jobs per array task -------------------------------------------------------------
@pytest.mark.parametrize(
    ("handle", "parts"),
    [
        ("12", ("12", None)),
        ("12_3", ("12_3", None)),
        ("12_3.0", ("12_3", 0)),
        ("12_3.17", ("12_3", 17)),
        ("12.1", None),  # `.k` only after an array task
        ("12_3.", None),
        ("12_3.1.2", None),
        ("12_3.x", None),
        ("12_3.-1", None),
        ("--user=root.1", None),
        ("12_3.\u0665", None),
        ("12_3.1\n", None),
    ],
)
def test_handles_of_jobs_sharing_a_task_are_parsed_strictly(
    handle: str, parts: tuple[str, int | None] | None
) -> None:
    assert split_handle(handle) == parts


def test_chunks_are_contiguous_and_differ_by_at_most_one() -> None:
    assert [list(r) for r in chunks(5, 2)] == [[0, 1, 2], [3, 4]]
    assert [len(r) for r in chunks(1000, 256)].count(4) == 1000 - 3 * 256
    assert {len(r) for r in chunks(1000, 256)} == {3, 4}
    assert [list(r) for r in chunks(3, 3)] == [[0], [1], [2]]


def test_a_batch_bigger_than_array_tasks_runs_several_jobs_in_each_task(tmp_path: Path) -> None:
    transport = ScriptedTransport(lambda argv: done(argv, "12\n"))
    executor = _executor(tmp_path, transport)
    executor.array_tasks = 2
    service = _service()
    jobs = [_job(service) for _ in range(5)]
    handles = executor.submit_batch(jobs, service)
    assert handles == ["12_0.0", "12_0.1", "12_0.2", "12_1.0", "12_1.1"]
    ((*_, option, script),) = transport.calls
    assert option == "--array=0-1"  # two tasks, not five
    folders = [tmp_path / "jobs" / job.name for job in jobs]
    tasks = ["0", "0", "0", "1", "1"]
    assert Path(script).with_name("manifest").read_text().splitlines() == [
        f"{task} {folder}" for task, folder in zip(tasks, folders, strict=True)
    ]
    for folder, handle in zip(folders, handles, strict=True):
        assert (folder / "slurm_id").read_text() == handle
        assert (folder / "queued").exists()  # what the task claims when the job's turn comes
        name, suffix = (folder / "array").read_text().split()
        assert (name, f"12_{suffix}") == (Path(script).parent.name, handle)
    # Lost and found again: the same handles, `.k` included.
    for folder in folders:
        (folder / "slurm_id").unlink()
    found = ScriptedTransport(lambda argv: done(argv, "12_[0-1]\n"))
    again = _executor(tmp_path, found)
    again.array_tasks = 2
    assert again.submit_batch(jobs, service) == handles
    assert [argv[0] for argv in found.calls] == ["squeue"]


def _shared(tmp_path: Path, squeue: str) -> tuple[SlurmExecutor, ScriptedTransport, list[Path]]:
    """Five jobs in two tasks of array 5 (as `array_tasks = 2` makes them), Slurm scripted."""

    def answer(argv: list[str]) -> Answer:
        if argv[0] == "sbatch":
            return done(argv, "5\n")
        if argv[0] == "squeue":
            return done(argv, squeue)
        if argv[:3] == ["scontrol", "show", "job"]:
            state = {"5_0": "CANCELLED", "5_1": "COMPLETED"}[argv[-1]]
            return done(argv, f"JobId=9 JobState={state} Reason=None ExitCode=0:0\n")
        return done(argv)

    transport = ScriptedTransport(answer)
    executor = _executor(tmp_path, transport)
    executor.array_tasks = 2
    service = _service()
    jobs = [_job(service) for _ in range(5)]
    executor.submit_batch(jobs, service)
    transport.calls.clear()
    return executor, transport, [tmp_path / "jobs" / job.name for job in jobs]


def test_a_job_waiting_behind_an_earlier_one_of_its_task_is_pending(tmp_path: Path) -> None:
    """Regression: Slurm says the task RUNNING; only the job the task `started` runs, the
    later ones wait (reported RUNNING, the dispatcher's run timeout would count their wait)."""
    executor, transport, folders = _shared(tmp_path, "5_0 RUNNING None\n5_1 PENDING Priority\n")
    (folders[0] / "queued").rename(folders[0] / "started")
    (folders[0] / "exit_status").write_text("0\n")
    (folders[1] / "queued").rename(folders[1] / "started")
    executor.cancel("5_1.1")  # not started: only marked, nothing sent to Slurm
    assert transport.calls == []
    assert executor.poll(["5_0.0", "5_0.1", "5_0.2", "5_1.0", "5_1.1"]) == {
        "5_0.0": Observation(JobStatus.SUCCEEDED, 0),
        "5_0.1": Observation(JobStatus.RUNNING),
        "5_0.2": Observation(JobStatus.PENDING, reason=WAITING),
        "5_1.0": Observation(JobStatus.PENDING, reason="Priority"),
        "5_1.1": Observation(JobStatus.FAILED, reason="job 5_1.1 was cancelled before it started"),
    }
    assert transport.calls == [["squeue", "-h", "-r", "-o", "%i %T %r", "-j", "5"]]  # once
    assert not (folders[4] / "queued").exists()  # the task will skip it


def test_cancelling_a_running_job_of_a_shared_task_signals_that_task_alone(
    tmp_path: Path,
) -> None:
    executor, transport, folders = _shared(tmp_path, "5_0 RUNNING None\n")
    (folders[1] / "queued").rename(folders[1] / "started")
    executor.cancel("5_0.1")
    assert (folders[1] / "stop").exists()
    assert transport.calls == [["scancel", "--batch", "--signal=USR1", "5_0"]]  # never the task
    (folders[1] / "ended").write_text("143\n")  # what the task writes once it stopped the job
    assert executor.poll(["5_0.1"])["5_0.1"] == Observation(
        JobStatus.FAILED, reason="job 5_0.1 was cancelled while it ran"
    )
    executor.cancel("5_0.1")  # over: nothing more
    executor.cancel("5_9.1")  # a folder nobody follows: never scancel of the whole task
    assert transport.calls == [["scancel", "--batch", "--signal=USR1", "5_0"]]
    executor.cancel("12")  # a job alone: a plain scancel, as ever
    assert transport.calls[-1] == ["scancel", "12"]


def test_jobs_of_an_ended_task_without_a_word_of_their_own_take_its_verdict(
    tmp_path: Path,
) -> None:
    executor, _, folders = _shared(tmp_path, "")  # both tasks left the queue
    (folders[0] / "queued").rename(folders[0] / "started")  # running when the task was cancelled
    (folders[3] / "queued").rename(folders[3] / "started")
    (folders[3] / "exit_status").write_text("0\n")
    seen = executor.poll(["5_0.0", "5_0.1", "5_1.0", "5_1.1"])
    assert seen["5_0.0"] == Observation(JobStatus.FAILED, None, "Slurm job 5_0 ended CANCELLED")
    assert seen["5_0.1"] == Observation(
        JobStatus.FAILED, None, "Slurm job 5_0 ended CANCELLED, before this job started"
    )
    assert seen["5_1.0"] == Observation(JobStatus.SUCCEEDED, 0)
    # A task that completed without running a job of its own does not make it a success.
    assert seen["5_1.1"].status == JobStatus.FAILED
    assert seen["5_1.1"].reason == "Slurm job 5_1 ended COMPLETED, before this job started"


def _shared_task(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str) -> list[Path]:
    """Task 0 of an array whose manifest gives it three jobs (one in a hostile folder) and
    task 1 one job; the stand-in python runs `body` with the job's folder as $PWD."""
    _fake_python(tmp_path, monkeypatch, body)
    array_dir = tmp_path / "arrays" / "svc-array-1"
    array_dir.mkdir(parents=True)
    names = ["svc-a", "it's a $(touch PWNED) `x`", "svc-c", "svc-d"]
    folders = [tmp_path / "jobs" / name for name in names]
    for folder in folders:
        folder.mkdir(parents=True)
        (folder / "env").write_text(f"OUT={shlex.quote(str(tmp_path))}\n")
        (folder / "event").write_text(folder.name)
        (folder / "queued").write_text("")
    tasks = ["0", "0", "0", "1"]
    (array_dir / "manifest").write_text(
        "".join(f"{task} {folder}\n" for task, folder in zip(tasks, folders, strict=True))
    )
    service = _hostile(image="alpine$(touch${IFS}PWNED2)'", name="svc$(touch PWNED3)")
    (array_dir / "array.sh").write_text(
        _executor(tmp_path).array_script("svc-array-1", service, array_dir)
    )
    return folders


def test_a_task_runs_its_jobs_in_turn_skipping_a_cancelled_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folders = _shared_task(
        tmp_path,
        monkeypatch,
        'case $(cat) in svc-c) exit 3 ;; esac\nprintf "%s\\n" "$PWD" >> "$OUT/ran"\n',
    )
    (folders[0] / "queued").rename(folders[0] / "cancelled")  # cancelled before it started
    array_dir = tmp_path / "arrays" / "svc-array-1"
    result = _run_array_task(array_dir, "0", "/usr/bin:/bin")
    assert result.returncode == 3, result.stderr  # one of its jobs failed
    assert not list(tmp_path.rglob("PWNED*"))
    assert (tmp_path / "ran").read_text().splitlines() == [str(folders[1])]
    assert not (folders[0] / "log").exists() and not (folders[0] / "started").exists()
    for k, folder, code in [(1, folders[1], "0"), (2, folders[2], "3")]:
        assert (folder / "started").exists() and not (folder / "queued").exists()
        assert (folder / "exit_status").read_text() == f"{code}\n"
        header = (folder / "log").read_text().splitlines()[0]
        assert f"Slurm job 42_0.{k} on " in header and f"(job {folder.name} of service" in header
    assert not (folders[3] / "started").exists()  # task 1's


def test_a_stopped_job_ends_alone_and_its_task_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """oscar's cancel of a running job of a shared task: `stop` in its folder, then USR1 to
    the task's shell; that job's supervisor (and its script) stop, the next job runs."""
    folders = _shared_task(
        tmp_path,
        monkeypatch,
        'if [ "$(cat)" = svc-a ]; then sleep 30 & echo $! > "$OUT/script"; wait; fi\n',
    )
    shell = subprocess.Popen(
        ["/bin/sh", str(tmp_path / "arrays" / "svc-array-1" / "array.sh")],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "SLURM_ARRAY_JOB_ID": "42", "SLURM_ARRAY_TASK_ID": "0"},
    )
    try:
        script = common.wait_until(
            lambda: (tmp_path / "script").read_text().strip(), timeout=10, what="job 0 to run"
        )
        (folders[0] / "stop").write_text("")
        shell.send_signal(signal.SIGUSR1)
        assert shell.wait(timeout=20) == 128 + signal.SIGTERM  # job 0's status: the worst
    finally:
        shell.kill()
    assert (folders[0] / "ended").read_text() == "143\n"
    assert not (folders[0] / "exit_status").exists()
    # The user's script went with it (a zombie at most, re-parented to a lax init).
    status = Path(f"/proc/{script}/status")
    assert not status.exists() or "State:\tZ" in status.read_text()
    for folder in folders[1:3]:
        assert (folder / "exit_status").read_text() == "0\n"


# --- submitting ------------------------------------------------------------------------------
def test_submit_records_the_id_and_never_submits_twice(tmp_path: Path) -> None:
    transport = ScriptedTransport(lambda argv: done(argv, "12;cluster\n"))
    executor = _executor(tmp_path, transport)
    service = _service()
    job = _job(service)
    assert executor.submit(job, service) == "12"
    assert _executor(tmp_path, transport).submit(job, service) == "12"  # a restarted server
    folder = tmp_path / "jobs" / job.name
    submitted = ["sbatch", "--parsable", "--no-requeue", "--export=ALL", str(folder / "job.sh")]
    assert transport.calls == [submitted]
    # ALL of the commands' environment, which is only what finds Slurm: nothing of the control
    # plane's (and no login environment for slurmd to load, which cost 1.2 s per job).
    assert set(transport.env) <= {"PATH", "SLURM_CONF"}
    assert SSHTransport("login").export == "--export=NONE"  # a login node's env is the user's
    env_file = folder / "env"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    env = dict(shlex.split(line)[0].split("=", 1) for line in env_file.read_text().splitlines())
    assert env["PYTHONPATH"] == str(Path(__file__).resolve().parents[3])
    assert env["JOB_UUID"] == job.name
    # No credential in the environment the batch shell exports (audit M3): the service's own
    # store keys are in 0600 files the supervisor consumes, never the admin's.
    assert not {"OSCAR_SERVICE_TOKEN", "MINIO_ACCESS_KEY", "MINIO_SECRET_KEY"} & set(env)
    assert env["SUPERVISOR_CONSUME_SECRETS"] == "1"
    keys = Path(env["PROVIDER_SECRETS_DIR"]) / "minio.default"
    assert stat.S_IMODE((keys / "secretKey").stat().st_mode) == 0o600
    assert (keys / "accessKey").read_text().startswith("oscar")
    for path in (folder / "job.sh", env_file, keys / "secretKey", keys / "accessKey"):
        assert service.token not in path.read_text()


def test_a_lost_sbatch_answer_is_found_by_name_instead_of_submitting_again(
    tmp_path: Path,
) -> None:
    answers: list[Answer] = [subprocess.TimeoutExpired(["sbatch"], 60)]

    def answer(argv: list[str]) -> Answer:
        if argv[0] == "sbatch":
            return answers.pop(0)
        return done(argv, "31\n")  # squeue --name finds the job Slurm did accept

    transport = ScriptedTransport(answer)
    executor = _executor(tmp_path, transport)
    service = _service()
    job = _job(service)
    with pytest.raises(
        BackendUnavailableError,
        match=r"^sbatch --parsable --no-requeue --export=ALL .* did not answer within 60s$",
    ):
        executor.submit(job, service)
    assert executor.submit(job, service) == "31"
    assert [argv[0] for argv in transport.calls] == ["sbatch", "squeue"]
    assert transport.calls[1][-2:] == ["--name", job.name]


def test_an_sbatch_answer_that_is_not_an_id_is_an_error(tmp_path: Path) -> None:
    transport = ScriptedTransport(lambda argv: done(argv, "Submitted batch job 5\n"))
    service = _service()
    with pytest.raises(ExecutorError, match="not a job id") as caught:
        _executor(tmp_path, transport).submit(_job(service), service)
    assert caught.value.stdout == "Submitted batch job 5\n"


# --- the command helper ----------------------------------------------------------------------
def test_a_failing_command_carries_argv_exit_code_stdout_and_stderr() -> None:
    argv = ["/bin/sh", "-c", "echo out; echo err >&2; exit 7"]
    with pytest.raises(ExecutorError) as caught:
        LocalTransport().run(argv)
    error = caught.value
    assert (error.argv, error.exit_code, error.stdout, error.stderr) == (argv, 7, "out\n", "err\n")
    assert "exited with 7" in str(error) and "err" in str(error) and "out" in str(error)


def test_a_missing_command_is_backend_unavailable() -> None:
    with pytest.raises(BackendUnavailableError, match="cannot run /nonexistent/sbatch"):
        LocalTransport().run(["/nonexistent/sbatch"])


def test_a_command_past_its_deadline_is_a_backend_timeout() -> None:
    transport = LocalTransport()
    transport.command_timeout = 0.2
    with pytest.raises(BackendTimeoutError, match=r"did not answer within 0\.2s"):
        transport.run(["/bin/sleep", "30"])


def test_commands_get_path_and_slurm_conf_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OSCAR_ADMIN_PASSWORD", "secret")
    monkeypatch.setenv("SBATCH_PARTITION", "elsewhere")
    output = LocalTransport({"SLURM_CONF": "/etc/x.conf"}).run(["/usr/bin/env"])
    variables = dict(line.split("=", 1) for line in output.splitlines())
    assert variables == {"PATH": os.environ["PATH"], "SLURM_CONF": "/etc/x.conf"}


def test_ssh_sets_the_settings_env_on_the_login_node() -> None:
    transport = SSHTransport("login.example.org", {"SLURM_CONF": "/etc/slurm it.conf"})
    argv = transport.argv(["squeue", "-h", "-o", "%i %T %r"])
    assert argv[:4] == ["ssh", "-o", "BatchMode=yes", "login.example.org"]
    assert shlex.split(argv[4]) == [
        "env",
        "SLURM_CONF=/etc/slurm it.conf",
        "squeue",
        "-h",
        "-o",
        "%i %T %r",
    ]
    assert "SLURM_CONF" not in transport.env


def test_ssh_failing_to_connect_is_backend_unavailable() -> None:
    class Unreachable(SSHTransport):
        def execute(self, argv: list[str]) -> subprocess.CompletedProcess[str]:
            return done(argv, "", 255, "ssh: connect to host login port 22: No route to host")

    with pytest.raises(BackendUnavailableError, match="ssh to login failed"):
        Unreachable("login").run(["squeue"])
