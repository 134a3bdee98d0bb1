"""interLink routing: a Job's Pod sent to an HPC virtual node (upstream `types/interlink.go`).

The pod gets a `nodeSelector` on the virtual node, the `virtual-node.interlink/no-schedule`
toleration, and the supervisor from an init container into a shared `emptyDir` (a host volume
cannot follow the pod to the HPC site). The event travels base64-encoded and is decoded in the
pod. Slurm settings ride on `slurm-job.vk.io/*` annotations; the older `job.vk.io/*` names,
which the current interLink Slurm plugin ignores, are translated (with a warning).
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
SHARED_VOLUME = "supervisor-share-data"
SUPERVISOR_KIT_IMAGE = "ghcr.io/grycap/faas-supervisor-kit:latest"
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


def to_interlink(
    manifest: dict[str, Any], node: str, kit_image: str = SUPERVISOR_KIT_IMAGE
) -> dict[str, Any]:
    """Turn an upstream Job manifest into its interLink form for virtual node `node`."""
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
    pod["volumes"] = [v for v in pod["volumes"] if v["name"] != "oscar-volume"]
    pod["volumes"].append({"name": SHARED_VOLUME, "emptyDir": {}})
    pod["initContainers"] = [
        {
            "name": "supervisor-container",
            "image": kit_image,
            "command": ["/bin/sh", "-c", "cp -r /supervisor/* /data"],
            "volumeMounts": [{"name": SHARED_VOLUME, "mountPath": "/data"}],
        }
    ]
    container = pod["containers"][0]
    container["args"] = ["-c", "echo $EVENT | base64 -d | /data/supervisor"]
    container["volumeMounts"] = [
        m for m in container["volumeMounts"] if m["name"] != "oscar-volume"
    ] + [{"name": SHARED_VOLUME, "mountPath": "/data"}]
    for variable in container["env"]:
        if variable["name"] == "EVENT":
            variable["value"] = base64.b64encode(variable["value"].encode()).decode()
    return job
