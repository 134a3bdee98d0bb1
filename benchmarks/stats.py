"""Figures every benchmark prints: median, p95 and the ratio to a baseline.

`Row` is one figure of the table `benchmarks/run_all` prints; `row_ms` is the older one-line
form some benchmarks still print.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass


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


@dataclass
class Row:
    """One figure of the benchmark table, in `unit`, with its baseline from the same run.

    `median` and `p95` are None where the figure is a single value (a count, a rate, a peak):
    then `value` is set instead. `met` is None when the figure has no target.
    """

    name: str
    unit: str
    median: float | None = None
    p95: float | None = None
    value: float | None = None
    baseline: float | None = None
    baseline_name: str = ""
    target: str = ""
    met: bool | None = None
    note: str = ""

    @property
    def headline(self) -> float | None:
        """The figure compared with the baseline: the median, or the single value."""
        return self.median if self.median is not None else self.value

    @property
    def ratio(self) -> float | None:
        """Headline / baseline (None without a baseline)."""
        if self.headline is None or not self.baseline:
            return None
        return self.headline / self.baseline


def timing_row(
    name: str,
    samples: list[float],
    baseline: list[float] | None = None,
    *,
    baseline_name: str = "",
    p50_ms: float | None = None,
    p95_ms: float | None = None,
    note: str = "",
) -> Row:
    """A latency row in milliseconds from samples in seconds; targets are upper bounds."""
    median = statistics.median(samples) * 1000
    tail = p95(samples) * 1000
    targets, met = [], None
    if p50_ms is not None:
        targets.append(f"p50 <= {p50_ms:g} ms")
        met = median <= p50_ms
    if p95_ms is not None:
        targets.append(f"p95 <= {p95_ms:g} ms")
        met = (met is not False) and tail <= p95_ms
    return Row(
        name,
        "ms",
        median=median,
        p95=tail,
        baseline=statistics.median(baseline) * 1000 if baseline else None,
        baseline_name=baseline_name,
        target=", ".join(targets),
        met=met,
        note=note or f"n={len(samples)}",
    )


def _number(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit in ("", "count"):
        return f"{value:g}"
    # Two decimals below 10: the kept-alive figures are about a millisecond.
    return f"{value:.2f} {unit}" if abs(value) < 10 else f"{value:.1f} {unit}"


def format_table(rows: list[Row]) -> str:
    """The one table every benchmark prints: figure | median | p95 | baseline | ratio | target
    | met? | note (Markdown, so it pastes into docs/performance.md as is)."""
    header = ["figure", "median", "p95", "baseline (same run)", "ratio", "target", "met?", "note"]
    lines = []
    for row in rows:
        baseline = _number(row.baseline, row.unit)
        if row.baseline is not None and row.baseline_name:
            baseline = f"{baseline} ({row.baseline_name})"
        ratio = f"{row.ratio:.2f}x" if row.ratio is not None else "-"
        met = {None: "-", True: "yes", False: "NO"}[row.met]
        lines.append(
            [
                row.name,
                _number(row.headline, row.unit),
                _number(row.p95, row.unit),
                baseline,
                ratio,
                row.target or "-",
                met,
                row.note,
            ]
        )
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]

    def render(cells: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    out = [render(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    return "\n".join(out + [render(line) for line in lines])
