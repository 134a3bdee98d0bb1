"""The Helm chart `helm/oscar`: linted and rendered by the real helm (v3.19), its values checked
against `values.schema.json` with jsonschema, and its manifests applied to the real API server
(marker `kubernetes`), where a token of the chart's ServiceAccount shows exactly what the chart's
RBAC grants (SelfSubjectRulesReview, what `kubectl auth can-i --list` asks; kubectl itself is not
built in the test environment).
"""

from __future__ import annotations

import copy
import json
import os
import re
import string
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from pydantic import AliasChoices

from oscar.settings import Settings
from tests.fixtures import helm
from tests.fixtures.xdist_groups import group_of
from tests.services.kubernetes import KubernetesCluster

SCHEMA = json.loads((helm.CHART / "values.schema.json").read_text())
DEFAULTS = yaml.safe_load((helm.CHART / "values.yaml").read_text())
VALUES_FILES = [pytest.param(None, id="defaults")] + [
    pytest.param(path, id=path.stem) for path in helm.EXAMPLES
]
#: Settings whose values are credentials: they may only reach the pod from a Secret.
SECRET_SETTINGS = {
    "OSCAR_USERNAME",
    "OSCAR_PASSWORD",
    "OSCAR_EVENTS_TOKEN",
    "OSCAR_MINIO_ACCESS_KEY",
    "OSCAR_MINIO_SECRET_KEY",
}
#: A stand-in for the Gateway API's HTTPRoute CRD (the real one is a 300 kB download from the
#: gateway-api releases): same group, version, kind and scope, any spec accepted.
HTTPROUTE_STANDIN_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {
        "name": "httproutes.gateway.networking.k8s.io",
        # *.k8s.io groups are protected; the real CRD carries its approval too.
        "annotations": {
            "api-approved.kubernetes.io": "https://github.com/kubernetes-sigs/gateway-api/pull/2466"
        },
    },
    "spec": {
        "group": "gateway.networking.k8s.io",
        "names": {
            "kind": "HTTPRoute",
            "listKind": "HTTPRouteList",
            "plural": "httproutes",
            "singular": "httproute",
        },
        "scope": "Namespaced",
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "x-kubernetes-preserve-unknown-fields": True,
                    }
                },
            }
        ],
    },
}


def settings_env_names() -> set[str]:
    """The environment variable of every field of `oscar.settings.Settings` (its first alias)."""
    names: set[str] = set()
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        first = alias.choices[0] if isinstance(alias, AliasChoices) else None
        names.add(first if isinstance(first, str) else f"OSCAR_{name.upper()}")
    return names


def merged(values_file: Path | None) -> dict[str, Any]:
    """values.yaml with a values file over it, merged as Helm merges them (maps key by key,
    anything else replaced, null removes the key) — what Helm checks against the schema."""

    def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
        out = copy.deepcopy(base)
        for key, value in over.items():
            if value is None:
                out.pop(key, None)
            elif isinstance(value, dict) and isinstance(out.get(key), dict):
                out[key] = merge(out[key], value)
            else:
                out[key] = copy.deepcopy(value)
        return out

    def drop_nulls(values: dict[str, Any]) -> dict[str, Any]:
        return {
            k: drop_nulls(v) if isinstance(v, dict) else v
            for k, v in values.items()
            if v is not None
        }

    over = yaml.safe_load(values_file.read_text()) if values_file else {}
    return drop_nulls(merge(DEFAULTS, over or {}))


def deployment(manifests: list[dict[str, Any]]) -> dict[str, Any]:
    (found,) = helm.find(manifests, "Deployment")
    return found


