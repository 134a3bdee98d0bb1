"""The benchmark code runs and prints the table it promises (figures are never asserted on).

Cheap on purpose: one real server for a few dozen requests (`run_all --quick --only
keepalive`), and the bridges benchmark on its cheapest source (WsgiDAV and the dCache
stand-in, two drops): a few seconds each. The other benchmarks share `benchmarks/stats.py` and
`benchmarks/runner.py`, which this exercises.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.stats import Row, format_table, timing_row

REPO_ROOT = Path(__file__).resolve().parents[1]
NUMBER = re.compile(r"^\d+(\.\d+)? ms$")


def _table(text: str) -> dict[str, list[str]]:
    """Rows of the Markdown table in `text`, by figure name (header and rule left out)."""
    lines = [line for line in text.splitlines() if line.startswith("| ")]
    cells = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]
    assert cells and cells[0][0] == "figure", text
    return {row[0]: row for row in cells[1:]}


def test_table_formats_rows_with_and_without_baseline() -> None:
    rows = [
        timing_row("a", [0.001, 0.002, 0.003], [0.001], baseline_name="b", p50_ms=5),
        Row("lost", "count", value=0, target="0", met=True),
    ]
    table = _table(format_table(rows))
    assert table["a"][1:7] == ["2.00 ms", "3.00 ms", "1.00 ms (b)", "2.00x", "p50 <= 5 ms", "yes"]
    assert table["lost"][1:7] == ["0", "-", "-", "-", "0", "yes"]


def test_run_all_quick_keepalive_prints_the_expected_rows() -> None:
    run_all = str(REPO_ROOT / "benchmarks" / "run_all")
    done = subprocess.run(
        [sys.executable, run_all, "--quick", "--only", "keepalive"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO_ROOT,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    table = _table(done.stdout)
    expected = {
        "GET /health, kept-alive",
        "S3 GET 11 B, boto3 kept-alive",
        "S3 GET 11 B, httpx presigned kept-alive",
    }
    assert set(table) == expected, done.stdout
    for row in table.values():
        median, p95, baseline, ratio, target, met = row[1:7]
        assert NUMBER.match(median) and NUMBER.match(p95), row
        assert baseline.endswith("(new connection each)"), row
        assert NUMBER.match(baseline.split(" (")[0]), row
        assert float(ratio.rstrip("x")) > 0, row
        assert target == "p50 <= 2 ms" and met in ("yes", "NO"), row


@pytest.mark.webdav
def test_bridges_bench_dcache_prints_both_rows() -> None:
    """The bridges benchmark end to end on its cheapest source (a few seconds): WsgiDAV, the
    dCache stand-in and one `oscar serve`; one warm-up and one timed drop."""
    script = str(REPO_ROOT / "benchmarks" / "bridges_bench.py")
    done = subprocess.run(
        [sys.executable, script, "--drops", "1", "--sources", "dcache"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO_ROOT,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    table = _table(done.stdout)
    assert set(table) == {"dcache SSE: drop -> job start", "dcache SSE: drop -> output"}, done
    for row in table.values():
        median, p95, baseline, ratio = row[1:5]
        assert NUMBER.match(median) and NUMBER.match(p95), row
        assert baseline.endswith("(embedded upload, no bridge)"), row
        assert float(ratio.rstrip("x")) > 0, row
        assert "n=1" in row[7], row
    assert "stands in for dCache's SSE event API" in done.stdout
