"""`fleetbid run --plots DIR`: histograms of a run's waiting times and auction latencies."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from fleetbid.core.outcome import RideOutcome


def write_plots(outcomes: Sequence[RideOutcome], directory: str | Path) -> list[Path]:
    """Write waits.png and latency.png into `directory` (made if missing); their paths."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display here, nor on most servers
    import matplotlib.pyplot as plt

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    served = [o for o in outcomes if o.served]
    panels = [
        ("waits.png", [o.wait_s for o in served if o.wait_s is not None],
         "waiting time, request to pickup (simulated s)",
         f"{len(served)} of {len(outcomes)} requests served"),
        ("latency.png", [o.latency_ms for o in outcomes if o.latency_ms is not None],
         "auction latency, request to passenger informed (wall ms)",
         f"{len(outcomes)} requests"),
    ]
    written = []
    for name, values, xlabel, title in panels:
        fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
        if values:
            ax.hist(values, bins=min(40, max(5, len(values) // 5)), color="#3a6ea5")
        else:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("requests")
        ax.set_title(title)
        fig.tight_layout()
        path = out / name
        fig.savefig(path)
        plt.close(fig)
        written.append(path)
    return written
