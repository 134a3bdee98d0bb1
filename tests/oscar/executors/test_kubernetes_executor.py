"""The Kubernetes executor: its reading of Jobs and Pods and its error translation (no cluster),
then against the real control plane, where kwok nodes run the upstream Job."""

from __future__ import annotations

import asyncio
import datetime
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import MaxRetryError, NewConnectionError

from oscar.errors import BackendError, BackendUnavailableError, ConfigurationError
from oscar.executors import kube
from oscar.executors.base import Observation
from oscar.executors.kubernetes import (
    GONE,
    KubernetesExecutor,
    exit_status,
    latest_pod,
    observe,
    waiting_reason,
)
from oscar.models.job import Job, JobStatus, new_job_name
from oscar.models.service import Service
from oscar.models.storage import MinIOProvider
from oscar.models.validation import parse_service
from tests.fixtures.harness_kubernetes import KubernetesHarness, kubernetes_harness  # noqa: F401
from tests.fixtures.kube import namespace_with_supervisor_volume
from tests.fixtures.services import minimal_service
from tests.services import common
from tests.services.kubernetes import FAKE_NODE_ANNOTATION, KubernetesCluster

NOW = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)


# --- reading Jobs and Pods -----------------------------------------------------------------------


def _job(*conditions: tuple[str, str], deleting: bool = False) -> client.V1Job:
    return client.V1Job(
        metadata=client.V1ObjectMeta(name="j", deletion_timestamp=NOW if deleting else None),
        status=client.V1JobStatus(
            conditions=[
                client.V1JobCondition(type=kind, status="True", message=message)
                for kind, message in conditions
            ]
        ),
    )


def _pod(
    phase: str,
    *,
    terminated: client.V1ContainerStateTerminated | None = None,
    waiting: client.V1ContainerStateWaiting | None = None,
    unschedulable: str | None = None,
    node: str | None = "node-1",
    age: int = 0,
    deleting: bool = False,
) -> client.V1Pod:
    state = client.V1ContainerState(terminated=terminated, waiting=waiting)
    conditions = (
        [client.V1PodCondition(type="PodScheduled", status="False", message=unschedulable)]
        if unschedulable
        else []
    )
    return client.V1Pod(
        metadata=client.V1ObjectMeta(
            name=f"p{age}",
            creation_timestamp=NOW + datetime.timedelta(seconds=age),
            deletion_timestamp=NOW if deleting else None,
        ),
        spec=client.V1PodSpec(containers=[], node_name=node),
        status=client.V1PodStatus(
            phase=phase,
            conditions=conditions,
            container_statuses=[
                client.V1ContainerStatus(
                    name="oscar-container",
                    image="alpine",
                    image_id="",
                    ready=False,
                    restart_count=0,
                    state=state,
                )
            ],
        ),
    )


def test_a_complete_job_succeeded() -> None:
    assert observe(_job(("Complete", "")), []) == Observation(JobStatus.SUCCEEDED, 0)
    assert observe(_job(("SuccessCriteriaMet", "")), []).status == JobStatus.SUCCEEDED


def test_a_failed_job_reports_the_containers_exit_code_and_the_condition_message() -> None:
    ended = client.V1ContainerStateTerminated(exit_code=3, reason="Error", message="boom")
    observed = observe(_job(("Failed", "backoff limit")), [_pod("Failed", terminated=ended)])
    assert observed == Observation(JobStatus.FAILED, 3, "backoff limit: Error: boom")
    # Kubernetes 1.31+ writes FailureTarget first: the outcome is known from then on.
    early = observe(_job(("FailureTarget", "backoff limit")), [_pod("Failed", terminated=ended)])
    assert early == observed
    # Without a pod (deleted, evicted) the condition still ends the job, without a code.
    assert observe(_job(("Failed", "deadline")), []) == Observation(
        JobStatus.FAILED, None, "deadline"
    )


def test_running_pending_and_gone() -> None:
    assert observe(_job(), [_pod("Running")]).status == JobStatus.RUNNING
    # A pod that ended before its Job's condition was written has run all the same.
    assert observe(_job(), [_pod("Succeeded")]).status == JobStatus.RUNNING
    assert observe(None, []) == Observation(JobStatus.FAILED, None, GONE)
    assert observe(_job(deleting=True), [_pod("Running")]).status == JobStatus.FAILED
    pending = observe(_job(), [])
    assert pending.status == JobStatus.PENDING
    assert pending.reason


