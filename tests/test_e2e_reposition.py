"""Live idle repositioning (--reposition) with real agents on the embedded server: counted
and traced, never timed.

- a cluster with recent demand and no idle vehicle gets the vehicle that just dropped a
  passenger in a cluster with idle vehicles to spare: it drives there, announces itself
  available from there only, and serves the next request there;
- demand figures forged on the announcement group (wrong key) move nobody.
"""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from typing import Any

import pytest

from fleetbid.core.world import World
from fleetbid.platform.announce import AnnounceGroup, Announcer
from fleetbid.platform.eventloop import run
from fleetbid.protocol import announce as a
from fleetbid.run.launcher import Fleet

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


def count(stats: list[dict[str, Any]], key: str) -> int:
    return sum(s.get(key, 0) for s in stats)


def layout(config: Any) -> tuple[str, list[str], str]:
    """A pickup in cluster B; two vehicles in a neighbouring cluster A, the nearest A nodes
    to it; a drop-off in A, the farthest from it (so, without repositioning, the vehicle
    that drops there is not the one nearest the next request at the same pickup)."""
    world = World.build(config)
    clusters, travel = world.clusters, world.travel
    b = 0
    a_ = clusters.neighbours(b)[0]
    pickup = clusters.nodes_in(b)[len(clusters.nodes_in(b)) // 2]
    by_time = sorted((travel.time_to(n, pickup), n) for n in clusters.nodes_in(a_)
                     if math.isfinite(travel.time_to(n, pickup))
                     and math.isfinite(travel.time_to(pickup, n)))
    starts = [by_time[0][1], by_time[1][1]]
    return pickup, starts, by_time[-1][1]


def test_a_vehicle_repositions_to_demand_and_serves_the_next_request_there(
        kit: Any, tmp_path: Path) -> None:
    trace = tmp_path / "trace.jsonl"
    config = kit.small_config(vehicles=2, radius_m=1e9, patience_s=3600.0, reposition=True,
                              trace=str(trace))
    pickup, starts, far = layout(config)

    async def scenario() -> tuple[Any, Any, list[dict[str, Any]], dict[str, str]]:
        async with Fleet(config, start_nodes=starts) as fleet:
            await kit.wait_for_announcements(fleet)
            first = await fleet.ride("r1", pickup, far, at=fleet.now() + 5)
            # The first rider's vehicle is available again: at the drop-off without
            # repositioning, at the pickup of cluster B with it.
            await kit.wait_delivered(fleet, "vehicle-available", at_least=3)
            second = await fleet.ride("r2", pickup, far, at=fleet.now() + 5)
            return first, second, await fleet.stats(), kit.vehicle_jids(fleet)

    first, second, stats, jids = run(scenario())
    assert first.served and second.served, (first.reason, second.reason)
    assert count(stats, "repositioned") == 1
    assert count(stats, "demand_heard") > 0 and count(stats, "demand_refused") == 0
    # It drove back toward cluster B's demand and was available from there only.
    available = kit.sends(kit.read_trace(trace), "vehicle-available", **{"from": first.vehicle})
    assert [r["body"]["node"] for r in available] == [jids[first.vehicle], pickup]
    assert second.vehicle == first.vehicle


def test_forged_demand_figures_move_nobody(kit: Any) -> None:
    config = kit.small_config(vehicles=2, radius_m=1e9, patience_s=3600.0, reposition=True)
    pickup, starts, far = layout(config)
    world = World.build(config)
    lure = world.clusters.nodes_in(world.clusters.cluster_of_node(pickup))[:1]

    async def scenario() -> list[dict[str, Any]]:
        async with Fleet(config, start_nodes=starts) as fleet:
            assert fleet.announce is not None
            await kit.wait_for_announcements(fleet)
            # The right group, the wrong key: cluster B's figures, as if short of vehicles.
            forger = Announcer(AnnounceGroup(fleet.announce.address, fleet.announce.port,
                                             "cd" * 32), process=99)
            await forger.open()
            stop = asyncio.Event()

            async def forge() -> None:
                while not stop.is_set():
                    forger.emit(a.DemandNews(at=fleet.now(), wall=0.0, window_s=900.0, clusters=(
                        a.ClusterDemand(cluster=world.clusters.cluster_of_node(pickup),
                                        requests=50, idle=0, heading=0, pickups=tuple(lure)),)))
                    await asyncio.sleep(0.01)

            forging = asyncio.ensure_future(forge())
            try:
                # Both rides in cluster A: its genuine figures ask nobody to move.
                ride = await fleet.ride("r1", starts[1], far, at=fleet.now() + 5)
                assert ride.served, ride.reason
                await kit.wait_delivered(fleet, "vehicle-available", at_least=3)
            finally:
                stop.set()
                await forging
                forger.close()
            return await fleet.stats()

    stats = run(scenario())
    assert count(stats, "demand_dropped") > 0  # the forgeries arrived, and were dropped
    assert count(stats, "demand_heard") > 0  # the genuine figures too
    assert count(stats, "repositioned") == 0
