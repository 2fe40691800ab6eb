"""Per-ride records of a fleet that runs for days keep only the newest entries (docs/soak.md):
the invariant checks' outcomes told, bids acknowledged and rides taken grew by one entry per
ride, for ever, in every agent."""

from __future__ import annotations

import pytest

from fleetbid.agents import MainManagerAgent, VehicleAgent
from fleetbid.core.config import RunConfig
from fleetbid.core.directory import Directory
from fleetbid.core.recent import INVARIANT_WINDOW, RecentList, RecentSet
from fleetbid.core.world import World
from fleetbid.platform.xmpp_server import XmppEndpoint

RIDES = 30_000  # more than the window


def test_agents_keep_a_bounded_window_of_their_invariant_records() -> None:
    world = World.build(RunConfig(vehicles=2, clusters=1))
    endpoint = XmppEndpoint("127.0.0.1", 5222, "localhost", False)
    directory = Directory("main-manager@localhost", ("auction-0@localhost",), (),
                          frozenset({"vehicle-0@localhost"}))
    manager = MainManagerAgent("main-manager", endpoint, world, directory)
    vehicle = VehicleAgent("vehicle-0", endpoint, world, directory, node=world.roadmap.nodes[0])
    try:
        fill_and_check(manager, vehicle)
    finally:  # spade registered both in its process-wide container: a later test must not
        for agent in (manager, vehicle):  # find them there (see test_behaviours_sends.py)
            if agent.container.has_agent(str(agent.jid)):
                agent.container.unregister(str(agent.jid))


def fill_and_check(manager: MainManagerAgent, vehicle: VehicleAgent) -> None:
    for n in range(RIDES):
        manager.outcomes_told.add((f"r{n}", f"m{n}"))
        vehicle.bids_acknowledged.add(f"r{n}")
        vehicle.rides_taken.append(f"r{n}")
    assert len(manager.outcomes_told) == INVARIANT_WINDOW
    assert len(vehicle.bids_acknowledged) == INVARIANT_WINDOW
    assert len(vehicle.rides_taken) <= INVARIANT_WINDOW * 1.1
    # The newest are the ones kept, and what was let go is counted.
    assert (f"r{RIDES - 1}", f"m{RIDES - 1}") in manager.outcomes_told
    assert ("r0", "m0") not in manager.outcomes_told
    assert manager.outcomes_told.forgotten == RIDES - INVARIANT_WINDOW
    assert list(vehicle.rides_taken)[-1] == f"r{RIDES - 1}"
    assert vehicle.rides_taken.forgotten + len(vehicle.rides_taken) == RIDES


def test_recent_collections() -> None:
    kept: RecentSet[int] = RecentSet(3)
    for n in (1, 2, 2, 3, 4):
        kept.add(n)
    assert list(kept) == [2, 3, 4]  # a repeat does not count twice
    assert len(kept) == 3 and kept.forgotten == 1
    taken: RecentList[str] = RecentList(10)
    for n in range(12):
        taken.append("same" if n % 2 else f"r{n}")
    assert len(taken) <= 11 and taken.forgotten + len(taken) == 12
    with pytest.raises(ValueError):
        RecentSet(0)
