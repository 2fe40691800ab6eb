"""A fleet over 3 "hosts": network namespaces this test makes itself on one bridge.

Host 1 (10.77.0.1) runs `fleetbid serve` (embedded server listening on 10.77.0.1, three
AuctionManager replicas); hosts 2 and 3 each run `fleetbid node --join fleetbid://...` (a
join string: host, port, domain and a single-use token) with 4 vehicles and one more replica
of the managers, recruited over the LAN's multicast. The scenario, run once: requests from
host 2; host 2 crashes (every process SIGKILLed), which the MainManager notices (its
vehicles' sessions end); requests from host 3; host 3's
cable is unplugged (a partition) and requests come from host 1; the cable goes back and
requests come from host 1 again. Skipped where `ip netns` is not permitted. Every address is
inside the namespaces; nothing is bound on the machine's own network.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from fleetbid.run.hosts import HostsFleet
from fleetbid.run.netlab import NetLab, unavailable

pytestmark = pytest.mark.e2e

MEMBER = "(member of the group)"
ROUNDS = ("before", "after_crash", "partitioned", "healed")


@dataclass
class Scenario:
    fleet: HostsFleet
    outcomes: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    logs: dict[str, str] = field(default_factory=dict)


def node_log(fleet: HostsFleet, host: int) -> str:
    return fleet.log(f"node{host - 1}").read_text()


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    reason = unavailable()
    if reason is not None:
        pytest.skip(f"network namespaces unavailable: {reason}")
    lab = NetLab(hosts=3)
    workdir = Path(tmp_path_factory.mktemp("hosts"))
    fleet = HostsFleet(lab, workdir, join_by_token=True,
                       extra=["--trace", str(workdir / "trace.jsonl")])
    try:
        lab.create()
        fleet.start()
        run = Scenario(fleet)
        run.outcomes["before"] = fleet.requests(2, 4, seed=3, name="before")
        lab.crash(2)
        assert not lab.pids(2), f"host 2 still runs {lab.pids(2)} after its crash"
        # The MainManager hears from the server that host 2's vehicles' sessions ended.
        fleet.wait_for("serve", lambda: all(
            f"{v}@localhost's session ended" in fleet.log("serve").read_text()
            for v in fleet.slots_of(1)))
        run.logs["detected_at"] = str(time.time())
        run.outcomes["after_crash"] = fleet.requests(3, 4, seed=4, name="after_crash")
        lab.link(3, up=False)
        # The minority side notices it lost its quorum before we ask for anything.
        fleet.wait_for("node2", lambda: "frozen: quorum lost" in node_log(fleet, 3))
        run.outcomes["partitioned"] = fleet.requests(1, 4, seed=5, name="partitioned")
        run.logs["h3_partitioned"] = node_log(fleet, 3)
        lab.link(3, up=True)
        # Healed: host 3's replica, excluded meanwhile, is recruited again over the LAN.
        recruited = run.logs["h3_partitioned"].count(MEMBER)
        fleet.wait_for("node2", lambda: node_log(fleet, 3).count(MEMBER) > recruited)
        run.outcomes["healed"] = fleet.requests(1, 4, seed=6, name="healed")
        run.logs["h3"] = node_log(fleet, 3)
        yield run
    finally:
        with contextlib.suppress(Exception):
            fleet.stop()
        lab.delete()


def test_the_server_listens_on_host_1_and_nodes_join_from_the_others(
        scenario: Scenario) -> None:
    assert '"host": "10.77.0.1"' in scenario.fleet.state.read_text()
    for host in (2, 3):
        assert "joined the fleet at XMPP 10.77.0.1" in node_log(scenario.fleet, host)


def test_requests_are_served_by_vehicles_of_joined_hosts(scenario: Scenario) -> None:
    before = scenario.outcomes["before"]
    hosts = {scenario.fleet.host_of(o["vehicle"]) for o in before}
    assert hosts & {2, 3}, f"no request served by a joined host's vehicle: {before}"


def test_replicas_on_other_hosts_join_the_group_over_the_lan_multicast(
        scenario: Scenario) -> None:
    # Replica 1 runs on host 3 and was recruited by the leader on host 1: the group's
    # multicast crossed the bridge both ways.
    assert "replica 1: view [0, 1, 2, 3, 4] (member of the group)" in scenario.logs["h3"]


def test_every_request_ends_and_no_passenger_gets_two_vehicles(scenario: Scenario) -> None:
    for name in ROUNDS:
        outcomes = scenario.outcomes[name]
        assert len(outcomes) == 4, (name, outcomes)
        for o in outcomes:
            assert o["served"] or o["reason"], (name, o)
            assert o["assignments"] <= 1, (name, o)


def test_a_crashed_host_s_vehicles_serve_nobody_and_the_others_carry_on(
        scenario: Scenario) -> None:
    after = scenario.outcomes["after_crash"]
    served = [o for o in after if o["served"]]
    assert served, after
    assert all(scenario.fleet.host_of(o["vehicle"]) != 2 for o in served), after


def test_no_auction_after_the_crash_is_noticed_calls_the_crashed_host_s_vehicles(
        scenario: Scenario) -> None:
    fleet, detected = scenario.fleet, float(scenario.logs["detected_at"])
    trace = fleet.workdir / "trace.jsonl"
    records = [json.loads(line) for line in trace.read_text().splitlines()
               if line.endswith("}")]
    dead = {f"{v}@localhost" for v in fleet.slots_of(1)}
    opened = [r for r in records if r["type"] == "open-auction" and r["dir"] == "send"
              and r["wall"] > detected]
    assert len(opened) >= 4, opened
    calls = [r for r in records if r["dir"] == "send" and r["wall"] > detected
             and (r["to"] in dead or (r["type"] in ("open-auction", "participation")
                                      and {c["vehicle"] for c in r["body"]["candidates"]}
                                      & dead))]
    assert not calls, calls


def test_the_partitioned_minority_stops_deciding(scenario: Scenario) -> None:
    log = scenario.logs["h3_partitioned"]
    assert "replica 1: the managers' group frozen: quorum lost" in log
    # Its vehicles can neither bid nor take a ride while cut off.
    partitioned = scenario.outcomes["partitioned"]
    assert all(scenario.fleet.host_of(o["vehicle"]) != 3
               for o in partitioned if o["served"]), partitioned


def test_after_the_partition_heals_the_host_s_vehicles_serve_again(scenario: Scenario) -> None:
    after = scenario.logs["h3"][len(scenario.logs["h3_partitioned"]):]
    assert "replica 1: view" in after and MEMBER in after, after
    healed = scenario.outcomes["healed"]
    assert any(scenario.fleet.host_of(o["vehicle"]) == 3 for o in healed), healed
