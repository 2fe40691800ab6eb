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
from fleetbid.policies.spill import SPILL_GRACE_S, may_spill, spill_order


class ClusterAuction(Policy):
    name = "auction"

    def __init__(self, radius_m: float = math.inf, min_eta_s: float = 1.0,
                 spill_grace_s: float = SPILL_GRACE_S) -> None:
        if not radius_m > 0:
            raise ValueError(f"radius_m must be > 0, got {radius_m}")
        self.radius_m = radius_m
        self.min_eta_s = min_eta_s
        self.spill_grace_s = spill_grace_s

    def assign(
        self, waiting: Sequence[Waiting], idle: Sequence[Idle], geo: Geography
    ) -> list[Assignment]:
        by_cluster: dict[int, list[Idle]] = {}
        for v in sorted(idle, key=lambda v: v.vehicle):
            by_cluster.setdefault(geo.cluster_of(v.node), []).append(v)
        out: list[Assignment] = []
        # Own cluster first for every request, then spill-over for those left: a request
        # takes no neighbour's vehicle that the neighbour's own requests could have had.
        left: list[Waiting] = []
        for w in waiting:
            pool = by_cluster.get(w.cluster, [])
            admitted = [v for v in pool if geo.distance_m(v.node, w.pickup) <= self.radius_m]
            winner = self.winner(admitted, w, geo)
            if winner is None:
                left.append(w)
            else:
                pool[:] = [v for v in pool if v.vehicle != winner]
                out.append(Assignment(w.request_id, winner))
        # A policy runs at an event (a request arrived, a vehicle became idle), so the latest
        # arrival or idle time is now (the simulator's clock; policies keep no clock).
        now = max([w.requested_at for w in waiting] + [v.since for v in idle], default=0.0)
        for w in left:
            if not may_spill(w.requested_at, now, self.spill_grace_s):
                continue  # the registry's timer tries again when the grace ends
            for neighbour in spill_order(geo, w.cluster):
                pool = by_cluster.get(neighbour, [])
                winner = self.winner(pool, w, geo)
                if winner is not None:
                    pool[:] = [v for v in pool if v.vehicle != winner]
                    out.append(Assignment(w.request_id, winner))
                    break
        return out

    def winner(self, admitted: list[Idle], w: Waiting, geo: Geography) -> str | None:
        """The auction among these vehicles: the best bid, i.e. the shortest travel time."""
        if not admitted:
            return None
        times = geo.times([v.node for v in admitted], [w.pickup])[:, 0]
        n = len(admitted)
        offers = [
            rank_key(equilibrium_bid(n, t, self.min_eta_s), max(t, self.min_eta_s), v.vehicle)
            for v, t in zip(admitted, times, strict=True) if math.isfinite(t)
        ]
        return min(offers)[2] if offers else None
