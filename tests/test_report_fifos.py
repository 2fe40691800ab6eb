"""The experiment report compares every policy with both FIFO readings."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleetbid.experiment.command import POLICY_ORDER
from fleetbid.experiment.report import FIFOS, summary, write_report
from fleetbid.experiment.sweep import Point
from fleetbid.policies import POLICIES


def _point(m: str, policy: str, wait: float, n: int = 100) -> Point:
    return Point(m, policy, n, 0, wait, wait * 2, 0.3, n, 0, None, 0.1, "sim")


POINTS = [
    _point("dense", "fifo", 400.0), _point("dense", "fifo-cluster", 200.0),
    _point("dense", "auction", 100.0), _point("dense", "nearest", 250.0),
    _point("sparse", "fifo", 300.0), _point("sparse", "fifo-cluster", 150.0),
    _point("sparse", "auction", 300.0), _point("sparse", "nearest", 75.0),
    _point("dense", "fifo-cluster", 1.0, n=50),  # a lower load: not the top, ignored
]


def test_both_fifos_are_run_by_the_experiment() -> None:
    assert set(FIFOS) <= set(POLICY_ORDER) <= set(POLICIES)


def test_summary_gives_every_policy_against_each_fifo() -> None:
    s = summary(POINTS, [])
    fifo, cluster = s["wait_improvement_vs_fifo"], s["wait_improvement_vs_fifo_cluster"]
    assert fifo["dense"] == {"fifo": 0.0, "fifo-cluster": 0.5, "auction": 0.75, "nearest": 0.375}
    assert cluster["dense"] == {"fifo": -1.0, "fifo-cluster": 0.0, "auction": 0.5,
                                "nearest": -0.25}
    assert fifo["sparse"]["auction"] == 0.0
    assert cluster["sparse"]["auction"] == pytest.approx(-1.0)
    assert cluster["sparse"]["nearest"] == pytest.approx(0.5)


def test_summary_without_fifo_cluster_points_has_no_figures_against_it() -> None:
    s = summary([p for p in POINTS if p.policy != "fifo-cluster"], [])
    assert s["wait_improvement_vs_fifo"]["dense"]["auction"] == 0.75
    assert s["wait_improvement_vs_fifo_cluster"]["dense"]["auction"] is None


def test_report_has_a_column_per_fifo(tmp_path: Path) -> None:
    write_report(tmp_path, POINTS, [], {"command": "test"})
    text = (tmp_path / "report.md").read_text()
    assert "| 1 − wait/FIFO | 1 − wait/FIFO-cluster |" in text
    assert "| dense | auction | 100.0 | 0.750 | 0.500 |" in text
    assert "| sparse | nearest | 75.0 | 0.750 | 0.500 |" in text
