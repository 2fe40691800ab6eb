"""End-to-end auctions: real XMPP server, real agents in worker processes, real sockets.

Scenarios (each runs once per module, in a module-scoped fixture; the tests assert on it):

* `sequential`: 10 vehicles placed around the middle of the built-in city, where its four
  clusters meet: 4 inside the pickups' cluster and within the radius, 2 inside the cluster
  but beyond the radius, 3 just across the cluster border (closer to the pickups than any
  admitted vehicle) and 1 far away. Four sequential rides with pickups in that cluster and
  destinations in the opposite cluster, so each winner leaves the cluster for good and the
  expected winner of every ride follows from the map alone. Proxies "auto", 2 processes,
  traced. A prober also pretends to be a vehicle.
* `proxy_variants`: the same start nodes and rides with proxies "0" and "1".
* `crowd`: 12 vehicles and 20 concurrent rides, all in one cluster (2 processes, traced).
"""

from __future__ import annotations

import asyncio
import math
import random
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

import pytest

from fleetbid.maps import load_map
from fleetbid.platform.eventloop import run
from fleetbid.protocol import messages as m
from fleetbid.run.launcher import Fleet

pytestmark = [pytest.mark.e2e, pytest.mark.xmpp_compat, pytest.mark.timeout(240)]

RADIUS_M = 1500.0
SPEED = 400.0
IN_RADIUS, BEYOND_RADIUS, OTHER_CLUSTER, FAR = "in-radius", "beyond-radius", "other", "far"


# --- the sequential scenario's layout ---------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    home: int  # the pickups' cluster
    away: int  # the destinations' cluster
    start_nodes: list[str]
    roles: list[str]  # role of vehicle-<i>
    pickups: list[str]
    destinations: list[str]


def _spread(nodes: list[str], count: int, far_from: list[str], geo: Any, min_m: float) -> list[str]:
    """Greedily pick `count` of `nodes` (in order) at least `min_m` apart and from `far_from`."""
    chosen: list[str] = []
    for node in nodes:
        if all(geo.roadmap.distance_m(node, o) >= min_m for o in chosen + far_from):
            chosen.append(node)
        if len(chosen) == count:
            return chosen
    raise AssertionError(f"the map has too few suitable nodes ({len(chosen)}/{count})")


def make_layout(geo: Any) -> Layout:
    rm = geo.roadmap
    minx, miny, maxx, maxy = rm.bounds
    mid = ((minx + maxx) / 2, (miny + maxy) / 2)

    def off_mid(node: str) -> float:
        x, y = rm.xy(node)
        return math.hypot(x - mid[0], y - mid[1])

    home = geo.cluster(rm.nearest_node_xy(mid[0] - 200.0, mid[1] + 200.0))
    in_home = [n for n in rm.nodes if geo.cluster(n) == home]
    by_mid = sorted(in_home, key=lambda n: (off_mid(n), n))
    pickups = _spread([n for n in by_mid if off_mid(n) >= 150.0], 4, [], geo, 150.0)

    def dist_all(node: str) -> list[float]:
        return [rm.distance_m(node, p) for p in pickups]

    rng = random.Random(1)
    near = [n for n in in_home if max(dist_all(n)) <= RADIUS_M - 100 and min(dist_all(n)) >= 250]
    in_radius = _spread(rng.sample(near, len(near)), 4, pickups, geo, 200.0)
    beyond = [n for n in in_home if min(dist_all(n)) >= RADIUS_M + 100]
    beyond_radius = _spread(sorted(beyond), 2, [], geo, 300.0)
    outside = sorted((n for n in rm.nodes if geo.cluster(n) != home),
                     key=lambda n: (geo.travel.time_s(n, pickups[0]), n))
    other = _spread(outside, 3, pickups, geo, 150.0)
    home_centre = geo.clusters.centre(home)
    away = max(range(geo.clusters.k), key=lambda c: math.dist(geo.clusters.centre(c), home_centre))
    away_centre = geo.clusters.centre(away)
    in_away = sorted((n for n in rm.nodes if geo.cluster(n) == away),
                     key=lambda n: (math.dist(rm.xy(n), away_centre), n))
    far, destinations = in_away[0], _spread(in_away[1:], 4, [in_away[0]], geo, 150.0)

    placed = ([(n, IN_RADIUS) for n in in_radius] + [(n, BEYOND_RADIUS) for n in beyond_radius]
              + [(n, OTHER_CLUSTER) for n in other] + [(far, FAR)])
    random.Random(7).shuffle(placed)  # roles must not follow the JID order
    return Layout(home, away, [n for n, _ in placed], [r for _, r in placed], pickups,
                  destinations)


