"""Idle repositioning in the simulator (sim/reposition.py): who moves, where, what it costs."""

from __future__ import annotations

import math

from fleetbid.core.scenario import poisson_requests
from fleetbid.experiment.reposition import measure
from fleetbid.maps import load_map, make_clusters
from fleetbid.policies import make_policy
from fleetbid.policies.reposition import ClusterFigures
from fleetbid.run.population import vehicle_start_nodes
from fleetbid.sim import simulate
from fleetbid.sim.reposition import Repositioner

CLUSTER = {"a1": 0, "a2": 0, "b1": 1, "b2": 1, "c1": 2}


def cluster_of(node: str) -> int:
    return CLUSTER[node]


def time_s(a: str, b: str) -> float:
    return {"b1": 50.0, "b2": 20.0, "c1": 10.0}.get(b, 99.0)


def test_a_surplus_vehicle_drives_to_the_cluster_short_of_vehicles_the_most() -> None:
    mover = Repositioner(window_s=100.0)
    for t, node in [(1.0, "b1"), (2.0, "b2"), (3.0, "b1"), (4.0, "c1")]:
        mover.on_request(t, cluster_of(node), node)
    # The figures of the tick at t=10 (the deciding vehicle, just idle, is not in them).
    # Cluster 0: one idle vehicle, no demand. Cluster 1: demand 3, one idle. Cluster 2:
    # demand 1, none idle. Cluster 1 is short by 2, cluster 2 by 1: go to 1, nearest pickup.
    mover.announce(10.0, [0, 1])
    assert mover.figures[1] == ClusterFigures(3, 1, 0, ("b1", "b2"))
    assert mover.target("a1", cluster_of, time_s) == "b2"
    assert mover.moving_to == {1: 1}
    # Until the next tick a vehicle decides from the same figures; at the next one, the
    # vehicle under way counts as supply of cluster 1, now short by 1 like cluster 2.
    mover.announce(20.0, [0, 1])
    assert mover.figures[1].heading == 1
    assert mover.target("a2", cluster_of, time_s) == "c1"  # the nearer pickup
    mover.arrived(1)
    assert mover.moving_to == {2: 1}


def test_nobody_leaves_a_cluster_that_needs_its_vehicles_or_for_old_demand() -> None:
    mover = Repositioner(window_s=100.0)
    mover.on_request(1.0, 0, "a1")
    mover.on_request(2.0, 1, "b1")
    mover.on_request(2.0, 1, "b2")
    mover.announce(10.0, [])
    assert mover.target("a1", cluster_of, time_s) is None  # 0 needs it
    # 200 s later the demand has aged out of the window: nowhere is short.
    mover.announce(200.0, [0])
    assert mover.figures == {0: ClusterFigures(0, 1, 0, ())}
    assert mover.target("a1", cluster_of, time_s) is None
    assert mover.moves == 0


def test_before_any_announcement_nobody_moves() -> None:
    mover = Repositioner()
    mover.on_request(1.0, 1, "b1")
    assert mover.target("a1", cluster_of, time_s) is None


def test_repositioning_drives_count_as_empty_distance_and_every_request_ends() -> None:
    roadmap = load_map("suburb")
    clusters = make_clusters(roadmap, 4, 0)
    requests = poisson_requests(roadmap, 300, 8.0, 1)
    starts = vehicle_start_nodes(roadmap, 30, 1)
    plain = simulate(roadmap, clusters, make_policy("auction", radius_m=math.inf), requests,
                     starts)
    mover = Repositioner()
    moved = simulate(roadmap, clusters, make_policy("auction", radius_m=math.inf), requests,
                     starts, reposition=mover)
    assert moved.repositions == mover.moves > 0 and moved.reposition_m > 0
    assert plain.repositions == 0 and plain.reposition_m == 0
    empty = sum(t.empty_m for t in moved.trips) + moved.reposition_m
    loaded = sum(t.loaded_m for t in moved.trips)
    assert moved.deadhead_ratio() == empty / (empty + loaded)
    assert len(moved.trips) + len(moved.unserved) == len(requests)
    assert not mover.moving_to  # every repositioning drive arrived


def test_the_measurement_compares_the_same_scenarios_with_and_without() -> None:
    [row] = measure(["nearest"], [60], 1, maps={"sparse": "suburb"})
    assert row.passengers == 60 and row.policy == "nearest"
    assert row.wait_s[0] > 0 and row.wait_s[1] > 0
    assert math.isclose(row.wait_change, row.wait_s[1] / row.wait_s[0] - 1)


def test_run_and_serve_take_reposition_off_by_default() -> None:
    from fleetbid.cli import build_parser
    from fleetbid.options import config_from

    parser = build_parser()
    for command in (["run"], ["serve"]):
        assert not config_from(parser.parse_args(command)).reposition
        assert config_from(parser.parse_args([*command, "--reposition"])).reposition


def test_a_sweep_policy_with_the_suffix_repositions_in_the_simulator() -> None:
    from fleetbid.experiment.sweep import SweepSettings, sim_sweep, split_policy

    assert split_policy("auction+reposition") == ("auction", True)
    assert split_policy("auction") == ("auction", False)
    settings = SweepSettings(maps={"sparse": "suburb"}, policies=("nearest",
                             "nearest+reposition"), passengers=(300,), vehicles=30)
    plain, moved = sim_sweep(settings)
    assert (plain.policy, moved.policy) == ("nearest", "nearest+reposition")
    assert plain.served == moved.served == 300
    assert plain.wait_avg_s != moved.wait_avg_s  # the same requests, vehicles elsewhere
