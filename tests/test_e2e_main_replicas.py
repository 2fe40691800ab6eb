"""A replicated MainManager (issue 14): SIGKILL the leader of its group mid-run.

One fleet of 3 replica hosts + 1 standby, each holding a replica of every AuctionManager and
of the MainManager, in two groups whose leaders sit on different hosts. `--kill main` kills
the MainManager group's leader's host once the second auction opened, while rides are in
flight (some queued: one AuctionManager for eight rides). Checked: every request is served
exactly once, the MainManager's group failed over while the AuctionManagers' leader stayed,
and the surviving logs of both groups agree.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from fleetbid.platform.eventloop import run
from fleetbid.run.launcher import Fleet
from fleetbid.run.replica_setup import check_invariants

pytestmark = pytest.mark.e2e

RIDES = 8


@pytest.fixture(scope="module")
def main_killed(kit: Any) -> dict[str, Any]:
    config = kit.small_config(vehicles=12, processes=2, replicas=3, standby_hosts=1,
                              kill_leader_after=2, kill="main", speed=300.0, proxies="auto",
                              auction_managers=1,  # the rest wait in the registry's queue
                              clusters=1, radius_m=1e6, patience_s=6000.0)

    async def scenario() -> dict[str, Any]:
        async with Fleet(config) as fleet:
            await kit.wait_for_announcements(fleet)
            leaders = dict(fleet.failovers.leaders)
            nodes = fleet.roadmap.nodes

            async def ride(k: int) -> Any:
                await asyncio.sleep(0.1 * k)
                source, destination = nodes[(37 * k) % len(nodes)], nodes[(91 * k + 5) % len(nodes)]
                return await fleet.ride(f"r{k}", source, destination)

            outcomes = list(await asyncio.gather(*(ride(k) for k in range(RIDES))))
            stats = await fleet.stats()
            return {"outcomes": outcomes, "stats": stats, "leaders_before": leaders,
                    "leaders_after": dict(fleet.failovers.leaders),
                    "failovers": fleet.failovers.count,
                    "invariants": check_invariants(outcomes, stats)}

    return run(scenario())


def test_every_request_is_served_once_across_the_main_managers_failover(
        main_killed: dict[str, Any]) -> None:
    outcomes = main_killed["outcomes"]
    assert all(o.served for o in outcomes), [(o.request_id, o.reason) for o in outcomes]
    assert all(o.assignments == 1 for o in outcomes)
    assert main_killed["invariants"] == {
        "double_assignments": 0, "double_outcomes": 0, "drives_to_nobody": 0,
        "lost_bids": 0, "log_disagreements": 0,
    }


def test_the_main_managers_leader_was_killed_not_the_auction_managers(
        main_killed: dict[str, Any]) -> None:
    before, after = main_killed["leaders_before"], main_killed["leaders_after"]
    assert before["main"] != before["auction"]  # the two groups' leaders on different hosts
    assert after["main"] != before["main"]  # the MainManager's group failed over
    assert after["auction"] == before["auction"]
    assert main_killed["failovers"] >= 1


def test_the_surviving_main_manager_replicas_agree(main_killed: dict[str, Any]) -> None:
    mains = [s["main_replica"] for s in main_killed["stats"]
             if s.get("main_replica", {}).get("member_of_group")]
    assert len(mains) >= 2  # the killed host is gone; a standby may have been recruited
    assert sum(1 for r in mains if r["leader"]) == 1
    assert all(r["seq"] > 0 for r in mains)  # the registry's inputs went through the log
