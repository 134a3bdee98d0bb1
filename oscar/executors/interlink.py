"""interLink routing: a Job's Pod sent to an HPC virtual node (upstream `types/interlink.go`).

The pod gets a `nodeSelector` on the virtual node and the `virtual-node.interlink/no-schedule`
toleration; the supervisor reaches it as on any node (`SupervisorSource`: installed on the HPC
nodes, or copied by an init container into an `emptyDir`; no host volume, which could not
follow the pod to the HPC site). The event travels base64-encoded and is decoded in the pod.
Slurm settings ride on `slurm-job.vk.io/*` annotations; the older `job.vk.io/*` names, which
the current interLink Slurm plugin ignores, are translated (with a warning).
"""

from __future__ import annotations

import base64
import copy
import logging
from typing import Any

log = logging.getLogger("oscar.executors")

VIRTUAL_NODE_LABELS = (
    ("type", "virtual-kubelet"),
    ("virtual-node.interlink/type", "virtual-kubelet"),
)
TOLERATION = {"key": "virtual-node.interlink/no-schedule", "operator": "Exists"}
#: Upstream's supervisor image (`OSCAR_SUPERVISOR_IMAGE` may name it, or an image of ours).
SUPERVISOR_KIT_IMAGE = "ghcr.io/grycap/faas-supervisor-kit:latest"
#: The interLink container's shell command: `$EVENT` holds the event base64-encoded (as
#: upstream, so that no transport on the way to the HPC site mangles it); it is decoded and
#: piped, quoted, to the supervisor given as the positional parameters. Upstream's
#: `echo $EVENT | base64 -d | /data/supervisor` left the expansion unquoted.
EVENT_COMMAND = 'printf \'%s\' "$EVENT" | base64 -d | "$@"'
OLD_PREFIX, NEW_PREFIX = "job.vk.io/", "slurm-job.vk.io/"


def is_virtual_node(labels: dict[str, str] | None) -> bool:
    """Whether a node is registered like an interLink virtual node."""
    labels = labels or {}
    return any(labels.get(key) == value for key, value in VIRTUAL_NODE_LABELS)


def translate_annotations(annotations: dict[str, str], service: str) -> dict[str, str]:
    """`job.vk.io/x` → `slurm-job.vk.io/x` (an explicit new-style value wins)."""
    result = dict(annotations)
    for key, value in annotations.items():
        if key.startswith(OLD_PREFIX):
            new = NEW_PREFIX + key[len(OLD_PREFIX) :]
            log.warning(
                "service %s: annotation %s is ignored by the interLink Slurm plugin; using %s",
                service,
                key,
                new,
            )
            result.setdefault(new, value)
            del result[key]
    return result


def to_interlink(manifest: dict[str, Any], node: str) -> dict[str, Any]:
    """Turn a Job manifest (`job_manifest`) into its interLink form for virtual node `node`.

    The pod keeps its volumes (the configuration and store-keys Secrets, and in image mode
    the supervisor's `emptyDir` with its init container): the virtual kubelet sends their
    contents with the pod, and the plugin makes each visible at its `mountPath`.
    """
    job = copy.deepcopy(manifest)
    template = job["spec"]["template"]
    pod = template["spec"]
    service = job["metadata"]["labels"].get("oscar_service", "")
    annotations = translate_annotations(job["metadata"].get("annotations") or {}, service)
    job["metadata"]["annotations"] = annotations
    template["metadata"]["annotations"] = dict(annotations)
    pod["nodeSelector"] = {"kubernetes.io/hostname": node}
    pod["dnsPolicy"] = "ClusterFirst"
    pod["tolerations"] = [*pod.get("tolerations", []), TOLERATION]
    container = pod["containers"][0]
    flag, _, *supervisor = container["args"]
    container["args"] = [flag, EVENT_COMMAND, *supervisor]
    for variable in container["env"]:
        if variable["name"] == "EVENT":
            variable["value"] = base64.b64encode(variable["value"].encode()).decode()
    return job
