"""The Kubernetes client: building it from settings, provisioning, and translating its errors.

Everything that talks to a Kubernetes API server (executor, registry, Knative) calls it through
`call`, so that every client error leaves this module as an `oscar.errors` type:

- 404 and 409 become `NotFoundError` and `ConflictError` (the caller decides what they mean: a
  Job already gone is fine, a service that exists is a `ServiceExistsError`);
- 401 and 403 become `RefusedError`, a `BackendError` naming the verb and the object refused;
- 429, 5xx, refused connections and timeouts become `BackendUnavailableError` (the same call may
  work later; `retry_after` comes from the API server's Retry-After header when it sends one);
- anything else (422 for an invalid object, 400, TLS failures) becomes a `BackendError` with the
  API server's own message.
"""

from __future__ import annotations

import contextlib
import json
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from oscar.errors import (
    BackendError,
    BackendUnavailableError,
    ConfigurationError,
    OscarError,
)
from oscar.models.storage import MinIOProvider

T = TypeVar("T")

#: Seconds to connect to, and then to hear from, the API server; without a bound a hung
#: server would hold a dispatcher worker thread forever.
REQUEST_TIMEOUT = (10.0, 60.0)
STORE_SECRET_PREFIX = "oscar-store-"  # noqa: S105 (Secret names, not passwords)
JOB_CONFIG_SECRET_PREFIX = "oscar-job-"  # noqa: S105


class KubeError(BackendError):
    """The API server answered a call with an error status (kept in `status`)."""

    def __init__(self, message: str, status: int) -> None:
        self.status = status
        super().__init__(message)


class NotFoundError(KubeError):
    """404: the object (or its namespace) does not exist."""


class ConflictError(KubeError):
    """409: the object exists already (or changed under us)."""


class RefusedError(KubeError):
    """401 or 403: the credentials are wrong or may not do this."""


def api_client(kubeconfig: Path | None) -> Any:
    """A `kubernetes.client.ApiClient` from `kubeconfig`, or the in-cluster configuration.

    No request is made: a wrong address or missing permissions show up at the first call.
    """
    try:
        from kubernetes import client, config
    except ImportError:
        raise ConfigurationError(
            "the Kubernetes executor/registry needs `pip install 'oscar[kubernetes]'`"
        ) from None
    try:
        if kubeconfig is not None:
            return config.new_client_from_config(config_file=str(kubeconfig))
        config.load_incluster_config()
        return client.ApiClient()
    except Exception as exc:  # the config loaders raise their own and plain exception types
        where = f"from {kubeconfig}" if kubeconfig else "in-cluster"
        raise ConfigurationError(f"cannot configure the Kubernetes client {where}: {exc}") from None


def provision(api: Any, namespace: str) -> None:
    """Make sure the services namespace exists (idempotent).

    Not being allowed to create namespaces is fine when the namespace exists already: the
    first Secret or Job created in it says so if it does not.
    """
    from kubernetes import client

    core = client.CoreV1Api(api)
    with contextlib.suppress(ConflictError, RefusedError):
        namespace_body = {"metadata": {"name": namespace}}
        call("create", f"namespace {namespace}", core.create_namespace, namespace_body)


def store_secret_name(service_name: str) -> str:
    """The Secret holding a service's own store keys, mounted by its Jobs and ksvc."""
    return STORE_SECRET_PREFIX + service_name


def job_config_secret_name(service_name: str) -> str:
    """The Secret holding what a service's Jobs read at `/oscar/config`."""
    return JOB_CONFIG_SECRET_PREFIX + service_name


def apply_store_secret(api: Any, namespace: str, service_name: str, keys: MinIOProvider) -> None:
    """Create or replace the Secret with the service's scoped `accessKey` and `secretKey`.

    Jobs mount it as upstream mounts its Secret `minio` (whose admin keys they no longer get).
    """
    data = {"accessKey": keys.access_key, "secretKey": keys.secret_key}
    apply_secret(api, namespace, store_secret_name(service_name), service_name, data)


def apply_job_config_secret(
    api: Any, namespace: str, service_name: str, data: dict[str, str]
) -> None:
    """Create or replace the Secret `oscar-job-<service>` (`function_config.yaml`, `script.sh`)."""
    apply_secret(api, namespace, job_config_secret_name(service_name), service_name, data)


def apply_secret(
    api: Any, namespace: str, name: str, service_name: str, data: dict[str, str]
) -> None:
    """Create or replace an Opaque Secret of a service (labelled `oscar_service`)."""
    from kubernetes import client

    core = client.CoreV1Api(api)
    body = {
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"oscar_service": service_name},
        },
        "type": "Opaque",
        "stringData": data,
    }
    what = f"Secret {namespace}/{name}"
    try:
        call("create", what, core.create_namespaced_secret, namespace, body)
    except ConflictError:
        call("replace", what, core.replace_namespaced_secret, name, namespace, body)


