"""The real protocol code on the seeded simulated network (virtual time)."""

from __future__ import annotations

import dataclasses

import msgspec
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from fleetbid.replication.api import Delivery, GroupConfig
from fleetbid.replication.client import ClientCore
from fleetbid.replication.schedules import check_liveness
from fleetbid.replication.simgroup import SIM_KEY, SimGroup
from fleetbid.replication.simnet import Faults
from fleetbid.replication.wire import Codec, Kind

FAULTY = Faults(loss=0.1, dup=0.1, reorder=0.3, delay_s=0.0005, max_extra_delay_s=0.005)


def test_same_sequence_under_loss_duplication_reordering_delay() -> None:
    g = SimGroup(7, [1, 2, 3], faults=FAULTY)
    for i in range(300):
        g.submit(1 + i % 3, b"m%d" % i)
        g.run(0.0005)
    assert g.run_until(g.stable, timeout=10.0)
    logs = [g.machines[m].log for m in (1, 2, 3)]
    assert logs[0] == logs[1] == logs[2]
    assert len(logs[0]) == 300
    assert [d.seq for d in g.delivered_here[1]] == sorted(d.seq for d in g.delivered_here[1])
    assert sum(g.replicas[m].counters["retransmits"] for m in (1, 2, 3)) > 0  # faults were hit


# The 1,000 seeded schedules (now with stalls and heavy loss) are in test_replication_stalls.py.


def _view_times(g: SimGroup) -> dict[int, list[tuple[float, int, int]]]:
    times: dict[int, list[tuple[float, int, int]]] = {m: [] for m in g.replicas}
    for m, r in g.replicas.items():
        r.view_listeners.append(
            lambda v, m=m: times[m].append((g.clock.now(), v.view_id, v.leader)))
    return times


def test_leader_crash_new_leader_within_a_second() -> None:
    g = SimGroup(3, [1, 2, 3], faults=FAULTY)
    times = _view_times(g)
    for i in range(50):
        g.submit(1 + i % 3, b"x%d" % i)
    g.run(0.2)
    t_crash = g.clock.now()
    g.crash(3)
    for i in range(20):
        g.submit(1 + i % 2, b"y%d" % i)
    assert g.run_until(g.stable, timeout=5.0)
    for m in (1, 2):
        t, vid, leader = times[m][-1]
        assert leader == 2 and vid == 2
        assert t - t_crash < 1.0
    g.check()
    check_liveness(g)
    assert len(g.machines[1].log) == 70


def test_follower_crash_recruits_standby_with_state() -> None:
    g = SimGroup(4, [1, 2, 3], standbys=[10, 11], faults=FAULTY)
    for i in range(100):
        g.submit(1 + i % 3, b"a%d" % i)
    g.run(0.3)
    g.crash(1)
    for i in range(30):
        g.submit(2 + i % 2, b"b%d" % i)
    assert g.run_until(lambda: g.stable() and len(g.members_alive()) == 3, timeout=5.0)
    recruit = next(m for m in (10, 11) if g.replicas[m].status == "member")
    assert g.machines[recruit].restored_from is not None
    assert g.machines[recruit].log == g.machines[2].log == g.machines[3].log
    assert len(g.machines[2].log) == 130
    assert g.replicas[recruit].view is not None and recruit in g.replicas[recruit].view.members
    for i in range(10):  # the recruit takes part in ordering afterwards
        g.submit(recruit, b"c%d" % i)
    assert g.run_until(g.stable, timeout=5.0)
    assert g.machines[recruit].log == g.machines[2].log


def test_open_group_client_retries_are_applied_once() -> None:
    g = SimGroup(5, [1, 2, 3], faults=FAULTY)
    node = g.net.node(500)
    cfg = dataclasses.replace(g.config, client_timeout_s=0.001)  # forces retries elsewhere
    client = ClientCore(cfg, 500, node, node.clock, 1)
    g.run(0.2)
    assert client.members == (1, 2, 3)
    results: list[Delivery] = []
    for i in range(20):
        client.submit(b"req%d" % i, results.append)
    assert g.run_until(lambda: len(results) == 20 and g.stable(), timeout=10.0)
    assert client.counters["client_retries"] > 0
    payloads = [p for _, _, _, p in g.machines[1].log]
    assert sorted(payloads) == sorted(b"req%d" % i for i in range(20))  # each exactly once
    for d in results:
        assert g.machines[2].log[d.seq][3] == d.payload