def rides(layout: Layout) -> list[tuple[str, str, str]]:
    return [(f"seq-{k}", p, d) for k, (p, d) in enumerate(zip(layout.pickups,
                                                                layout.destinations,
                                                                strict=True))]


def sequential_config(kit: Any, **overrides: Any) -> Any:
    settings: dict[str, Any] = {"vehicles": 10, "radius_m": RADIUS_M, "speed": SPEED,
                                "processes": 2, "proxies": "auto"}
    settings.update(overrides)
    return kit.small_config(**settings)


async def _sequential_rides(fleet: Fleet, layout: Layout) -> list[dict[str, Any]]:
    outcomes = []
    for request_id, pickup, dropoff in rides(layout):
        outcomes.append(await fleet.ride(request_id, pickup, dropoff))
    return outcomes


@pytest.fixture(scope="module")
def geo(kit: Any) -> Any:
    config = sequential_config(kit)
    return kit.Geography.of(load_map(config.map, config.seed), config)


@pytest.fixture(scope="module")
def layout(geo: Any) -> Layout:
    return make_layout(geo)


@pytest.fixture(scope="module")
def sequential(kit: Any, layout: Layout, tmp_path_factory: pytest.TempPathFactory) -> dict:
    trace_path = tmp_path_factory.mktemp("sequential") / "trace.jsonl"
    config = sequential_config(kit, trace=str(trace_path))

    async def scenario() -> dict[str, Any]:
        async with Fleet(config, start_nodes=layout.start_nodes) as fleet:
            await kit.wait_for_announcements(fleet)
            jids = kit.vehicle_jids(fleet)
            impostor = await kit.start_prober("impostor", fleet.endpoint)
            try:
                await impostor.send_body(fleet.plan.directory.main_manager,
                                         m.VehicleAvailable(node=layout.pickups[0]),
                                         conversation="impostor-1")
                impostor_reply = await impostor.next_reply("impostor-1")
                outcomes = await _sequential_rides(fleet, layout)
                impostor_extra = await impostor.drain()
            finally:
                await impostor.stop()
            stats = await fleet.stats()
            directory = fleet.plan.directory
        return {"outcomes": outcomes, "jids": jids, "stats": stats, "directory": directory,
                "impostor": str(impostor.jid.bare), "impostor_reply": impostor_reply,
                "impostor_extra": impostor_extra}

    result = run(scenario())
    result["trace"] = kit.read_trace(trace_path)
    return result


def _roles(result: dict, layout: Layout) -> dict[str, str]:
    return dict(zip(result["jids"], layout.roles, strict=True))


# --- 1. the winner is the eligible vehicle with the smallest T ---------------------------------


def test_layout_makes_the_filters_matter(geo: Any, layout: Layout) -> None:
    """Sanity of the scenario itself: without the cluster filter the first ride would go to a
    vehicle across the border, and pickups really lie in one cluster."""
    assert {geo.cluster(p) for p in layout.pickups} == {layout.home}
    assert {geo.cluster(d) for d in layout.destinations} == {layout.away} != {layout.home}
    nodes = dict(zip(layout.start_nodes, layout.roles, strict=True))
    first = layout.pickups[0]
    fastest = min(nodes, key=lambda n: geo.travel.time_s(n, first))
    assert nodes[fastest] == OTHER_CLUSTER
    assert geo.roadmap.distance_m(fastest, first) <= RADIUS_M  # excluded by cluster only


