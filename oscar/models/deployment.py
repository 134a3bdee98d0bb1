"""What `GET /system/services/{name}/deployment[/logs]` answers, in upstream's shapes
(`pkg/types/deployment.go`): the state of the runtime that serves a service's `/run` calls."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

DeploymentState = Literal["pending", "ready", "degraded", "failed", "stopped", "unavailable"]

#: Upstream's resource kinds, plus what runs each call where nothing stands between calls: a
#: local process (the embedded default) or a Kubernetes Job.
ResourceKind = Literal[
    "exposed_service",
    "kserve_service",
    "knative_service",
    "local_process",
    "kubernetes_job",
    "unavailable",
]


class DeploymentSummary(BaseModel):
    """A service runtime's state, as embedded in `GET /system/services?include=deployment`."""

    state: DeploymentState
    reason: str | None = None
    last_transition_time: str | None = None
    active_instances: int = 0
    affected_instances: int = 0
    resource_kind: ResourceKind = "unavailable"


class DeploymentStatus(DeploymentSummary):
    """`GET /system/services/{name}/deployment`: the summary with the service's name and
    namespace."""

    service_name: str
    namespace: str | None = None

    def summary(self) -> DeploymentSummary:
        """The state without the service's name and namespace."""
        return DeploymentSummary(**self.model_dump(include=set(DeploymentSummary.model_fields)))


class DeploymentLogEntry(BaseModel):
    """One line of a runtime's log; `timestamp` (RFC 3339) only when asked for."""

    timestamp: str | None = None
    message: str


class DeploymentLogStream(BaseModel):
    """`GET /system/services/{name}/deployment/logs`: the runtime's recent log lines.

    Unset optional fields are left out of answers, as upstream's `omitempty`."""

    service_name: str
    available: bool
    message: str | None = None
    entries: list[DeploymentLogEntry] = Field(default_factory=list)
