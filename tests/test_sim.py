"""Simulator invariants, and the same assignments as live agents over the real XMPP server."""

from __future__ import annotations

import dataclasses
import math

import pytest

from fleetbid.core.config import RunConfig
from fleetbid.core.scenario import Request, poisson_requests
from fleetbid.maps import generate_city, load_map, make_clusters
from fleetbid.platform import eventloop
from fleetbid.policies import POLICIES, FifoCluster, make_policy
from fleetbid.run.launcher import Fleet
from fleetbid.run.population import vehicle_start_nodes
from fleetbid.sim import TravelMatrix, simulate


@pytest.fixture(scope="module")
def city():  # type: ignore[no-untyped-def]
    roadmap = generate_city(seed=3, blocks=10)
    return roadmap, make_clusters(roadmap, 4, 0)


@pytest.mark.parametrize("policy", POLICIES)
def test_simulator_invariants(city, policy: str) -> None:  # type: ignore[no-untyped-def]
    roadmap, clusters = city
    requests = poisson_requests(roadmap, 150, 12.0, seed=1)  # overloaded: queues form
    starts = vehicle_start_nodes(roadmap, 10, seed=1)
    ids = [f"v{i}@x" for i in range(10)]
    res = simulate(roadmap, clusters, make_policy(policy), requests, starts, ids)
    matrix = TravelMatrix.for_map(roadmap)
    by_id = {r.request_id: r for r in requests}
    # Conservation: every request is served once or reported unserved; every vehicle is idle
    # again at the end.
    served = [t.request_id for t in res.trips]
    assert len(served) == len(set(served))
    assert sorted(served + res.unserved) == sorted(by_id)
    assert res.idle_at_end == len(ids)
    last = dict(zip(ids, ((0.0, node) for node in starts), strict=True))
    for trip in sorted(res.trips, key=lambda t: t.assigned_at):
        r = by_id[trip.request_id]
        free_at, node = last[trip.vehicle]
        # One passenger at a time, starting where the previous trip ended.
        assert trip.assigned_at >= free_at - 1e-9
        assert trip.start_node == node
        to_pickup = matrix.times([node], [r.source])[0, 0]
        assert trip.pickup_at == pytest.approx(trip.assigned_at + to_pickup)
        # Waiting time is at least the drive from where the vehicle was.
        assert res.waits[trip.request_id] >= to_pickup - 1e-9
        assert trip.assigned_at >= r.at
        last[trip.vehicle] = (trip.dropoff_at, r.destination)
    assert res.deadhead_ratio() is not None and 0 < res.deadhead_ratio() < 1


def test_simulator_rejects_bad_input(city) -> None:  # type: ignore[no-untyped-def]
    roadmap, clusters = city
    bad = [Request("r0", 1.0, "nowhere", roadmap.nodes[0])]
    with pytest.raises(ValueError, match="not on map"):
        simulate(roadmap, clusters, make_policy("fifo"), bad, roadmap.nodes[:2])
    with pytest.raises(ValueError, match="vehicle id"):
        simulate(roadmap, clusters, make_policy("fifo"), [], roadmap.nodes[:2], ["a", "a"])


def test_patience_drops_requests_nobody_serves(city) -> None:  # type: ignore[no-untyped-def]
    roadmap, clusters = city
    requests = poisson_requests(roadmap, 40, 60.0, seed=2)  # a burst for one vehicle
    res = simulate(roadmap, clusters, make_policy("fifo"), requests, roadmap.nodes[:1],
                   patience_s=120.0)
    assert res.unserved and all(w <= 120.0 + 1e3 for w in res.waits.values())
    assert len(res.trips) + len(res.unserved) == 40


def test_fifo_cluster_keeps_vehicles_in_the_pickups_cluster(city) -> None:  # type: ignore[no-untyped-def]
    roadmap, clusters = city
    requests = poisson_requests(roadmap, 150, 3.0, seed=4)  # light load: vehicles wait idle
    starts = vehicle_start_nodes(roadmap, 12, seed=4)

    def local_share(res) -> float:  # type: ignore[no-untyped-def]
        by_id = {r.request_id: r for r in requests}
        local = [clusters.cluster_of_node(t.start_node)
                 == clusters.cluster_of_node(by_id[t.request_id].source) for t in res.trips]
        return sum(local) / len(local)

    fifo = simulate(roadmap, clusters, make_policy("fifo"), requests, starts)
    ours = simulate(roadmap, clusters, make_policy("fifo-cluster"), requests, starts)
    strict = simulate(roadmap, clusters, FifoCluster(spill_over=False), requests, starts)
    assert len(fifo.trips) == len(ours.trips) == len(requests)  # work-conserving, like fifo
    assert local_share(ours) > local_share(fifo) + 0.3
    assert ours.deadhead_ratio() < fifo.deadhead_ratio()
    assert ours.wait_avg() < fifo.wait_avg()
    # Without spill-over a vehicle only ever fetches passengers in its own cluster.
    assert strict.trips and local_share(strict) == 1.0
    assert len(strict.trips) + len(strict.unserved) == len(requests)


