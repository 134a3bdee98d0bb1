"""Kubernetes registry: services stored as upstream does, so the control plane stays stateless.

Each service is a ConfigMap `<name>` in the services namespace holding `script.sh` and
`function_config.yaml` (the service definition without secrets), labelled
`oscar_service=<name>`; its environment secrets live in a Secret `<name>` of the same namespace.
Listing is one API call for the ConfigMaps and one for the Secrets, whatever the number of
services. Client errors leave as `oscar.errors` types (`oscar.executors.kube.call`).
"""

from __future__ import annotations

import base64
import contextlib
import json
from typing import Any

import yaml

from oscar.errors import ServiceExistsError, ServiceNotFoundError
from oscar.executors import kube
from oscar.models.service import Service
from oscar.registry.base import Registry

SERVICE_LABEL = "oscar_service"
SCRIPT_KEY = "script.sh"
CONFIG_KEY = "function_config.yaml"
#: The ConfigMap of cluster settings, named as upstream's (`ADDITIONAL_CONFIG_PATH`); no
#: service can take the name (service names have no dots).
SETTINGS_CONFIG_MAP = "config.yaml"


class KubernetesRegistry(Registry):
    """Services as ConfigMaps (+ Secrets) in one namespace."""

    def __init__(self, api_client: Any, namespace: str) -> None:
        from kubernetes import client

        self._core = client.CoreV1Api(api_client)
        self.namespace = namespace

    def _config_map(self, service: Service) -> dict[str, Any]:
        definition = service.model_dump(mode="json", by_alias=True)
        definition["environment"]["secrets"] = {}
        script = definition.pop("script")
        return {
            "metadata": {
                "name": service.name,
                "namespace": self.namespace,
                "labels": {SERVICE_LABEL: service.name},
            },
            "data": {SCRIPT_KEY: script, CONFIG_KEY: yaml.safe_dump(definition, sort_keys=False)},
        }

    def _secret(self, service: Service) -> dict[str, Any]:
        return {
            "metadata": {
                "name": service.name,
                "namespace": self.namespace,
                "labels": {SERVICE_LABEL: service.name},
            },
            "type": "Opaque",
            "data": {
                k: base64.b64encode(v.encode()).decode()
                for k, v in service.environment.secrets.items()
            },
        }

    @staticmethod
    def _service(config_map: Any, secret: Any | None) -> Service:
        data = yaml.safe_load(config_map.data[CONFIG_KEY]) or {}
        data["script"] = config_map.data.get(SCRIPT_KEY, "")
        if secret is not None and secret.data:
            data.setdefault("environment", {})["secrets"] = {
                k: base64.b64decode(v).decode() for k, v in secret.data.items()
            }
        return Service.model_validate(data)

    def _call(self, verb: str, what: str, method: Any, *args: Any, **kwargs: Any) -> Any:
        return kube.call(verb, f"{what} in namespace {self.namespace}", method, *args, **kwargs)

    def create(self, service: Service) -> None:
        """Create the ConfigMap (and Secret); 409 from the API means the name is taken."""
        what = f"ConfigMap {service.name}"
        try:
            self._call(
                "create",
                what,
                self._core.create_namespaced_config_map,
                self.namespace,
                self._config_map(service),
            )
        except kube.ConflictError:
            raise ServiceExistsError(service.name) from None
        if service.environment.secrets:
            self._put_secret(service)

    def _put_secret(self, service: Service) -> None:
        """Create the service's Secret, replacing one a half-finished delete left behind."""
        what = f"Secret {service.name}"
        try:
            self._call(
                "create",
                what,
                self._core.create_namespaced_secret,
                self.namespace,
                self._secret(service),
            )
        except kube.ConflictError:
            self._call(
                "replace",
                what,
                self._core.replace_namespaced_secret,
                service.name,
                self.namespace,
                self._secret(service),
            )

    def _read_secret(self, name: str) -> Any | None:
        try:
            return self._call(
                "read", f"Secret {name}", self._core.read_namespaced_secret, name, self.namespace
            )
        except kube.NotFoundError:
            return None

    def get(self, name: str) -> Service:
        """Read one service."""
        try:
            config_map = self._call(
                "read",
                f"ConfigMap {name}",
                self._core.read_namespaced_config_map,
                name,
                self.namespace,
            )
        except kube.NotFoundError:
            raise ServiceNotFoundError(name) from None
        if SERVICE_LABEL not in (config_map.metadata.labels or {}):
            raise ServiceNotFoundError(name)
        return self._service(config_map, self._read_secret(name))

    def list(self) -> list[Service]:
        """Every service, by name: two API calls in all."""
        selector = SERVICE_LABEL
        config_maps = self._call(
            "list",
            "ConfigMaps",
            self._core.list_namespaced_config_map,
            self.namespace,
            label_selector=selector,
        ).items
        secrets = {
            s.metadata.name: s
            for s in self._call(
                "list",
                "Secrets",
                self._core.list_namespaced_secret,
                self.namespace,
                label_selector=selector,
            ).items
        }
        services = [self._service(cm, secrets.get(cm.metadata.name)) for cm in config_maps]
        return sorted(services, key=lambda s: s.name)

    def update(self, service: Service) -> None:
        """Replace the ConfigMap and the Secret (created or removed as secrets come and go)."""
        name = service.name
        self.get(name)  # 404 first
        self._call(
            "replace",
            f"ConfigMap {name}",
            self._core.replace_namespaced_config_map,
            name,
            self.namespace,
            self._config_map(service),
        )
        if service.environment.secrets:
            self._put_secret(service)
        else:
            self._delete_secret(name)

    def delete(self, name: str) -> None:
        """Delete the ConfigMap and Secret."""
        self.get(name)
        try:
            self._call(
                "delete",
                f"ConfigMap {name}",
                self._core.delete_namespaced_config_map,
                name,
                self.namespace,
            )
        except kube.NotFoundError:
            raise ServiceNotFoundError(name) from None  # deleted by someone else meanwhile
        self._delete_secret(name)

    def _delete_secret(self, name: str) -> None:
        with contextlib.suppress(kube.NotFoundError):
            self._call(
                "delete",
                f"Secret {name}",
                self._core.delete_namespaced_secret,
                name,
                self.namespace,
            )

    def _settings(self) -> Any | None:
        try:
            return self._call(
                "read",
                f"ConfigMap {SETTINGS_CONFIG_MAP}",
                self._core.read_namespaced_config_map,
                SETTINGS_CONFIG_MAP,
                self.namespace,
            )
        except kube.NotFoundError:
            return None

    def read_setting(self, key: str) -> Any:
        """A key of the `config.yaml` ConfigMap, JSON-decoded (upstream's encoding)."""
        config_map = self._settings()
        raw = ((config_map and config_map.data) or {}).get(key)
        return None if raw is None else json.loads(raw)

    def write_setting(self, key: str, value: Any) -> None:
        """Create the `config.yaml` ConfigMap, or patch its key."""
        what = f"ConfigMap {SETTINGS_CONFIG_MAP}"
        body = {"metadata": {"name": SETTINGS_CONFIG_MAP}, "data": {key: json.dumps(value)}}
        try:
            self._call(
                "create", what, self._core.create_namespaced_config_map, self.namespace, body
            )
        except kube.ConflictError:
            self._call(
                "patch",
                what,
                self._core.patch_namespaced_config_map,
                SETTINGS_CONFIG_MAP,
                self.namespace,
                body,
            )
