"""Live idle repositioning, vehicle side, without a server: hand-made demand figures on the
signed group, what a process's board takes or refuses, and where a just-idle vehicle drives
(behaviours/demand.py, behaviours/vehicle.py, policies/reposition.py)."""

from __future__ import annotations

import dataclasses
import logging
from types import SimpleNamespace
from typing import Any

import pytest

from fleetbid.behaviours.demand import STALE_TICKS, DemandBoard
from fleetbid.behaviours.vehicle import reposition_goal
from fleetbid.core.config import RunConfig
from fleetbid.core.world import World
from fleetbid.platform.announce import AnnounceGroup, Listener
from fleetbid.policies import reposition as rule
from fleetbid.protocol import announce as a
from fleetbid.replication.wire import Kind

GROUP = AnnounceGroup("239.253.7.8", 40001, "ab" * 32)
FLEET = 10


class Clock:
    def __init__(self, now: float) -> None:
        self.t = now

    def now(self) -> float:
        return self.t


@pytest.fixture(scope="module")
def base_world() -> World:
    return World.build(RunConfig(map="suburb", clusters=4))


@pytest.fixture
def world(base_world: World) -> World:
    return dataclasses.replace(base_world, clock=Clock(100.0))  # type: ignore[arg-type]


def nodes_of(world: World, cluster: int) -> list[str]:
    return sorted(world.clusters.nodes_in(cluster))


def figures(world: World, at: float = 90.0, **clusters: tuple[int, int, int]) -> a.DemandNews:
    """`c1=(requests, idle, heading)`: cluster 1's figures, its first two nodes as pickups."""
    return a.DemandNews(at=at, wall=0.0, window_s=900.0, clusters=tuple(
        a.ClusterDemand(cluster=int(k[1:]), requests=r, idle=i, heading=h,
                        pickups=tuple(nodes_of(world, int(k[1:]))[:2]))
        for k, (r, i, h) in clusters.items()))


def vehicle(world: World, board: DemandBoard | None, node: str) -> Any:
    return SimpleNamespace(world=world, demand_board=board, node=node, name="vehicle-0")


def signed(group: AnnounceGroup, news: a.Announcement, msg_id: int = 1) -> bytes:
    return group.codec().encode(Kind.ANNOUNCE, 0, 3, 1, msg_id, a.encode(news))


def test_a_vehicle_just_idle_drives_to_the_nearest_pickup_of_the_neediest_cluster(
        world: World) -> None:
    board = DemandBoard(world, FLEET)
    here = nodes_of(world, 0)[0]
    # Cluster 0 keeps one idle vehicle for no demand; 1 is short by 2, 2 by 1.
    board.on_news(figures(world, c0=(0, 1, 0), c1=(3, 1, 0), c2=(1, 0, 0)))
    goal = reposition_goal(vehicle(world, board, here))
    pickups = nodes_of(world, 1)[:2]
    assert goal == min(pickups, key=lambda p: (world.travel.time_to(here, p), p))
    # The same figures, the same rule: the simulator's decision (policies/reposition.py).
    assert goal == rule.target(here, board.figures(), world.clusters.cluster_of_node,
                               world.travel.time_to)


def test_a_vehicle_stays_where_it_is_needed_or_where_nothing_is_short(world: World) -> None:
    here = nodes_of(world, 0)[0]
    needed = DemandBoard(world, FLEET)
    needed.on_news(figures(world, c0=(2, 1, 0), c1=(5, 0, 0)))  # 0 would keep 1 for 2
    assert reposition_goal(vehicle(world, needed, here)) is None
    balanced = DemandBoard(world, FLEET)
    balanced.on_news(figures(world, c0=(0, 3, 0), c1=(2, 1, 1)))  # 1 has its 2 coming
    assert reposition_goal(vehicle(world, balanced, here)) is None
    assert reposition_goal(vehicle(world, None, here)) is None  # --reposition off
    assert reposition_goal(vehicle(world, DemandBoard(world, FLEET), here)) is None  # no news