def container_env(manifests: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    (container,) = deployment(manifests)["spec"]["template"]["spec"]["containers"]
    return {entry["name"]: entry for entry in container["env"]}


def files_arg(values_file: Path | None) -> list[Path]:
    return [values_file] if values_file else []


# --- lint, template and the values schema --------------------------------------------------


@pytest.mark.parametrize("values_file", VALUES_FILES)
def test_helm_lint_strict_passes(values_file: Path | None) -> None:
    result = helm.run_helm(
        ["lint", "--strict", str(helm.CHART), *helm.value_args(files_arg(values_file))]
    )
    assert "1 chart(s) linted, 0 chart(s) failed" in result.stdout


@pytest.mark.parametrize("values_file", VALUES_FILES)
def test_values_are_valid_against_the_schema(values_file: Path | None) -> None:
    jsonschema.Draft7Validator.check_schema(SCHEMA)
    errors = [
        e.message for e in jsonschema.Draft7Validator(SCHEMA).iter_errors(merged(values_file))
    ]
    assert errors == []


def test_schema_describes_every_value() -> None:
    """Each key of values.yaml is a property of the schema, at every level the schema
    describes; and the schema has no property values.yaml lacks (null defaults aside)."""

    def walk(values: dict[str, Any], schema: dict[str, Any], path: str) -> Iterator[str]:
        properties = schema.get("properties")
        if properties is None:
            return  # a Kubernetes object passed through as is (resources, affinity, ...)
        assert schema.get("additionalProperties") is False, f"{path or '/'} allows any key"
        for key in set(values) - set(properties):
            yield f"{path}/{key}: not in the schema"
        for key in set(properties) - set(values) - {"global"}:
            yield f"{path}/{key}: in the schema, not in values.yaml"
        for key, value in values.items():
            if isinstance(value, dict) and key in properties:
                yield from walk(value, properties[key], f"{path}/{key}")

    assert list(walk(DEFAULTS, SCHEMA, "")) == []


#: Values documented as a whole in docs/kubernetes.md (Kubernetes objects, key-name maps).
DOCUMENTED_WHOLE = {
    "resources",
    "securityContext",
    "probes.startup",
    "probes.liveness",
    "probes.readiness",
    "auth.secretKeys",
    "storage.secretKeys",
}


def test_docs_table_lists_every_value() -> None:
    text = (helm.CHART.parents[1] / "docs" / "kubernetes.md").read_text()
    section = text.split("## Install with Helm", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"`([A-Za-z][\w.]*)`", section))

    def leaves(values: dict[str, Any], prefix: str) -> Iterator[str]:
        for key, value in values.items():
            path = f"{prefix}{key}"
            if isinstance(value, dict) and value and path not in DOCUMENTED_WHOLE:
                yield from leaves(value, f"{path}.")
            else:
                yield path

    assert sorted(set(leaves(DEFAULTS, "")) - documented) == []


BAD_VALUES = [
    pytest.param({"replicaCount": "two"}, "/replicaCount", id="replicaCount-string"),
    pytest.param({"replicaCount": -1}, "/replicaCount", id="replicaCount-negative"),
    pytest.param({"replicaCont": 2}, "replicaCont", id="misspelt-key"),
    pytest.param({"executor": {"type": "nomad"}}, "/executor/type", id="executor-enum"),
    pytest.param({"jobStore": "etcd"}, "/jobStore", id="jobStore-enum"),
    pytest.param({"storage": {"type": "minio"}}, "/storage/endpoint", id="minio-no-endpoint"),
    pytest.param({"securityContext": {"runAsUser": 0}}, "/securityContext/runAsUser", id="root"),
    pytest.param({"server": {"port": 70000}}, "/server/port", id="port-range"),
    pytest.param({"httpRoute": {"enabled": True}}, "/httpRoute/parentRefs", id="route-no-parent"),
]


@pytest.mark.parametrize(("bad", "where"), BAD_VALUES)
def test_bad_values_are_refused_by_the_schema(
    bad: dict[str, Any], where: str, tmp_path: Path
) -> None:
    values_file = tmp_path / "bad.yaml"
    values_file.write_text(yaml.safe_dump(bad))
    errors = list(jsonschema.Draft7Validator(SCHEMA).iter_errors(merged(values_file)))
    assert errors, "jsonschema accepted it"
    for command in (["lint", "--strict"], ["template", "oscar"]):
        result = helm.run_helm([*command, str(helm.CHART), "-f", str(values_file)], check=False)
        assert result.returncode != 0, f"helm {command[0]} accepted {bad}"
        output = result.stdout + result.stderr
        assert "schema" in output and where in output, output


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        pytest.param(
            {"replicaCount": 2}, "replicaCount > 1 needs storage.type=minio", id="replicas"
        ),
        pytest.param(
            {"storage": {"type": "minio", "endpoint": "http://minio:9000"}},
            "storage.type=minio needs storage.accessKey",
            id="minio-no-keys",
        ),
        pytest.param(
            {"executor": {"type": "local"}}, "jobStore=kubernetes", id="kube-store-local-jobs"
        ),
        pytest.param({"hpc": {"executor": "slurm"}}, "cannot record Slurm", id="kube-store-slurm"),
        pytest.param(
            {"jobStore": "sqlite"}, "leaderElection.enabled needs jobStore", id="election-sqlite"
        ),
    ],
)
def test_settings_that_cannot_work_are_refused(settings: dict[str, Any], message: str) -> None:
    result = helm.run_helm(
        ["template", "oscar", str(helm.CHART), *helm.value_args(set_values=settings)],
        check=False,
    )
    assert result.returncode != 0
    assert message in result.stderr


