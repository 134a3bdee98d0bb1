"""The Slurm backend: one batch job per pod, through oscar's own Slurm client
(`oscar.executors.slurm_commands`: the commands, the state table and the transports are
shared)."""

from __future__ import annotations

import math
import shlex
from collections.abc import Collection
from typing import Any

from interlink_plugin.backends.base import PodBackend, RunState
from interlink_plugin.pods import PodError, PodFolder, can_bind_mount, container_runtime, pod_gpus
from oscar.executors.slurm import FLAGS_ANNOTATIONS
from oscar.executors.slurm_commands import STATES, TERMINAL, LocalTransport, SlurmClient
from oscar.models.job import JobStatus
from oscar.models.quantity import parse_quantity
from oscar.models.service import slurm_flag_words

#: Slurm's terminal states, each with the exit code and reason the pod's containers get when
#: the job ended before they could say (distinct, so a timeout is not taken for an error).
ENDINGS: dict[str, tuple[int, str]] = {
    "TIMEOUT": (124, "the Slurm job reached its time limit (TIMEOUT)"),
    "OUT_OF_MEMORY": (137, "the Slurm job ran out of memory (OUT_OF_MEMORY)"),
    "NODE_FAIL": (135, "the Slurm job's node failed (NODE_FAIL)"),
    "CANCELLED": (143, "the Slurm job was cancelled (CANCELLED)"),
    "PREEMPTED": (143, "the Slurm job was preempted (PREEMPTED)"),
    "BOOT_FAIL": (135, "the Slurm job's node failed to boot (BOOT_FAIL)"),
    "DEADLINE": (124, "the Slurm job missed its deadline (DEADLINE)"),
    "FAILED": (1, "the Slurm job failed (FAILED)"),
}


class SlurmBackend(PodBackend):
    """Pods as Slurm batch jobs (the pod's folder must be on a filesystem the nodes share)."""

    name = "slurm"

    def __init__(self, transport: LocalTransport | None = None) -> None:
        self.slurm = SlurmClient(transport or LocalTransport())
        # The batch job runs on a node of this cluster; as with oscar's Slurm executor, the
        # nodes are taken to have what the plugin's host has.
        self.runtime = container_runtime()
        self.bind_mounts = can_bind_mount()

    def directives(self, folder: PodFolder, pod: dict[str, Any]) -> list[str]:
        """`sbatch` options: name, output, folder, the pod's cpu/memory/GPU limits, then the
        `slurm-job.vk.io/flags` annotation (checked as oscar checks a service's)."""
        meta = pod.get("metadata") or {}
        spec = pod.get("spec") or {}
        cpus, memory = 1, 0
        for container in spec.get("containers") or []:
            limits = (container.get("resources") or {}).get("limits") or {}
            if "cpu" in limits:
                cpus = max(cpus, math.ceil(float(parse_quantity(str(limits["cpu"])))))
            if "memory" in limits:
                memory = max(
                    memory, math.ceil(float(parse_quantity(str(limits["memory"]))) / 2**20)
                )
        options = [
            f"--job-name=pod-{folder.uid}",
            f"--output={folder.path}/slurm.out",
            f"--chdir={folder.path}",
            f"--cpus-per-task={cpus}",
        ]
        if memory:
            options.append(f"--mem={memory}M")
        if gpus := pod_gpus(pod):
            options.append(f"--gres=gpu:{gpus}")
        annotations = meta.get("annotations") or {}
        for key in FLAGS_ANNOTATIONS:
            if key in annotations:
                try:
                    options += slurm_flag_words(key, annotations[key])
                except ValueError as exc:
                    raise PodError(str(exc)) from None
        return options

    def start(self, folder: PodFolder, pod: dict[str, Any]) -> str:
        """`sbatch` the pod (found again by name when an earlier answer was lost)."""
        if found := self.slurm.find(f"pod-{folder.uid}"):
            return found
        directives = "".join(f"#SBATCH {shlex.quote(d)}\n" for d in self.directives(folder, pod))
        script = folder.path / "job.sh"
        run = shlex.quote(str(folder.path / "run.sh"))
        script.write_text(f"#!/bin/bash\n{directives}exec /bin/bash {run}\n")
        return self.slurm.submit(script)

    def states(self, jobs: Collection[str]) -> dict[str, RunState]:
        """One `squeue` (and `scontrol` for the ended) for every pod."""
        answer: dict[str, RunState] = {}
        for job, seen in self.slurm.states([j for j in jobs if j.isdigit()]).items():
            state = seen.state.split("+")[0].split(" ")[0]
            if not state:
                answer[job] = RunState(
                    False, exit_code=1, message=f"Slurm no longer knows job {job}"
                )
            elif state not in TERMINAL:
                pending = STATES.get(state) == JobStatus.PENDING
                reason = "" if seen.reason in ("None", "(null)") else seen.reason
                answer[job] = RunState(True, waiting_reason=reason if pending else "")
            else:
                code, message = ENDINGS.get(state, (0, f"the Slurm job ended {state}"))
                answer[job] = RunState(False, exit_code=code, message=f"{message}; Slurm job {job}")
        return answer

    def stop(self, job: str) -> None:
        """`scancel` the job."""
        self.slurm.cancel(job)

    def resources(self) -> dict[str, Any]:
        """The cluster's CPUs, memory and GPUs summed over its partitions (`sinfo`)."""
        partitions = self.slurm.partitions().get("partitions") or []
        cpus = sum(p["cpus"]["total"] for p in partitions)
        memory = sum(p["memory_per_node_bytes"] * p["nodes"] for p in partitions)
        gpus = sum(p["gpus_per_node"] * p["nodes"] for p in partitions)
        answer: dict[str, Any] = {"cpu": str(cpus), "memory": str(memory), "pods": "1000"}
        if gpus:
            answer["accelerators"] = [{"resourceType": "nvidia.com/gpu", "available": str(gpus)}]
        return answer
