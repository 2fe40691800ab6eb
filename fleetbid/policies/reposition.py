"""Idle repositioning's one rule, shared by the simulator and the live vehicles (issue 12,
part 3).

A manager keeps the recent requests (`DemandWindow`) and, at every announcement tick, makes
per-cluster figures of them (`ClusterFigures`: requests in the window, idle vehicles,
vehicles heading there, the latest pickups). A vehicle that has just become idle decides
from the last figures alone (`target`) whether to drive toward the cluster short of
vehicles the most. The simulator (sim/reposition.py) and a live vehicle (behaviours/vehicle.py)
call the same functions on figures made the same way, at the same ticks, so the live grid
can compare them.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

WINDOW_S = 900.0  # how far back "recent demand" looks (simulated seconds)
TICK_S = 30.0  # simulated seconds between two announcements of the figures
PICKUPS_KEPT = 8  # latest pickups per cluster in the figures (where a vehicle drives to)
MIN_DEFICIT = 1  # a cluster attracts vehicles when demand - supply reaches this


class ClusterFigures(NamedTuple):
    requests: int  # in the window
    idle: int
    heading: int  # vehicles driving there to reposition
    pickups: tuple[str, ...]  # latest first, at most PICKUPS_KEPT


@dataclass
class DemandWindow:
    """The requests of the last `window_s` simulated seconds, as (time, cluster, pickup)."""

    window_s: float = WINDOW_S
    arrivals: collections.deque[tuple[float, int, str]] = field(
        default_factory=collections.deque)

    def on_request(self, at: float, cluster: int, pickup: str) -> None:
        self.arrivals.append((at, cluster, pickup))

    def figures(self, now: float, idle_clusters: Iterable[int],
                heading: Mapping[int, int]) -> dict[int, ClusterFigures]:
        """The figures a manager announces at `now`: every cluster with any of them."""
        while self.arrivals and self.arrivals[0][0] < now - self.window_s:
            self.arrivals.popleft()
        demand = collections.Counter(c for _, c, _ in self.arrivals)
        idle = collections.Counter(idle_clusters)
        pickups: dict[int, list[str]] = collections.defaultdict(list)
        for _, cluster, pickup in reversed(self.arrivals):
            if len(pickups[cluster]) < PICKUPS_KEPT and pickup not in pickups[cluster]:
                pickups[cluster].append(pickup)
        clusters = set(demand) | set(idle) | {c for c, n in heading.items() if n > 0}
        return {c: ClusterFigures(demand[c], idle[c], heading.get(c, 0),
                                  tuple(pickups.get(c, ()))) for c in sorted(clusters)}


def target(node: str, figures: Mapping[int, ClusterFigures], cluster_of: Callable[[str], int],
           time_s: Callable[[str, str], float], min_deficit: int = MIN_DEFICIT) -> str | None:
    """Where a vehicle just idle at `node` drives (None: it stays), from the last figures.

    The figures were made before this vehicle became idle, so they do not count it: it
    leaves only a cluster that keeps at least its demand in idle (or arriving) vehicles
    without it, for the cluster whose demand exceeds its supply the most (to the nearest of
    its latest pickups; ties to the smaller node id)."""
    own = cluster_of(node)
    here = figures.get(own)
    if here is not None and here.idle + here.heading < here.requests:
        return None
    best: tuple[int, float, str] | None = None
    for cluster, f in figures.items():
        deficit = f.requests - f.idle - f.heading
        if cluster == own or deficit < min_deficit:
            continue
        for pickup in f.pickups:
            key = (-deficit, time_s(node, pickup), pickup)
            if best is None or key < best:
                best = key
    return None if best is None else best[2]