# --- equivalence with live agents ----------------------------------------------------------

OFFSET_S = 200.0  # simulated seconds of head start: every passenger is logged in by then
MARGIN_S = 3.0  # decisions never hinge on events closer than this (37 wall ms at speed 80)


def _margin(requests: list[Request], res, batch_s: float) -> float:  # type: ignore[no-untyped-def]
    """Smallest gap between two events that could be reordered by message latency."""
    times = sorted([r.at for r in requests] + [t.dropoff_at for t in res.trips])
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    if batch_s > 0:  # an event next to a tick could fall on either side of it
        gaps += [min(t % batch_s, batch_s - t % batch_s) for t in times]
    return min(gaps)


async def _live(config: RunConfig, requests: list[Request]) -> tuple[dict[str, str], list[str]]:
    import asyncio

    async with Fleet(config) as fleet:
        ids = [fleet.endpoint.jid(f"vehicle-{i}") for i in range(config.vehicles)]  # type: ignore[union-attr]
        outcomes = await asyncio.gather(*(
            fleet.ride(r.request_id, r.source, r.destination, at=r.at) for r in requests))
    return {o.request_id: o.vehicle for o in outcomes if o.served}, ids


@pytest.mark.e2e
@pytest.mark.parametrize("policy", ["fifo", "nearest", "auction", "batch-auction"])
def test_live_agents_and_simulator_make_the_same_assignments(policy: str) -> None:
    # Seed 15 keeps every pair of events >= 4 simulated s apart, and the four policies
    # choose four different assignment sets, so the comparison is a real one.
    config = RunConfig(vehicles=4, requests=0, speed=80.0, seed=15, map="suburb", clusters=2,
                       replicas=1,
                       radius_m=1e9, processes=2, auction_managers=2, policy=policy,
                       batch_s=30.0, patience_s=5000.0)
    roadmap = load_map(config.map, config.seed)
    clusters = make_clusters(roadmap, config.clusters, config.seed)
    requests = [dataclasses.replace(r, at=r.at + OFFSET_S)
                for r in poisson_requests(roadmap, 6, 2.0, config.seed)]
    starts = vehicle_start_nodes(roadmap, config.vehicles, config.seed)
    live, ids = eventloop.run(_live(config, requests))
    sim_policy = make_policy(policy, radius_m=config.radius_m, batch_s=config.batch_s)
    sim = simulate(roadmap, clusters, sim_policy, requests, starts, ids,
                   patience_s=config.patience_s)
    margin = _margin(requests, sim, sim_policy.batch_s)
    assert margin > MARGIN_S, f"scenario too tight to compare ({margin:.1f} s)"
    assert not math.isinf(margin)
    assert len(sim.assignments) == len(requests)
    assert live == sim.assignments


def test_paper_maps_speeds_cap_and_congestion() -> None:
    import networkx as nx

    from fleetbid.maps.speeds import edge_speed

    assert edge_speed({"maxspeed": "80"}, cap_kmh=50.0) == pytest.approx(50 / 3.6)
    assert edge_speed({"highway": "residential"}, cap_kmh=50, congestion=0.5) == pytest.approx(
        25 / 3.6 * 0.5)
    with pytest.raises(ValueError):
        edge_speed({}, congestion=0.0)
    suburb = load_map("suburb", 0)
    graph = suburb.graph
    assert nx.is_strongly_connected(graph)
    assert max(d["speed"] for _, _, d in graph.edges(data=True)) == pytest.approx(72 / 3.6)
    dead_ends = [n for n in graph if graph.out_degree(n) == 1]
    assert len(dead_ends) > 100  # cul-de-sacs
    assert load_map("suburb", 0) is suburb  # cached like the other maps
