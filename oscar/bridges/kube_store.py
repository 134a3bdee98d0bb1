"""Bridge definitions and cursors as Secrets in the services namespace.

One Secret `oscar-bridge-<name>` per bridge, labelled `oscar_bridge=<name>`, holds
`spec.json` (the private definition, credentials included: hence a Secret, not a ConfigMap)
and `cursor.json`. Every change is a read and a replace carrying the `resourceVersion` read,
retried when another replica wrote in between, so two replicas never lose each other's
changes. A Secret holds at most 1 MiB: a WebDAV bridge's cursor (one entry per file seen)
fits some ten thousand files.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from typing import Any

from oscar.bridges.records import BridgeRecords
from oscar.errors import ConflictError, NotFoundError
from oscar.executors import kube

BRIDGE_LABEL = "oscar_bridge"
SPEC, CURSOR = "spec.json", "cursor.json"
_ATTEMPTS = 8


def secret_name(bridge: str) -> str:
    """The Secret of a bridge."""
    return f"oscar-bridge-{bridge}"


def _encode(value: Any) -> str:
    return base64.b64encode(json.dumps(value, sort_keys=True).encode()).decode()


def _decode(secret: Any, key: str, default: Any) -> Any:
    data = secret.data or {}
    return json.loads(base64.b64decode(data[key])) if key in data else default


class KubernetesBridgeStore(BridgeRecords):
    """Bridges as Secrets; every replica of the control plane reads the same ones."""

    def __init__(self, api_client: Any, namespace: str) -> None:
        from kubernetes import client

        self._core = client.CoreV1Api(api_client)
        self.namespace = namespace

    def _read(self, name: str) -> Any:
        try:
            return kube.call(
                "read",
                f"Secret {self.namespace}/{secret_name(name)}",
                self._core.read_namespaced_secret,
                secret_name(name),
                self.namespace,
            )
        except kube.NotFoundError:
            raise NotFoundError(f"bridge '{name}' not found") from None

    def _body(self, name: str, spec: Any, cursor: Any, version: str | None) -> dict[str, Any]:
        metadata: dict[str, Any] = {
            "name": secret_name(name),
            "namespace": self.namespace,
            "labels": {BRIDGE_LABEL: name},
        }
        if version is not None:
            metadata["resourceVersion"] = version
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque",
            "metadata": metadata,
            "data": {SPEC: _encode(spec), CURSOR: _encode(cursor)},
        }

    def _change(
        self, name: str, change: Callable[[Any, dict[str, str]], tuple[Any, dict[str, str]]]
    ) -> None:
        """Read, change and replace a bridge's Secret with its resourceVersion as precondition."""
        for attempt in range(_ATTEMPTS):
            secret = self._read(name)
            spec, cursor = change(_decode(secret, SPEC, {}), _decode(secret, CURSOR, {}))
            body = self._body(name, spec, cursor, secret.metadata.resource_version)
            try:
                kube.call(
                    "update",
                    f"Secret {self.namespace}/{secret_name(name)}",
                    self._core.replace_namespaced_secret,
                    secret_name(name),
                    self.namespace,
                    body,
                )
            except kube.ConflictError:
                kube.back_off(attempt)
                continue  # another replica wrote it since: read it again
            except kube.NotFoundError:
                raise NotFoundError(f"bridge '{name}' not found") from None
            return
        raise ConflictError(f"bridge '{name}' kept changing; try again")

    # --- definitions ---------------------------------------------------------------------
    def create(self, name: str, spec: Mapping[str, Any]) -> None:
        """Create the bridge's Secret; `ConflictError` when the name is taken."""
        try:
            kube.call(
                "create",
                f"Secret {self.namespace}/{secret_name(name)}",
                self._core.create_namespaced_secret,
                self.namespace,
                self._body(name, dict(spec), {}, None),
            )
        except kube.ConflictError:
            raise ConflictError(f"a bridge named '{name}' already exists") from None

    def update(self, name: str, spec: Mapping[str, Any], *, reset_cursor: bool) -> None:
        """Replace the definition (and the cursor with nothing when `reset_cursor`)."""
        self._change(name, lambda _, cursor: (dict(spec), {} if reset_cursor else cursor))

    def delete(self, name: str) -> None:
        """Delete the bridge's Secret."""
        try:
            kube.call(
                "delete",
                f"Secret {self.namespace}/{secret_name(name)}",
                self._core.delete_namespaced_secret,
                secret_name(name),
                self.namespace,
            )
        except kube.NotFoundError:
            raise NotFoundError(f"bridge '{name}' not found") from None

    def get(self, name: str) -> dict[str, Any]:
        """One definition."""
        return dict(_decode(self._read(name), SPEC, {}))

    def list(self) -> list[dict[str, Any]]:
        """Every definition, by name."""
        found = kube.call(
            "list",
            f"Secrets in namespace {self.namespace}",
            self._core.list_namespaced_secret,
            self.namespace,
            label_selector=BRIDGE_LABEL,
        )
        specs = [_decode(secret, SPEC, {}) for secret in found.items or []]
        return sorted(specs, key=lambda spec: str(spec.get("name", "")))

    # --- cursors -------------------------------------------------------------------------
    def cursor(self, bridge: str) -> dict[str, str]:
        """Every cursor entry of a bridge (none for a bridge that is gone)."""
        try:
            return dict(_decode(self._read(bridge), CURSOR, {}))
        except NotFoundError:
            return {}

    def move_cursor(
        self, bridge: str, put: Mapping[str, str], remove: list[str] | None = None
    ) -> None:
        """Set and remove cursor entries in one replace of the bridge's Secret."""
        if not put and not remove:
            return

        def moved(spec: Any, cursor: dict[str, str]) -> tuple[Any, dict[str, str]]:
            cursor = {**cursor, **put}
            for key in remove or ():
                cursor.pop(key, None)
            return spec, cursor

        try:
            self._change(bridge, moved)
        except NotFoundError:
            return  # deleted meanwhile: nothing to write