def test_the_waiting_reason_of_a_pending_pod() -> None:
    message = "0/3 nodes are available: 3 Insufficient cpu."
    assert waiting_reason(_pod("Pending", unschedulable=message, node=None)) == message
    pulling = client.V1ContainerStateWaiting(reason="ImagePullBackOff", message="no such image")
    assert waiting_reason(_pod("Pending", waiting=pulling)) == "ImagePullBackOff: no such image"
    creating = client.V1ContainerStateWaiting(reason="ContainerCreating")
    assert "node-1" in waiting_reason(_pod("Pending", waiting=creating))
    observed = observe(_job(), [_pod("Pending", unschedulable=message, node=None)])
    assert observed == Observation(JobStatus.PENDING, None, message)


def test_the_newest_live_pod_speaks_for_the_job() -> None:
    old, new, leaving = _pod("Failed", age=1), _pod("Running", age=2), _pod("Running", age=3)
    leaving.metadata.deletion_timestamp = NOW
    assert latest_pod([old, leaving, new]) is new
    assert latest_pod([]) is None
    assert exit_status(None) == (None, "")


# --- error translation -----------------------------------------------------------------------


def _api_error(status: int, message: str = "nope", headers: dict[str, str] | None = None) -> Any:
    error = ApiException(status=status, reason="Reason")
    error.body = f'{{"kind": "Status", "message": "{message}"}}'
    error.headers = headers
    return error


def _failing(error: BaseException) -> Callable[..., Any]:
    def method(*args: Any, **kwargs: Any) -> Any:
        raise error

    return method


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (404, kube.NotFoundError),
        (409, kube.ConflictError),
        (401, kube.RefusedError),
        (403, kube.RefusedError),
        (422, kube.KubeError),
        (429, BackendUnavailableError),
        (500, BackendUnavailableError),
        (503, BackendUnavailableError),
    ],
)
def test_api_errors_become_oscar_errors(status: int, kind: type[Exception]) -> None:
    with pytest.raises(kind) as caught:
        kube.call("create", "Job ns/j", _failing(_api_error(status, "the API said so")))
    assert isinstance(caught.value, BackendError)
    assert "create Job ns/j" in str(caught.value)
    assert "the API said so" in str(caught.value)


def test_refusals_name_the_verb_and_the_object() -> None:
    with pytest.raises(kube.RefusedError, match=r"refused to delete Job ns/j \(403 Forbidden\)"):
        kube.call("delete", "Job ns/j", _failing(_api_error(403)))


def test_retry_after_comes_from_the_header() -> None:
    with pytest.raises(BackendUnavailableError) as caught:
        kube.call("list", "Jobs", _failing(_api_error(429, headers={"Retry-After": "7"})))
    assert caught.value.retry_after == 7.0
    with pytest.raises(BackendUnavailableError) as caught:
        kube.call("list", "Jobs", _failing(_api_error(503)))
    assert caught.value.retry_after is None


def test_connection_failures_are_unavailable_and_other_errors_pass() -> None:
    refused = MaxRetryError(None, "/apis", NewConnectionError(None, "Connection refused"))  # type: ignore[arg-type]
    with pytest.raises(BackendUnavailableError, match=r"unreachable.*Connection refused"):
        kube.call("list", "Jobs", _failing(refused))
    with pytest.raises(KeyError):  # not a client error: a bug, left alone
        kube.call("list", "Jobs", _failing(KeyError("x")))


def test_every_call_is_bounded_in_time() -> None:
    seen: dict[str, Any] = {}
    kube.call("read", "x", lambda **kwargs: seen.update(kwargs))
    assert seen["_request_timeout"] == kube.REQUEST_TIMEOUT


def test_a_missing_kubeconfig_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot configure the Kubernetes client"):
        kube.api_client(tmp_path / "absent.kubeconfig")


class _Lists:
    """Stands in for BatchV1Api/CoreV1Api list calls: counts them, returns nothing."""

    def __init__(self) -> None:
        self.selectors: list[str] = []

    def __call__(self, namespace: str, **kwargs: Any) -> Any:
        self.selectors.append(kwargs["label_selector"])
        return client.V1JobList(items=[], metadata=client.V1ListMeta())