# --- the Deployment ------------------------------------------------------------------------


@pytest.mark.parametrize("values_file", VALUES_FILES)
def test_deployment_runs_unprivileged_with_probes_and_resources(
    values_file: Path | None,
) -> None:
    values = merged(values_file)
    manifests = helm.render(files_arg(values_file))
    pod = deployment(manifests)["spec"]["template"]["spec"]
    port = values["server"]["port"]

    assert pod["securityContext"]["runAsNonRoot"] is True
    assert isinstance(pod["securityContext"]["runAsUser"], int)
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert not {"hostNetwork", "hostPID", "hostIPC"} & set(pod)
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert not [v for v in volumes.values() if "hostPath" in v]
    for container in pod["containers"]:
        security = container["securityContext"]
        assert security["runAsNonRoot"] is True
        assert security["runAsUser"] != 0
        assert security["allowPrivilegeEscalation"] is False
        assert security["readOnlyRootFilesystem"] is True
        assert security["privileged"] is False
        assert security["capabilities"] == {"drop": ["ALL"]}
        assert security["seccompProfile"] == {"type": "RuntimeDefault"}
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(container["resources"][kind])
        # A read-only root: /tmp and the data directory are volumes.
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        assert "emptyDir" in volumes[mounts["/tmp"]]
        data = volumes[mounts["/var/lib/oscar"]]
        assert "emptyDir" in data or "persistentVolumeClaim" in data
        # The command is explicit (pods run natively by interLink need one).
        every_interface = "0.0.0.0"  # noqa: S104 (the pod's own network namespace)
        assert container["command"] == [
            "oscar",
            "serve",
            "--host",
            every_interface,
            "--port",
            str(port),
        ]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports["http"] == port
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            assert container[probe]["httpGet"] == {"path": "/health", "port": "http"}


def test_the_command_and_probe_exist_in_oscar() -> None:
    """`oscar serve` takes the flags the chart passes, and /health answers without credentials."""
    from typer.testing import CliRunner

    from oscar.api import system
    from oscar.cli import app

    help_text = CliRunner().invoke(app, ["serve", "--help"]).output
    assert "--host" in help_text and "--port" in help_text
    (route,) = [r for r in system.router.routes if getattr(r, "path", None) == "/health"]
    assert "GET" in route.methods
    assert route.dependant.dependencies == []  # no principal: no authentication
    assert route.endpoint() == "Ok"