def test_sequential_winner_is_admitted_vehicle_with_smallest_travel_time(
    kit: Any, geo: Any, layout: Layout, sequential: dict
) -> None:
    idle = dict(sequential["jids"])  # JID -> node of the vehicles still in the home cluster
    for outcome, (request_id, pickup, dropoff) in zip(sequential["outcomes"], rides(layout),
                                                      strict=True):
        assert outcome.request_id == request_id
        assert outcome.served, outcome
        expected = geo.expected_winner(idle, pickup)
        assert expected is not None
        winner, travel_s = expected
        n = len(geo.admitted(idle, pickup))
        assert outcome.vehicle == winner, (request_id, outcome, idle)
        assert outcome.eta_s == pytest.approx(travel_s, rel=1e-6, abs=1e-6)
        assert outcome.bidders == n
        assert outcome.price == pytest.approx((n - 1) / n / max(travel_s, 1.0), rel=1e-9)
        assert outcome.reason == ""
        assert outcome.picked_up_at is not None and outcome.wait_s is not None
        assert outcome.wait_s == pytest.approx(outcome.picked_up_at - outcome.requested_at,
                                               abs=1e-6)
        assert outcome.wait_s >= travel_s - 1.0  # the drive to the pickup is part of the wait
        assert (outcome.source, outcome.destination) == (pickup, dropoff)
        del idle[winner]  # it drives to the other cluster: never a candidate here again
    assert len(sequential["outcomes"]) == len(layout.pickups)


# --- 2. vehicles outside the cluster or the radius are refused ------------------------------


def test_out_of_radius_vehicles_are_neither_candidates_nor_told(
    kit: Any, layout: Layout, sequential: dict
) -> None:
    """A vehicle beyond the radius cannot win: the MainManager does not name it to the
    auction, and no message of the auction reaches it."""
    roles = _roles(sequential, layout)
    beyond = set(v for v, r in roles.items() if r == BEYOND_RADIUS)
    assert beyond
    trace = sequential["trace"]
    for request_id, _, _ in rides(layout):
        (opened,) = kit.sends(trace, "open-auction", conversation=request_id)
        candidates = {c["vehicle"] for c in opened["body"]["candidates"]}
        assert candidates and not candidates & beyond, (request_id, candidates & beyond)
        told = {r["to"] for r in kit.sends(trace, conversation=request_id)}
        assert not told & beyond, (request_id, told & beyond)


def test_out_of_cluster_vehicles_are_never_called_and_never_win(
    kit: Any, geo: Any, layout: Layout, sequential: dict
) -> None:
    roles = _roles(sequential, layout)
    outsiders = {v for v, r in roles.items() if r in (OTHER_CLUSTER, FAR)}
    trace = sequential["trace"]
    idle = dict(sequential["jids"])
    for outcome, (request_id, pickup, _) in zip(sequential["outcomes"], rides(layout),
                                                strict=True):
        called = {r["to"] for r in kit.sends(trace, "call-for-bids", conversation=request_id)}
        assert called, request_id
        assert not called & outsiders, (request_id, called & outsiders)
        # Exactly the admitted vehicles were called.
        assert called == set(geo.admitted(idle, pickup)), request_id
        assert outcome.vehicle not in outsiders
        del idle[outcome.vehicle]


def test_prober_pretending_to_be_a_vehicle_is_refused(kit: Any, sequential: dict) -> None:
    reply = sequential["impostor_reply"]
    assert reply.type == m.Refused.TYPE and reply.performative == "refuse"
    assert reply.sender == sequential["directory"].main_manager
    assert "not a vehicle of this fleet" in reply.reason
    assert sequential["impostor"] in reply.reason
    assert reply.body["in_reply_to"] == "vehicle-available"
    # ... and it was never treated as a bidder.
    assert sequential["impostor_extra"] == []
    to_impostor = [r for r in kit.sends(sequential["trace"]) if r["to"] == sequential["impostor"]]
    assert [r["type"] for r in to_impostor] == [m.Refused.TYPE]


# --- 6. with two processes the protocol crosses the XMPP server ------------------------------