def test_authenticated_nonsense_changes_nothing() -> None:
    g = SimGroup(6, [1, 2, 3])
    g.run(0.1)
    r = g.replicas[1]
    enc = Codec(g.config.group_id, SIM_KEY)
    bad = [enc.encode(Kind.MSG, 1, 2, 1, 10**9 + i, body) for i, body in enumerate(
        (b"\xff\xfe", msgspec.msgpack.encode([1]), msgspec.msgpack.encode("x")))]
    bad.append(enc.encode(Kind.AGREED, 1, 2, 1, 10**9 + 9, msgspec.msgpack.encode([1, -5, 0])))
    before = (len(r.hold), r.max_seq, len(g.machines[1].log))
    for b in bad:
        r.ep.on_datagram(b, 2)
    assert (len(r.hold), r.max_seq, len(g.machines[1].log)) == before
    assert r.counters["dropped_bad_body"] == 3


class GroupMachine(RuleBasedStateMachine):
    """Random submissions, crashes, network faults and time; checks after every step."""

    def __init__(self) -> None:
        super().__init__()
        self.g: SimGroup | None = None

    @initialize(seed=st.integers(0, 2**16), n=st.integers(1, 5))
    def build(self, seed: int, n: int) -> None:
        self.g = SimGroup(seed, range(1, n + 1), standbys=[20], faults=Faults())

    @rule(who=st.integers(0, 10), size=st.integers(0, 50))
    @precondition(lambda self: self.g is not None)
    def submit(self, who: int, size: int) -> None:
        live = self.g.members_alive()
        if live:
            self.g.submit(live[who % len(live)], bytes(size))

    @rule(who=st.integers(0, 10))
    @precondition(lambda self: self.g is not None and len(self.g.members_alive()) > 1
                  and len(self.g.crashed) < 2)
    def crash(self, who: int) -> None:
        live = self.g.members_alive()
        victim = live[who % len(live)]
        if self.g.majority_survives(victim):
            self.g.crash(victim)

    @rule(loss=st.sampled_from([0.0, 0.1, 0.3]), dup=st.sampled_from([0.0, 0.2]),
          reorder=st.sampled_from([0.0, 0.5]))
    @precondition(lambda self: self.g is not None)
    def faults(self, loss: float, dup: float, reorder: float) -> None:
        f = self.g.net.faults
        f.loss, f.dup, f.reorder = loss, dup, reorder

    @rule(dt=st.sampled_from([0.0005, 0.005, 0.05, 0.3]))
    @precondition(lambda self: self.g is not None)
    def advance(self, dt: float) -> None:
        self.g.run(dt)

    @invariant()
    def same_order_no_duplicates(self) -> None:
        if self.g is not None:
            self.g.check()

    def teardown(self) -> None:
        if self.g is None:
            return
        f = self.g.net.faults
        f.loss, f.dup, f.reorder = 0.0, 0.0, 0.0
        assert self.g.run_until(self.g.stable, timeout=10.0, step=0.05)
        self.g.check()
        check_liveness(self.g)


TestGroupMachine = GroupMachine.TestCase
TestGroupMachine.settings = settings(max_examples=60, stateful_step_count=40, deadline=None,
                                     suppress_health_check=[HealthCheck.too_slow])


def test_config_rejects_bad_values() -> None:
    import pytest

    with pytest.raises(ValueError):
        GroupConfig("g", b"short")
    with pytest.raises(ValueError):
        GroupConfig("g", SIM_KEY, heartbeat_s=0.5, failure_timeout_s=0.3)


def test_cut_off_member_forms_no_view_and_is_recruited_back() -> None:
    g = SimGroup(8, [1, 2, 3], faults=Faults(loss=0.05, reorder=0.2))
    for i in range(30):
        g.submit(1 + i % 3, b"a%d" % i)
    g.run(0.2)
    links = {(a, b) for a in (1, 2, 3) for b in (1, 2, 3) if a != b and 1 in (a, b)}
    g.net.blocked |= links
    for i in range(10):
        g.submit(2 + i % 2, b"b%d" % i)
    g.run(1.0)
    # The minority (1 alone) has no quorum: it installed nothing; the majority moved on.
    assert g.replicas[1].installed_vid == 1 and g.replicas[1].counters["no_quorum"] > 0
    assert g.replicas[2].members == (2, 3)
    g.net.blocked -= links
    assert g.run_until(lambda: g.stable() and g.replicas[2].members == (1, 2, 3), timeout=5.0)
    assert g.replicas[1].counters["expelled"] == 1
    assert g.machines[1].restored_from is not None
    assert g.machines[1].log == g.machines[2].log == g.machines[3].log
    assert len(g.machines[2].log) == 40