def test_poll_lists_jobs_and_pods_once_per_hundred_handles() -> None:
    executor = KubernetesExecutor(client.ApiClient(), "ns")
    jobs, pods = _Lists(), _Lists()
    executor._batch = type("Batch", (), {"list_namespaced_job": staticmethod(jobs)})()
    executor._core = type("Core", (), {"list_namespaced_pod": staticmethod(pods)})()
    handles = [f"svc-{uuid.uuid4()}" for _ in range(150)]

    observed = executor.poll([*handles, "Not A Name!"])

    assert len(jobs.selectors) == len(pods.selectors) == 2
    assert jobs.selectors[0] == f"oscar_job in ({','.join(handles[:100])})"
    assert pods.selectors[1] == f"job-name in ({','.join(handles[100:])})"
    assert {o.reason for h, o in observed.items() if h in handles} == {GONE}
    assert observed["Not A Name!"].status == JobStatus.FAILED
    assert executor.poll([]) == {}
    assert len(jobs.selectors) == 2  # nothing to ask: no request


# --- against the real control plane ----------------------------------------------------------


def _job_for(service: Service, event: str = "e") -> Job:
    return Job(
        name=new_job_name(service.name), service=service.name, event=event, backend="kubernetes"
    )


def _until(
    executor: KubernetesExecutor, job: Job, done: Callable[[Observation], bool], what: str
) -> Observation:
    """Poll the job until `done` holds for its observation; return that observation."""

    def probe() -> Observation | None:
        observed = executor.poll([job.name])[job.name]
        return observed if done(observed) else None

    return common.wait_until(probe, timeout=60, what=what)


def _count_lists(executor: KubernetesExecutor) -> list[str]:
    """Record each list call the executor makes from now on (by method name)."""
    calls: list[str] = []

    def counting(real: Callable[..., Any], name: str) -> Callable[..., Any]:
        def counted(*args: Any, **kwargs: Any) -> Any:
            calls.append(name)
            return real(*args, **kwargs)

        return counted

    for api, method in (
        (executor._batch, "list_namespaced_job"),
        (executor._core, "list_namespaced_pod"),
    ):
        setattr(api, method, counting(getattr(api, method), method))
    return calls


def _terminal(executor: KubernetesExecutor, job: Job) -> Observation:
    return _until(executor, job, lambda o: o.terminal, f"job {job.name} ended")


@pytest.mark.kubernetes
def test_jobs_mount_their_services_scoped_keys_never_the_admin_keys(
    kubernetes: KubernetesCluster,
) -> None:
    # Audit H1: every Job mounted the Secret `minio` holding the store's admin keys.
    import base64

    from oscar.storage.scoped import service_keys

    api, namespace = namespace_with_supervisor_volume(kubernetes)
    kube.provision(api, namespace)  # idempotent, and no longer writes an admin-keys Secret
    kube.provision(api, namespace)
    admin = MinIOProvider(access_key="admin", secret_key="admin-secret-0123456789")
    executor = KubernetesExecutor(api, namespace, timeout=60, store=admin)
    service = parse_service(minimal_service("scoped-keys", token="a" * 64))
    job = _job_for(service, '{"x": 1}')
    executor.submit(job, service)
    core = client.CoreV1Api(api)
    secret = core.read_namespaced_secret(kube.store_secret_name(service.name), namespace)
    decoded = {k: base64.b64decode(v).decode() for k, v in secret.data.items()}
    access, secret_key = service_keys(admin.secret_key, service.name)
    assert decoded == {"accessKey": access, "secretKey": secret_key}
    assert "admin-secret-0123456789" not in decoded.values()
    names = {s.metadata.name for s in core.list_namespaced_secret(namespace).items}
    assert "minio" not in names
    manifest = client.BatchV1Api(api).read_namespaced_job(job.name, namespace)
    volumes = {v.name: v for v in manifest.spec.template.spec.volumes}
    assert volumes["minio-credentials"].secret.secret_name == kube.store_secret_name(service.name)
    executor.cancel(job.name)


