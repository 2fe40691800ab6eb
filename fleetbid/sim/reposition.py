"""Idle repositioning, measured in the simulator before anyone builds it live.

The idea (issue 12, part 3): an idle vehicle whose cluster has more idle vehicles than
recent demand drives toward a cluster whose recent demand exceeds its idle supply, deciding
from demand figures the managers would announce. Here the "announcement" is the count of
requests per cluster over the last `window_s` simulated seconds, and a vehicle decides
once, when it becomes idle. While it drives it cannot be assigned (a simplification that
favours staying put); its driving counts as empty distance.

`fleetbid experiment reposition` runs the paper's scenarios with and without it; the result
decides whether the live agents get it (docs/paper.md).
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field


@dataclass
class Repositioner:
    window_s: float = 900.0  # how far back "recent demand" looks
    min_deficit: int = 1  # a cluster attracts vehicles when demand - supply reaches this
    arrivals: collections.deque[tuple[float, int, str]] = field(
        default_factory=collections.deque)  # (time, cluster, pickup node)
    moving_to: collections.Counter[int] = field(default_factory=collections.Counter)
    moves: int = 0

    def on_request(self, at: float, cluster: int, pickup: str) -> None:
        self.arrivals.append((at, cluster, pickup))

    def demand(self, now: float) -> collections.Counter[int]:
        while self.arrivals and self.arrivals[0][0] < now - self.window_s:
            self.arrivals.popleft()
        return collections.Counter(cluster for _, cluster, _ in self.arrivals)

    def target(self, now: float, node: str, idle_nodes: Iterable[str],
               cluster_of: Callable[[str], int],
               time_s: Callable[[str, str], float]) -> str | None:
        """Where the vehicle idle at `node` should drive (None: stay). `idle_nodes` are the
        idle vehicles' nodes, this one's included."""
        demand = self.demand(now)
        supply = collections.Counter(cluster_of(n) for n in idle_nodes) + self.moving_to
        own = cluster_of(node)
        # It leaves only a cluster that keeps at least its demand in idle vehicles.
        if supply[own] - 1 < demand[own]:
            return None
        best: tuple[int, float, str] | None = None
        for _, cluster, pickup in reversed(self.arrivals):  # latest pickups first
            deficit = demand[cluster] - supply[cluster]
            if cluster == own or deficit < self.min_deficit:
                continue
            key = (-deficit, time_s(node, pickup), pickup)
            if best is None or key < best:
                best = key
        if best is None:
            return None
        self.moves += 1
        self.moving_to[cluster_of(best[2])] += 1
        return best[2]

    def arrived(self, cluster: int) -> None:
        self.moving_to[cluster] -= 1
        if self.moving_to[cluster] <= 0:
            del self.moving_to[cluster]
