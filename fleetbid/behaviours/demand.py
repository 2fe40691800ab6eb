"""Idle repositioning's figures on the announcement group (issue 12, part 3): the MainManager
announces them, every process keeps the last good ones for its vehicles.

No XMPP message: the MainManager's `DemandAnnouncer` multicasts a `DemandNews` every
`policies.reposition.TICK_S` simulated seconds (requests in the window, idle vehicles,
vehicles heading there, latest pickups, per cluster) on the signed group
(platform/announce.py). A process's `DemandBoard` hears the group: it keeps the last
figures that pass its checks, for the vehicles of the process to decide from
(behaviours/vehicle.py), and counts the vehicles repositioning (from their own
`repositioning` news, until they are idle again) for its MainManager to announce.

The group is signed (a forged or garbled datagram never reaches the board); the board
also refuses, and logs, figures out of range (a cluster the map has not, more vehicles
than the fleet, a pickup off the map or in another cluster) and ignores stale ones.
"""

from __future__ import annotations

import collections
import logging
import math
import time
from typing import Any

from spade.behaviour import CyclicBehaviour

from fleetbid.core.world import World
from fleetbid.platform import newsroom
from fleetbid.policies import reposition as rule
from fleetbid.protocol.announce import Announcement, ClusterDemand, DemandNews, VehicleNews

log = logging.getLogger("fleetbid.demand")

STALE_TICKS = 3  # figures older than this many ticks are not decided from...
STALE_WALL_S = 1.0  # ...and than this many wall seconds (a busy loop at a fast clock)
MAX_REQUESTS = 1_000_000  # requests of one cluster in a window: beyond, a figure is garbage


class DemandBoard:
    """One process's view of the demand figures (fed by a `Listener` of the group)."""

    def __init__(self, world: World, fleet_size: int, tick_s: float = rule.TICK_S) -> None:
        self.world = world
        self.fleet_size = fleet_size
        self.tick_s = tick_s
        self.latest: DemandNews | None = None
        self.figures_of_latest: dict[int, rule.ClusterFigures] = {}
        self.heading: dict[str, int] = {}  # vehicle -> the cluster it repositions to
        self.refused = 0
        self.heard = 0  # figures taken

    def on_news(self, news: Announcement) -> None:
        if isinstance(news, DemandNews):
            self.on_demand(news)
        elif isinstance(news, VehicleNews):
            if news.state == "repositioning" and news.target is not None \
                    and self.world.roadmap.has_node(news.target):
                self.heading[news.vehicle] = self.world.clusters.cluster_of_node(news.target)
            else:
                self.heading.pop(news.vehicle, None)

    def on_demand(self, news: DemandNews) -> None:
        problem = self.problem(news)
        if problem is not None:
            self.refused += 1
            log.warning("demand figures refused: %s", problem)
            return
        if self.latest is not None and news.at < self.latest.at:
            return  # overtaken by newer figures
        self.latest = news
        self.heard += 1
        self.figures_of_latest = {c.cluster: rule.ClusterFigures(c.requests, c.idle, c.heading,
                                                                 tuple(c.pickups))
                                  for c in news.clusters}

    def problem(self, news: DemandNews) -> str | None:
        """Why these figures cannot be right here (None: they can)."""
        world = self.world
        if not math.isfinite(news.at) or news.at > world.clock.now() + self.tick_s:
            return f"sent at t={news.at} s, in the future"
        seen: set[int] = set()
        for c in news.clusters:
            if c.cluster >= world.clusters.k or c.cluster in seen:
                return f"cluster {c.cluster}: not a cluster of the map, or twice"
            seen.add(c.cluster)
            if c.idle + c.heading > self.fleet_size or c.requests > MAX_REQUESTS:
                return f"cluster {c.cluster}: figures out of range"
            for pickup in c.pickups:
                if not world.roadmap.has_node(pickup) \
                        or world.clusters.cluster_of_node(pickup) != c.cluster:
                    return f"cluster {c.cluster}: pickup {pickup!r} is not in it"
        return None

    def figures(self) -> dict[int, rule.ClusterFigures]:
        """The last figures, if recent enough to decide from (else none)."""
        latest = self.latest
        if latest is None or (self.world.clock.now() - latest.at > STALE_TICKS * self.tick_s
                              and time.time() - latest.wall > STALE_WALL_S):
            return {}
        return self.figures_of_latest

    def heading_counts(self) -> collections.Counter[int]:
        return collections.Counter(self.heading.values())


def note_request(agent: Any, pickup: str) -> None:
    """A registry accepted a request: recent demand, when its MainManager announces it."""
    window: rule.DemandWindow | None = getattr(agent, "demand", None)
    if window is not None:
        world = agent.world
        window.on_request(world.clock.now(), world.clusters.cluster_of_node(pickup), pickup)


class DemandAnnouncer(CyclicBehaviour):
    """The MainManager's tick: announce the figures at every multiple of the tick, in
    simulated time (the simulator's ticks, sim/reposition.py)."""

    async def run(self) -> None:
        agent: Any = self.agent
        clock = agent.world.clock
        now = clock.now()
        await clock.sleep((math.floor(now / rule.TICK_S) + 1) * rule.TICK_S - now)
        board: DemandBoard | None = agent.demand_board
        heading = board.heading_counts() if board is not None else collections.Counter()
        figures = agent.demand.figures(agent.world.clock.now(), agent.registry.idle_clusters(),
                                       heading)
        newsroom.demand(agent.demand.window_s, tuple(
            ClusterDemand(cluster=c, requests=f.requests, idle=f.idle, heading=f.heading,
                          pickups=f.pickups) for c, f in figures.items()))
