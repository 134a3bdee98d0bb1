"""Figures every benchmark prints: median, p95 and the ratio to a baseline."""

from __future__ import annotations

import statistics


def p95(samples: list[float]) -> float:
    """The 95th percentile (nearest rank)."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def row_ms(name: str, samples: list[float], baseline: float, width: int = 34) -> str:
    """A table row: median and p95 in milliseconds, and median / baseline."""
    median = statistics.median(samples)
    return (
        f"| {name:<{width}} | {median * 1000:>9.1f} ms | {p95(samples) * 1000:>9.1f} ms "
        f"| {median / baseline:>5.2f}x |"
    )
