"""The plugin API's bodies, as interLink's Go types marshal them (`pkg/interlink/types.go`).

Kubernetes objects (the pod, ConfigMaps, Secrets) stay dicts in their JSON form: the plugin
reads the few fields it needs with the helpers of `pods.py`. Go marshals nil slices as `null`,
so every list may arrive as null.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator


class _GoModel(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    @field_validator("*", mode="before")
    @classmethod
    def _null_is_empty(cls, value: Any, info: Any) -> Any:
        field = cls.model_fields[info.field_name]
        if value is None and field.default_factory is list:
            return []
        return value


class RetrievedContainer(_GoModel):
    """The ConfigMaps, Secrets and emptyDirs one container's volumes refer to."""

    name: str
    config_maps: list[dict[str, Any]] = Field(default_factory=list, alias="configMaps")
    projected_volume_maps: list[dict[str, Any]] = Field(
        default_factory=list, alias="projectedvolumemaps"
    )
    secrets: list[dict[str, Any]] = Field(default_factory=list)
    empty_dirs: list[str] = Field(default_factory=list, alias="emptyDirs")


class RetrievedPodData(_GoModel):
    """`POST /create`: one pod and what its volumes refer to."""

    pod: dict[str, Any]
    containers: list[RetrievedContainer] = Field(default_factory=list, alias="container")
    job_script: str = Field("", alias="jobScript")


class ContainerLogOpts(_GoModel):
    """`kubectl logs` options, as interLink forwards them."""

    tail: int = Field(0, alias="Tail")
    limit_bytes: int = Field(0, alias="Bytes")
    timestamps: bool = Field(False, alias="Timestamps")
    follow: bool = Field(False, alias="Follow")
    previous: bool = Field(False, alias="Previous")
    since_seconds: int = Field(0, alias="SinceSeconds")
    since_time: str | None = Field(None, alias="SinceTime")


class LogRequest(_GoModel):
    """`GET /getLogs`: which container of which pod, and how."""

    namespace: str = Field("", alias="Namespace")
    pod_uid: str = Field(alias="PodUID")
    pod_name: str = Field("", alias="PodName")
    container_name: str = Field(alias="ContainerName")
    opts: ContainerLogOpts = Field(default_factory=ContainerLogOpts, alias="Opts")


class CreateResponse(BaseModel):
    """`POST /create`'s answer: the pod and the id of its job on the backend."""

    PodUID: str
    PodJID: str


class PodStatus(BaseModel):
    """One entry of `GET /status`'s answer; container statuses in Kubernetes' JSON form."""

    name: str
    UID: str
    namespace: str
    JID: str
    containers: list[dict[str, Any]]
    initContainers: list[dict[str, Any]]  # noqa: N815 (interLink's JSON key)
