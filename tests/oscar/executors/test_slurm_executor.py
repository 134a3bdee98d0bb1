"""The Slurm executor on the real one-node Slurm: directly, under a real dispatcher, and end to
end through `oscar serve` (routing `hpc` vs `cloud` give the same outputs)."""

from __future__ import annotations

import asyncio
import shlex
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from oscar.errors import BackendUnavailableError
from oscar.executors.base import Observation
from oscar.executors.fake import FakeExecutor
from oscar.executors.slurm import WAITING, SlurmExecutor
from oscar.executors.slurm_commands import LocalTransport, parse_sinfo
from oscar.jobs.dispatcher import Dispatcher
from oscar.jobs.store import JobStore
from oscar.models.job import Job, JobStatus, new_job_name
from oscar.models.service import Service
from oscar.models.storage import MinIOProvider
from oscar.models.validation import parse_service
from oscar.registry.memory import MemoryRegistry
from tests.fixtures.harness_slurm import SlurmHarness
from tests.fixtures.server import RunningServer, wait_object
from tests.fixtures.services import minimal_service
from tests.services import common
from tests.services.slurm import SlurmCluster

pytestmark = [pytest.mark.slurm, pytest.mark.slow]
SCRIPT = (
    'echo "processing $(basename "$INPUT_FILE_PATH")"\n'
    'tr a-z A-Z < "$INPUT_FILE_PATH" > "$TMP_OUTPUT_DIR/$(basename "$INPUT_FILE_PATH").up"\n'
)


def _job(service: Service) -> Job:
    return Job(name=new_job_name(service.name), service=service.name, event="x", backend="slurm")


def _until(
    executor: SlurmExecutor, handle: str, done: Callable[[Observation], bool], what: str
) -> Observation:
    """Poll the executor until `done` holds for the job's observation."""
    return common.wait_until(
        lambda: (seen := executor.poll([handle])[handle]) and done(seen) and seen,
        timeout=60,
        interval=0.2,
        what=what,
    )


def _ended_as_asked(
    executor: SlurmExecutor,
    harness: SlurmHarness,
    job: Job,
    handle: str,
    event: str,
    seen: Observation,
) -> None:
    """A job of an array ended as its event asked (`fail`: exit 3), ran once, with its own
    log and `exit_status`."""
    expected = (JobStatus.FAILED, 3) if event == "fail" else (JobStatus.SUCCEEDED, 0)
    assert (seen.status, seen.exit_code) == expected
    assert harness.runs(job) == 1
    log = executor.logs(job)
    assert f"Slurm job {handle} on " in log and f"(job {job.name} of service" in log
    assert ("the script failed with exit code 3" in log) == (event == "fail")
    assert (harness.jobs_dir / job.name / "exit_status").read_text() == f"{expected[1]}\n"


# --- the harness of the contract tests, and what only Slurm does ---------------------------
@pytest.mark.parametrize(
    ("behaviour", "status", "exit_code"),
    [("succeed", JobStatus.SUCCEEDED, 0), ("fail", JobStatus.FAILED, 3)],
)
def test_harness_jobs_end_as_asked_and_start_once(
    slurm_harness: SlurmHarness, behaviour: str, status: JobStatus, exit_code: int
) -> None:
    executor = slurm_harness.executor()
    service = slurm_harness.service(behaviour)  # type: ignore[arg-type]
    job = _job(service)
    handle = executor.submit(job, service)
    ended = _until(executor, handle, lambda o: o.terminal, f"{behaviour} job to end")
    assert (ended.status, ended.exit_code) == (status, exit_code)
    if status == JobStatus.FAILED:
        assert ended.reason == f"Slurm job {handle} ended FAILED with exit code 3"
    assert slurm_harness.runs(job) == 1
    assert not slurm_harness.work_alive(job)
    log = executor.logs(job)
    assert f"Slurm job {handle} on " in log
    ended_line = "Job finished" if exit_code == 0 else "the script failed with exit code 3"
    assert ended_line in log
    assert executor.logs(job, tail=1) == log.splitlines(keepends=True)[-1]


