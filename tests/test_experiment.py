"""`fleetbid experiment paper --quick --fast`: the CI smoke run of the whole experiment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fleetbid.experiment import grid
from fleetbid.experiment.report import summary
from fleetbid.experiment.sweep import Point

ROOT = Path(__file__).resolve().parents[1]


def _point(policy: str, wait: float, dead: float, gap: float | None = None) -> Point:
    return Point("dense", policy, 100, 0, wait, wait * 2, dead, 100, 0, gap, 0.1, "sim")


def test_summary_improvement_is_relative_to_fifo_at_the_top_load() -> None:
    points = [_point("fifo", 400.0, 0.5), _point("auction", 100.0, 0.2),
              _point("batch-auction", 90.0, 0.2, 0.001), _point("optimal", 90.0, 0.2)]
    points.append(Point("dense", "fifo", 50, 0, 10.0, 20.0, 0.1, 50, 0, None, 0.1, "sim"))
    s = summary(points, [])
    assert s["passengers"] == 100
    assert s["wait_improvement_vs_fifo"]["dense"]["auction"] == pytest.approx(0.75)
    assert s["deadhead_ratio"]["dense"]["fifo"] == 0.5
    assert s["batch_vs_optimal_gap"]["dense"] == pytest.approx(0.001)


def test_live_grid_pairs_each_live_point_with_the_simulator_s() -> None:
    sim = [_point("auction", 100.0, 0.2), _point("fifo", 400.0, 0.5)]
    live = [Point("dense", "auction", 100, 0, 108.0, 200.0, 0.2, 100, 0, None, 9.0, "live",
                  12.5),
            Point("dense", "fifo", 100, 0, 300.0, 600.0, 0.5, 99, 1, None, 9.0, "live", 6.0),
            Point("dense", "nearest", 100, 0, 90.0, 90.0, 0.5, 99, 1, None, 9.0, "live")]
    rows = grid.pairs(sim, live)
    assert [(r.policy, r.sim_wait_s, r.live_wait_s) for r in rows] == \
        [("auction", 100.0, 108.0), ("fifo", 400.0, 300.0)]  # nearest: no simulator point
    assert rows[0].gap == pytest.approx(0.08) and rows[1].gap == pytest.approx(-0.25)
    s = grid.summary(rows)
    assert s["within_target"] == 1 and s["max_abs_wait_gap"] == 0.25
    assert s["messages_per_served_at_top_load"] == {"dense/auction": 12.5, "dense/fifo": 6.0}
    text = "\n".join(grid.report_lines(rows))
    assert "1 of 2 points" in text and "| dense | fifo | 100 | 400.0 | 300.0 | -25.0% |" in text


def test_live_grid_needs_the_simulator_sweeps(tmp_path: Path) -> None:
    from fleetbid.cli import main

    assert main(["experiment", "paper", "--out", str(tmp_path), "--quick", "--live-grid"]) == 2


@pytest.mark.e2e
def test_experiment_paper_quick(tmp_path: Path) -> None:
    """Run from outside the repository: the dense map is the packaged copy."""
    out = tmp_path / "paper"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "fleetbid.cli", "experiment", "paper", "--out", str(out),
         "--quick", "--fast", "--json"],
        capture_output=True, text=True, env=env, timeout=240, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    s = json.loads(proc.stdout)
    for m in ("dense", "sparse"):
        assert set(s["deadhead_ratio"][m]) == {"fifo", "fifo-cluster", "nearest", "auction",
                                               "batch-auction", "optimal"}
        assert s["wait_improvement_vs_fifo"][m]["fifo"] == 0.0
        assert 0 <= s["batch_vs_optimal_gap"][m] < 0.02
        # Any policy that looks at distance beats FIFO's blind choice on empty driving.
        assert s["deadhead_ratio"][m]["nearest"] < s["deadhead_ratio"][m]["fifo"]
    assert s["latency_ms"] and all(v is not None and v > 0 for v in s["latency_ms"].values())
    for name in ("report.md", "results.json", "wait_avg_dense.png", "wait_max_sparse.png"):
        assert (out / name).stat().st_size > 0
    results = json.loads((out / "results.json").read_text())
    assert len(results["points"]) == 2 * 6 * 2  # maps × policies × passenger counts
    assert "Table II" in (out / "report.md").read_text()


def test_experiment_refuses_a_missing_map(tmp_path: Path) -> None:
    from fleetbid.cli import main

    code = main(["experiment", "paper", "--out", str(tmp_path), "--fast", "--quick",
                 "--dense-map", str(tmp_path / "nope.graphml")])
    assert code == 2
