"""Wire format, authentication, replay protection, fragmentation."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fleetbid.replication.api import GroupConfig
from fleetbid.replication.fragments import Reassembler, split
from fleetbid.replication.reliable import Endpoint
from fleetbid.replication.simnet import SimNetwork
from fleetbid.replication.wire import HEADER_LEN, Codec, Kind, ReplayGuard, WireError

KEY = b"k" * 32


def test_round_trip() -> None:
    c = Codec("g1", KEY)
    data = c.encode(Kind.MSG, 1, 7, 99, 12345, b"hello", 2, 5)
    f = c.decode(data)
    assert (f.kind, f.flags, f.sender, f.incarnation, f.msg_id, f.body) == (
        Kind.MSG, 1, 7, 99, 12345, b"hello")
    assert (f.frag_index, f.frag_count) == (2, 5)


@given(kind=st.sampled_from(list(Kind)), sender=st.integers(0, 2**32 - 1),
       inc=st.integers(0, 2**64 - 1), mid=st.integers(0, 2**64 - 1),
       body=st.binary(max_size=2000), group=st.text(min_size=1, max_size=20))
def test_round_trip_property(kind: Kind, sender: int, inc: int, mid: int, body: bytes,
                             group: str) -> None:
    c = Codec(group, KEY)
    f = c.decode(c.encode(kind, 0, sender, inc, mid, body))
    assert (f.kind, f.sender, f.incarnation, f.msg_id, f.body) == (kind, sender, inc, mid, body)


@given(data=st.binary(max_size=300))
def test_garbage_never_decodes(data: bytes) -> None:
    c = Codec("g1", KEY)
    with pytest.raises(WireError):
        c.decode(data)


def test_forged_truncated_garbled_other_group_are_counted() -> None:
    good = Codec("g1", KEY)
    forged = Codec("g1", b"x" * 32).encode(Kind.MSG, 1, 2, 1, 1, b"evil")
    other = Codec("g2", KEY).encode(Kind.MSG, 1, 2, 1, 1, b"x")
    valid = good.encode(Kind.MSG, 1, 2, 1, 1, b"payload")
    garbled = bytearray(valid)
    garbled[HEADER_LEN + 3] ^= 0x40
    for bad, reason in ((forged, "bad_mac"), (valid[:-1], "bad_mac"), (valid[:20], "truncated"),
                        (bytes(garbled), "bad_mac"), (other, "other_group"),
                        (b"XYZ" + valid[3:], "bad_magic")):
        with pytest.raises(WireError) as exc:
            good.decode(bad)
        assert exc.value.reason == reason
    assert good.drops == Counter(bad_mac=3, other_group=1, truncated=1, bad_magic=1)


def test_replay_guard_duplicates_replays_incarnations() -> None:
    g = ReplayGuard(window=4)
    assert [g.check(1, 5, i) for i in range(1, 9)] == [None] * 8
    assert g.check(1, 5, 8) == "duplicate"
    assert g.check(1, 5, 2) == "replay"  # older than every remembered id
    assert g.check(1, 4, 100) == "stale_incarnation"
    assert g.check(1, 6, 1) is None  # a restarted sender starts over
    assert g.check(1, 6, 1) == "duplicate"


def test_replay_guard_remembers_ids_while_they_may_be_retransmitted() -> None:
    g = ReplayGuard(window=4, horizon_s=20.0, cap=8)
    assert [g.check(1, 5, i, now=0.0) for i in (2, 3, 4, 5, 6)] == [None] * 5
    assert g.check(1, 5, 1, now=1.0) is None  # lost at first, retransmitted: still new
    assert g.check(1, 5, 1, now=1.5) == "duplicate"
    assert g.check(1, 5, 7, now=30.0) is None  # the old ones are past the horizon now
    assert g.check(1, 5, 2, now=30.0) == "replay"
    assert [g.check(1, 6, i, now=0.0) for i in range(1, 11)] == [None] * 10
    assert g.check(1, 6, 1, now=0.0) == "replay" and g.forced == 2  # the cap bounds it


def _endpoints(cfg: GroupConfig) -> tuple[SimNetwork, Endpoint, Endpoint, list]:
    net = SimNetwork(1)
    got: list = []
    a_node, b_node = net.node(1), net.node(2)
    a = Endpoint(cfg, 1, a_node, a_node.clock, 1, lambda *x: None, Counter())
    b = Endpoint(cfg, 2, b_node, b_node.clock, 1, lambda s, k, body: got.append(body),
                 Counter())
    a.addresses[2] = 2
    b.addresses[1] = 1
    return net, a, b, got


def test_endpoint_drops_replayed_and_forged_datagrams() -> None:
    cfg = GroupConfig("g", KEY, dedup_window=16)
    net, a, b, got = _endpoints(cfg)
    sent: list[bytes] = []
    inner = a.transport.send
    a.transport.send = lambda addr, data: (sent.append(data), inner(addr, data))  # type: ignore
    a.send((2,), Kind.MSG, b"one")
    net.clock.advance(0.1)
    assert got == [b"one"]
    for _ in range(3):  # replay the captured datagram verbatim
        b.on_datagram(sent[0], 1)
    for i in range(40):  # push it out of the dedup window
        a.send((2,), Kind.MSG, b"%d" % i)
    net.clock.advance(0.5)
    b.on_datagram(sent[0], 1)  # still within its sender's retransmission time: remembered
    assert b.counters["dropped_replay"] == 0 and got.count(b"one") == 1
    net.clock.advance(cfg.max_attempts * cfg.rto_max_s)  # a can no longer retransmit it
    a.send((2,), Kind.MSG, b"late")
    net.clock.advance(0.1)
    b.on_datagram(sent[0], 1)
    forged = Codec("g", b"z" * 32).encode(Kind.MSG, 1, 1, 1, 10**6, b"forged")
    b.on_datagram(forged, 1)
    assert got.count(b"one") == 1 and b"forged" not in got
    assert b.counters["dropped_duplicate"] >= 3
    assert b.counters["dropped_replay"] == 1
    assert b.counters["dropped_bad_mac"] == 1
    assert a.unacked == 0


def test_fragmentation_round_trip_large_snapshot_under_loss() -> None:
    cfg = GroupConfig("g", KEY)
    net, a, b, got = _endpoints(cfg)
    net.faults.loss = 0.1
    net.faults.reorder = 0.5
    big = bytes(range(256)) * 1000  # 256 KB > 64 KiB
    a.send((2,), Kind.STATE, big)
    net.clock.advance(10.0)
    assert got == [big]
    assert a.unacked == 0


def test_split_and_bounded_reassembly() -> None:
    parts = split(b"abcdefghij", 3)
    assert parts == [b"abc", b"def", b"ghi", b"j"]
    r = Reassembler(max_message=100, max_partial=2)
    assert r.add((1, 1, 1), 0, 2, b"a", 3) is None
    assert r.add((1, 1, 2), 0, 2, b"b", 3) is None
    assert r.add((1, 1, 3), 0, 2, b"c", 3) is None  # evicts the oldest partial message
    assert len(r) == 2 and r.evicted == 1
    assert r.add((1, 1, 3), 1, 2, b"d", 3) == b"cd"
    with pytest.raises(ValueError):
        r.add((1, 1, 9), 0, 1000, b"x", 3)  # would exceed max_message


@given(body=st.binary(max_size=5000), size=st.integers(1, 700))
def test_split_join_property(body: bytes, size: int) -> None:
    parts = split(body, size)
    assert all(len(p) <= size for p in parts)
    r = Reassembler(max_message=10**6)
    out = None
    for i in reversed(range(len(parts))):
        out = r.add((0, 0, 0), i, len(parts), parts[i], size)
    assert out == body
