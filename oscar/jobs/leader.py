"""Leader election on a `coordination.k8s.io/v1` Lease: one replica runs the reconcile loops.

Every replica serves the API and accepts events (records are Kubernetes Jobs, which any replica
may create); only the holder of the Lease submits, polls and times out jobs and runs the
bridges, so no job is handed over twice and no bridge reads its source twice.

As client-go's leader election does, expiry is judged by this replica's own clock: a Lease is
free when its record (holder and renew time) has not changed for its duration since this
replica first saw it, so clocks that disagree between hosts do not matter. A leader that could
not renew for two thirds of the duration stops leading before anyone else may start.
Every write carries the `resourceVersion` it read: of two replicas taking a free Lease at once,
the API server lets one succeed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from oscar.errors import BackendError
from oscar.executors import kube

log = logging.getLogger("oscar.leader")

Hook = Callable[[], Awaitable[None]]


def default_identity() -> str:
    """`<hostname>-<pid>`: unique among the replicas of one cluster."""
    return f"{socket.gethostname()}-{os.getpid()}"


def _micro_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElection:
    """Holds, renews and releases one Lease; runs hooks when leadership comes and goes."""

    def __init__(
        self,
        api_client: Any,
        namespace: str,
        name: str,
        identity: str,
        duration: float = 15.0,
    ) -> None:
        from kubernetes import client

        self._api = client.CoordinationV1Api(api_client)
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.duration = duration
        self.leading = False
        self._seen: tuple[str, str] | None = None  # (holder, renew time) last observed
        self._seen_at = 0.0  # when that record was first observed (monotonic)
        self._renewed_at = 0.0  # when this replica last renewed (monotonic)
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def what(self) -> str:
        """The Lease, for messages."""
        return f"Lease {self.namespace}/{self.name}"

    # --- one attempt (blocking) ----------------------------------------------------------
    def try_lead(self) -> bool:
        """Create, renew or take over the Lease; whether this replica now holds it."""
        try:
            lease = self._read()
        except kube.NotFoundError:
            return self._create()
        spec = lease.spec
        holder = (spec.holder_identity if spec else None) or ""
        renewed = str(spec.renew_time) if spec and spec.renew_time else ""
        now = time.monotonic()
        if (holder, renewed) != self._seen:
            self._seen, self._seen_at = (holder, renewed), now
        duration = float(spec.lease_duration_seconds or self.duration) if spec else self.duration
        if holder and holder != self.identity and now - self._seen_at < duration:
            return False  # someone else holds it and has renewed within its duration
        transitions = (spec.lease_transitions or 0) if spec else 0
        if holder != self.identity:
            transitions += 1
        body = self._body(
            transitions, lease.metadata.resource_version, taking=holder != self.identity
        )
        if holder == self.identity and spec and spec.acquire_time:
            body["spec"]["acquireTime"] = _micro_time(spec.acquire_time)
        try:
            self._replace(body)
        except kube.ConflictError:
            return False  # another replica wrote it first
        self._renewed_at = time.monotonic()
        return True

    def _read(self) -> Any:
        return kube.call(
            "read", self.what, self._api.read_namespaced_lease, self.name, self.namespace
        )

    def _replace(self, body: dict[str, Any]) -> None:
        kube.call(
            "update", self.what, self._api.replace_namespaced_lease, self.name, self.namespace, body
        )

    def _create(self) -> bool:
        try:
            kube.call(
                "create",
                self.what,
                self._api.create_namespaced_lease,
                self.namespace,
                self._body(0, None, taking=True),
            )
        except kube.ConflictError:
            return False
        self._renewed_at = time.monotonic()
        return True

    def _body(self, transitions: int, version: str | None, *, taking: bool) -> dict[str, Any]:
        now = _micro_time(datetime.now(UTC))
        metadata: dict[str, Any] = {"name": self.name, "namespace": self.namespace}
        if version is not None:
            metadata["resourceVersion"] = version
        spec: dict[str, Any] = {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": max(1, round(self.duration)),
            "renewTime": now,
            "leaseTransitions": transitions,
        }
        if taking:
            spec["acquireTime"] = now
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": metadata,
            "spec": spec,
        }

    def release(self) -> None:
        """Give the Lease up (holder emptied), so another replica takes over at once."""
        try:
            lease = self._read()
            if lease.spec is None or lease.spec.holder_identity != self.identity:
                return
            body = self._body(
                lease.spec.lease_transitions or 0, lease.metadata.resource_version, taking=False
            )
            body["spec"]["holderIdentity"] = ""
            body["spec"]["leaseDurationSeconds"] = 1
            self._replace(body)
        except BackendError as exc:
            log.warning("could not release %s: %s", self.what, exc)

    # --- the loop ------------------------------------------------------------------------
    def start(self, lead: Hook, follow: Hook) -> None:
        """Run the election in the background: `lead` when this replica gains the Lease,
        `follow` when it loses it."""
        self._stopping = asyncio.Event()
        self._task = asyncio.ensure_future(self._run(lead, follow))

    async def stop(self, follow: Hook) -> None:
        """Stop electing; a leader runs `follow` and then releases the Lease."""
        self._stopping.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        if self.leading:
            self.leading = False
            await follow()
            await asyncio.to_thread(self.release)

    async def _run(self, lead: Hook, follow: Hook) -> None:
        interval = self.duration / 3
        while not self._stopping.is_set():
            try:
                held = await asyncio.to_thread(self.try_lead)
            except BackendError as exc:
                log.warning("leader election: %s", exc)
                held = False
                if self.leading and time.monotonic() - self._renewed_at < self.duration * 2 / 3:
                    held = True  # not renewed this time, but still safely within the Lease
            if held and not self.leading:
                self.leading = True
                log.info("leading: this replica (%s) holds %s", self.identity, self.what)
                await lead()
            elif not held and self.leading:
                self.leading = False
                log.warning("no longer leading: %s is held elsewhere or unreachable", self.what)
                await follow()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), interval)
