"""Discrete-event simulation of the fleet under one dispatch policy (no agents, no XMPP).

The world is the live system's: the same road map, clusters, vehicle start nodes, Poisson
requests and policy objects. Events are request arrivals, drop-offs (a vehicle is idle again)
and, for batch policies, ticks at k * batch_s. Immediate policies decide after every arrival
or drop-off. A vehicle drives the fastest route to the pickup, then to the destination, and
serves one passenger at a time; a request's wait runs from its arrival to the pickup.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from fleetbid.core.scenario import Request
from fleetbid.maps import Clusters, RoadMap
from fleetbid.policies import Idle, Policy, Waiting
from fleetbid.sim.reposition import Repositioner
from fleetbid.sim.travel import TravelMatrix

# At equal times: vehicles free first, then arrivals, then ticks, then the repositioning
# figures' announcements (sim/reposition.py).
FREE, ARRIVAL, TICK, ANNOUNCE = 0, 1, 2, 3


@dataclass(frozen=True)
class Trip:
    request_id: str
    vehicle: str
    start_node: str  # where the vehicle was idle
    assigned_at: float
    pickup_at: float
    dropoff_at: float
    empty_m: float
    loaded_m: float


@dataclass
class SimResult:
    policy: str
    trips: list[Trip] = field(default_factory=list)
    unserved: list[str] = field(default_factory=list)  # patience ran out, or never served
    waits: dict[str, float] = field(default_factory=dict)
    end_s: float = 0.0
    idle_at_end: int = 0
    reposition_m: float = 0.0  # driven empty to reposition (see sim/reposition.py)
    repositions: int = 0

    @property
    def assignments(self) -> dict[str, str]:
        return {t.request_id: t.vehicle for t in self.trips}

    def deadhead_ratio(self) -> float | None:
        empty = sum(t.empty_m for t in self.trips) + self.reposition_m
        total = empty + sum(t.loaded_m for t in self.trips)
        return empty / total if total > 0 else None

    def wait_avg(self) -> float | None:
        return sum(self.waits.values()) / len(self.waits) if self.waits else None

    def wait_max(self) -> float | None:
        return max(self.waits.values()) if self.waits else None


class SimGeography:
    """The policies' Geography on a TravelMatrix (array lookups, no Dijkstra at run time)."""

    def __init__(self, roadmap: RoadMap, clusters: Clusters, matrix: TravelMatrix) -> None:
        self.roadmap, self.matrix, self.clusters = roadmap, matrix, clusters
        self._cluster = {node: clusters.cluster_of_node(node) for node in roadmap.nodes}

    def times(self, origins: Sequence[str], targets: Sequence[str]):  # type: ignore[no-untyped-def]
        return self.matrix.times(origins, targets)

    def cluster_of(self, node: str) -> int:
        return self._cluster[node]

    def neighbours(self, cluster: int) -> tuple[int, ...]:
        return self.clusters.neighbours(cluster)

    def distance_m(self, a: str, b: str) -> float:
        return self.roadmap.distance_m(a, b)


