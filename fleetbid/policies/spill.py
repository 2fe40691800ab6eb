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


def batch_groups(
    waiting: Sequence[Waiting], idle: Sequence[Idle], geo: Geography
) -> dict[int, tuple[list[Idle], list[Waiting]]]:
    """Each cluster's batch: its idle vehicles (by id) and the passengers they bid for.

    A cluster keeps its passengers in arrival order up to its number of idle vehicles; the
    later ones are offered to the nearest clusters with idle vehicles to spare (more idle
    vehicles than passengers of their own), as many as they spare. A passenger nobody can
    spare a vehicle for stays in its own cluster's batch (and waits for the next tick).
    Each passenger and each vehicle is in exactly one batch."""
    vehicles: dict[int, list[Idle]] = {}
    for v in sorted(idle, key=lambda v: v.vehicle):
        vehicles.setdefault(geo.cluster_of(v.node), []).append(v)
    own: dict[int, list[Waiting]] = {}
    for w in waiting:
        own.setdefault(w.cluster, []).append(w)
    groups = {c: (vehicles.get(c, []), list(ps[:len(vehicles.get(c, []))]))
              for c, ps in own.items()}
    for c, vs in vehicles.items():
        groups.setdefault(c, (vs, []))
    spare = {c: len(vs) - len(own.get(c, [])) for c, vs in vehicles.items()}
    for c in sorted(own):
        excess = own[c][len(vehicles.get(c, [])):]
        for n in spill_order(geo, c) if excess else []:
            room = spare.get(n, 0)
            if room <= 0:
                continue
            groups[n][1].extend(excess[:room])
            spare[n] -= len(excess[:room])
            excess = excess[room:]
            if not excess:
                break
        groups[c][1].extend(excess)
    return {c: g for c, g in sorted(groups.items()) if g[1]}
