"""Who may bid: vehicles in the passenger's cluster and within radius δ of the pickup."""

from __future__ import annotations

from fleetbid.maps import Clusters, RoadMap


def refusal(
    roadmap: RoadMap, clusters: Clusters, radius_m: float, cluster: int, pickup: str, node: str
) -> str | None:
    """The reason a vehicle at `node` may not bid for `pickup`, or None if it may."""
    if not roadmap.has_node(node):
        return f"position {node} is not on the map"
    vehicle_cluster = clusters.cluster_of_node(node)
    if vehicle_cluster != cluster:
        return f"vehicle is in cluster {vehicle_cluster}, the auction is in cluster {cluster}"
    distance = roadmap.distance_m(node, pickup)
    if distance > radius_m:
        return f"vehicle is {distance:.0f} m from the pickup, beyond the radius of {radius_m:.0f} m"
    return None