@pytest.mark.kubernetes
def test_job_runs_to_completion_on_a_kwok_node(kubernetes: KubernetesCluster) -> None:
    kubernetes.create_fake_node(f"kwok-{uuid.uuid4().hex[:6]}")
    api, namespace = namespace_with_supervisor_volume(kubernetes)
    executor = KubernetesExecutor(api, namespace, timeout=120)
    # 30 characters: the job name cuts it to 16, and JOB_UUID must still be the name's suffix.
    service = parse_service(minimal_service("k8s-svc-with-a-30-char-name-xy", token="a" * 64))
    job = _job_for(service, '{"x": 1}')

    assert executor.submit(job, service) == job.name
    assert _terminal(executor, job) == Observation(JobStatus.SUCCEEDED, 0)

    created = client.BatchV1Api(api).read_namespaced_job(job.name, namespace)
    assert created.spec.backoff_limit == 0
    container = created.spec.template.spec.containers[0]
    assert container.name == "oscar-container"
    env = {e.name: e.value for e in container.env}
    assert env["EVENT"] == '{"x": 1}'
    assert job.name == f"k8s-svc-with-a-3-{env['JOB_UUID']}"
    assert env["SUPERVISOR_TIMEOUT"] == "120"
    core = client.CoreV1Api(api)
    (pod,) = core.list_namespaced_pod(namespace, label_selector=f"job-name={job.name}").items
    # The scheduler picks any kwok node of the session's cluster (others' too), never none.
    placed = core.read_node(pod.spec.node_name)
    assert placed.metadata.annotations[FAKE_NODE_ANNOTATION] == "fake"
    assert executor.logs(job) == ""  # kwok serves no container logs
    assert executor.logs(job, tail=5) == ""

    executor.cleanup(job)
    executor.cleanup(job)  # already gone: fine
    jobs = client.BatchV1Api(api).list_namespaced_job(namespace).items
    assert all(j.metadata.deletion_timestamp for j in jobs)
    assert executor.poll([job.name])[job.name] == Observation(JobStatus.FAILED, None, GONE)


@pytest.mark.kubernetes
def test_resubmitting_the_same_job_is_idempotent(kubernetes: KubernetesCluster) -> None:
    api, namespace = namespace_with_supervisor_volume(kubernetes)
    executor = KubernetesExecutor(api, namespace, timeout=60)
    service = parse_service(minimal_service("k8s-idem", token="b" * 64))
    job = _job_for(service)
    executor.submit(job, service)
    # A restarted control plane re-dispatching the same record gets the same handle.
    assert KubernetesExecutor(api, namespace).submit(job, service) == job.name
    assert len(client.BatchV1Api(api).list_namespaced_job(namespace).items) == 1


@pytest.mark.kubernetes
def test_outcomes_reasons_and_one_list_per_poll(
    kubernetes_harness: KubernetesHarness,  # noqa: F811
) -> None:
    """Fail, hold and queued jobs polled together: each state with its reason, and the whole
    batch answered by one list of Jobs and one of Pods."""
    harness = kubernetes_harness
    executor = harness.executor()
    assert isinstance(executor, KubernetesExecutor)
    services = {b: harness.service(b) for b in ("fail", "hold", "queued")}
    jobs = {b: _job_for(s) for b, s in services.items() if s is not None}
    for behaviour, job in jobs.items():
        executor.submit(job, services[behaviour])  # type: ignore[arg-type]
    unknown = f"gone-{uuid.uuid4()}"

    def settled() -> dict[str, Observation] | None:
        observed = executor.poll([*(j.name for j in jobs.values()), unknown])
        ready = (
            observed[jobs["fail"].name].terminal
            and observed[jobs["hold"].name].status == JobStatus.RUNNING
            and "Insufficient cpu" in observed[jobs["queued"].name].reason
        )
        return observed if ready else None

    observed = common.wait_until(settled, timeout=harness.patience, what="three outcomes")
    failed = observed[jobs["fail"].name]
    assert (failed.status, failed.exit_code) == (JobStatus.FAILED, harness.fail_exit_code)
    assert "backoff limit" in failed.reason
    assert "the script failed" in failed.reason  # kwok's container message
    assert observed[jobs["queued"].name].status == JobStatus.PENDING
    assert observed[unknown] == Observation(JobStatus.FAILED, None, GONE)

    calls = _count_lists(executor)
    executor.poll([j.name for j in jobs.values()])
    assert sorted(calls) == ["list_namespaced_job", "list_namespaced_pod"]


