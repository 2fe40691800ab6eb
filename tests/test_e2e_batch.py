"""The agents' batch procurement auction and spill-over, with real agents on the embedded
server: counted, never timed.

- batch-auction serves every passenger, and the messages per served passenger fall when
  more passengers share a batch (one call and one bid per vehicle per batch);
- a passenger in a cluster without vehicles is served from a neighbouring cluster, in the
  per-request auction and in the batch one.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest

from fleetbid.maps import load_map, make_clusters
from fleetbid.platform.eventloop import run
from fleetbid.policies.spill import spill_order
from fleetbid.run.launcher import Fleet
from fleetbid.run.population import vehicle_start_nodes

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

VEHICLES = 12
SPEED = 400.0
BATCH_S = 0.5 * SPEED  # half a wall second: a burst sent at once falls into one batch
ALONE = 3  # rides one at a time: each is a batch of its own
BURST = 8  # rides at once: they share their clusters' batches


@pytest.fixture(scope="module")
def batches(kit: Any) -> dict[str, Any]:
    config = kit.small_config(vehicles=VEHICLES, clusters=2, speed=SPEED, policy="batch-auction",
                              batch_s=BATCH_S, patience_s=60 * BATCH_S, auction_managers=4)
    roadmap = load_map(config.map, config.seed)
    nodes = roadmap.nodes
    rides = [(f"r{i:02d}", nodes[(37 * i + 11) % len(nodes)], nodes[(53 * i + 5) % len(nodes)])
             for i in range(ALONE + BURST)]

    async def phase(fleet: Fleet, chunk: list[tuple[str, str, str]], served_before: int,
                    ) -> tuple[list[Any], dict[str, int]]:
        before = kit.total_by_type(await fleet.stats())
        # Asked just after a tick, so the whole chunk is decided at the next one.
        now = fleet.now()
        at = (math.floor(now / BATCH_S) + 1.1) * BATCH_S
        outcomes = await asyncio.gather(*(fleet.ride(r, s, d, at=at) for r, s, d in chunk))
        # Every trip over and every vehicle idle again before the next phase.
        await kit.wait_delivered(fleet, "vehicle-available",
                                 at_least=VEHICLES + served_before + len(chunk))
        after = kit.total_by_type(await fleet.stats())
        return outcomes, {k: after.get(k, 0) - before.get(k, 0) for k in after}

    async def scenario() -> dict[str, Any]:
        async with Fleet(config) as fleet:
            await kit.wait_for_announcements(fleet)
            alone: list[Any] = []
            alone_counts: dict[str, int] = {}
            for i in range(ALONE):
                got, counts = await phase(fleet, rides[i:i + 1], i)
                alone += got
                for k, n in counts.items():
                    alone_counts[k] = alone_counts.get(k, 0) + n
            burst, burst_counts = await phase(fleet, rides[ALONE:], ALONE)
        return {"alone": alone, "burst": burst, "alone_counts": alone_counts,
                "burst_counts": burst_counts}

    return run(scenario())


def test_batch_auction_serves_every_passenger(batches: dict[str, Any]) -> None:
    outcomes = batches["alone"] + batches["burst"]
    assert all(o.served for o in outcomes), [o.reason for o in outcomes if not o.served]
    assert all(o.assignments == 1 for o in outcomes)
    assert len({o.vehicle for o in batches["burst"]}) == BURST  # one passenger per vehicle


def test_one_call_and_one_bid_per_vehicle_per_batch(batches: dict[str, Any]) -> None:
    for counts in (batches["alone_counts"], batches["burst_counts"]):
        assert counts["open-batch"] >= 1
        # Fewer vehicles per cluster than PROXY_FROM: the manager calls them itself.
        assert counts["batch-call"] == counts["batch-bid"] <= VEHICLES * counts["open-batch"]
        assert counts["batch-award"] == counts["award-confirmed"] == counts["ride-assigned"]
        # No per-request auction messages at all.
        assert not counts.get("call-for-bids") and not counts.get("open-auction")
    # The burst shares batches: fewer batches than passengers.
    assert batches["burst_counts"]["open-batch"] < BURST


def test_messages_per_served_passenger_fall_as_load_rises(batches: dict[str, Any]) -> None:
    alone = sum(batches["alone_counts"].values()) / ALONE
    burst = sum(batches["burst_counts"].values()) / BURST
    assert burst < alone, (alone, burst, batches["alone_counts"], batches["burst_counts"])


# --- spill-over ---------------------------------------------------------------------------------


@pytest.mark.parametrize("policy", ["auction", "batch-auction"])
def test_a_cluster_without_vehicles_is_served_from_its_neighbour(kit: Any, policy: str) -> None:
    config = kit.small_config(vehicles=2, clusters=6, policy=policy, batch_s=BATCH_S,
                              radius_m=1500.0, patience_s=60 * BATCH_S)
    roadmap = load_map(config.map, config.seed)
    clusters = make_clusters(roadmap, config.clusters, config.seed)
    starts = vehicle_start_nodes(roadmap, config.vehicles, config.seed)
    occupied = {clusters.cluster_of_node(n) for n in starts}
    # A cluster with no vehicle next to one with a vehicle: its passenger must spill over.
    empty = next(c for c in range(config.clusters)
                 if c not in occupied and occupied & set(clusters.neighbours(c)))
    assert occupied & set(spill_order(clusters, empty))
    source = clusters.nodes_in(empty)[0]
    destination = clusters.nodes_in(empty)[-1]

    async def scenario() -> Any:
        async with Fleet(config) as fleet:
            await kit.wait_for_announcements(fleet)
            at = fleet.now() + 0.2 * SPEED
            return await fleet.ride("spill", source, destination, at=at), \
                kit.vehicle_jids(fleet)

    outcome, jids = run(scenario())
    assert outcome.served, outcome.reason
    assert clusters.cluster_of_node(jids[outcome.vehicle]) != empty