def test_a_held_job_runs_until_cancelled_and_a_new_instance_reattaches(
    slurm_harness: SlurmHarness,
) -> None:
    first = slurm_harness.executor()
    service = slurm_harness.service("hold")
    job = _job(service)
    handle = first.submit(job, service)
    _until(first, handle, lambda o: o.status == JobStatus.RUNNING, "held job to run")
    # Slurm says RUNNING once the batch step starts; the script itself follows the supervisor.
    common.wait_until(lambda: slurm_harness.runs(job) == 1, timeout=60, what="script started")
    assert slurm_harness.work_alive(job)
    restarted = slurm_harness.executor()
    assert restarted.submit(job, service) == handle  # the recorded id, nothing new submitted
    assert restarted.poll([handle])[handle].status == JobStatus.RUNNING
    restarted.cancel(handle)
    ended = _until(restarted, handle, lambda o: o.terminal, "cancelled job to end")
    assert ended.status == JobStatus.FAILED and "CANCELLED" in ended.reason
    common.wait_until(lambda: not slurm_harness.work_alive(job), timeout=60, what="job gone")
    assert slurm_harness.runs(job) == 1
    restarted.cancel(handle)  # already gone: fine


def test_a_queued_job_waits_with_slurms_reason_until_cancelled(
    slurm_harness: SlurmHarness,
) -> None:
    executor = slurm_harness.executor()
    service = slurm_harness.service("queued")
    job = _job(service)
    handle = executor.submit(job, service)
    waiting = _until(executor, handle, lambda o: o.reason == "BeginTime", "BeginTime reason")
    assert waiting.status == JobStatus.PENDING
    assert slurm_harness.work_alive(job)
    executor.cleanup(job)  # cancels the Slurm job and removes the folder
    assert not (slurm_harness.jobs_dir / job.name).exists()
    common.wait_until(lambda: not slurm_harness.work_alive(job), timeout=60, what="job gone")
    assert executor.poll([handle])[handle].reason == f"Slurm job {handle} ended CANCELLED"
    assert slurm_harness.runs(job) == 0


def test_ids_slurm_never_had_are_answered_failed(slurm: SlurmCluster, tmp_path: Path) -> None:
    transport = LocalTransport({"SLURM_CONF": str(slurm.conf_path)})
    executor = SlurmExecutor(tmp_path / "jobs", MinIOProvider(), transport, timeout=60)
    # One unknown id makes squeue exit non-zero; several make it print nothing.
    for ids in (["987654"], ["987654", "987655"]):
        answer = executor.poll(ids)
        assert answer == {
            i: Observation(JobStatus.FAILED, reason=f"Slurm no longer knows job {i}") for i in ids
        }
    executor.cancel("987654")  # unknown: fine


def test_annotation_flags_reach_slurm(slurm_harness: SlurmHarness) -> None:
    executor = slurm_harness.executor()
    service = parse_service(
        minimal_service(
            token="a" * 64,
            cpu="1",
            memory="128Mi",
            annotations={
                "slurm-job.vk.io/flags": "--begin=now+3600 --time=00:10:00",
                "job.vk.io/flags": "--comment='two words'",
            },
        )
    )
    job = _job(service)
    handle = executor.submit(job, service)
    fields = slurm_harness.cluster.job_state(handle)
    assert fields["TimeLimit"] == "00:10:00"
    assert fields["MinMemoryNode"] == "128M"
    assert fields["JobName"] == job.name
    text = slurm_harness.cluster.run(["scontrol", "show", "job", handle]).stdout
    assert "Comment=two words" in text


# --- bursts as job arrays ---------------------------------------------------------------------
class CountingTransport(LocalTransport):
    """The real transport, counting the commands it runs (by program) and able to lose the
    answer of the next `sbatch` it runs (a timeout after Slurm accepted the job)."""

    def __init__(self, env: dict[str, str]) -> None:
        super().__init__(env)
        self.commands: list[str] = []
        self.lose_next_sbatch = False

    def execute(self, argv: list[str]) -> subprocess.CompletedProcess[str]:
        self.commands.append(argv[0])
        result = super().execute(argv)
        if argv[0] == "sbatch" and self.lose_next_sbatch:
            self.lose_next_sbatch = False
            raise subprocess.TimeoutExpired(argv, self.command_timeout)
        return result