def test_two_processes_send_calls_and_bids_through_the_xmpp_server(
    kit: Any, sequential: dict
) -> None:
    stats = sequential["stats"]
    assert len(stats) == 2
    fleet_side, auction_side = stats  # process 0: vehicles, MainManager, passengers
    assert kit.total(stats, "xmpp_sent") > 0
    bids = fleet_side["by_type"].get("bid", 0)
    calls = auction_side["by_type"].get("call-for-bids", 0)
    assert bids >= len(sequential["outcomes"]) and calls >= bids
    # Every bid goes from a vehicle (process 0) to a proxy (process 1): all cross the server.
    assert fleet_side["xmpp_sent"] >= bids + fleet_side["by_type"].get("award-confirmed", 0)
    assert auction_side["xmpp_sent"] >= calls
    # The trace agrees: each bid and call was received by the other process.
    trace = sequential["trace"]
    for kind in ("bid", "call-for-bids"):
        sent = [r for r in trace if r["type"] == kind and r["dir"] == "send"]
        got = [r for r in trace if r["type"] == kind and r["dir"] == "recv"]
        assert len(sent) == len(got) > 0
        assert {r["process"] for r in sent}.isdisjoint({r["process"] for r in got})


# --- 4. the proxy arrangement does not change who wins ---------------------------------------


@pytest.fixture(scope="module")
def proxy_variants(kit: Any, layout: Layout) -> dict[str, dict[str, Any]]:
    async def scenario() -> dict[str, dict[str, Any]]:
        results = {}
        for proxies in ("0", "1"):
            config = sequential_config(kit, proxies=proxies)
            async with Fleet(config, start_nodes=layout.start_nodes) as fleet:
                await kit.wait_for_announcements(fleet)
                outcomes = await _sequential_rides(fleet, layout)
                results[proxies] = {"outcomes": outcomes, "stats": await fleet.stats()}
        return results

    return run(scenario())


def test_same_seed_same_winners_with_proxies_0_1_and_auto(
    kit: Any, sequential: dict, proxy_variants: dict
) -> None:
    runs = {"auto": sequential, **proxy_variants}

    def summary(result: dict) -> list[tuple[Any, ...]]:
        return [(o.request_id, o.served, o.vehicle, o.bidders)
                for o in result["outcomes"]]

    assert summary(runs["0"]) == summary(runs["auto"]) == summary(runs["1"])
    for name in ("0", "1"):
        for mine, auto in zip(runs[name]["outcomes"], runs["auto"]["outcomes"], strict=True):
            assert mine.price == pytest.approx(auto.price, rel=1e-9)
            assert mine.eta_s == pytest.approx(auto.eta_s, rel=1e-9)
    # The settings really differed: no proxy, one group per auction, several groups.
    group_calls = {name: kit.total_by_type(r["stats"]).get("group-call", 0)
                   for name, r in runs.items()}
    auctions = len(runs["auto"]["outcomes"])
    assert group_calls["0"] == 0
    assert group_calls["1"] == auctions
    assert group_calls["auto"] > auctions


# --- 3. many concurrent requests in one cluster ----------------------------------------------

CROWD_VEHICLES, CROWD_RIDES = 12, 20
UNSERVED_REASONS = ("no eligible vehicle",)


