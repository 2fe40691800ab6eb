"""Spill-over: a request its own cluster cannot serve is offered to neighbouring clusters.

Clusters are Voronoi cells (maps/clusters.py); a cell's neighbours share a border with it,
nearest seed first. Rings: the neighbours, then the neighbours' neighbours (a sparse map
may have an empty cell next to another empty one). Used by the per-request auction (which
cluster's vehicles may bid) and by the batch auctions (which cluster's batch a passenger
joins), live and in the simulator alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from fleetbid.policies.base import Geography, Idle, Waiting

RINGS = 2  # neighbours, and their neighbours
# A batch calls at most this many idle vehicles per passenger of the batch, those nearest
# (by air) to its pickups: at low load a cluster has many idle vehicles, and calling every
# one of them costs a call and a bid each while the far ones almost never win.
CALL_PER_RIDE = 5
# A per-request auction spills over only once its request has waited this long (simulated
# seconds): a vehicle of the own cluster often becomes free within it and is nearer than the
# neighbour's, and the neighbour keeps its vehicle for its own next requests. Measured in
# the simulator (docs/paper.md, issue 12): 10 s shortened waits on both maps, 20 s and more
# lengthened them on the sparse one.
SPILL_GRACE_S = 10.0


class Bordered(Protocol):
    """Anything that knows the clusters' borders (a Geography, maps.Clusters)."""

    def neighbours(self, cluster: int) -> tuple[int, ...]: ...


def spill_order(geo: Bordered, cluster: int, rings: int = RINGS) -> list[int]:
    """The clusters a request of `cluster` may spill over to, in the order they are tried."""
    seen = {cluster}
    order: list[int] = []
    frontier = [cluster]
    for _ in range(rings):
        ring: list[int] = []
        for c in frontier:
            for n in geo.neighbours(c):
                if n not in seen:
                    seen.add(n)
                    ring.append(n)
        order.extend(ring)
        frontier = ring
    return order


def may_spill(requested_at: float, now: float, grace_s: float = SPILL_GRACE_S) -> bool:
    """Whether a request still without a vehicle of its own cluster may take a neighbour's."""
    return now - requested_at >= grace_s


def batch_groups(
    waiting: Sequence[Waiting], idle: Sequence[Idle], geo: Geography,
    per_ride: int = CALL_PER_RIDE,
) -> dict[int, tuple[list[Idle], list[Waiting]]]:
    """Each cluster's batch: the idle vehicles (by id) that bid and the passengers they bid for.

    A cluster's batch holds all its waiting passengers and its idle vehicles. A cluster
    with more passengers than vehicles borrows the missing ones from the nearest clusters
    with vehicles to spare (more idle vehicles than passengers of their own): of a
    neighbour's vehicles, those nearest (by air) to the borrower's pickups. The batch then
    chooses which of its passengers to serve, at the least total pickup time. Each
    passenger is in exactly one batch and each vehicle in at most one: a batch keeps at most
    `per_ride` vehicles per passenger (0: all), those nearest to its pickups; the others
    stay idle for the next tick."""
    vehicles: dict[int, list[Idle]] = {}
    for v in sorted(idle, key=lambda v: v.vehicle):
        vehicles.setdefault(geo.cluster_of(v.node), []).append(v)
    own: dict[int, list[Waiting]] = {}
    for w in waiting:
        own.setdefault(w.cluster, []).append(w)
    spare = {c: len(vs) - len(own.get(c, [])) for c, vs in vehicles.items()}
    groups = {c: (list(vehicles.get(c, [])), ps) for c, ps in own.items()}
    for c in sorted(own):
        missing = len(own[c]) - len(vehicles.get(c, []))
        for n in spill_order(geo, c) if missing > 0 else []:
            room = min(spare.get(n, 0), missing)
            if room <= 0:
                continue
            lent = by_nearness(vehicles[n], own[c], geo)[:room]
            taken = {v.vehicle for v in lent}
            vehicles[n] = [v for v in vehicles[n] if v.vehicle not in taken]
            if n in groups:
                groups[n] = (vehicles[n], groups[n][1])
            groups[c][0].extend(lent)
            spare[n] -= room
            missing -= room
            if missing <= 0:
                break
    return {c: (sorted(nearest(vs, ps, geo, per_ride), key=lambda v: v.vehicle), ps)
            for c, (vs, ps) in sorted(groups.items())}


def nearest(vehicles: list[Idle], rides: list[Waiting], geo: Geography, per_ride: int,
            ) -> list[Idle]:
    """At most per_ride · len(rides) of the vehicles, nearest (by air) to any of the pickups."""
    room = per_ride * len(rides)
    if per_ride <= 0 or len(vehicles) <= room:
        return vehicles
    return by_nearness(vehicles, rides, geo)[:room]


def by_nearness(vehicles: list[Idle], rides: list[Waiting], geo: Geography) -> list[Idle]:
    """The vehicles by straight-line distance to the nearest of the rides' pickups (then id)."""
    pickups = [w.pickup for w in rides]
    return sorted(vehicles, key=lambda v: (
        min(geo.distance_m(v.node, p) for p in pickups), v.vehicle))
