"""The replication library on real UDP: loopback multicast, fault injection, OS processes."""

from __future__ import annotations

import asyncio
import time

import pytest

from fleetbid.replication.api import GroupConfig
from fleetbid.replication.client import GroupClient
from fleetbid.replication.logmachine import LogMachine
from fleetbid.replication.node import FaultSpec, ReplicaNode
from fleetbid.replication.procs import Cluster, free_udp_port

KEY = b"udp-test-key-0123456789abcdef!!"


def _config(name: str) -> GroupConfig:
    return GroupConfig(name, KEY, port=free_udp_port(), discovery_port=free_udp_port())


def test_udp_faults_same_sequence_and_open_group_client() -> None:
    async def main() -> None:
        cfg = _config("udp-faults")
        machines = {m: LogMachine() for m in (1, 2, 3)}
        nodes = [ReplicaNode(cfg, m, machines[m], initial_members=(1, 2, 3),
                             faults=FaultSpec(seed=m, loss=0.1, dup=0.1, reorder=0.3,
                                              delay_s=0.0002, max_extra_delay_s=0.003))
                 for m in (1, 2, 3)]
        await asyncio.gather(*(n.start() for n in nodes))
        client = GroupClient(cfg, 900)
        try:
            assert all(n.view is not None and n.view.members == (1, 2, 3) for n in nodes)
            assert [n.is_leader for n in nodes] == [False, False, True]
            await client.start()
            futs = [nodes[i % 3].submit(b"p%d" % i) for i in range(150)]
            done = await asyncio.wait_for(asyncio.gather(*futs), 30)
            cres = await asyncio.wait_for(client.submit(b"from-client"), 10)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and len({len(m.log) for m in machines.values()}
                                                      | {151}) > 1:
                await asyncio.sleep(0.05)
            logs = [m.log for m in machines.values()]
            assert logs[0] == logs[1] == logs[2] and len(logs[0]) == 151
            assert logs[0][cres.seq][3] == b"from-client"
            assert sorted(d.seq for d in done) == sorted({d.seq for d in done})
            c = nodes[0].counters
            assert c["retransmits"] > 0 and c["dropped_duplicate"] > 0
        finally:
            await client.stop()
            await asyncio.gather(*(n.stop() for n in nodes))
    asyncio.run(main())


def test_udp_node_rejects_bad_config() -> None:
    with pytest.raises(ValueError):
        ReplicaNode(GroupConfig("x", KEY), 1, LogMachine(), initial_members=(1,))  # no port
    with pytest.raises(ValueError):
        ReplicaNode(_config("x"), 4, LogMachine(), initial_members=(1, 2))


def _agree(reports: list) -> None:
    logs = [r.log for r in reports]
    short = min(len(lg) for lg in logs)
    assert short > 0
    for lg in logs:
        assert lg[:short] == logs[0][:short]


@pytest.mark.e2e
def test_processes_sigkill_leader_then_follower_leads_within_a_second() -> None:
    c = Cluster(_config("proc-leader"), (1, 2, 3))
    try:
        c.submit(1, 100, window=8)
        c.submit(3, 100, window=8)
        assert c.wait_event("submitted", 1, 30) and c.wait_event("submitted", 3, 30)
        c.submit(2, 200, window=4)  # in flight while the leader dies
        t_kill = c.kill(3)

        def without_leader() -> list[tuple]:
            return [ev for ev in c.view_events if ev[1] in (1, 2) and 3 not in ev[3]]
        assert c.wait_for(lambda: len(without_leader()) > 0, 5)
        first = min(without_leader(), key=lambda ev: ev[5])
        assert first[4] == 2  # the bully rule: the highest survivor leads
        assert first[5] - t_kill < 1.0
        done = c.wait_event("submitted", 2, 30)
        assert done is not None and done[3] == 0
        reps = [c.report(1), c.report(2)]
        _agree(reps)
        assert len(reps[0].log) == len(reps[1].log) >= 400
        delivered = {(s, m) for _, s, m, _ in reps[0].log}
        assert all(k in delivered for k in reps[1].submitted_at)  # every message of 2 is in
    finally:
        c.close()


@pytest.mark.e2e
def test_processes_kill_follower_standby_is_recruited_with_state() -> None:
    c = Cluster(_config("proc-follower"), (1, 2, 3), standbys=(7,))
    try:
        c.submit(3, 300, window=16)
        assert c.wait_event("submitted", 3, 30)
        c.kill(1)
        assert c.wait_for(lambda: any(ev[1] == 7 for ev in c.view_events), 10)
        c.submit(3, 50, window=4)
        assert c.wait_event("submitted", 3, 30)
        time.sleep(0.3)
        r7, r2, r3 = c.report(7), c.report(2), c.report(3)
        assert r7.restored_from is not None and r7.restored_from >= 300
        assert r7.log == r2.log == r3.log and len(r7.log) == 350
        assert r7.views[-1][1] == (2, 3, 7)
    finally:
        c.close()


def test_single_replica_group_and_submit_errors() -> None:
    async def main() -> None:
        m = LogMachine()
        node = ReplicaNode(_config("solo"), 5, m, initial_members=(5,))
        with pytest.raises(RuntimeError):
            node.submit(b"too early")
        await node.start()
        try:
            assert node.is_leader and node.view is not None and node.view.members == (5,)
            d = await asyncio.wait_for(node.submit(b"one"), 5)
            assert (d.seq, d.sender, d.payload) == (0, 5, b"one")
            with pytest.raises(TypeError):
                node.submit("not bytes")  # type: ignore[arg-type]
            assert m.log == [(0, 5, d.msg_id, b"one")]
        finally:
            await node.stop()
    asyncio.run(main())