def test_stale_figures_move_nobody_and_older_ones_do_not_replace_newer(world: World) -> None:
    board = DemandBoard(world, FLEET)
    here = nodes_of(world, 0)[0]
    board.on_news(figures(world, at=90.0, c1=(3, 0, 0)))
    board.on_news(figures(world, at=60.0, c1=(0, 5, 0)))  # overtaken on the way
    assert board.figures()[1].requests == 3
    world.clock.t = 90.0 + STALE_TICKS * rule.TICK_S + 1  # type: ignore[attr-defined]
    assert board.figures() == {}
    assert reposition_goal(vehicle(world, board, here)) is None


@pytest.mark.parametrize("bad, why", [
    ({"c9": (1, 0, 0)}, "not a cluster of the map"),
    ({"c1": (1, FLEET, 1)}, "out of range"),
    ({"c1": (10**7, 0, 0)}, "out of range"),
])
def test_figures_out_of_range_are_refused_and_logged(world: World, bad: dict[str, Any],
                                                     why: str,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    board = DemandBoard(world, FLEET)
    with caplog.at_level(logging.WARNING, logger="fleetbid.demand"):
        board.on_news(a.DemandNews(at=90.0, wall=0.0, window_s=900.0, clusters=tuple(
            a.ClusterDemand(cluster=int(k[1:]), requests=r, idle=i, heading=h)
            for k, (r, i, h) in bad.items())))
    assert board.latest is None and board.refused == 1
    assert why in caplog.text


def test_a_pickup_off_its_cluster_or_figures_from_the_future_are_refused(world: World) -> None:
    board = DemandBoard(world, FLEET)
    elsewhere = nodes_of(world, 2)[0]
    board.on_news(a.DemandNews(at=90.0, wall=0.0, window_s=900.0, clusters=(
        a.ClusterDemand(cluster=1, requests=3, idle=0, heading=0, pickups=(elsewhere,)),)))
    board.on_news(figures(world, at=100.0 + 10 * rule.TICK_S, c1=(3, 0, 0)))
    assert board.latest is None and board.refused == 2


def test_forged_and_garbled_datagrams_never_reach_the_board(world: World) -> None:
    board = DemandBoard(world, FLEET)
    listener = Listener(GROUP, board.on_news)
    forger = AnnounceGroup(GROUP.address, GROUP.port, "cd" * 32)  # right group, wrong key
    listener.receive(signed(forger, figures(world, c1=(3, 0, 0))), ("10.0.0.9", 7))
    listener.receive(b"\x00garbage", ("10.0.0.9", 7))
    listener.receive(signed(GROUP, a.AuctionNews(at=1.0, wall=0.0, auction_id="r",
                                                 state="open"))[:-3], ("127.0.0.1", 1))
    assert board.latest is None and sum(listener.dropped.values()) == 3
    here = nodes_of(world, 0)[0]
    assert reposition_goal(vehicle(world, board, here)) is None
    listener.receive(signed(GROUP, figures(world, c1=(3, 0, 0)), msg_id=2), ("127.0.0.1", 1))
    assert reposition_goal(vehicle(world, board, here)) in nodes_of(world, 1)


def test_the_board_counts_vehicles_repositioning_until_they_are_idle(world: World) -> None:
    board = DemandBoard(world, FLEET)
    to = nodes_of(world, 1)[0]
    start = nodes_of(world, 0)[0]
    for v in ("v1", "v2"):
        board.on_news(a.VehicleNews(at=1.0, wall=0.0, vehicle=v, state="repositioning",
                                    node=start, target=to))
    assert board.heading_counts() == {1: 2}
    board.on_news(a.VehicleNews(at=2.0, wall=0.0, vehicle="v1", state="idle", node=to))
    assert board.heading_counts() == {1: 1}


def test_the_manager_window_makes_the_figures_the_simulator_announces() -> None:
    window = rule.DemandWindow(window_s=100.0)
    for t, c, p in [(1.0, 1, "x"), (2.0, 1, "y"), (3.0, 1, "x"), (50.0, 2, "z")]:
        window.on_request(t, c, p)
    got = window.figures(60.0, [0, 0, 1], {2: 1})
    assert got == {0: rule.ClusterFigures(0, 2, 0, ()),
                   1: rule.ClusterFigures(3, 1, 0, ("x", "y")),
                   2: rule.ClusterFigures(1, 0, 1, ("z",))}
    assert window.figures(102.5, [], {}) == {1: rule.ClusterFigures(1, 0, 0, ("x",)),
                                             2: rule.ClusterFigures(1, 0, 0, ("z",))}
