"""The paper's per-request cluster auction, as a policy (what the live auction agents do).

Each request, in arrival order, is auctioned among the idle vehicles of its pickup's cluster
within the admission radius; each bids (n-1)/n * 1/T (auction/rules.py) and the ranking of
the live AuctionManager picks the winner, i.e. the smallest T. A request with no admissible
vehicle waits for one, without blocking requests of other clusters.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from fleetbid.auction.rules import equilibrium_bid, rank_key
from fleetbid.policies.base import Assignment, Geography, Idle, Policy, Waiting


class ClusterAuction(Policy):
    name = "auction"

    def __init__(self, radius_m: float = math.inf, min_eta_s: float = 1.0) -> None:
        if not radius_m > 0:
            raise ValueError(f"radius_m must be > 0, got {radius_m}")
        self.radius_m = radius_m
        self.min_eta_s = min_eta_s

    def assign(
        self, waiting: Sequence[Waiting], idle: Sequence[Idle], geo: Geography
    ) -> list[Assignment]:
        by_cluster: dict[int, list[Idle]] = {}
        for v in sorted(idle, key=lambda v: v.vehicle):
            by_cluster.setdefault(geo.cluster_of(v.node), []).append(v)
        out: list[Assignment] = []
        for w in waiting:
            pool = by_cluster.get(w.cluster)
            if not pool:
                continue
            admitted = [v for v in pool if geo.distance_m(v.node, w.pickup) <= self.radius_m]
            if not admitted:
                continue
            times = geo.times([v.node for v in admitted], [w.pickup])[:, 0]
            n = len(admitted)
            offers = [
                rank_key(equilibrium_bid(n, t, self.min_eta_s), max(t, self.min_eta_s), v.vehicle)
                for v, t in zip(admitted, times, strict=True) if math.isfinite(t)
            ]
            if not offers:
                continue
            winner = min(offers)[2]
            pool[:] = [v for v in pool if v.vehicle != winner]
            out.append(Assignment(w.request_id, winner))
        return out