@pytest.fixture(scope="module")
def crowd(kit: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    trace_path = tmp_path_factory.mktemp("crowd") / "trace.jsonl"
    # A radius wider than any cluster: admission is decided by the cluster alone.
    config = kit.small_config(vehicles=CROWD_VEHICLES, radius_m=6000.0, speed=600.0,
                              processes=2, patience_s=3000.0, trace=str(trace_path))
    geo = kit.Geography.of(load_map(config.map, config.seed), config)
    cluster = geo.cluster(geo.roadmap.nearest_node_xy(*geo.clusters.centre(0)))
    members = geo.clusters.nodes_in(cluster)
    rng = random.Random(3)
    starts = rng.sample(members, CROWD_VEHICLES)
    pickups = rng.sample(members, CROWD_RIDES)
    dropoffs = [rng.choice([n for n in members if n != p]) for p in pickups]
    requests = [(f"crowd-{i:02d}", p, d) for i, (p, d) in enumerate(zip(pickups, dropoffs,
                                                                          strict=True))]

    async def scenario() -> dict[str, Any]:
        async with Fleet(config, start_nodes=starts) as fleet:
            await kit.wait_for_announcements(fleet)
            outcomes = await asyncio.gather(*(fleet.ride(*r) for r in requests))
            return {"outcomes": outcomes, "jids": kit.vehicle_jids(fleet),
                    "stats": await fleet.stats()}

    result = run(scenario())
    result.update(trace=kit.read_trace(trace_path), geo=geo, requests=requests,
                  cluster=cluster, speed=config.speed)
    return result


def test_concurrent_requests_all_end_served_or_with_a_reason(crowd: dict) -> None:
    outcomes = crowd["outcomes"]
    assert sorted(o.request_id for o in outcomes) == [r[0] for r in crowd["requests"]]
    for o in outcomes:
        if o.served:
            assert o.vehicle in crowd["jids"], o
            assert o.reason == "" and o.picked_up_at is not None, o
        else:
            assert any(text in o.reason for text in UNSERVED_REASONS), o
    # Every vehicle can serve at least one of them, and the patience is generous.
    assert sum(o.served for o in outcomes) >= CROWD_VEHICLES


def test_concurrent_requests_no_passenger_gets_two_vehicles(kit: Any, crowd: dict) -> None:
    trace = crowd["trace"]
    vehicles = set(crowd["jids"])
    assigned = Counter(r["conversation"] for r in kit.sends(trace, "ride-assigned"))
    confirmed = Counter(r["conversation"] for r in kit.sends(trace, "award-confirmed")
                        if r["from"] in vehicles)
    picked = Counter(r["conversation"] for r in kit.sends(trace, "picked-up"))
    for o in crowd["outcomes"]:
        rid = o.request_id
        want = 1 if o.served else 0
        assert (assigned[rid], confirmed[rid], picked[rid]) == (want, want, want), rid
    for o in crowd["outcomes"]:
        if o.served:
            confirmations = kit.sends(trace, "award-confirmed", conversation=o.request_id,
                                      **{"from": o.vehicle})
            assert len(confirmations) == 1
            pickups = kit.sends(trace, "picked-up", conversation=o.request_id)
            assert [r["from"] for r in pickups] == [o.vehicle]


def test_concurrent_requests_no_vehicle_serves_overlapping_trips(kit: Any, crowd: dict) -> None:
    geo, trace = crowd["geo"], crowd["trace"]
    served = [o for o in crowd["outcomes"] if o.served]
    trips: dict[str, list[tuple[float, float, str]]] = defaultdict(list)
    for o in served:
        (confirm,) = kit.sends(trace, "award-confirmed", conversation=o.request_id,
                               **{"from": o.vehicle})
        dropoff = o.picked_up_at + geo.travel.time_s(o.source, o.destination)
        assert confirm["sim"] <= o.picked_up_at + 1e-3  # trace sim is rounded to 1 ms
        trips[o.vehicle].append((confirm["sim"], dropoff, o.request_id))
    # Event-loop timers have millisecond granularity: allow 10 wall ms of simulated slack.
    slack = 0.01 * crowd["speed"]
    for vehicle, legs in trips.items():
        legs.sort()
        for (_, end, first), (start, _, second) in zip(legs, legs[1:], strict=False):
            assert start >= end - slack, (vehicle, first, second, end, start)
    # A vehicle that declined an award did so because it already held another one.
    for decline in kit.sends(trace, "award-declined"):
        if decline["from"] in crowd["jids"]:
            assert "already assigned" in decline["body"]["reason"]
    # The workers' odometers agree: one completed trip per served ride at most.
    assert kit.total(crowd["stats"], "trips") <= len(served)


def test_concurrent_requests_stay_in_their_cluster(kit: Any, crowd: dict) -> None:
    geo, trace = crowd["geo"], crowd["trace"]
    auctions = kit.sends(trace, "open-auction")
    assert len(auctions) == len({r["conversation"] for r in auctions}) == CROWD_RIDES
    assert {r["body"]["cluster"] for r in auctions} == {crowd["cluster"]}
    assert all(geo.cluster(r["body"]["pickup"]) == crowd["cluster"] for r in auctions)