@pytest.mark.kubernetes
def test_cancel_stops_a_running_and_a_queued_job(
    kubernetes_harness: KubernetesHarness,  # noqa: F811
) -> None:
    harness = kubernetes_harness
    executor = harness.executor()
    assert isinstance(executor, KubernetesExecutor)
    hold_service, queued_service = harness.service("hold"), harness.service("queued")
    assert hold_service is not None and queued_service is not None
    hold, queued = _job_for(hold_service), _job_for(queued_service)
    executor.submit(hold, hold_service)
    executor.submit(queued, queued_service)
    _until(executor, hold, lambda o: o.status == JobStatus.RUNNING, "held job running")
    _until(executor, queued, lambda o: "Insufficient cpu" in o.reason, "queued job waiting")
    for job in (hold, queued):
        executor.cancel(job.name)
        assert not harness.work_alive(job)  # the Job and its pods are being deleted at once
        executor.cancel(job.name)  # already gone: fine
    assert harness.runs(hold) == 1
    assert harness.runs(queued) == 0  # never scheduled: never started
    assert executor.poll([hold.name])[hold.name].reason == GONE


@pytest.mark.kubernetes
def test_harness_smoke(kubernetes_harness: KubernetesHarness) -> None:  # noqa: F811
    """Each behaviour does what the contract tests rely on, and the counts are honest."""
    harness = kubernetes_harness
    executor = harness.executor()
    service = harness.service("succeed")
    assert service is not None and len(service.token) == 64
    job = _job_for(service)
    assert not harness.work_alive(job) and harness.runs(job) == 0
    executor.submit(job, service)
    assert harness.work_alive(job)
    assert _terminal(executor, job).status == JobStatus.SUCCEEDED
    assert not harness.work_alive(job)  # the Job is kept for its logs, but runs nothing
    assert harness.runs(job) == 1
    # A restarted control plane (a new executor) resubmitting it starts nothing new.
    harness.executor().submit(job, service)
    executor.cleanup(job)
    assert (
        client.BatchV1Api(harness.batch.api_client)
        .list_namespaced_job(harness.namespace, label_selector=f"oscar_job={job.name}")
        .items
        == []
    )
    assert harness.runs(job) == 1  # still counted (from the watch) once the pod is gone


@pytest.mark.kubernetes
def test_run_sync_returns_the_log_and_deletes_its_job(
    kubernetes_harness: KubernetesHarness,  # noqa: F811
) -> None:
    harness = kubernetes_harness
    executor = harness.executor()
    assert isinstance(executor, KubernetesExecutor)
    batch = client.BatchV1Api(harness.batch.api_client)

    def jobs_of(service: Service) -> list[Any]:
        return batch.list_namespaced_job(
            harness.namespace, label_selector=f"oscar_service={service.name}"
        ).items

    ok = harness.service("succeed")
    assert ok is not None
    assert asyncio.run(executor.run_sync(ok, b"aGVsbG8=", 60)).exit_code == 0
    assert all(j.metadata.deletion_timestamp for j in jobs_of(ok))

    failing = harness.service("fail")
    assert failing is not None
    result = asyncio.run(executor.run_sync(failing, b"x", 60))
    assert result.exit_code == harness.fail_exit_code
    assert "backoff limit" in result.log

    held = harness.service("hold")
    assert held is not None
    timed_out = asyncio.run(executor.run_sync(held, b"x", 1.5))
    assert timed_out.exit_code == 124 and "1.5s timeout" in timed_out.log
    common.wait_until(
        lambda: all(j.metadata.deletion_timestamp for j in jobs_of(held)),
        timeout=10,
        what="the timed-out run's Job deleted",
    )


@pytest.mark.kubernetes
def test_cancelling_run_sync_deletes_its_job(
    kubernetes_harness: KubernetesHarness,  # noqa: F811
) -> None:
    """The client went away: the coroutine is cancelled and the pod must not run on."""
    harness = kubernetes_harness
    executor = harness.executor()
    assert isinstance(executor, KubernetesExecutor)
    held = harness.service("hold")
    assert held is not None
    batch = client.BatchV1Api(harness.batch.api_client)
    selector = f"oscar_service={held.name}"

    def running_job() -> Any:
        jobs = batch.list_namespaced_job(harness.namespace, label_selector=selector).items
        return jobs[0] if jobs and (jobs[0].status.active or 0) > 0 else None

    async def scenario() -> str:
        task = asyncio.ensure_future(executor.run_sync(held, b"x", 120))
        loop = asyncio.get_running_loop()
        job = await loop.run_in_executor(
            None, lambda: common.wait_until(running_job, timeout=60, what="sync Job running")
        )
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return str(job.metadata.name)

    name = asyncio.run(scenario())
    job = Job(name=name, service=held.name, backend="kubernetes")
    assert not harness.work_alive(job)
    assert harness.runs(job) == 1