def _counted(harness: SlurmHarness) -> tuple[SlurmExecutor, CountingTransport]:
    """An executor of the harness (same jobs folder and cluster) over a counting transport."""
    transport = CountingTransport({"SLURM_CONF": str(harness.cluster.conf_path)})
    executor = SlurmExecutor(
        harness.jobs_dir, MinIOProvider(), transport, timeout=600.0, poll_interval=0.2
    )
    return executor, transport


def _event_service(harness: SlurmHarness) -> Service:
    """A service whose jobs fail with exit code 3 on the event `fail`, else succeed."""
    service = harness.service("succeed")
    script = service.script.replace("exit 0", 'case "$EVENT" in fail) exit 3 ;; esac')
    return service.model_copy(update={"script": script})


def _all_until(
    executor: SlurmExecutor, handles: list[str], done: Callable[[Observation], bool], what: str
) -> dict[str, Observation]:
    """Poll the executor until `done` holds for every handle's observation."""

    def check() -> dict[str, Observation] | None:
        seen = executor.poll(handles)
        return seen if all(h in seen and done(seen[h]) for h in handles) else None

    return common.wait_until(check, timeout=60, interval=0.1, what=what)


def test_a_burst_is_one_job_array_whose_jobs_end_on_their_own(
    slurm_harness: SlurmHarness,
) -> None:
    """Five jobs, one `sbatch`: each task ends with its own exit code, log and response; the
    ends are read from the jobs' `exit_status` files, and a restarted executor that `recover`s
    the jobs answers from those files without a single Slurm command."""
    executor, transport = _counted(slurm_harness)
    service = _event_service(slurm_harness)
    events = ["ok", "ok", "fail", "ok", "ok"]
    jobs = [_job(service).model_copy(update={"event": event}) for event in events]
    handles = executor.submit_batch(jobs, service)
    assert transport.commands.count("sbatch") == 1
    array_id = handles[0].split("_")[0]
    assert handles == [f"{array_id}_{task}" for task in range(5)]
    ended = _all_until(executor, handles, lambda o: o.terminal, "the array's jobs to end")
    for job, handle, event in zip(jobs, handles, events, strict=True):
        _ended_as_asked(executor, slurm_harness, job, handle, event, ended[handle])
        assert (slurm_harness.jobs_dir / job.name / "slurm_id").read_text() == handle
    assert ended[handles[2]].reason == f"Slurm job {handles[2]} ended FAILED with exit code 3"
    # A restarted control plane: recover gives it the folders, the files answer every job.
    recorded = [
        job.model_copy(update={"backend_id": h}) for job, h in zip(jobs, handles, strict=True)
    ]
    restarted, counted = _counted(slurm_harness)
    assert restarted.recover(recorded) == {job.name for job in jobs}
    assert restarted.poll(handles) == ended
    assert counted.commands == []
    # Without the files (another instance, nothing recovered) Slurm gives the same answer once
    # the batch shells, which wrote the files just before exiting, have ended for it too.
    unrecovered = _counted(slurm_harness)[0]
    common.wait_until(lambda: unrecovered.poll(handles) == ended, timeout=60, what="Slurm's view")
    assert restarted.submit_batch(jobs, service) == handles  # recorded: nothing submitted
    assert counted.commands == []


def test_cancelling_one_array_task_leaves_the_others_running(
    slurm_harness: SlurmHarness,
) -> None:
    executor, transport = _counted(slurm_harness)
    service = slurm_harness.service("hold")
    jobs = [_job(service), _job(service)]  # the node has two CPUs: both run
    first, second = executor.submit_batch(jobs, service)
    _all_until(executor, [first, second], lambda o: o.status == JobStatus.RUNNING, "running")
    common.wait_until(
        lambda: all(slurm_harness.runs(job) == 1 for job in jobs), timeout=60, what="scripts"
    )
    executor.cancel(first)
    ended = _until(executor, first, lambda o: o.terminal, "cancelled task to end")
    assert ended.status == JobStatus.FAILED and "CANCELLED" in ended.reason
    common.wait_until(lambda: not slurm_harness.work_alive(jobs[0]), timeout=60, what="gone")
    # A signalled run reports nothing itself: Slurm's verdict stands.
    assert not (slurm_harness.jobs_dir / jobs[0].name / "exit_status").exists()
    assert executor.poll([second])[second].status == JobStatus.RUNNING
    assert slurm_harness.work_alive(jobs[1])
    executor.cleanup(jobs[1])
    common.wait_until(lambda: not slurm_harness.work_alive(jobs[1]), timeout=60, what="gone")
    executor.cleanup(jobs[0])
    assert not any(executor.arrays_dir.iterdir())  # the array's folder went with its last job
    assert transport.commands.count("sbatch") == 1