def simulate(
    roadmap: RoadMap, clusters: Clusters, policy: Policy, requests: Sequence[Request],
    start_nodes: Sequence[str], vehicle_ids: Sequence[str] | None = None,
    patience_s: float = math.inf, reposition: Repositioner | None = None,
) -> SimResult:
    """Run every request to its end; vehicles start idle at `start_nodes` at time 0."""
    if vehicle_ids is None:
        vehicle_ids = [f"vehicle-{i}@localhost" for i in range(len(start_nodes))]
    if len(vehicle_ids) != len(start_nodes) or len(set(vehicle_ids)) != len(vehicle_ids):
        raise ValueError("need one distinct vehicle id per start node")
    matrix = TravelMatrix.for_map(roadmap)
    geo = SimGeography(roadmap, clusters, matrix)
    for r in requests:
        if not (roadmap.has_node(r.source) and roadmap.has_node(r.destination)):
            raise ValueError(f"request {r.request_id}: a node is not on map {roadmap.name}")
    result = SimResult(policy.name)
    idle = {v: Idle(v, node, 0.0) for v, node in zip(vehicle_ids, start_nodes, strict=True)}
    waiting: dict[str, Waiting] = {}  # insertion order = arrival order
    by_id = {r.request_id: r for r in requests}
    events: list[tuple[float, int, int, str]] = []
    seq = 0
    for r in requests:
        heapq.heappush(events, (r.at, ARRIVAL, seq, r.request_id))
        seq += 1
    batch = policy.batch_s > 0
    if reposition is not None:
        heapq.heappush(events, (reposition.tick_s, ANNOUNCE, seq, ""))
        seq += 1
    tick_pending = False
    dirty = False  # an arrival or a drop-off since the last tick: a tick may change something
    deadlines: list[tuple[float, str]] = []  # (give-up time, request), arrival order
    now = 0.0

    def schedule_tick() -> None:
        nonlocal tick_pending, seq
        # Without pending events or news, another tick would decide the same: stop ticking.
        if batch and not tick_pending and (events or dirty):
            k = math.floor(now / policy.batch_s) + 1
            heapq.heappush(events, (k * policy.batch_s, TICK, seq, ""))
            seq += 1
            tick_pending = True

    def decide() -> None:
        nonlocal seq
        if not waiting or not idle:
            return
        for a in policy.assign(list(waiting.values()), list(idle.values()), geo):
            w = waiting.pop(a.request_id)
            v = idle.pop(a.vehicle)
            r = by_id[a.request_id]
            at, pu, do = matrix.idx([v.node, r.source, r.destination])
            pickup_at = now + matrix.time_s(at, pu)
            dropoff_at = pickup_at + matrix.time_s(pu, do)
            result.trips.append(Trip(r.request_id, v.vehicle, v.node, now, pickup_at, dropoff_at,
                                     matrix.length_m(at, pu), matrix.length_m(pu, do)))
            result.waits[r.request_id] = pickup_at - w.requested_at
            heapq.heappush(events, (dropoff_at, FREE, seq, f"{v.vehicle}\n{r.destination}"))
            seq += 1

    def move_on(vehicle: str) -> None:
        """A vehicle just idle may drive toward demand (sim/reposition.py)."""
        nonlocal seq
        assert reposition is not None
        node = idle[vehicle].node
        target = reposition.target(node, geo.cluster_of,
                                   lambda a, b: matrix.time_s(*matrix.idx([a, b])))
        if target is None:
            return
        del idle[vehicle]
        a, b = matrix.idx([node, target])
        result.reposition_m += matrix.length_m(a, b)
        result.repositions += 1
        heapq.heappush(events, (now + matrix.time_s(a, b), FREE, seq,
                                f"{vehicle}\n{target}\nmoved"))
        seq += 1

    moved: list[str] = []
    while events:
        now, kind, _, payload = heapq.heappop(events)
        while deadlines and deadlines[0][0] < now:
            _, rid = deadlines.pop(0)
            if waiting.pop(rid, None) is not None:
                result.unserved.append(rid)
        if kind == ANNOUNCE:
            assert reposition is not None
            reposition.announce(now, (geo.cluster_of(v.node) for v in idle.values()))
            if events:  # the next tick, while anything else is to come
                heapq.heappush(events, (now + reposition.tick_s, ANNOUNCE, seq, ""))
                seq += 1
            continue
        if kind != TICK:
            dirty = True
        if kind == ARRIVAL:
            r = by_id[payload]
            waiting[r.request_id] = Waiting(r.request_id, r.source, r.at,
                                            geo.cluster_of(r.source))
            if reposition is not None:
                reposition.on_request(now, geo.cluster_of(r.source), r.source)
            if math.isfinite(patience_s):
                deadlines.append((r.at + patience_s, r.request_id))
        elif kind == FREE:
            vehicle, node, *moved = payload.split("\n")
            idle[vehicle] = Idle(vehicle, node, now)
            if moved and reposition is not None:
                reposition.arrived(geo.cluster_of(node))
            elif reposition is not None:
                # After a drop-off the vehicle decides first, as a live one does before it
                # tells the registry it is available.
                move_on(vehicle)
        else:
            tick_pending = dirty = False
        if not batch or kind == TICK:
            decide()
        if waiting:
            schedule_tick()
    # Left waiting: patience ran out, or no vehicle ever became idle where the policy looks.
    result.unserved.extend(waiting)
    result.end_s = now
    result.idle_at_end = len(idle)
    return result
