"""Every setting of the control plane in one place, read from `OSCAR_*` environment variables.

Upstream OSCAR's variable names (`MINIO_ENDPOINT`, `OSCAR_SERVICE_PORT`, `OIDC_GROUPS`, ...) are
accepted as aliases so that an upstream deployment's environment works unchanged.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from oscar.cors import normalize_origin


def default_data_dir() -> Path:
    """Where the embedded default keeps its state when `OSCAR_DATA_DIR` is not set."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "oscar"


def _env(*names: str) -> AliasChoices:
    return AliasChoices(*names)


class Settings(BaseSettings):
    """Control-plane configuration. Construct with keyword arguments to override the environment."""

    model_config = SettingsConfigDict(env_prefix="OSCAR_", populate_by_name=True, extra="ignore")

    # --- HTTP server -------------------------------------------------------------------------
    host: str = Field("127.0.0.1", description="Address `oscar serve` binds to (OSCAR_HOST).")
    port: int = Field(
        8080,
        ge=0,
        le=65535,
        description="HTTP port of the API (OSCAR_PORT; upstream OSCAR_SERVICE_PORT).",
        validation_alias=_env("OSCAR_PORT", "OSCAR_SERVICE_PORT", "port"),
    )
    reuse_port: bool = Field(
        False,
        description="Listen with SO_REUSEPORT, so that several control-plane processes of the "
        "same user on one host share the API and S3 ports and the kernel spreads connections "
        "among them, as a Service spreads them among pods: replicas run natively on one host "
        "(by an interLink virtual node's plugin, or on a login node) (OSCAR_REUSE_PORT).",
    )
    data_dir: Path = Field(
        default_factory=default_data_dir,
        description="Directory holding the SQLite registry, generated credentials and job data "
        "(OSCAR_DATA_DIR).",
    )
    log_level: str = Field("INFO", description="Log level of the control plane (OSCAR_LOG_LEVEL).")
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["*"],
        description="Comma-separated origins browser apps may call the API and the embedded S3 "
        "endpoint from (OSCAR_CORS_ORIGINS). Listed origins may send credentials; `*` allows "
        "every origin without them; empty allows none. Default: `*`.",
    )
    max_body_bytes: int = Field(
        64 * 1024 * 1024,
        gt=0,
        description="Largest request body accepted, in bytes; larger ones get 413 "
        "(OSCAR_MAX_BODY_BYTES).",
    )
    execution_log_size: int = Field(
        1000,
        ge=0,
        description="`/job` and `/run` calls kept in memory for `GET /system/logs`, the newest "
        "ones; emptied on restart (OSCAR_EXECUTION_LOG_SIZE; 0: none kept).",
    )

    # --- Deployment ------------------------------------------------------------------------------
    executor: Literal["local", "kubernetes"] = Field(
        "local",
        description="Where jobs run: `local` child processes or Kubernetes Jobs (OSCAR_EXECUTOR).",
    )
    registry: Literal["sqlite", "kubernetes"] = Field(
        "sqlite",
        description="Where services are kept: SQLite in the data directory or "
        "ConfigMaps/Secrets in the services namespace (OSCAR_REGISTRY).",
    )
    job_store: Literal["sqlite", "kubernetes"] = Field(
        "sqlite",
        description="Where job records are kept: SQLite in the data directory, or on the "
        "Kubernetes Jobs themselves (labels and annotations) in the services namespace, so "
        "that the control plane keeps no state and several replicas agree "
        "(OSCAR_JOB_STORE; `kubernetes` needs OSCAR_EXECUTOR=kubernetes).",
    )
    leader_election: bool = Field(
        False,
        description="Run the dispatcher's reconcile loops and the bridges only while holding "
        "the Lease OSCAR_LEASE_NAME, so that one replica of several does "
        "(OSCAR_LEADER_ELECTION; needs a Kubernetes API).",
    )
    lease_name: str = Field(
        "oscar-control-plane",
        min_length=1,
        description="Name of the coordination.k8s.io Lease of leader election (OSCAR_LEASE_NAME).",
    )
    lease_namespace: str = Field(
        "",
        description="Namespace of that Lease (OSCAR_LEASE_NAMESPACE); empty: the services "
        "namespace.",
    )
    lease_duration: float = Field(
        15.0,
        gt=1,
        description="Seconds a leader's Lease lasts without renewal; another replica takes "
        "over after it (OSCAR_LEASE_DURATION). Renewed every third of it.",
    )
    pod_name: str = Field(
        "",
        description="This replica's identity in the Lease (OSCAR_POD_NAME, from the downward "
        "API); empty: `<hostname>-<pid>`.",
    )
    storage: Literal["embedded", "minio"] = Field(
        "embedded",
        description="The default object store: the embedded S3 endpoint, or an "
        "external MinIO at OSCAR_MINIO_ENDPOINT (OSCAR_STORAGE).",
    )
    events_token: SecretStr | None = Field(
        None,
        description="Bearer token MinIO's webhook target sends to /events/minio "
        "(OSCAR_EVENTS_TOKEN); required with OSCAR_STORAGE=minio.",
    )
    serverless_backend: Literal["", "knative"] = Field(
        "",
        description="`knative`: synchronous services get a Knative Service and `/run` is "
        "proxied to it, as upstream (OSCAR_SERVERLESS_BACKEND; upstream SERVERLESS_BACKEND).",
        validation_alias=_env(
            "OSCAR_SERVERLESS_BACKEND", "SERVERLESS_BACKEND", "serverless_backend"
        ),
    )
    hpc_executor: Literal["", "slurm"] = Field(
        "",
        description="`slurm`: services with `routing: hpc` (or `auto`) run as Slurm batch jobs "
        "(OSCAR_HPC_EXECUTOR).",
    )
    slurm_conf: Path | None = Field(
        None, description="slurm.conf for the Slurm commands (OSCAR_SLURM_CONF; SLURM_CONF)."
    )
    slurm_ssh_host: str = Field(
        "",
        description="Submit through `ssh <host>` to a login node instead of locally "
        "(OSCAR_SLURM_SSH_HOST).",
    )
    kubeconfig: Path | None = Field(
        None,
        description="Kubeconfig for the Kubernetes executor/registry (OSCAR_KUBECONFIG or "
        "KUBECONFIG); in-cluster configuration when unset.",
        validation_alias=_env("OSCAR_KUBECONFIG", "KUBECONFIG", "kubeconfig"),
    )

    supervisor_image: str = Field(
        "",
        description="Kubernetes Jobs (and interLink pods): an image whose `/supervisor` folder "
        "an init container copies into an emptyDir at `/oscar/bin` (upstream's "
        "faas-supervisor-kit layout) (OSCAR_SUPERVISOR_IMAGE). Empty: the supervisor is "
        "already installed where the pods run (OSCAR_SUPERVISOR_COMMAND).",
    )
    supervisor_command: str = Field(
        "",
        description="The supervisor's command line in a Kubernetes Job's container, as shell "
        "words split into an argv, never run as shell code (OSCAR_SUPERVISOR_COMMAND). "
        "Default: `/oscar/bin/supervisor` with OSCAR_SUPERVISOR_IMAGE, else this "
        "installation's `<python> -m supervisor` (nodes sharing this machine's Python).",
    )
    cloud_interlink_node: str = Field(
        "",
        description="An interLink virtual node that Jobs of services without "
        "`interlink_node_name` run on (OSCAR_CLOUD_INTERLINK_NODE): a cluster whose cloud "
        "compute is itself behind interLink (an edge site, or oscar's tests' local plugin). "
        "Empty: those Jobs go to the cluster's ordinary nodes.",
    )
    job_minio_endpoint: str | None = Field(
        None,
        description="Endpoint of the default store as Kubernetes Jobs and interLink pods reach "
        "it, written as `minio.default` in their configuration (OSCAR_JOB_MINIO_ENDPOINT). "
        "Unset: the store's own endpoint (OSCAR_MINIO_ENDPOINT or the embedded store's URL).",
    )

    # --- Jobs ----------------------------------------------------------------------------------
    max_concurrent_jobs: int | None = Field(
        None,
        gt=0,
        description="Jobs the cloud executor holds at once, counting synchronous runs "
        "(OSCAR_MAX_CONCURRENT_JOBS); the rest wait as Pending. Default: twice the cores for "
        "the local executor, 500 for Kubernetes.",
    )
    hpc_max_concurrent_jobs: int | None = Field(
        None,
        gt=0,
        description="Jobs the HPC executor holds at once, queued in Slurm or running "
        "(OSCAR_HPC_MAX_CONCURRENT_JOBS). Default: 1000.",
    )
    slurm_batch_size: int = Field(
        1000,
        ge=1,
        le=100_000,
        description="The most events of one service submitted as one Slurm job array "
        "(OSCAR_SLURM_BATCH_SIZE; at most Slurm's MaxArraySize). 1: one `sbatch` per job.",
    )
    slurm_array_tasks: int = Field(
        256,
        ge=1,
        le=100_000,
        description="The most tasks of one Slurm job array (OSCAR_SLURM_ARRAY_TASKS): a "
        "bigger batch runs several events in each task, one after another, each still its own "
        "job with its own log and exit status (fewer, longer tasks for the scheduler).",
    )
    slurm_batch_window: float = Field(
        1.0,
        ge=0,
        le=600,
        description="Seconds a service's jobs are gathered into one Slurm job array while a "
        "burst is under way (OSCAR_SLURM_BATCH_WINDOW); a lone job is submitted at once.",
    )
    job_timeout: float = Field(
        3600.0,
        gt=0,
        description="Seconds a job's script may run, counted from when it starts running "
        "(OSCAR_JOB_TIMEOUT).",
    )
    queue_timeout: float | None = Field(
        None,
        gt=0,
        description="Seconds a job may wait before it runs, queued here or in its backend; "
        "past it the job is cancelled and Failed (OSCAR_QUEUE_TIMEOUT). Unset: no bound.",
    )
    sync_timeout: float = Field(
        300.0, gt=0, description="Seconds a synchronous `/run` call may take (OSCAR_SYNC_TIMEOUT)."
    )
    sync_queue_wait: float = Field(
        10.0,
        ge=0,
        description="Seconds a `/run` call waits for a free slot of its backend before it is "
        "answered 429 with Retry-After (OSCAR_SYNC_QUEUE_WAIT).",
    )
    max_jobs_per_service: int = Field(
        10000,
        ge=0,
        description="Jobs of one service that may be waiting or running at once; a `/job` call "
        "over it is answered 429 with Retry-After (OSCAR_MAX_JOBS_PER_SERVICE; 0: no bound).",
    )
    supervisor_pool: bool = Field(
        True,
        description="Local jobs' supervisors are forked by a warm process that has already "
        "imported the supervisor (a few ms per job instead of ~0.2-0.5 s); false: a "
        "fresh `python -m supervisor` per job (OSCAR_SUPERVISOR_POOL).",
    )
    job_cgroups: bool = Field(
        True,
        description="Run each local job in a cgroup v2 of its own when the host allows it, so "
        "that everything it starts is killed with it; otherwise jobs are tracked by an "
        "environment marker (OSCAR_JOB_CGROUPS).",
    )

    # --- Event bridges ----------------------------------------------------------------------
    bridge_max_pending: int = Field(
        1000,
        ge=1,
        description="Pending jobs of a service at which its bridges pause until the backlog "
        "drains; the events wait at their source (OSCAR_BRIDGE_MAX_PENDING). A bridge's own "
        "`max_pending` overrides it.",
    )
    bridge_retry_max: float = Field(
        60.0,
        gt=0,
        description="Longest wait, in seconds, between a failing bridge's attempts; the wait "
        "doubles from 1 s up to it (OSCAR_BRIDGE_RETRY_MAX).",
    )

    # --- Identity ----------------------------------------------------------------------------
    username: str = Field(
        "oscar", min_length=1, description="Basic-auth admin user (OSCAR_USERNAME)."
    )
    password: SecretStr | None = Field(
        None,
        description="Basic-auth admin password (OSCAR_PASSWORD). When unset, a strong one is "
        "generated on first start and kept in `<data_dir>/admin-password` (mode 0600).",
    )
    name: str = Field("oscar", description="Name of this OSCAR deployment (OSCAR_NAME).")
    namespace: str = Field("oscar", description="Namespace of the control plane (OSCAR_NAMESPACE).")
    services_namespace: str = Field(
        "oscar-svc", description="Namespace for services and jobs (OSCAR_SERVICES_NAMESPACE)."
    )
    oidc_groups: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated OIDC groups granted access (OSCAR_OIDC_GROUPS; upstream "
        "OIDC_GROUPS).",
        validation_alias=_env("OSCAR_OIDC_GROUPS", "OIDC_GROUPS", "oidc_groups"),
    )
    oidc_issuers: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated OIDC issuers whose Bearer tokens are accepted "
        "(OSCAR_OIDC_ISSUERS; upstream OIDC_ISSUERS). Empty: OIDC is off.",
        validation_alias=_env("OSCAR_OIDC_ISSUERS", "OIDC_ISSUERS", "oidc_issuers"),
    )
    oidc_audience: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated audiences; a token's `aud` must name one of them "
        "(OSCAR_OIDC_AUDIENCE). Empty: `aud` is not checked, as upstream does.",
        validation_alias=_env("OSCAR_OIDC_AUDIENCE", "oidc_audience"),
    )
    oidc_client_id: str = Field(
        "",
        description="Public OIDC client the dashboard and oscar-cli log in with, offered by "
        "`GET /auth/config` (OSCAR_OIDC_CLIENT_ID).",
        validation_alias=_env("OSCAR_OIDC_CLIENT_ID", "oidc_client_id"),
    )
    oidc_scopes: str = Field(
        "openid profile email",
        description="Scopes the dashboard and oscar-cli ask for (OSCAR_OIDC_SCOPES).",
        validation_alias=_env("OSCAR_OIDC_SCOPES", "oidc_scopes"),
    )
    oidc_leeway: float = Field(
        10.0,
        ge=0,
        description="Seconds of clock skew allowed when checking a token's exp, nbf and iat "
        "(OSCAR_OIDC_LEEWAY).",
        validation_alias=_env("OSCAR_OIDC_LEEWAY", "oidc_leeway"),
    )
    local_user_services: bool = Field(
        False,
        description="Let OIDC users who are not admins define services when jobs run as local "
        "processes (OSCAR_LOCAL_USER_SERVICES). Off by default: a script run natively can read "
        "everything the server's own user can, other users' data included.",
        validation_alias=_env("OSCAR_LOCAL_USER_SERVICES", "local_user_services"),
    )
    users_admin: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated OIDC subjects (`sub`) who are cluster admins "
        "(OSCAR_USERS_ADMIN; upstream USERS_ADMIN).",
        validation_alias=_env("OSCAR_USERS_ADMIN", "USERS_ADMIN", "users_admin"),
    )

    # --- Default object store (reported as `minio_provider`) -----------------------------------
    s3_port: int = Field(
        9000, ge=0, le=65535, description="Port of the embedded S3 endpoint (OSCAR_S3_PORT)."
    )
    minio_endpoint: str | None = Field(
        None,
        description="Endpoint of the default MinIO store (OSCAR_MINIO_ENDPOINT; upstream "
        "MINIO_ENDPOINT). Unset on the embedded default: the embedded store's URL is used.",
        validation_alias=_env("OSCAR_MINIO_ENDPOINT", "MINIO_ENDPOINT", "minio_endpoint"),
    )
    minio_access_key: str | None = Field(
        None,
        description="Access key of the default store (MINIO_ACCESS_KEY); defaults to the admin "
        "user.",
        validation_alias=_env("OSCAR_MINIO_ACCESS_KEY", "MINIO_ACCESS_KEY", "minio_access_key"),
    )
    minio_secret_key: SecretStr | None = Field(
        None,
        description="Secret key of the default store (MINIO_SECRET_KEY); defaults to the admin "
        "password.",
        validation_alias=_env("OSCAR_MINIO_SECRET_KEY", "MINIO_SECRET_KEY", "minio_secret_key"),
    )
    minio_region: str = Field(
        "us-east-1",
        min_length=1,
        description="Region of the default store (MINIO_REGION). Never empty: the upstream "
        "dashboard breaks on an empty region.",
        validation_alias=_env("OSCAR_MINIO_REGION", "MINIO_REGION", "minio_region"),
    )
    minio_tls_verify: bool = Field(
        True,
        description="Whether clients verify the default store's TLS certificate "
        "(MINIO_TLS_VERIFY).",
        validation_alias=_env("OSCAR_MINIO_TLS_VERIFY", "MINIO_TLS_VERIFY", "minio_tls_verify"),
    )

    @field_validator("oidc_groups", "oidc_issuers", "oidc_audience", "users_admin", mode="before")
    @classmethod
    def _split_groups(cls, value: object) -> object:
        if isinstance(value, str):
            return [g.strip() for g in value.split(",") if g.strip()]
        return value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.split(",")
        if isinstance(value, list):
            return [normalize_origin(str(o)) for o in value if str(o).strip()]
        return value

    @model_validator(mode="after")
    def _minio_needs_endpoint_and_token(self) -> Settings:
        if self.storage == "minio" and (not self.minio_endpoint or self.events_token is None):
            raise ValueError(
                "OSCAR_STORAGE=minio needs OSCAR_MINIO_ENDPOINT and OSCAR_EVENTS_TOKEN"
            )
        return self

    @model_validator(mode="after")
    def _shared_records_need_kubernetes(self) -> Settings:
        if self.job_store == "kubernetes" and self.executor != "kubernetes":
            raise ValueError("OSCAR_JOB_STORE=kubernetes needs OSCAR_EXECUTOR=kubernetes")
        if self.leader_election and self.job_store != "kubernetes":
            raise ValueError(
                "OSCAR_LEADER_ELECTION needs OSCAR_JOB_STORE=kubernetes: with records in each "
                "replica's own SQLite, the jobs a follower accepted would wait until it leads"
            )
        if self.job_store == "kubernetes" and self.hpc_executor:
            raise ValueError(
                "OSCAR_JOB_STORE=kubernetes keeps records on Kubernetes Jobs: offload to HPC "
                "through an interLink virtual node (interlink_node_name), not "
                "OSCAR_HPC_EXECUTOR=slurm"
            )
        return self

    @field_validator("log_level")
    @classmethod
    def _upper_level(cls, value: str) -> str:
        return value.upper()

    @property
    def registry_path(self) -> Path:
        """The SQLite file of the service registry."""
        return self.data_dir / "oscar.db"

    @property
    def jobs_path(self) -> Path:
        """The SQLite file of job records."""
        return self.data_dir / "jobs.db"

    @property
    def bridges_path(self) -> Path:
        """The SQLite file of bridge definitions and cursors."""
        return self.data_dir / "bridges.db"

    @property
    def password_file(self) -> Path:
        """Where a generated admin password is kept."""
        return self.data_dir / "admin-password"