def test_a_lost_array_sbatch_answer_is_found_by_name(slurm_harness: SlurmHarness) -> None:
    executor, transport = _counted(slurm_harness)
    service = slurm_harness.service("succeed")
    jobs = [_job(service) for _ in range(3)]
    transport.lose_next_sbatch = True
    with pytest.raises(BackendUnavailableError, match="did not answer"):
        executor.submit_batch(jobs, service)
    # The dispatcher hands the jobs over again (here: to a restarted control plane).
    restarted, counted = _counted(slurm_harness)
    handles = restarted.submit_batch(jobs, service)
    assert counted.commands == ["squeue"]  # found by the array's name, not submitted again
    assert transport.commands.count("sbatch") == 1
    assert len({h.split("_")[0] for h in handles}) == 1
    assert [h.split("_")[1] for h in handles] == ["0", "1", "2"]
    ended = _all_until(restarted, handles, lambda o: o.terminal, "the array's jobs to end")
    assert {o.status for o in ended.values()} == {JobStatus.SUCCEEDED}
    assert all(slurm_harness.runs(job) == 1 for job in jobs)


# --- several jobs per array task (array_tasks) ---------------------------------------------
def _gated_service(harness: SlurmHarness, gates: Path) -> Service:
    """A service whose jobs fail with 3 on the event `fail`, wait for the file `gates/<event>`
    on an event starting with `gate`, else succeed."""
    gates.mkdir(exist_ok=True)
    wait = f'while [ ! -e {shlex.quote(str(gates))}/"$EVENT" ]; do sleep 0.05; done'
    script = harness.service("succeed").script.replace(
        "exit 0", f'case "$EVENT" in fail) exit 3 ;; gate*) {wait} ;; esac'
    )
    return harness.service("succeed").model_copy(update={"script": script})


def _cancel_array_afterwards(
    request: pytest.FixtureRequest, harness: SlurmHarness, handle: str
) -> None:
    """scancel the whole array after the test, passed or not: the harness's own release
    cancels the recorded handles, and Slurm takes `<id>_<task>.<k>` for a job step."""
    array_id = handle.split("_")[0]
    request.addfinalizer(lambda: harness.cluster.run(["scancel", array_id], check=False))