@pytest.mark.kubernetes
def test_oscar_serve_on_kubernetes(
    kubernetes: KubernetesCluster, start_oscar: Any, tmp_path: Any
) -> None:
    """Services as ConfigMaps, jobs as Kubernetes Jobs, and both survive a restart."""
    node = f"kwok-{uuid.uuid4().hex[:6]}"
    kubernetes.create_fake_node(node)
    api, namespace = namespace_with_supervisor_volume(kubernetes)
    env = {
        "OSCAR_EXECUTOR": "kubernetes",
        "OSCAR_REGISTRY": "kubernetes",
        "OSCAR_KUBECONFIG": str(kubernetes.kubeconfig),
        "OSCAR_SERVICES_NAMESPACE": namespace,
    }
    server = start_oscar(extra_env=env)
    http = server.client()
    assert http.post("/system/services", json=minimal_service("on-k8s")).status_code == 201
    core = client.CoreV1Api(api)
    assert "script.sh" in core.read_namespaced_config_map("on-k8s", namespace).data
    created = http.post("/job/on-k8s", content=b'{"hello": "k8s"}')
    assert created.status_code == 201
    job_name = created.headers["x-oscar-job-name"]
    common.wait_until(
        lambda: http.get("/system/logs/on-k8s").json()["jobs"][job_name]["status"] == "Succeeded",
        timeout=90,
        what="Kubernetes job Succeeded",
    )
    assert client.BatchV1Api(api).read_namespaced_job(job_name, namespace).status.succeeded == 1
    server.stop()

    # A restarted control plane with a fresh data directory still lists the service.
    again = start_oscar(data_dir=tmp_path / "fresh", extra_env=env)
    names = [s["name"] for s in again.client().get("/system/services").json()]
    assert names == ["on-k8s"]


@pytest.mark.kubernetes
def test_interlink_virtual_node_gets_the_interlink_pod(kubernetes: KubernetesCluster) -> None:
    import base64

    node = f"vk-slurm-{uuid.uuid4().hex[:6]}"
    kubernetes.create_fake_node(
        node,
        labels={"type": "virtual-kubelet"},
        taints=[
            {"key": "virtual-node.interlink/no-schedule", "value": "true", "effect": "NoSchedule"}
        ],
    )
    api, namespace = namespace_with_supervisor_volume(kubernetes)
    executor = KubernetesExecutor(api, namespace, timeout=120)
    service = parse_service(
        minimal_service(
            "hpc-svc",
            token="c" * 64,
            cpu="2",
            memory="4Gi",
            interlink_node_name=node,
            annotations={"job.vk.io/flags": "--time=00:30:00", "slurm-job.vk.io/pre-exec": "ml x"},
        )
    )
    job = _job_for(service, '{"e": 1}')
    executor.submit(job, service)
    assert _terminal(executor, job).status == JobStatus.SUCCEEDED

    created = client.BatchV1Api(api).read_namespaced_job(job.name, namespace)
    pod_spec = created.spec.template.spec
    assert pod_spec.node_selector == {"kubernetes.io/hostname": node}
    assert any(
        t.key == "virtual-node.interlink/no-schedule" and t.operator == "Exists"
        for t in pod_spec.tolerations
    )
    # The supervisor is installed on the HPC nodes (the default): no init container, and no
    # host volume, which could not follow the pod there; the configuration and the scoped
    # keys are Secrets the virtual kubelet sends with the pod.
    assert pod_spec.init_containers is None
    volumes = {v.name: v for v in pod_spec.volumes}
    assert not any(v.persistent_volume_claim or v.host_path for v in pod_spec.volumes)
    assert volumes["oscar-config"].secret.secret_name == "oscar-job-hpc-svc"
    assert volumes["minio-credentials"].secret.secret_name == "oscar-store-hpc-svc"
    container = pod_spec.containers[0]
    assert container.args == [
        "-c",
        'printf \'%s\' "$EVENT" | base64 -d | "$@"',
        "oscar-supervisor",
        sys.executable,
        "-m",
        "supervisor",
    ]
    event = next(e.value for e in container.env if e.name == "EVENT")
    assert base64.b64decode(event) == b'{"e": 1}'
    assert container.resources.limits == {"cpu": "2", "memory": "4Gi"}
    annotations = created.spec.template.metadata.annotations
    assert annotations["slurm-job.vk.io/flags"] == "--time=00:30:00"
    assert "job.vk.io/flags" not in annotations
    assert annotations["slurm-job.vk.io/pre-exec"] == "ml x"
    pods = client.CoreV1Api(api).list_namespaced_pod(
        namespace, label_selector=f"job-name={job.name}"
    )
    assert pods.items[0].spec.node_name == node  # the scheduler bound it to the virtual node


