"""A group that lost its strict majority: the leader's half of an even view goes on.

Quorum (membership.quorum) is more than half of the view, or exactly half when it holds the
highest id (the leader): two quorums of one view always share a member, so there are never
two primaries. Before, a group of 2 whose other member died stayed frozen for good
(docs/soak.md, issue 15); now its leader re-forms the group and recruits a standby.
"""

from __future__ import annotations

import asyncio

from fleetbid.replication import GroupConfig
from fleetbid.replication.logmachine import LogMachine
from fleetbid.replication.membership import quorum
from fleetbid.replication.node import ReplicaNode
from fleetbid.replication.procs import free_udp_port
from fleetbid.replication.simgroup import SIM_KEY, SimGroup

UDP_KEY = b"udp-test-key-0123456789abcdef!!"


def cut(g: SimGroup, side: set[int]) -> None:
    """Drops every datagram between `side` and the rest (a partition)."""
    rest = set(g.replicas) - side
    g.net.blocked |= {(a, b) for a in side for b in rest} | {(b, a) for a in side for b in rest}


def progress(g: SimGroup, member: int, n: int = 3) -> bool:
    before = len(g.machines[member].log)
    for i in range(n):
        g.submit(member, b"p%d" % i)
    return g.run_until(lambda: len(g.machines[member].log) >= before + n, timeout=3.0)


def test_quorum_is_a_majority_or_the_leaders_half() -> None:
    assert quorum({1, 2}, (1, 2, 3)) and not quorum({3}, (1, 2, 3))
    assert quorum({2}, (1, 2)) and not quorum({1}, (1, 2))
    assert quorum({3, 4}, (1, 2, 3, 4)) and not quorum({1, 2}, (1, 2, 3, 4))
    assert not quorum(set(), ()) and quorum({5}, (5,))


def test_a_group_of_two_whose_follower_died_goes_on_and_recruits() -> None:
    # Fails on the old code: 2 of 2 needed, the leader stayed frozen ("quorum lost").
    g = SimGroup(3, (1, 2), standbys=(10,))
    assert g.run_until(g.stable, timeout=3.0) and progress(g, 2)
    g.crash(1)
    assert g.run_until(lambda: g.stable() and set(g.members_alive()) == {2, 10}, timeout=5.0)
    assert progress(g, 2) and progress(g, 10)
    assert not g.replicas[2].group_status.frozen
    g.check()


def test_the_follower_alone_stays_frozen_and_says_why() -> None:
    # Its half lacks the leader: forming a view could make a second primary (the leader may
    # be alive on the other side of a cut). It waits and its watchdog reports it.
    g = SimGroup(4, (1, 2))
    assert g.run_until(g.stable, timeout=3.0)
    g.crash(2)
    g.run(3.0)
    r = g.replicas[1]
    assert r.members == (1, 2) and r.group_status.frozen
    assert r.group_status.reason == "quorum lost: 1 of 2 members reachable"
    g.check()


def test_an_even_split_leaves_one_primary_and_heals_without_divergence() -> None:
    # Fails on the old code: neither half of {1,2,3,4} had 3 members, both froze.
    config = GroupConfig("sim", SIM_KEY, startup_grace_s=1.0, target_size=4)
    g = SimGroup(5, (1, 2, 3, 4), config=config)
    assert g.run_until(g.stable, timeout=3.0) and progress(g, 4)
    cut(g, {1, 2})
    assert g.run_until(lambda: g.replicas[4].members == (3, 4), timeout=3.0)
    assert progress(g, 3) and progress(g, 4)
    assert g.replicas[1].members == (1, 2, 3, 4) and g.replicas[1].frozen is False
    g.run(2.0)
    assert g.replicas[1].group_status.frozen  # the other half: no quorum, reported
    g.net.blocked.clear()
    # Healed: the cut-off half learns of the newer view, becomes standby and is recruited
    # back with a state transfer; the group takes decisions with all four again.
    assert g.run_until(lambda: g.stable() and len(g.members_alive()) == 4, timeout=10.0)
    assert progress(g, 1)
    g.check()
    logs = {tuple(g.machines[m].keys()) for m in g.members_alive()}
    assert len(logs) == 1


def test_on_udp_the_leader_of_two_goes_on_when_its_follower_stops() -> None:
    # Real sockets and clocks: the follower's process part stops (its node closes, no
    # heartbeats); the leader suspects it, forms a view alone and delivers again. Fails on
    # the old code (the submission never completed: 2 of 2 needed).
    async def main() -> tuple[tuple[int, ...], int]:
        cfg = GroupConfig("udp-two", UDP_KEY, port=free_udp_port(),
                          discovery_port=free_udp_port())
        machines = {m: LogMachine() for m in (1, 2)}
        nodes = {m: ReplicaNode(cfg, m, machines[m], initial_members=(1, 2)) for m in (1, 2)}
        await asyncio.gather(*(n.start() for n in nodes.values()))
        try:
            await asyncio.wait_for(nodes[2].submit(b"before"), 10)
            await nodes[1].stop()
            d = await asyncio.wait_for(nodes[2].submit(b"after"), 20)
            view = nodes[2].view
            assert view is not None
            return view.members, d.seq
        finally:
            await asyncio.gather(*(n.stop() for n in nodes.values()))

    members, seq = asyncio.run(main())
    assert members == (2,) and seq == 1
