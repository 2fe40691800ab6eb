"""The message codec: every schema round-trips; bad input is rejected with a reason."""

from __future__ import annotations

import json

import pytest
from spade.message import Message

from fleetbid.protocol import codec
from fleetbid.protocol import messages as m


def raw(kind: str, body: str, performative: str, conversation: str = "a1") -> Message:
    return Message(to="x@localhost", body=body, metadata={
        "performative": performative, "protocol": codec.PROTOCOL, "ontology": codec.ONTOLOGY,
        "conversation": conversation, "type": kind,
    })


def test_round_trip_of_every_schema() -> None:
    samples = [
        m.RideRequest(request_id="a1", source="1", destination="2", requested_at=3.0),
        m.RideAssigned(auction_id="a1", vehicle="v@d", eta_s=5, price=0.1, bidders=3),
        m.OpenAuction(auction_id="a1", passenger="p@d", pickup="1", dropoff="2", cluster=0,
                      requested_at=0, candidates=(m.Candidate("v@d", "3"),)),
        m.Bid(auction_id="a1", bid=0.25, eta_s=12.0),
        m.GroupBest(auction_id="a1"),
        m.GroupCall(auction_id="a1", pickup="1", n=2, deadline=4, vehicles=("v@d", "w@d")),
        m.NotUnderstood(reason="x"),
    ]
    for body in samples:
        assert codec.decode(codec.encode("x@localhost", body, "a1")) == body


@pytest.mark.parametrize(("body", "needle"), [
    ("{not json", "invalid bid body"),
    ('{"auction_id": "a1", "eta_s": 3}', "missing required field"),
    ('{"auction_id": "a1", "bid": -1, "eta_s": 3}', ">= 0"),
    ('{"auction_id": "a1", "bid": NaN, "eta_s": 3}', "invalid bid body"),
    ('{"auction_id": "a1", "bid": 1e999, "eta_s": 3}', "out of range"),
    ('{"auction_id": "a1", "bid": "high", "eta_s": 3}', "Expected `float`"),
    ('{"auction_id": "a1", "bid": 1, "eta_s": 0}', "> 0"),
    ('{"auction_id": "a1", "bid": 1, "eta_s": 3, "extra": 1}', "unknown field"),
    ('[1, 2]', "Expected `object`"),
])
def test_bad_bid_bodies_are_rejected_with_a_reason(body: str, needle: str) -> None:
    with pytest.raises(codec.ProtocolError) as info:
        codec.decode(raw("bid", body, "propose"))
    assert needle in str(info.value)


def test_envelope_errors() -> None:
    good = json.dumps({"auction_id": "a1", "bid": 1, "eta_s": 3})
    with pytest.raises(codec.ProtocolError, match="unknown message type"):
        codec.decode(raw("teleport", good, "propose"))
    with pytest.raises(codec.ProtocolError, match="cannot travel as performative"):
        codec.decode(raw("bid", good, "inform"))
    with pytest.raises(codec.ProtocolError, match="does not match auction_id"):
        codec.decode(raw("bid", good, "propose", conversation="other"))
    msg = raw("bid", good, "propose")
    msg.set_metadata("protocol", "something-else")
    with pytest.raises(codec.ProtocolError, match="unknown protocol"):
        codec.decode(msg)
    with pytest.raises(codec.ProtocolError, match="exceeds"):
        codec.decode(raw("not-understood", json.dumps({"reason": "x" * 1_100_000}),
                         "not-understood"))


def test_in_process_bodies_are_checked_for_nan_too() -> None:
    with pytest.raises(ValueError, match="finite"):
        m.Bid(auction_id="a1", bid=float("nan"), eta_s=3.0)


def test_encode_refuses_a_wrong_performative() -> None:
    with pytest.raises(ValueError, match="cannot travel as"):
        codec.encode("x@d", m.Bid(auction_id="a1", bid=1, eta_s=1), performative="inform")
