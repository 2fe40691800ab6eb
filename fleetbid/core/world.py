"""What every agent of a process shares: configuration, map, clusters, travel times, clock."""

from __future__ import annotations

from dataclasses import dataclass

from fleetbid.core.clock import SimClock
from fleetbid.core.config import RunConfig
from fleetbid.maps import Clusters, RoadMap, TravelTimes, load_map, make_clusters


@dataclass
class World:
    config: RunConfig
    roadmap: RoadMap
    clusters: Clusters
    travel: TravelTimes
    # Replaced when the launcher says "go", so simulated time 0 is when the fleet is ready.
    clock: SimClock

    @classmethod
    def build(cls, config: RunConfig, epoch: float | None = None) -> World:
        roadmap = load_map(config.map, config.seed)
        clusters = make_clusters(roadmap, config.clusters, config.seed)
        clock = SimClock.starting_now(config.speed) if epoch is None else SimClock(
            epoch, config.speed
        )
        return cls(config, roadmap, clusters, TravelTimes(roadmap), clock)
