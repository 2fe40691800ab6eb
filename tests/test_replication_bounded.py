"""A replica's memory does not grow with the number of ordered messages (issue 15).

Thousands of messages on the seeded simulated network with loss and reordering: every
per-message structure of the protocol (delivered log, hold-back queue, stability and
retransmission bookkeeping, replay filters, reassembly, client tables) stays under a bound
that does not depend on the message count, while every replica's state, a rolling hash of
the whole history (DigestMachine), stays identical. A standby recruited after that catches
up from a snapshot plus the kept log suffix and agrees.
"""

from __future__ import annotations

from fleetbid.replication import GroupConfig
from fleetbid.replication.logmachine import DigestMachine
from fleetbid.replication.replica import Replica
from fleetbid.replication.simgroup import SIM_KEY, SimGroup
from fleetbid.replication.simnet import Faults
from fleetbid.replication.viewchange import LOG_LEN

WINDOW = 8192  # replay filter: ids remembered per sender (the default; 8 x it at most)


def sizes(r: Replica) -> dict[str, int]:
    ep = r.ep
    return {
        "log": len(r.log), "delivered_keys": len(r.delivered_keys), "hold": len(r.hold),
        "oks": len(r.oks), "out": len(r.out), "callbacks": len(r.callbacks),
        "queued": len(r.queued_msgs) + len(r.queued_agreed) + len(r.queued_submits),
        "client_waiters": len(r.client_waiters), "unacked": ep.unacked,
        "replay_ids": max((len(st[2]) for st in ep.guard._peers.values()), default=0),
        "partial": len(ep.reasm), "heap": len(r.hold._heap),
    }


def bounded(r: Replica) -> list[str]:
    limits = {"log": LOG_LEN, "delivered_keys": LOG_LEN, "replay_ids": 8 * r.ep.guard.window,
              "partial": 64}
    return [f"replica {r.id}: {k}={v}" for k, v in sizes(r).items()
            if v > limits.get(k, 200)]


def group(window: int = WINDOW) -> SimGroup:
    config = GroupConfig("sim", SIM_KEY, startup_grace_s=1.0, dedup_window=window)
    return SimGroup(7, (1, 2, 3), standbys=(10,), config=config,
                    faults=Faults(loss=0.05, dup=0.05, reorder=0.2), machine=DigestMachine)


def pump(g: SimGroup, n: int) -> list[str]:
    """Submits n messages from every member in turn; returns any bound exceeded."""
    over: list[str] = []
    for i in range(n):
        m = g.members_alive()[i % len(g.members_alive())]
        g.submit(m, i.to_bytes(4, "big") * 8)
        g.run(0.002)
        if i % 500 == 0:
            over += [x for m in g.members_alive() for x in bounded(g.replicas[m])]
    assert g.run_until(g.stable, timeout=10.0)
    return over


def states(g: SimGroup) -> set[tuple[int, bytes]]:
    return {(g.machines[m].count, g.machines[m].digest) for m in g.members_alive()}


def test_many_messages_bounded_structures_identical_state() -> None:
    g = group()
    assert g.run_until(g.stable, timeout=5.0)
    assert pump(g, 6000) == []
    assert [x for m in g.members_alive() for x in bounded(g.replicas[m])] == []
    (count, _), = states(g)  # one state, shared by every member
    assert count == 6000


def test_recruit_after_thousands_of_messages_catches_up_from_the_snapshot() -> None:
    g = group()
    assert g.run_until(g.stable, timeout=5.0)
    assert pump(g, 3000) == []
    g.crash(3)
    assert g.run_until(lambda: g.stable() and 10 in g.members_alive(), timeout=10.0)
    assert g.replicas[10].counters["state_transfers"] == 1
    assert len(g.replicas[10].log) <= LOG_LEN  # the suffix sent with the snapshot
    assert pump(g, 1500) == []
    (count, _), = states(g)
    assert count == 4500


def test_a_small_replay_window_never_drops_a_retransmission_as_a_replay() -> None:
    # With 256 ids per sender, heartbeats, acks and proposals pushed the replay floor past a
    # lost message's id before it was retransmitted: dropped as a replay, never acked, and
    # the group waited for its proposal for ever (fails on the old code: stuck at 5,503 of
    # 6,000 with 497 messages held back). Ids are now forgotten only once their sender can
    # no longer retransmit them (max_attempts x rto_max_s), at most 8 x window of them.
    g = group(window=256)
    assert g.run_until(g.stable, timeout=5.0)
    assert pump(g, 6000) == []
    (count, _), = states(g)
    assert count == 6000
    assert all(g.replicas[m].counters["dropped_replay"] == 0 for m in g.members_alive())


def test_open_group_request_table_bounded_in_all(monkeypatch) -> None:
    import fleetbid.replication.replica as replica_module

    monkeypatch.setattr(replica_module, "CLIENT_REQS_TOTAL", 100)
    r = group().replicas[1]
    for client in range(50):
        for req in range(10):
            r._client_record(900 + client, req, (client, req, 0))
    assert r.client_reqs == sum(len(t) for t in r.clients.values()) == 100
    assert r._client_seen(949, 9) == (49, 9, 0) and r._client_seen(900, 0) is None
