"""What a replica host keeps stays bounded however long the fleet runs (issue 15: replica
hosts' memory grew with every ordered message), and the end-of-run checks still work on
what is kept."""

from __future__ import annotations

import msgspec

from fleetbid.replicated.machine import AuctionReplicas, GroupPort
from fleetbid.replicated.ordered import ENCODER, INPUT, Entry
from fleetbid.replication.api import Delivery
from fleetbid.run.replica_setup import check_invariants, disagreeing


def bid(seq: int, conversation: str, vehicle: str) -> Delivery:
    entry = Entry("auction-0@localhost", INPUT, f"{vehicle}|{seq}", 0.0, f"{vehicle}/r",
                  {"type": "bid", "conversation": conversation}, "{}", "")
    return Delivery(seq, 1, seq + 1, ENCODER.encode(entry))


def machine_after(auctions: int) -> AuctionReplicas:
    machine = AuctionReplicas(GroupPort(), 1, lambda kind, payload: None)
    seq = 0
    for a in range(auctions):
        for v in ("vehicle-0@localhost", "vehicle-1@localhost"):
            machine.apply(bid(seq, f"a{a}", v))
            seq += 1
    machine.queue = type(machine.queue)()  # nothing consumes here; the bookkeeping is synchronous
    return machine


def test_ordered_bids_are_kept_for_recent_auctions_only() -> None:
    # Fails on the old code: every (auction, vehicle) of the run was kept, 12,000 here.
    machine = machine_after(6000)
    stats = machine.stats()
    assert len(stats["bid_keys"]) <= 2 * 4096 and stats["bid_keys_evicted"] == 6000 - 4096
    assert len(machine.digests) <= 4096
    # A recruit restored from the snapshot holds the same.
    other = AuctionReplicas(GroupPort(), 2, lambda kind, payload: None)
    other.restore(machine.snapshot())
    assert other.stats()["bid_keys"] == stats["bid_keys"]
    assert msgspec.msgpack.decode(machine.snapshot())["bid_keys"]["evicted"] == 1904


def test_lost_bids_still_found_among_the_auctions_kept() -> None:
    machine = machine_after(6000)
    replica = {**machine.stats(), "member_of_group": True}
    ok = [("a5999", "vehicle-0@localhost"), ("a10", "vehicle-1@localhost")]  # a10: forgotten
    stats = [{"replica": replica}, {"bids_acknowledged": ok}]
    assert check_invariants([], stats)["lost_bids"] == 0
    lost = [("a5999", "vehicle-7@localhost")]  # a kept auction without that vehicle's bid
    assert check_invariants([], [{"replica": replica}, {"bids_acknowledged": lost}])[
        "lost_bids"] == 1


def test_disagreement_found_at_the_latest_position_all_members_hold() -> None:
    # Members far apart: the leader holds digests 5000..9095 only, a lagging member 0..4999
    # plus its recent ones; they are compared where both have one.
    lead = {"seq": 9095, "digests": {str(i): f"d{i}" for i in range(5000, 9096)}}
    lag = {"seq": 6000, "digests": {i: f"d{i}" for i in range(1905, 6001)}}
    assert disagreeing([lead, lag, lag]) == 0
    bad = {"seq": 6000, "digests": {**lag["digests"], 6000: "other"}}
    assert disagreeing([lead, lag, bad]) == 1