def interlink_available(api: Any) -> bool:
    """Whether the cluster has a Ready node registered like an interLink virtual node
    (`oscar.executors.interlink.VIRTUAL_NODE_LABELS`): one label-selector list per label,
    at most one node each. Not being allowed to list nodes, or an API server that does not
    answer, counts as no (and is logged): this only informs clients."""
    import logging

    from kubernetes import client

    from oscar.executors.interlink import VIRTUAL_NODE_LABELS, is_virtual_node

    core = client.CoreV1Api(api)
    for key, value in VIRTUAL_NODE_LABELS:
        try:
            nodes = call(
                "list",
                f"nodes labelled {key}={value}",
                core.list_node,
                label_selector=f"{key}={value}",
                limit=50,
            )
        except BackendError as exc:
            logging.getLogger("oscar.executors").warning("cannot look for interLink nodes: %s", exc)
            return False
        for node in nodes.items or []:
            conditions = (node.status.conditions if node.status else None) or []
            ready = any(c.type == "Ready" and c.status == "True" for c in conditions)
            if ready and is_virtual_node(node.metadata.labels):
                return True
    return False


def delete_job(batch: Any, namespace: str, name: str) -> bool:
    """Delete a Job, its Pods left to the garbage collector (`BatchV1Api` `batch`); False when
    there was none."""
    try:
        call(
            "delete",
            f"Job {namespace}/{name}",
            batch.delete_namespaced_job,
            name,
            namespace,
            propagation_policy="Background",
        )
    except NotFoundError:
        return False
    return True


def back_off(attempt: int) -> None:
    """Before retrying a write refused for a stale `resourceVersion`: wait a little, more each
    attempt, at random, so that writers that collided do not collide again."""
    time.sleep(random.uniform(0, 0.02 * 2**attempt))  # noqa: S311 - jitter, not secrecy


def call(verb: str, what: str, method: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """`method(*args, **kwargs)` (a Kubernetes client API method) with its errors translated.

    `verb` and `what` name the operation in messages: ``call("create", "Job ns/x", ...)``.
    The request is bounded by `REQUEST_TIMEOUT` unless `_request_timeout` is given.
    """
    kwargs.setdefault("_request_timeout", REQUEST_TIMEOUT)
    try:
        return method(*args, **kwargs)
    except Exception as exc:
        translated = translate(exc, verb, what)
        if translated is None:
            raise
        raise translated from exc


def translate(exc: BaseException, verb: str, what: str) -> OscarError | None:
    """The `oscar.errors` type for a Kubernetes client error; None for anything else."""
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError, MaxRetryError, SSLError

    if isinstance(exc, ApiException):
        return _from_status(exc, verb, what)
    if isinstance(exc, MaxRetryError) and isinstance(exc.reason, SSLError):
        exc = exc.reason
    if isinstance(exc, SSLError):
        # A certificate problem is configuration: retrying will not fix it.
        return BackendError(f"cannot {verb} {what}: TLS error talking to Kubernetes: {exc}")
    if isinstance(exc, HTTPError | ConnectionError | TimeoutError):
        reason = exc.reason if isinstance(exc, MaxRetryError) else exc
        return BackendUnavailableError(f"cannot {verb} {what}: Kubernetes unreachable: {reason}")
    return None


def _from_status(exc: Any, verb: str, what: str) -> OscarError:
    status = int(exc.status or 0)
    message = _api_message(exc)
    if status == 0:  # raised by the client itself, before any request
        return BackendError(f"cannot {verb} {what}: {message}")
    if status == 404:
        return NotFoundError(f"cannot {verb} {what}: not found ({message})", status)
    if status == 409:
        return ConflictError(f"cannot {verb} {what}: conflict ({message})", status)
    if status in (401, 403):
        refused = "Unauthorized" if status == 401 else "Forbidden"
        return RefusedError(
            f"Kubernetes refused to {verb} {what} ({status} {refused}): {message}", status
        )
    if status == 429 or status >= 500:
        return BackendUnavailableError(
            f"cannot {verb} {what} right now ({status}): {message}", _retry_after(exc)
        )
    return KubeError(f"cannot {verb} {what} ({status}): {message}", status)


def _api_message(exc: Any) -> str:
    """The `message` of the API server's Status body, else the HTTP reason."""
    body = exc.body
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    if body:
        try:
            parsed = json.loads(body)
        except ValueError:
            return str(body).strip()[:500]
        if isinstance(parsed, dict) and parsed.get("message"):
            return str(parsed["message"])
    return str(exc.reason or "no message")


def _retry_after(exc: Any) -> float | None:
    headers = exc.headers or {}
    value = headers.get("Retry-After") if hasattr(headers, "get") else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:  # an HTTP date: not worth parsing for a retry hint
        return None