@pytest.mark.kubernetes
def test_a_normal_node_name_keeps_the_cloud_pod(kubernetes: KubernetesCluster) -> None:
    node = f"plain-{uuid.uuid4().hex[:6]}"
    kubernetes.create_fake_node(node)
    api, namespace = namespace_with_supervisor_volume(kubernetes)
    executor = KubernetesExecutor(api, namespace, timeout=60)
    service = parse_service(minimal_service("cloud-svc", interlink_node_name=node))
    job = _job_for(service)
    executor.submit(job, service)
    created = client.BatchV1Api(api).read_namespaced_job(job.name, namespace)
    assert created.spec.template.spec.node_selector is None


def test_an_event_too_large_for_the_jobs_event_variable_fails_saying_so() -> None:
    # A 200 KiB event made a Job whose container could not start (E2BIG) on a real cluster.
    from oscar.errors import ExecutorError

    executor = KubernetesExecutor(client.ApiClient(), "ns")
    service = parse_service(minimal_service("big-event", token="a" * 64))
    job = _job_for(service, "x" * (200 * 1024))
    with pytest.raises(ExecutorError, match="EVENT variable"):
        executor.submit(job, service)


# --- what a real pod needs (no cluster) ----------------------------------------------------------

ADMIN = MinIOProvider(
    endpoint="http://127.0.0.1:9000",
    access_key="admin",
    secret_key="admin-secret-0123456789",
    region="eu-west-3",
)


def _secret_service(name: str = "pod-needs") -> Service:
    return parse_service(
        minimal_service(
            name,
            token="d" * 64,
            script="echo from the script\n",
            input=[{"storage_provider": "minio", "path": f"{name}/in"}],
            output=[{"storage_provider": "minio", "path": f"{name}/out"}],
            environment={"variables": {"K": "v"}, "secrets": {"API_KEY": "s3cr3t value"}},
        )
    )


def test_the_pods_configuration_has_a_reachable_minio_default_and_the_services_secrets(
    tmp_path: Path,
) -> None:
    """The Secret mounted at `/oscar/config` is what our supervisor reads there: its
    `minio.default` is at the endpoint pods reach (`OSCAR_JOB_MINIO_ENDPOINT`) with the store's
    region and no key, the admin keys appear nowhere, the service's secrets are there for the
    script (as on the local backend), and the scoped keys come from the mounted store Secret."""
    import yaml

    from oscar.storage.scoped import job_store
    from supervisor.config import default_minio_credentials, load_provider_secrets, parse_config

    executor = KubernetesExecutor(
        client.ApiClient(), "ns", store=ADMIN, job_store_endpoint="http://minio.hpc.example:9000"
    )
    service = _secret_service()
    data = executor.job_config(service)
    assert set(data) == {"function_config.yaml", "script.sh"}
    assert data["script.sh"] == "echo from the script\n"
    text = data["function_config.yaml"]
    assert "admin-secret-0123456789" not in text and "d" * 64 not in text
    raw = yaml.safe_load(text)
    assert raw["storage_providers"]["minio"]["default"] == {
        "endpoint": "http://minio.hpc.example:9000",
        "region": "eu-west-3",
        "verify": True,
    }
    # The mounted store Secret, as the kubelet (or the interLink plugin) lays it out.
    keys = job_store(ADMIN, service.name)
    mounted = tmp_path / "providers" / "minio.default"
    mounted.mkdir(parents=True)
    (mounted / "accessKey").write_text(keys.access_key)
    (mounted / "secretKey").write_text(keys.secret_key)
    config = parse_config(text, {})
    assert config.secrets == {"API_KEY": "s3cr3t value"}
    assert config.variables == {"K": "v"}
    provider = default_minio_credentials(config, {}, load_provider_secrets(tmp_path / "providers"))
    assert provider["endpoint"] == "http://minio.hpc.example:9000"
    assert (provider["access_key"], provider["secret_key"]) == (keys.access_key, keys.secret_key)
    assert provider["secret_key"] != ADMIN.secret_key
    # Without an endpoint of its own, pods use the store's.
    plain = KubernetesExecutor(client.ApiClient(), "ns", store=ADMIN).job_config(service)
    endpoint = yaml.safe_load(plain["function_config.yaml"])["storage_providers"]["minio"]
    assert endpoint["default"]["endpoint"] == "http://127.0.0.1:9000"


