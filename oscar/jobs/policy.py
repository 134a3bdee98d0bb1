"""Where a new job of a service runs: the per-service `routing` policy (cloud, hpc or auto)."""

from __future__ import annotations

from typing import Literal

from oscar.models.service import Service


def route(service: Service, waiting: int, auto_threshold: int) -> Literal["cloud", "hpc"]:
    """`hpc` for `routing: hpc`; for `auto`, when `waiting` cloud jobs reach the threshold or
    the service wants a GPU the cloud lacks; `cloud` otherwise."""
    if service.routing == "hpc":
        return "hpc"
    if service.routing == "auto" and (waiting >= auto_threshold or service.enable_gpu):
        return "hpc"
    return "cloud"