def test_a_batch_bigger_than_array_tasks_runs_its_jobs_in_turn_in_fewer_tasks(
    slurm_harness: SlurmHarness, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Five events, `array_tasks = 2`: one sbatch of two tasks running 3 and 2 events in turn.
    The event waiting behind a running one of its task is pending with the reason; cancelling
    it leaves the others alone; every other event ends with its own exit code and log."""
    executor, transport = _counted(slurm_harness)
    executor.array_tasks = 2
    service = _gated_service(slurm_harness, tmp_path / "gates")
    events = ["gate", "ok", "ok", "fail", "ok"]
    jobs = [_job(service).model_copy(update={"event": event}) for event in events]
    handles = executor.submit_batch(jobs, service)
    _cancel_array_afterwards(request, slurm_harness, handles[0])
    assert transport.commands.count("sbatch") == 1
    array_id = handles[0].split("_")[0]
    assert handles == [f"{array_id}_{t}" for t in ("0.0", "0.1", "0.2", "1.0", "1.1")]
    first, waiting = handles[:2]
    common.wait_until(lambda: slurm_harness.runs(jobs[0]) == 1, timeout=60, what="gate to run")
    seen = _all_until(
        executor,
        [first, waiting],
        lambda o: o.status in (JobStatus.RUNNING, JobStatus.PENDING),
        "the task's first event running",
    )
    assert seen[first].status == JobStatus.RUNNING
    assert seen[waiting] == Observation(JobStatus.PENDING, reason=WAITING)
    listed = slurm_harness.cluster.run(["squeue", "-h", "-r", "-o", "%i", "-j", array_id])
    assert set(listed.stdout.split()) <= {f"{array_id}_0", f"{array_id}_1"}  # two tasks
    executor.cancel(waiting)
    (tmp_path / "gates" / "gate").touch()
    ended = _all_until(executor, handles, lambda o: o.terminal, "the array's events to end")
    assert ended[waiting] == Observation(
        JobStatus.FAILED, reason=f"job {waiting} was cancelled before it started"
    )
    assert slurm_harness.runs(jobs[1]) == 0
    for job, handle, event in zip(jobs, handles, events, strict=True):
        if handle != waiting:
            _ended_as_asked(executor, slurm_harness, job, handle, event, ended[handle])
    assert transport.commands.count("sbatch") == 1
    # A restarted control plane answers from the folders alone.
    recorded = [
        job.model_copy(update={"backend_id": h}) for job, h in zip(jobs, handles, strict=True)
    ]
    restarted, counted = _counted(slurm_harness)
    restarted.recover(recorded)
    assert restarted.poll(handles) == ended and counted.commands == []


def test_cancelling_a_running_event_lets_its_task_run_the_next(
    slurm_harness: SlurmHarness, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    executor, transport = _counted(slurm_harness)
    executor.array_tasks = 1
    service = _gated_service(slurm_harness, tmp_path / "gates")  # no gate file: `gate` blocks
    jobs = [_job(service).model_copy(update={"event": event}) for event in ("gate", "ok")]
    running, following = executor.submit_batch(jobs, service)
    _cancel_array_afterwards(request, slurm_harness, running)
    common.wait_until(lambda: slurm_harness.runs(jobs[0]) == 1, timeout=60, what="gate to run")
    assert executor.poll([following])[following] == Observation(JobStatus.PENDING, reason=WAITING)
    executor.cancel(running)
    ended = _all_until(executor, [running, following], lambda o: o.terminal, "both to end")
    assert ended[running] == Observation(
        JobStatus.FAILED, reason=f"job {running} was cancelled while it ran"
    )
    assert ended[following] == Observation(JobStatus.SUCCEEDED, 0)
    assert slurm_harness.runs(jobs[1]) == 1
    assert "--signal=USR1" not in " ".join(transport.commands)  # commands are programs only
    assert transport.commands.count("scancel") == 1


# --- regression: one timed-out Slurm command must not stop the polling ---------------------
class FirstSqueueHangs(LocalTransport):
    """The first `squeue -j` times out, as with a hung slurmctld; everything else is real."""

    def __init__(self, env: dict[str, str]) -> None:
        super().__init__(env)
        self.hung = 0

    def execute(self, argv: list[str]) -> subprocess.CompletedProcess[str]:
        if argv[0] == "squeue" and "-j" in argv and not self.hung:
            self.hung += 1
            raise subprocess.TimeoutExpired(argv, self.command_timeout)
        return super().execute(argv)


def test_a_hung_squeue_does_not_stop_following_slurm_jobs(
    slurm: SlurmCluster, tmp_path: Path
) -> None:
    """Finding: one `subprocess.TimeoutExpired` silently ended the shared Slurm poller, so
    every Slurm job then waited about an hour. The job must still end within seconds."""
    transport = FirstSqueueHangs({"SLURM_CONF": str(slurm.conf_path)})
    executor = SlurmExecutor(
        tmp_path / "jobs", MinIOProvider(), transport, timeout=120, poll_interval=0.2
    )
    registry = MemoryRegistry()
    service = parse_service(minimal_service(routing="hpc", token="a" * 64, cpu="1", memory="128Mi"))
    registry.create(service)
    store = JobStore(tmp_path / "jobs.db")
    dispatcher = Dispatcher(store, registry, FakeExecutor(), hpc=executor, job_timeout=120)

    def ended(name: str) -> Job | None:
        record = store.get(name)
        return record if record is not None and record.terminal else None

    async def scenario() -> Job:
        await dispatcher.start()
        try:
            job = await asyncio.to_thread(dispatcher.submit, service.name, "x")
            assert job is not None and job.backend == "slurm"
            return await asyncio.to_thread(
                common.wait_until, lambda: ended(job.name), timeout=30, what="Slurm job to end"
            )
        finally:
            await dispatcher.stop()

    try:
        record = asyncio.run(scenario())
    finally:
        store.close()
    assert transport.hung == 1
    assert record.status == JobStatus.SUCCEEDED, record.reason
    assert record.exit_code == 0 and record.backend_id


# --- end to end through `oscar serve` -------------------------------------------------------
def _service(name: str, routing: str, script: str = SCRIPT) -> dict[str, Any]:
    return minimal_service(
        name,
        script=script,
        routing=routing,
        cpu="1",
        memory="128Mi",
        annotations={"slurm-job.vk.io/flags": "--time=00:10:00"},
        input=[{"storage_provider": "minio.default", "path": f"{name}/in"}],
        output=[{"storage_provider": "minio.default", "path": f"{name}/out"}],
    )


@pytest.fixture
def hpc_oscar(slurm: SlurmCluster, start_oscar: Callable[..., RunningServer]) -> RunningServer:
    return start_oscar(
        extra_env={"OSCAR_HPC_EXECUTOR": "slurm", "OSCAR_SLURM_CONF": str(slurm.conf_path)}
    )


def _run_once(server: RunningServer, routing: str) -> tuple[bytes, dict[str, Any], list[str]]:
    api = server.client()
    name = f"{routing}-{uuid.uuid4().hex[:6]}"
    assert api.post("/system/services", json=_service(name, routing)).status_code == 201
    s3 = server.s3()
    s3.put_object(Bucket=name, Key="in/words.txt", Body=b"hello hpc\n")
    seen: list[str] = []

    def finished() -> dict[str, Any] | None:
        jobs = api.get(f"/system/logs/{name}").json()["jobs"]
        if not jobs:
            return None
        (job,) = jobs.values()
        if not seen or seen[-1] != job["status"]:
            seen.append(job["status"])
        return job if job["status"] in ("Succeeded", "Failed") else None

    job = common.wait_until(finished, timeout=120, interval=0.1, what=f"{routing} job")
    output = s3.get_object(Bucket=name, Key="out/words.txt.up")["Body"].read()
    (job_name,) = api.get(f"/system/logs/{name}").json()["jobs"]
    log = api.get(f"/system/logs/{name}/{job_name}").text
    return output, {**job, "log": log}, seen


def test_hpc_and_cloud_routing_give_the_same_output(hpc_oscar: RunningServer) -> None:
    hpc_output, hpc_job, hpc_states = _run_once(hpc_oscar, "hpc")
    cloud_output, cloud_job, _ = _run_once(hpc_oscar, "cloud")
    assert hpc_output == cloud_output == b"HELLO HPC\n"
    assert hpc_job["status"] == "Succeeded" and hpc_job["backend"] == "slurm"
    assert cloud_job["backend"] == "local"
    assert hpc_states[-1] == "Succeeded"
    assert set(hpc_states) <= {"Pending", "Running", "Succeeded"}
    assert "Slurm job" in hpc_job["log"] and "processing words.txt" in hpc_job["log"]


def test_failing_hpc_job_ends_failed(hpc_oscar: RunningServer) -> None:
    api = hpc_oscar.client()
    name = f"hpcfail-{uuid.uuid4().hex[:6]}"
    api.post("/system/services", json=_service(name, "hpc", script="echo bad; exit 5\n"))
    created = api.post(f"/job/{name}", content=b"x")
    job = created.headers["x-oscar-job-name"]
    record = common.wait_until(
        lambda: (
            (j := api.get(f"/system/logs/{name}").json()["jobs"][job])["status"] == "Failed" and j
        ),
        timeout=120,
        what="failed Slurm job",
    )
    assert record["exit_code"] == 5
    assert "FAILED" in record["reason"]


def test_deleting_a_running_hpc_job_cancels_it(
    hpc_oscar: RunningServer, slurm: SlurmCluster
) -> None:
    api = hpc_oscar.client()
    name = f"hpclong-{uuid.uuid4().hex[:6]}"
    api.post("/system/services", json=_service(name, "hpc", script="sleep 300\n"))
    job = api.post(f"/job/{name}", content=b"x").headers["x-oscar-job-name"]
    common.wait_until(
        lambda: api.get(f"/system/logs/{name}").json()["jobs"][job]["status"] == "Running",
        timeout=60,
        what="Slurm job running",
    )
    queued = slurm.run(["squeue", "-h", "-o", "%j %T"]).stdout
    assert f"{job} RUNNING" in queued
    assert api.delete(f"/system/logs/{name}/{job}").status_code == 204
    common.wait_until(
        lambda: job not in slurm.run(["squeue", "-h", "-o", "%j"]).stdout,
        timeout=60,
        what="Slurm job cancelled",
    )


def test_hpc_example_on_slurm_and_cloud(hpc_oscar: RunningServer) -> None:
    """The HPC example FDL, applied with routing hpc and with routing cloud: same predictions."""
    from oscar.models.fdl import load_fdl
    from tests.fixtures.services import EXAMPLES_DIR

    (entry,) = load_fdl(EXAMPLES_DIR / "hpc-inference" / "hpc-inference.yaml").services
    api, s3 = hpc_oscar.client(), hpc_oscar.s3()
    results = {}
    for routing in ("hpc", "cloud"):
        name = f"inference-{routing}"
        definition = entry.service.model_dump(mode="json", by_alias=True)
        definition.update(name=name, routing=routing)
        for role in ("input", "output"):
            for item in definition[role]:
                item["path"] = item["path"].replace("hpc-inference", name)
        assert api.post("/system/services", json=definition).status_code == 201
        s3.put_object(Bucket=name, Key="in/batch.csv", Body=b"1,0,1\n0,1,0\n2,2,2\n")
        results[routing] = wait_object(s3, name, "out/batch.predictions.json")
        (job,) = api.get(f"/system/logs/{name}").json()["jobs"].values()
        assert job["backend"] == ("slurm" if routing == "hpc" else "local")
    assert results["hpc"] == results["cloud"]
    assert b'"class": 1' in results["hpc"]


def test_status_lists_the_slurm_partitions(hpc_oscar: RunningServer, slurm: SlurmCluster) -> None:
    """`/system/status` on the HPC path: the partitions `sinfo` reports, summed per partition."""
    body = hpc_oscar.client().get("/system/status").json()
    assert body["hpc"]["backend"] == "slurm" and "error" not in body["hpc"]
    (partition,) = body["hpc"]["partitions"]
    assert partition["name"] == slurm.partition and partition["default"] is True
    assert partition["available"] is True and partition["nodes"] == 1
    assert partition["cpus"]["total"] == slurm.cpus
    assert partition["memory_per_node_bytes"] == slurm.memory_mb * 1024 * 1024
    assert sum(partition["node_states"].values()) == 1


def test_sinfo_groups_are_summed_per_partition() -> None:
    """sinfo prints a line per group of nodes in one state; a partition is their sum."""
    text = (
        "gpu*|up|2|8/24/0/32|64000|gpu:a100:4(S:0-1)|2-00:00:00|mixed\n"
        "gpu*|up|1|0/16/0/16|32000+|gpu:a100:2|2-00:00:00|idle\n"
        "cpu|down|3|0/0/48/48|128000|(null)|1:00:00|drained\n"
        "garbage line\n"
    )
    gpu, cpu = parse_sinfo(text)
    assert (gpu["name"], gpu["default"], gpu["nodes"]) == ("gpu", True, 3)
    assert gpu["cpus"] == {"allocated": 8, "idle": 40, "other": 0, "total": 48}
    assert gpu["memory_per_node_bytes"] == 32000 * 1024 * 1024  # the smallest node
    assert gpu["gpus_per_node"] == 4 and gpu["node_states"] == {"mixed": 2, "idle": 1}
    assert (cpu["available"], cpu["default"], cpu["gpus_per_node"]) == (False, False, 0)


def test_status_reports_a_slurm_that_does_not_answer(tmp_path: Path) -> None:
    transport = LocalTransport({"PATH": str(tmp_path)})  # no sinfo there
    executor = SlurmExecutor(tmp_path / "jobs", MinIOProvider(), transport, timeout=5)
    resources = executor.resources()
    assert resources["partitions"] == [] and resources["error"]
