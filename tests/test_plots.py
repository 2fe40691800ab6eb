"""`fleetbid run --plots DIR`: the histograms are real PNGs of the run's figures."""

from __future__ import annotations

import struct
from pathlib import Path

from fleetbid.core.outcome import RideOutcome
from fleetbid.run.plots import write_plots


def _size(png: Path) -> tuple[int, int]:
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_histograms_of_waits_and_latencies(tmp_path: Path) -> None:
    outcomes = [RideOutcome(f"r{i}", "1", "2", 0.0, served=i % 4 != 0, wait_s=10.0 * i,
                            latency_ms=20.0 + i) for i in range(40)]
    written = write_plots(outcomes, tmp_path / "plots")
    assert [p.name for p in written] == ["waits.png", "latency.png"]
    for path in written:
        assert _size(path) == (700, 400)


def test_a_run_with_nothing_served_still_draws_both(tmp_path: Path) -> None:
    outcomes = [RideOutcome("r1", "1", "2", 0.0, reason="no vehicle")]
    assert all(p.stat().st_size > 1000 for p in write_plots(outcomes, tmp_path))
