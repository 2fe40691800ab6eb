"""Who may bid: vehicles in the passenger's cluster and within radius δ of the pickup, at
most the `limit` nearest of them (straight-line distance, then JID: deterministic). An
auction whose cluster has no idle vehicle also admits the vehicles of the clusters it
spills over to (`spill`; no radius there: they are the nearest the fleet has)."""

from __future__ import annotations

from collections.abc import Collection, Iterable

from fleetbid.maps import Clusters, RoadMap


def refusal(
    roadmap: RoadMap, clusters: Clusters, radius_m: float, cluster: int, pickup: str, node: str,
    spill: Collection[int] = (),
) -> str | None:
    """The reason a vehicle at `node` may not bid for `pickup`, or None if it may."""
    if not roadmap.has_node(node):
        return f"position {node} is not on the map"
    vehicle_cluster = clusters.cluster_of_node(node)
    if vehicle_cluster in spill and vehicle_cluster != cluster:
        return None
    if vehicle_cluster != cluster:
        return f"vehicle is in cluster {vehicle_cluster}, the auction is in cluster {cluster}"
    distance = roadmap.distance_m(node, pickup)
    if distance > radius_m:
        return f"vehicle is {distance:.0f} m from the pickup, beyond the radius of {radius_m:.0f} m"
    return None


def eligible(
    roadmap: RoadMap, clusters: Clusters, radius_m: float, cluster: int, pickup: str,
    vehicles: Iterable[tuple[str, str]], limit: int = 0, spill: Collection[int] = (),
) -> list[tuple[str, str]]:
    """The (vehicle, node) pairs that may bid, nearest first; at most `limit` (0: all).

    Bounding the bidders keeps an auction's cost flat as the fleet grows: with hundreds of
    vehicles in the radius, the far ones only add messages (the nearest by road is almost
    always among the nearest by air)."""
    admitted = [(v, n) for v, n in vehicles
                if refusal(roadmap, clusters, radius_m, cluster, pickup, n, spill) is None]
    admitted.sort(key=lambda vn: (roadmap.distance_m(vn[1], pickup), vn[0]))
    return admitted[:limit] if limit > 0 else admitted
