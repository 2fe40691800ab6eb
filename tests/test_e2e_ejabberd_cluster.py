"""A fleet on two ejabberd 23.01 nodes joined in one cluster, one node killed mid-run.

Network namespaces made by the test: nodes `ejabberd@10.77.0.1` and `ejabberd@10.77.0.2`
(Erlang distribution between the namespaces, `ejabberdctl join_cluster`), and `fleetbid
run --xmpp 10.77.0.1:5222,10.77.0.2:5222` on a third namespace: its worker processes enter
at the two nodes in turn. Once three rides are served, node 2's Erlang VM is SIGKILLed;
its agents fail over to node 1 and the run goes on. Skipped, with the reason, where
ejabberd is not installed, we are not root, or `ip netns` is not permitted.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from fleetbid.run.cluster_fleet import ClusterFleet, failovers, rides
from fleetbid.run.netlab import NetLab, unavailable

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

REQUESTS = 16
SERVED_BEFORE_KILL = 3
NODE_1, NODE_2 = "10.77.0.1:5222", "10.77.0.2:5222"


@dataclass
class Scenario:
    fleet: ClusterFleet
    members: list[list[str]] = field(default_factory=list)
    before_kill: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    log: str = ""


def _skip_reason() -> str | None:
    if shutil.which("ejabberdctl") is None:
        return "ejabberd not installed (apt-get install -y ejabberd)"
    if os.geteuid() != 0:
        return "ejabberdctl runs only as root or as the ejabberd user"
    reason = unavailable()
    return f"network namespaces unavailable: {reason}" if reason else None


@pytest.fixture(scope="module")
def scenario() -> Iterator[Scenario]:
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    lab = NetLab(hosts=3)
    # Under /tmp, not pytest's private tmp root: the nodes run as the ejabberd user.
    workdir = Path(tempfile.mkdtemp(prefix="fleetbid-cluster-test-"))
    fleet = ClusterFleet(lab, workdir)
    try:
        lab.create()
        cluster = fleet.start_cluster()
        run = Scenario(fleet, members=[cluster.members(0), cluster.members(1)])
        fleet.launch("run", "--processes", "4", "--vehicles", "12", "--auction-managers", "4",
                     "--requests", str(REQUESTS), "--rate", "0.1", "--speed", "400",
                     "--clusters", "1", "--radius", "100000", "--json", "--no-progress",
                     "--log-level", "INFO")
        fleet.wait_for(lambda text: sum(1 for r in rides(text) if r["vehicle"])
                       >= SERVED_BEFORE_KILL, f"{SERVED_BEFORE_KILL} rides served")
        run.before_kill = rides(fleet.text())
        fleet.sample_sessions()
        cluster.kill(1)
        run.summary = fleet.result()
        run.log = fleet.text()
        yield run
    finally:
        with contextlib.suppress(Exception):
            fleet.stop()
        lab.delete()
        shutil.rmtree(workdir, ignore_errors=True)


def on_node_2(s: Scenario) -> set[str]:
    """Agents whose stream was to node 2 when it died (bare names)."""
    return {name for name, f in failovers(s.log).items() if f.get("lost") == NODE_2}


def test_the_two_nodes_form_one_cluster(scenario: Scenario) -> None:
    both = sorted(["ejabberd@10.77.0.1", "ejabberd@10.77.0.2"])
    assert [sorted(m) for m in scenario.members] == [both, both]


def test_agents_are_connected_to_both_nodes(scenario: Scenario) -> None:
    (sessions,) = scenario.fleet.sessions
    assert set(sessions) == {"ejabberd@10.77.0.1", "ejabberd@10.77.0.2"}
    assert all(n > 0 for n in sessions.values()), sessions


def test_auctions_span_the_nodes(scenario: Scenario) -> None:
    # The MainManager and the first workers' vehicles are on node 1 (worker 0); a ride
    # served before the kill by a vehicle that was on node 2 crossed the cluster.
    node_2 = on_node_2(scenario)
    assert not any(name.endswith("main-manager") for name in failovers(scenario.log))
    served = {r["vehicle"].split("@")[0] for r in scenario.before_kill if r["vehicle"]}
    assert served & node_2, (served, node_2)


def test_agents_of_the_killed_node_resume_on_the_survivor(scenario: Scenario) -> None:
    moved = failovers(scenario.log)
    node_2 = on_node_2(scenario)
    assert any("vehicle" in name for name in node_2), moved
    for name in node_2:
        assert moved[name].get("resumed") == NODE_1, (name, moved[name])


def test_every_request_ends_and_nothing_acknowledged_is_lost(scenario: Scenario) -> None:
    s = scenario.summary
    assert s["requests"] == REQUESTS
    ended = rides(scenario.log)
    assert len(ended) == REQUESTS
    assert all(r["vehicle"] or r["reason"] for r in ended), ended
    assert s["invariant_violations"] == 0, s["invariants"]


def test_rides_are_served_after_the_kill(scenario: Scenario) -> None:
    after = rides(scenario.log)[len(scenario.before_kill):]
    assert any(r["vehicle"] for r in after), after