@pytest.mark.parametrize("values_file", VALUES_FILES)
def test_every_setting_is_a_value_and_secrets_come_from_secrets(
    values_file: Path | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifests = helm.render(files_arg(values_file))
    env = container_env(manifests)
    unknown = {n for n in env if n.startswith("OSCAR_")} - settings_env_names()
    assert unknown == set(), "the chart sets variables oscar/settings.py does not read"
    for name in SECRET_SETTINGS & set(env):
        assert "value" not in env[name] and "secretKeyRef" in env[name]["valueFrom"], name
    assert env["OSCAR_POD_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}

    # The settings load from what the chart sets (secrets replaced by stand-ins).
    for name in list(monkeypatch_env_names()):
        monkeypatch.delenv(name, raising=False)
    for name, entry in env.items():
        value = entry.get("value")
        if value is None:
            value = "pod-name" if name == "OSCAR_POD_NAME" else "from-a-secret"
        monkeypatch.setenv(name, value)
    settings = Settings()
    values = merged(values_file)
    assert settings.executor == values["executor"]["type"]
    assert settings.services_namespace == values["servicesNamespace"]["name"]
    assert settings.namespace == settings.lease_namespace == "oscar"
    assert settings.leader_election is values["leaderElection"]["enabled"]
    assert settings.job_store == values["jobStore"]


def monkeypatch_env_names() -> Iterator[str]:
    """Variables of this process that the settings would read (cleared before loading):
    `OSCAR_*` and the upstream aliases (`KUBECONFIG`, `MINIO_ENDPOINT`, ...)."""
    aliases = {
        choice.upper()
        for field in Settings.model_fields.values()
        if isinstance(field.validation_alias, AliasChoices)
        for choice in field.validation_alias.choices
        if isinstance(choice, str)
    }
    for name in os.environ:
        if name.startswith("OSCAR_") or name in aliases:
            yield name


def test_every_setting_has_a_value() -> None:
    """With every optional value given, each OSCAR_* setting reaches the pod."""
    full = {
        "executor": {"maxConcurrentJobs": 100},
        "jobStore": "sqlite",
        "leaderElection": {"enabled": False},  # one replica on SQLite leads alone
        "hpc": {
            "executor": "slurm",
            "maxConcurrentJobs": 50,
            "slurm": {"conf": "/etc/s.conf", "sshHost": "login"},
        },
        "jobs": {"queueTimeout": 60},
        "auth": {
            "usersAdmin": ["admin@example"],
            "oidc": {
                "issuers": ["https://id.example"],
                "groups": ["g"],
                "audience": ["a"],
                "clientId": "c",
            },
        },
        "storage": {
            "type": "minio",
            "endpoint": "http://minio:9000",
            "jobEndpoint": "http://minio.x:9000",
            "existingSecret": "keys",
        },
        "supervisorCommand": "/usr/bin/supervisor",
        "interlink": {"cloudNode": "vk"},
        "knative": {"enabled": True},
        "kubeconfigSecret": "kubeconfig",
    }
    env = container_env(helm.render(set_values=full))
    assert settings_env_names() - set(env) == set()


# --- generated credentials -----------------------------------------------------------------


def admin_secret(manifests: list[dict[str, Any]]) -> dict[str, str]:
    import base64

    (secret,) = helm.find(manifests, "Secret", "oscar-admin")
    return {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}


def test_admin_password_and_events_token_are_generated_never_a_default() -> None:
    assert DEFAULTS["auth"]["password"] == "" and DEFAULTS["auth"]["eventsToken"] == ""
    first, second = admin_secret(helm.render()), admin_secret(helm.render())
    alphanumeric = set(string.ascii_letters + string.digits)
    for secret in (first, second):
        assert secret["username"] == "oscar"
        assert len(secret["password"]) == 32 and set(secret["password"]) <= alphanumeric
        assert len(secret["events-token"]) == 48 and set(secret["events-token"]) <= alphanumeric
    assert first["password"] != second["password"]
    assert first["events-token"] != second["events-token"]
    env = container_env(helm.render())
    assert env["OSCAR_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "oscar-admin",
        "key": "password",
    }


def test_given_password_and_existing_secret_are_used() -> None:
    given = admin_secret(helm.render(set_values={"auth": {"password": "chosen-by-the-admin"}}))
    assert given["password"] == "chosen-by-the-admin"
    manifests = helm.render(set_values={"auth": {"existingSecret": "mine"}})
    assert helm.find(manifests, "Secret") == []
    env = container_env(manifests)
    assert env["OSCAR_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "mine"


def test_minio_keys_live_in_a_secret_not_in_the_deployment() -> None:
    keys = {"accessKey": "access-4f1e", "secretKey": "secret-9b7c"}
    minio = {"type": "minio", "endpoint": "http://minio:9000", **keys}
    manifests = helm.render(set_values={"storage": minio})
    (secret,) = helm.find(manifests, "Secret", "oscar-storage")
    assert set(secret["data"]) == {"accessKey", "secretKey"}
    spec = json.dumps(deployment(manifests))
    assert keys["accessKey"] not in spec and keys["secretKey"] not in spec
    env = container_env(manifests)
    assert env["OSCAR_MINIO_SECRET_KEY"]["valueFrom"]["secretKeyRef"] == {
        "name": "oscar-storage",
        "key": "secretKey",
    }


def test_kubeconfig_secret_is_mounted_read_only_and_replaces_the_token() -> None:
    manifests = helm.render(set_values={"kubeconfigSecret": "remote"})
    pod = deployment(manifests)["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    (container,) = pod["containers"]
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == "kubeconfig"]
    assert mount["readOnly"] is True
    env = container_env(manifests)
    assert env["OSCAR_KUBECONFIG"]["value"] == f"{mount['mountPath']}/kubeconfig"
    (volume,) = [v for v in pod["volumes"] if v["name"] == "kubeconfig"]
    assert volume["secret"]["secretName"] == "remote"
    assert (
        deployment(helm.render())["spec"]["template"]["spec"]["automountServiceAccountToken"]
        is True
    )


def test_jobs_run_the_static_supervisor_of_the_charts_image_by_default() -> None:
    """It runs in any job image (glibc, musl or no libc); a given command, or no image (the
    supervisor installed on the nodes), leaves the choice to oscar."""
    env = container_env(helm.render())
    assert env["OSCAR_SUPERVISOR_IMAGE"]["value"].startswith("oscar-supervisor:")
    assert env["OSCAR_SUPERVISOR_COMMAND"]["value"] == "/oscar/bin/supervisor-static"
    given = container_env(helm.render(set_values={"supervisorCommand": "/oscar/bin/supervisor"}))
    assert given["OSCAR_SUPERVISOR_COMMAND"]["value"] == "/oscar/bin/supervisor"
    native = container_env(helm.render(set_values={"supervisorImage.repository": ""}))
    assert "OSCAR_SUPERVISOR_COMMAND" not in native and "OSCAR_SUPERVISOR_IMAGE" not in native


# --- RBAC, rendered ------------------------------------------------------------------------

Rule = tuple[str, str, str, str]  # (apiGroup, resource, verb, resourceName or "")

SERVICES_RULES: set[Rule] = {
    *(("batch", "jobs", v, "") for v in ("create", "delete", "get", "list", "patch")),
    *(("", "configmaps", v, "") for v in ("create", "delete", "get", "list", "patch", "update")),
    *(("", "secrets", v, "") for v in ("create", "delete", "get", "list", "update")),
    ("", "pods", "list", ""),
    ("", "pods", "deletecollection", ""),
    ("", "pods/log", "get", ""),
}
KNATIVE_RULES: set[Rule] = {
    ("serving.knative.dev", "services", v, "") for v in ("create", "delete", "get", "update")
}
LEASE_RULES: set[Rule] = {
    ("coordination.k8s.io", "leases", "create", ""),
    ("coordination.k8s.io", "leases", "get", "oscar-control-plane"),
    ("coordination.k8s.io", "leases", "update", "oscar-control-plane"),
}
NODE_RULES: set[Rule] = {("", "nodes", "get", ""), ("", "nodes", "list", "")}


def flatten(rules: list[dict[str, Any]]) -> set[Rule]:
    """RBAC rules (or SelfSubjectRulesReview resourceRules) as (group, resource, verb, name)."""
    out: set[Rule] = set()
    for rule in rules:
        names = rule.get("resourceNames") or rule.get("resource_names") or [""]
        groups = rule.get("apiGroups") or rule.get("api_groups") or [""]
        for group in groups:
            for resource in rule["resources"]:
                for verb in rule["verbs"]:
                    for name in names:
                        out.add((group, resource, verb, name))
    return out


def test_rendered_rbac_is_the_least_the_code_needs() -> None:
    manifests = helm.render(namespace="oscar")
    roles = {
        (r["metadata"]["namespace"], r["metadata"]["name"]): r for r in helm.find(manifests, "Role")
    }
    assert flatten(roles["oscar-svc", "oscar"]["rules"]) == SERVICES_RULES
    assert flatten(roles["oscar", "oscar-leader-election"]["rules"]) == LEASE_RULES
    (cluster_role,) = helm.find(manifests, "ClusterRole")
    assert flatten(cluster_role["rules"]) == NODE_RULES
    # Knative adds its Services; nothing else changes.
    knative = helm.render(set_values={"knative": {"enabled": True}})
    (role,) = helm.find(knative, "Role", "oscar")
    assert flatten(role["rules"]) == SERVICES_RULES | KNATIVE_RULES
    for binding in helm.find(manifests, "RoleBinding") + helm.find(manifests, "ClusterRoleBinding"):
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "oscar", "namespace": "oscar"}
        ]


def test_cluster_tests_run_on_the_kubernetes_lane(request: pytest.FixtureRequest) -> None:
    """xdist puts this module's cluster tests in lane-a (the session control plane's worker)
    and spreads the others freely."""
    mine = [
        i for i in request.session.items if i.nodeid.startswith(request.node.nodeid.split("::")[0])
    ]
    for item in mine:
        expected = "lane-a" if item.get_closest_marker("kubernetes") else None
        assert group_of(item) == expected, item.nodeid


# --- on the real API server ------------------------------------------------------------------


@pytest.fixture
def fresh(kubernetes: KubernetesCluster) -> Iterator[dict[str, Any]]:
    """A release namespace, a services-namespace name and a third namespace, all new; whatever
    the test applied (listed in `applied`) is deleted afterwards, namespaces included."""
    from kubernetes import client

    api = kubernetes.api_client()
    core = client.CoreV1Api(api)
    suffix = uuid.uuid4().hex[:6]
    names = {"release": f"oscar-{suffix}", "services": f"svc-{suffix}", "other": f"other-{suffix}"}
    for key in ("release", "other"):
        core.create_namespace({"metadata": {"name": names[key]}})
    state: dict[str, Any] = {**names, "api": api, "applied": []}
    yield state
    helm.delete(state["applied"], api)
    for key in ("release", "other"):
        core.delete_namespace(names[key])


def render_into(
    state: dict[str, Any], values_file: Path | None = None, **settings: Any
) -> list[dict[str, Any]]:
    return helm.render(
        files_arg(values_file),
        set_values={"servicesNamespace": {"name": state["services"]}, **settings},
        namespace=state["release"],
    )


@pytest.mark.kubernetes
@pytest.mark.parametrize("values_file", VALUES_FILES)
def test_manifests_are_accepted_by_the_api_server(
    kubernetes: KubernetesCluster, fresh: dict[str, Any], values_file: Path | None
) -> None:
    manifests = render_into(fresh, values_file)
    if helm.find(manifests, "HTTPRoute"):
        # Deleted last, after the HTTPRoute: the session cluster is left as it was.
        fresh["applied"] = [HTTPROUTE_STANDIN_CRD]
        helm.apply([HTTPROUTE_STANDIN_CRD], fresh["api"])
    fresh["applied"] = [*fresh["applied"], *manifests]
    applied = helm.apply(manifests, fresh["api"])
    assert [(a.kind, a.metadata.name) for a in applied] == [
        (m["kind"], m["metadata"]["name"]) for m in manifests
    ]
    assert all(a.metadata.uid for a in applied)


def self_rules(api: Any, namespace: str) -> tuple[set[Rule], bool]:
    """What the caller of `api` may do in `namespace` (SelfSubjectRulesReview): its resource
    rules flattened, and whether the review was incomplete."""
    from kubernetes import client

    review = client.AuthorizationV1Api(api).create_self_subject_rules_review(
        {"spec": {"namespace": namespace}}
    )
    rules = [r.to_dict() for r in review.status.resource_rules]
    return flatten(rules), bool(review.status.incomplete)


def can(
    api: Any, verb: str, resource: str, namespace: str = "", group: str = "", name: str = ""
) -> bool:
    """Whether the caller of `api` may do this (SelfSubjectAccessReview)."""
    from kubernetes import client

    attributes = {
        "verb": verb,
        "resource": resource,
        "group": group,
        "namespace": namespace,
        "name": name,
    }
    review = client.AuthorizationV1Api(api).create_self_subject_access_review(
        {"spec": {"resourceAttributes": attributes}}
    )
    return bool(review.status.allowed)


def token_client(cluster: KubernetesCluster, namespace: str, name: str, path: Path) -> Any:
    from kubernetes import config

    kubeconfig = helm.service_account_kubeconfig(cluster, namespace, name, path)
    return config.new_client_from_config(config_file=str(kubeconfig))


@pytest.mark.kubernetes
@pytest.mark.parametrize("knative", [False, True], ids=["default", "knative"])
def test_service_account_can_do_exactly_what_the_chart_grants(
    kubernetes: KubernetesCluster, fresh: dict[str, Any], tmp_path: Path, knative: bool
) -> None:
    from kubernetes import client

    manifests = render_into(fresh, knative={"enabled": knative})
    fresh["applied"] = manifests
    helm.apply(manifests, fresh["api"])
    # Every authenticated user may review itself, discover APIs...: a bare ServiceAccount's
    # rules are that baseline, which the chart's ServiceAccount has on top of its own.
    client.CoreV1Api(fresh["api"]).create_namespaced_service_account(
        fresh["other"], {"metadata": {"name": "bare"}}
    )
    oscar = token_client(kubernetes, fresh["release"], "oscar", tmp_path / "oscar.kubeconfig")
    bare = token_client(kubernetes, fresh["other"], "bare", tmp_path / "bare.kubeconfig")

    expected = {
        fresh["services"]: SERVICES_RULES | (KNATIVE_RULES if knative else set()) | NODE_RULES,
        fresh["release"]: LEASE_RULES | NODE_RULES,
        fresh["other"]: NODE_RULES,
    }
    for namespace, allowed in expected.items():
        granted, incomplete = self_rules(oscar, namespace)
        baseline, _ = self_rules(bare, namespace)
        assert not incomplete
        # The baseline is only self-reviews (nothing of the chart's hides in it).
        assert {group for group, *_ in baseline} <= {
            "authorization.k8s.io",
            "authentication.k8s.io",
        }
        assert granted - baseline == allowed, namespace

    services, other = fresh["services"], fresh["other"]
    assert can(oscar, "create", "jobs", services, "batch")  # the token works
    assert not can(oscar, "list", "secrets", other)
    assert not can(oscar, "get", "secrets", fresh["release"])
    assert not can(oscar, "list", "secrets")  # all namespaces
    assert not can(oscar, "create", "clusterroles", group="rbac.authorization.k8s.io")
    assert not can(oscar, "create", "rolebindings", services, "rbac.authorization.k8s.io")
    assert not can(oscar, "create", "namespaces")
    assert not can(oscar, "create", "pods", services)
    assert not can(oscar, "watch", "nodes")
    # Only this release's Lease may be renewed, and only in the release namespace.
    lease = ("leases", fresh["release"], "coordination.k8s.io")
    assert can(oscar, "update", *lease, name="oscar-control-plane")
    assert not can(oscar, "update", *lease, name="another-lease")
    assert not can(oscar, "update", "leases", services, "coordination.k8s.io")


@pytest.mark.kubernetes
def test_helm_install_upgrade_keeps_the_generated_secrets(
    kubernetes: KubernetesCluster, fresh: dict[str, Any]
) -> None:
    """`lookup` finds the installed Secret: an upgrade keeps the password and the token."""
    from kubernetes import client

    release, namespace = f"r{uuid.uuid4().hex[:6]}", fresh["release"]
    env = kubernetes.kubectl_env()
    common = [
        str(helm.CHART),
        "--namespace",
        namespace,
        "--set",
        f"servicesNamespace.name={fresh['services']}",
    ]
    helm.run_helm(["install", release, *common], env=env)
    try:
        core = client.CoreV1Api(fresh["api"])
        name = f"{release}-oscar-admin"
        before = core.read_namespaced_secret(name, namespace).data
        result = helm.run_helm(
            ["upgrade", release, *common, "--set", "server.logLevel=DEBUG"], env=env
        )
        # NOTES.txt: how to get the password, reach the API and register the cluster.
        notes = result.stdout.split("NOTES:", 1)[1]
        assert f"get secret {name}" in notes and "{.data.password}" in notes
        assert f"port-forward svc/{release}-oscar 8080:8080" in notes
        assert (
            f"oscar-cli cluster add {release} http://127.0.0.1:8080 oscar --password-stdin" in notes
        )
        after = core.read_namespaced_secret(name, namespace).data
        assert after == before
        apps = client.AppsV1Api(fresh["api"])
        (container,) = apps.read_namespaced_deployment(
            f"{release}-oscar", namespace
        ).spec.template.spec.containers
        assert {e.name: e.value for e in container.env}["OSCAR_LOG_LEVEL"] == "DEBUG"
    finally:
        helm.run_helm(["uninstall", release, "--namespace", namespace], env=env)
    remaining = core.list_namespaced_secret(
        namespace, label_selector=f"app.kubernetes.io/instance={release}"
    )
    assert remaining.items == []
