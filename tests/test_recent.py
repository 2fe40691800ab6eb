"""Per-ride state of a fleet that runs for days stays bounded (docs/soak.md): the invariant
checks' records (outcomes told, bids acknowledged, rides taken) grew by one entry per ride for
ever; the law controller kept 20,000 auctions and each behaviour 4,096 message ids per agent,
which 50 vehicles filled for hours; a vehicle kept every leg it drove."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from fleetbid.agents import MainManagerAgent, VehicleAgent
from fleetbid.behaviours.base import SEEN_IDS, SEEN_S, ProtocolBehaviour
from fleetbid.behaviours.vehicle import Leg
from fleetbid.core.config import RunConfig
from fleetbid.core.directory import Directory
from fleetbid.core.recent import INVARIANT_WINDOW, RecentList, RecentSet
from fleetbid.core.world import World
from fleetbid.laws.controller import CONTROL_WINDOW
from fleetbid.platform.xmpp_server import XmppEndpoint
from fleetbid.protocol import codec
from fleetbid.protocol import messages as m

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
    # The law controller: a bidder keeps the auctions of a short window, the MainManager at
    # least its whole queue's (a passenger's law must outlive the wait).
    for n in range(10_000):
        for agent in (manager, vehicle):
            control, reason = agent.controller.adopt(f"r{n}", agent.controller.book.default_hash)
            assert control is not None, reason
    assert len(vehicle.controller.auctions) == CONTROL_WINDOW <= 1_000
    queue = manager.world.config.queue_limit
    assert queue < len(manager.controller.auctions) <= 4 * queue
    # A vehicle folds the legs it finished into its odometer.
    for n in range(10_000):
        vehicle.start_leg(Leg(start=10.0 * n, duration=5.0, length_m=100.0, loaded=n % 2 == 0))
    assert len(vehicle.legs) == 1 and vehicle.driven == (4_999 * 100.0, 5_000 * 100.0)
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


def test_a_behaviour_remembers_a_bounded_window_of_message_ids() -> None:
    behaviour = ProtocolBehaviour()
    behaviour.agent = SimpleNamespace(name="main-manager")  # read by the duplicate's log line
    for n in range(10_000):
        msg = codec.encode("main-manager@localhost", m.RideUnserved(auction_id=f"r{n}",
                                                                    reason="x"))
        msg.sender = "auction-0@localhost"
        msg.set_metadata("mid", f"m{n}")
        assert not behaviour.duplicate(msg)
    assert len(behaviour.seen) == SEEN_IDS <= 1_024
    assert behaviour.duplicate(msg)  # the newest are still recognised
    # And only for SEEN_S: a quiet vehicle's ids do not stay for hours.
    behaviour.seen.update((k, when - SEEN_S - 1.0) for k, when in list(behaviour.seen.items()))
    msg.set_metadata("mid", "later")
    assert not behaviour.duplicate(msg) and list(behaviour.seen) == [
        ("auction-0@localhost", "later")]
