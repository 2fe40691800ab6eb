"""Idle repositioning in the simulator: the live rule (policies/reposition.py) on figures
announced at the same ticks as the live MainManager's.

The idea (issue 12, part 3): an idle vehicle whose cluster has more idle vehicles than
recent demand drives toward a cluster whose recent demand exceeds its idle supply, deciding
from demand figures the manager announces every `tick_s` simulated seconds (requests in the
last `window_s`, idle vehicles, vehicles heading there, latest pickups). A vehicle decides
once, when it becomes idle after a drop-off, before anyone may assign it (as a live vehicle
decides before it tells the registry it is available). While it drives it cannot be
assigned; its driving counts as empty distance.

`fleetbid experiment reposition` runs the paper's scenarios with and without it.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from fleetbid.policies import reposition as rule


@dataclass
class Repositioner:
    window_s: float = rule.WINDOW_S
    tick_s: float = rule.TICK_S
    min_deficit: int = rule.MIN_DEFICIT
    window: rule.DemandWindow = field(init=False)
    figures: dict[int, rule.ClusterFigures] = field(default_factory=dict)  # the last announced
    moving_to: collections.Counter[int] = field(default_factory=collections.Counter)
    moves: int = 0

    def __post_init__(self) -> None:
        self.window = rule.DemandWindow(self.window_s)

    def on_request(self, at: float, cluster: int, pickup: str) -> None:
        self.window.on_request(at, cluster, pickup)

    def announce(self, now: float, idle_clusters: Iterable[int]) -> None:
        """The manager's tick: the figures every vehicle decides from until the next one."""
        self.figures = self.window.figures(now, idle_clusters, self.moving_to)

    def target(self, node: str, cluster_of: Callable[[str], int],
               time_s: Callable[[str, str], float]) -> str | None:
        """Where the vehicle just idle at `node` should drive (None: stay)."""
        goal = rule.target(node, self.figures, cluster_of, time_s, self.min_deficit)
        if goal is not None:
            self.moves += 1
            self.moving_to[cluster_of(goal)] += 1
        return goal

    def arrived(self, cluster: int) -> None:
        self.moving_to[cluster] -= 1
        if self.moving_to[cluster] <= 0:
            del self.moving_to[cluster]