def test_the_settings_reach_the_executor() -> None:
    from oscar.executors.factory import make_executors
    from oscar.executors.kubernetes_job import SupervisorSource
    from oscar.settings import Settings

    settings = Settings(
        executor="kubernetes",
        job_minio_endpoint="http://minio.cluster.local:9000",
        supervisor_image="registry.example/oscar-supervisor:1",
        supervisor_command="/oscar/bin/supervisor --workdir /scratch",
    )
    cloud, _ = make_executors(settings, ADMIN, client.ApiClient())
    assert isinstance(cloud, KubernetesExecutor)
    assert cloud.supervisor == SupervisorSource(
        "registry.example/oscar-supervisor:1", ("/oscar/bin/supervisor", "--workdir", "/scratch")
    )
    config = cloud.job_config(_secret_service())["function_config.yaml"]
    assert "http://minio.cluster.local:9000" in config


def test_an_event_too_large_once_base64_encoded_for_interlink_fails_saying_so() -> None:
    from oscar.errors import ExecutorError

    executor = KubernetesExecutor(client.ApiClient(), "ns")
    executor._virtual_node = lambda name: True  # type: ignore[method-assign]
    service = parse_service(minimal_service("big-hpc", token="a" * 64, interlink_node_name="vk"))
    job = _job_for(service, "x" * (100 * 1024))  # fits as is, not base64-encoded
    with pytest.raises(ExecutorError, match="EVENT variable"):
        executor.submit(job, service)


@pytest.mark.kubernetes
def test_the_job_mounts_its_configuration_and_keys_as_files_never_env(
    kubernetes: KubernetesCluster,
) -> None:
    """On the real API server: the Secret `oscar-job-<service>` holds the configuration the
    pod mounts at `/oscar/config`, is rewritten when the service changes, and nothing in the
    Job carries a key."""
    import base64
    import json

    import yaml

    api, namespace = namespace_with_supervisor_volume(kubernetes)
    executor = KubernetesExecutor(
        api, namespace, timeout=60, store=ADMIN, job_store_endpoint="http://minio.pods:9000"
    )
    service = _secret_service("pod-files")
    job = _job_for(service, '{"x": 1}')
    executor.submit(job, service)
    core = client.CoreV1Api(api)
    secret = core.read_namespaced_secret(f"oscar-job-{service.name}", namespace)
    data = {k: base64.b64decode(v).decode() for k, v in secret.data.items()}
    config = yaml.safe_load(data["function_config.yaml"])
    assert config["storage_providers"]["minio"]["default"]["endpoint"] == "http://minio.pods:9000"
    assert config["environment"]["secrets"] == {"API_KEY": "s3cr3t value"}
    assert data["script.sh"] == "echo from the script\n"
    created = client.BatchV1Api(api).read_namespaced_job(job.name, namespace)
    pod = created.spec.template.spec
    volumes = {v.name: v for v in pod.volumes}
    mounts = {m.mount_path: m.name for m in pod.containers[0].volume_mounts}
    assert volumes[mounts["/oscar/config"]].secret.secret_name == f"oscar-job-{service.name}"
    assert volumes[mounts["/var/run/secrets/providers/minio.default"]].secret.secret_name == (
        f"oscar-store-{service.name}"
    )
    assert not any(v.persistent_volume_claim for v in pod.volumes)
    dumped = json.dumps(api.sanitize_for_serialization(created))
    keys = job_store_keys(service.name)
    for value in (ADMIN.secret_key, keys.secret_key, keys.access_key, "s3cr3t value"):
        assert value not in dumped
    # An update reaches the next Job's pods.
    changed = service.model_copy(update={"script": "echo changed\n"})
    executor.submit(_job_for(changed), changed)
    secret = core.read_namespaced_secret(f"oscar-job-{service.name}", namespace)
    assert base64.b64decode(secret.data["script.sh"]).decode() == "echo changed\n"


def job_store_keys(service_name: str) -> MinIOProvider:
    from oscar.storage.scoped import job_store

    return job_store(ADMIN, service_name)
