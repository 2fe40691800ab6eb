"""End-to-end run on the real street network of central Bengaluru (OSM GraphML).

The shared copy (`../shared/maps/`) when it is there, else the copy fleetbid ships
(`--map dense`): the run never skips.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from fleetbid.maps import load_map
from fleetbid.platform.eventloop import run
from fleetbid.run.launcher import Fleet

SHARED = Path(__file__).resolve().parents[2] / "shared" / "maps" / "central_bengaluru.graphml"
BENGALURU = str(SHARED) if SHARED.is_file() else "dense"

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

VEHICLES, RIDES = 20, 8


def _config(kit: Any) -> Any:
    return kit.small_config(vehicles=VEHICLES, map=BENGALURU, speed=600.0,
                            patience_s=1200.0, processes=1)


def choose_rides(geo: Any, starts: list[str], count: int, seed: int = 5) -> list[tuple]:
    """Sequential rides that the fleet can certainly serve: a cluster's auctions only ever take
    that cluster's vehicles, so a pickup with more admitted start vehicles than earlier rides
    in its cluster always finds an idle one."""
    rng = random.Random(seed)
    nodes = geo.roadmap.nodes
    per_cluster: Counter[int] = Counter()
    chosen = []
    for pickup in rng.sample(nodes, len(nodes)):
        cluster = geo.cluster(pickup)
        admitted = sum(geo.is_admitted(s, pickup) for s in starts)
        if admitted > per_cluster[cluster]:
            per_cluster[cluster] += 1
            dropoff = rng.choice([n for n in nodes if n != pickup])
            chosen.append((f"blr-{len(chosen)}", pickup, dropoff))
        if len(chosen) == count:
            return chosen
    raise AssertionError("not enough serviceable pickups")


@pytest.fixture(scope="module")
def bengaluru(kit: Any) -> dict[str, Any]:
    config = _config(kit)
    roadmap = load_map(config.map, config.seed)
    geo = kit.Geography.of(roadmap, config)

    async def scenario() -> dict[str, Any]:
        async with Fleet(config) as fleet:
            await kit.wait_for_announcements(fleet)
            rides = choose_rides(geo, fleet.start_nodes, RIDES)
            outcomes = [await fleet.ride(*ride) for ride in rides]
            return {"rides": rides, "outcomes": outcomes, "stats": await fleet.stats(),
                    "jids": kit.vehicle_jids(fleet), "fleet_map": fleet.roadmap}

    result = run(scenario())
    result.update(geo=geo, roadmap=roadmap)
    return result


def test_bengaluru_map_loads(bengaluru: dict[str, Any]) -> None:
    roadmap = bengaluru["roadmap"]
    assert len(roadmap.nodes) > 2000  # 2,657 intersections in the extract
    assert roadmap.graph.number_of_edges() > 5000
    assert bengaluru["fleet_map"].nodes == roadmap.nodes
    geo = bengaluru["geo"]
    assert {geo.cluster(n) for n in roadmap.nodes} == {0, 1, 2, 3}
    a, b = roadmap.nodes[0], roadmap.nodes[-1]
    assert math.isfinite(geo.travel.time_s(a, b)) and geo.travel.time_s(a, b) > 0


def test_bengaluru_short_run_serves_its_requests(bengaluru: dict[str, Any]) -> None:
    geo = bengaluru["geo"]
    jids = bengaluru["jids"]
    for (request_id, pickup, dropoff), o in zip(bengaluru["rides"], bengaluru["outcomes"],
                                                strict=True):
        assert o.request_id == request_id
        assert o.served, o
        assert o.vehicle in jids
        assert (o.source, o.destination) == (pickup, dropoff)
        # The wait runs from the request to the pickup, and includes the drive there.
        assert o.picked_up_at is not None and o.wait_s is not None and o.eta_s is not None
        assert o.wait_s == pytest.approx(o.picked_up_at - o.requested_at, abs=1e-6)
        assert o.wait_s >= o.eta_s - 1.0
        # The price is the winner's first-price bid: (n-1)/n · 1/T with T its ETA.
        assert 1 <= o.bidders <= len(jids)
        assert o.price == pytest.approx((o.bidders - 1) / o.bidders / max(o.eta_s, 1.0),
                                        rel=1e-9)
        assert o.reason == ""
        assert geo.cluster(pickup) in range(4)
    assert len(bengaluru["outcomes"]) == RIDES


def test_bengaluru_first_ride_goes_to_the_nearest_admitted_vehicle(
    bengaluru: dict[str, Any]
) -> None:
    """Before any vehicle has moved the winner follows from the map alone."""
    geo = bengaluru["geo"]
    _, pickup, _ = bengaluru["rides"][0]
    first = bengaluru["outcomes"][0]
    expected = geo.expected_winner(bengaluru["jids"], pickup)
    assert expected is not None
    assert first.vehicle == expected[0]
    assert first.eta_s == pytest.approx(expected[1], rel=1e-6, abs=1e-6)


def test_bengaluru_stats_count_the_auctions(kit: Any, bengaluru: dict[str, Any]) -> None:
    stats = bengaluru["stats"]
    assert kit.total(stats, "auctions") == RIDES
    assert kit.total_by_type(stats)["ride-assigned"] == RIDES
    assert kit.total(stats, "empty_m") > 0
