"""Kubernetes executor: one `batch/v1` Job per event, exactly as upstream (§4).

Completion is followed with a watch on the Job (no polling loop); logs come from the Job's Pod,
container `oscar-container`. Deleting a job deletes its Pods (foreground propagation).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

from oscar.executors.base import Executor, JobResult
from oscar.executors.interlink import is_virtual_node, to_interlink
from oscar.executors.kubernetes_job import CONTAINER_NAME, job_manifest
from oscar.models.job import Job
from oscar.models.service import Service


class KubernetesExecutor(Executor):
    """Submits Jobs to a Kubernetes API server and watches them."""

    name = "kubernetes"

    def __init__(self, api_client: Any, namespace: str, timeout: float = 3600) -> None:
        from kubernetes import client

        self._api = api_client
        self._batch = client.BatchV1Api(api_client)
        self._core = client.CoreV1Api(api_client)
        self._errors = client.exceptions.ApiException
        self.namespace = namespace
        self.timeout = timeout

    def _job_uuid(self, job: Job) -> str:
        # Our job names are `<service>-<uuid4>`; the Job keeps the same name.
        return (
            job.name[len(job.service) + 1 :]
            if job.name.startswith(job.service + "-")
            else str(uuid.uuid4())
        )

    def _virtual_node(self, name: str) -> bool:
        """Whether `name` is an interLink virtual node right now (checked at every submission,
        not only at start-up as upstream does, so nodes that join later are used)."""
        try:
            node = self._core.read_node(name)
        except self._errors as exc:
            if exc.status == 404:
                return False
            raise
        return is_virtual_node(node.metadata.labels)

    def submit(self, job: Job, service: Service) -> str:
        """Create the Job (idempotent: an existing Job of that name is kept); return its name."""
        manifest = job_manifest(service, job.event, self._job_uuid(job), namespace=self.namespace)
        manifest["metadata"]["name"] = job.name
        if service.interlink_node_name and self._virtual_node(service.interlink_node_name):
            manifest = to_interlink(manifest, service.interlink_node_name)
        try:
            self._batch.create_namespaced_job(self.namespace, manifest)
        except self._errors as exc:
            if exc.status != 409:
                raise
        return job.name

    def _wait(self, name: str) -> JobResult:
        from kubernetes import watch

        stream = watch.Watch()
        try:
            for event in stream.stream(
                self._batch.list_namespaced_job,
                self.namespace,
                field_selector=f"metadata.name={name}",
                timeout_seconds=int(self.timeout),
            ):
                status = event["object"].status
                for condition in status.conditions or []:
                    if condition.status != "True":
                        continue
                    if condition.type in ("Complete", "SuccessCriteriaMet"):
                        return JobResult(0)
                    if condition.type == "Failed":
                        return JobResult(1, condition.message or condition.reason or "Job failed")
        finally:
            stream.stop()
        return JobResult(124, "the Kubernetes Job did not finish within the timeout")

    async def run(
        self, job: Job, service: Service, started: Callable[[], None] = lambda: None
    ) -> JobResult:
        """Create the Job and wait (in a worker thread) until it completes or fails."""
        name = await asyncio.to_thread(self.submit, job, service)
        started()
        return await asyncio.to_thread(self._wait, name)

    async def run_sync(
        self, service: Service, body: bytes, timeout: float
    ) -> tuple[int, bytes, str]:
        """Without Knative, a synchronous call is a Job whose log carries the response."""
        job = Job(
            name=f"{service.name}-{uuid.uuid4()}",
            service=service.name,
            event=body.decode("utf-8", errors="replace"),
            backend=self.name,
        )
        result = await asyncio.wait_for(self.run(job, service), timeout)
        log = await asyncio.to_thread(self.logs, job)
        return result.exit_code, log.encode(), log

    def _pods(self, job: Job) -> list[Any]:
        return self._core.list_namespaced_pod(
            self.namespace, label_selector=f"job-name={job.name}"
        ).items

    def logs(self, job: Job) -> str:
        """The log of the Job's Pod (container `oscar-container`); '' when none is available."""
        for pod in self._pods(job):
            try:
                return str(
                    self._core.read_namespaced_pod_log(
                        pod.metadata.name, self.namespace, container=CONTAINER_NAME
                    )
                )
            except self._errors:
                continue
        return ""

    def delete(self, job: Job) -> None:
        """Delete the Job and its Pods."""
        try:
            self._batch.delete_namespaced_job(
                job.name, self.namespace, propagation_policy="Foreground"
            )
        except self._errors as exc:
            if exc.status != 404:
                raise
