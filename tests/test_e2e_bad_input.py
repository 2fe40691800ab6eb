"""End-to-end bad input: a prober in the test process sends malformed or unauthorised messages
to the MainManager, an AuctionManager, a proxy and a vehicle over the real XMPP server.

Every probe must get exactly one `not-understood` (undecodable, unexpected) or `refuse`
(well-formed but rejected: first by the receiver's law when the prober's role, a client's,
may not send that kind at all) with a reason naming the problem, and must change nothing: no
auction opens, no vehicle moves, no other message is sent, and a normal ride afterwards is
served by the vehicle the map says should win (the one a forged award was sent to).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from string import Template
from typing import Any

import pytest

from fleetbid.platform.eventloop import run
from fleetbid.protocol import codec
from fleetbid.protocol import messages as m
from fleetbid.run.launcher import Fleet

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

NU, REFUSED = m.NotUnderstood.TYPE, m.Refused.TYPE


@dataclass(frozen=True)
class Probe:
    id: str
    target: str  # mm | am | proxy | vehicle
    kind: str | None  # metadata `type` (None: absent)
    performative: str
    body: str  # a string.Template: $node, $vehicle, $prober, $conv
    expect: str  # reply type
    reasons: tuple[str, ...]  # substrings the reply's reason must contain
    protocol: str = codec.PROTOCOL

    @property
    def conversation(self) -> str:
        return f"junk-{self.id}"


def _json(**fields: Any) -> str:
    return json.dumps(fields)


def _law(kind: str) -> tuple[str, ...]:
    """The receiver's law refuses a kind the prober's role (a client: passenger) may not
    send, before any handler sees it (laws/senders.py)."""
    return ("$prober", f"the law does not let a passenger send {kind}")


RIDE = _json(request_id="$conv", source="$node", destination="$node", requested_at=0.0)
BID = _json(auction_id="$conv", bid=0.01, eta_s=10.0)
AWARD = _json(auction_id="$conv", vehicle="$vehicle", passenger="$prober", pickup="$node",
              dropoff="$node", price=0.01)

PROBES = [
    # -- undecodable or unexpected: not-understood --------------------------------------------
    Probe("bad-json", "mm", "ride-request", "request", "{'request_id': 'x'}",
          NU, ("invalid ride-request body", "malformed")),
    Probe("truncated-json", "mm", "ride-request", "request", '{"request_id": "x", "source": ',
          NU, ("invalid ride-request body", "truncated")),
    Probe("empty-body", "mm", "ride-request", "request", "", NU,
          ("invalid ride-request body",)),
    Probe("missing-field", "mm", "ride-request", "request",
          _json(request_id="$conv", source="$node", requested_at=0.0), NU,
          ("missing required field `destination`",)),
    Probe("unknown-field", "mm", "vehicle-available", "subscribe",
          _json(node="$node", speed=3), NU, ("unknown field `speed`",)),
    Probe("negative-bid", "am", "bid", "propose", _json(auction_id="$conv", bid=-0.5, eta_s=10.0),
          NU, ("invalid bid body", ">= 0", "$.bid")),
    Probe("nan-bid", "am", "bid", "propose", '{"auction_id": "$conv", "bid": NaN, "eta_s": 10}',
          NU, ("invalid bid body", "malformed")),
    Probe("nan-string-bid", "proxy", "bid", "propose",
          '{"auction_id": "$conv", "bid": "NaN", "eta_s": 10}', NU,
          ("invalid bid body", "Expected `float`, got `str`", "$.bid")),
    Probe("infinite-eta", "am", "bid", "propose", '{"auction_id": "$conv", "bid": 0.1, '
          '"eta_s": 1e999}', NU, ("invalid bid body", "$.eta_s")),
    Probe("zero-eta", "am", "bid", "propose", _json(auction_id="$conv", bid=0.1, eta_s=0.0),
          NU, ("invalid bid body", "$.eta_s")),
    Probe("unknown-type", "mm", "teleport", "request", "{}", NU,
          ("unknown message type 'teleport'",)),
    Probe("no-type", "am", None, "request", "{}", NU, ("unknown message type ''",)),
    Probe("wrong-protocol", "mm", "ride-request", "request", RIDE, NU,
          ("unknown protocol 'fipa-contract-net'",), protocol="fipa-contract-net"),
    Probe("wrong-performative", "mm", "ride-request", "inform", RIDE, NU,
          ("ride-request cannot travel as performative 'inform'",)),
    Probe("conversation-mismatch", "am", "bid", "propose",
          _json(auction_id="other-auction", bid=0.01, eta_s=10.0), NU,
          ("does not match auction_id 'other-auction'",)),
    Probe("bid-to-main-manager", "mm", "bid", "propose", BID, REFUSED, _law("bid")),
    Probe("ride-to-proxy", "proxy", "ride-request", "request", RIDE, NU,
          ("does not expect ride-request",)),
    # -- well-formed but rejected: refuse ----------------------------------------------------
    Probe("bid-unknown-auction", "am", "bid", "propose", BID, REFUSED, _law("bid")),
    Probe("bid-unknown-auction-proxy", "proxy", "bid", "propose", BID, REFUSED, _law("bid")),
    Probe("award-to-vehicle-from-non-proxy", "vehicle", "award", "accept-proposal", AWARD,
          REFUSED, _law("award")),
    Probe("lost-to-vehicle", "vehicle", "lost", "reject-proposal", _json(auction_id="$conv"),
          NU, ("unknown message type 'lost'",)),
    Probe("award-to-proxy-from-stranger", "proxy", "award", "accept-proposal", AWARD, REFUSED,
          _law("award")),
    Probe("group-call-from-stranger", "proxy", "group-call", "cfp",
          _json(auction_id="$conv", pickup="$node", n=1, deadline=1e6, vehicles=["$vehicle"]),
          REFUSED, _law("group-call")),
    Probe("open-auction-from-stranger", "am", "open-auction", "request",
          _json(auction_id="$conv", passenger="$prober", pickup="$node", dropoff="$node",
                cluster=0, requested_at=0.0), REFUSED, _law("open-auction")),
    Probe("participation-from-stranger", "am", "participation", "propagate",
          _json(auction_id="$conv", candidates=[{"vehicle": "$vehicle", "node": "$node"}]),
          REFUSED, _law("participation")),
    Probe("award-confirmed-unknown-auction", "am", "award-confirmed", "inform",
          _json(auction_id="$conv", vehicle="$vehicle", eta_s=5.0), REFUSED,
          _law("award-confirmed")),
    Probe("fake-vehicle", "mm", "vehicle-available", "subscribe", _json(node="$node"), REFUSED,
          _law("vehicle-available")),
    Probe("off-map-ride", "mm", "ride-request", "request",
          _json(request_id="$conv", source="nowhere", destination="$node", requested_at=0.0),
          REFUSED, ("source node nowhere is not on the map",)),
    Probe("closed-unknown-auction", "mm", "auction-closed", "inform",
          _json(auction_id="$conv"), REFUSED, _law("auction-closed")),
    Probe("phase-unknown-auction", "mm", "auction-phase", "inform",
          _json(auction_id="$conv", phase="waiting"), REFUSED, _law("auction-phase")),
]


def _choose_ride(geo: Any, vehicles: dict[str, str]) -> tuple[str, str, str, float]:
    """A pickup that some vehicle is admitted for and needs a little driving to reach."""
    for pickup in sorted(geo.roadmap.nodes):
        best = geo.expected_winner(vehicles, pickup)
        if best is not None and best[1] >= 30.0:
            dropoff = next(n for n in sorted(geo.roadmap.nodes, reverse=True) if n != pickup)
            return pickup, dropoff, best[0], best[1]
    raise AssertionError("no pickup with an admitted vehicle")


async def _hijack(prober: Any, vehicle: str, pickup: str) -> dict[str, Any]:
    """Call `vehicle` for bids from the prober (not a proxy, not an auction manager); if it
    bids, award it the ride."""
    conv = "junk-hijack"
    await prober.send_body(vehicle, m.CallForBids(auction_id=conv, pickup=pickup, n=2,
                                                  deadline=1e9))
    call_reply = await prober.next_reply(conv)
    award_reply = None
    if call_reply.type == m.Bid.TYPE:
        await prober.send_body(vehicle, m.Award(
            auction_id=conv, vehicle=vehicle, passenger=str(prober.jid.bare), pickup=pickup,
            dropoff=pickup, price=0.0))
        award_reply = await prober.next_reply(conv)
    return {"call": call_reply, "award": award_reply}


@pytest.fixture(scope="module")
def junk(kit: Any) -> dict[str, Any]:
    config = kit.small_config(vehicles=6, processes=1, proxies="auto")

    async def scenario() -> dict[str, Any]:
        async with Fleet(config) as fleet:
            directory = fleet.plan.directory
            vehicles = kit.vehicle_jids(fleet)
            geo = kit.Geography.of(fleet.roadmap, config)
            pickup, dropoff, winner, travel_s = _choose_ride(geo, vehicles)
            targets = {"mm": directory.main_manager, "am": directory.auction_managers[0],
                       "proxy": directory.proxies[0], "vehicle": winner}
            await kit.wait_for_announcements(fleet)
            prober = await kit.start_prober("prober", fleet.endpoint)
            try:
                before = await fleet.stats()
                replies = {}
                for probe in PROBES:
                    body = Template(probe.body).substitute(
                        node=pickup, vehicle=winner, prober=str(prober.jid.bare),
                        conv=probe.conversation)
                    await prober.send_raw(
                        targets[probe.target], kind=probe.kind, body=body,
                        performative=probe.performative, conversation=probe.conversation,
                        protocol=probe.protocol)
                    replies[probe.id] = await prober.next_reply(probe.conversation)
                extra = await prober.drain()
                after = await fleet.stats()
                outcome = await fleet.ride("legit-1", pickup, dropoff)
                final = await fleet.stats()
                # Known bugs, probed last so that they cannot disturb the checks above.
                instant, stranger = [v for v in sorted(vehicles) if v != winner][:2]
                here = vehicles[instant]
                instants = [await fleet.ride(f"instant-{i}", here, here) for i in (1, 2)]
                hijack = await _hijack(prober, stranger, pickup)
            finally:
                await prober.stop()
        return {"replies": replies, "extra": extra, "before": before, "after": after,
                "final": final, "outcome": outcome, "winner": winner, "travel_s": travel_s,
                "targets": targets, "prober": str(prober.jid.bare), "instants": instants,
                "instant_vehicle": instant, "hijack": hijack}

    return run(scenario())


@pytest.mark.parametrize("probe", PROBES, ids=[p.id for p in PROBES])
def test_bad_input_gets_not_understood_or_refuse_with_a_reason(
    junk: dict[str, Any], probe: Probe
) -> None:
    reply = junk["replies"][probe.id]
    assert reply.type == probe.expect, reply
    assert reply.performative == ("not-understood" if probe.expect == NU else "refuse")
    assert reply.sender == junk["targets"][probe.target]
    assert reply.conversation == probe.conversation
    for text in probe.reasons:
        text = text.replace("$prober", junk["prober"])
        assert text in reply.reason, (text, reply.reason)
    assert reply.body["in_reply_to"] == (probe.kind or "")


def test_each_probe_got_exactly_one_reply(junk: dict[str, Any]) -> None:
    assert junk["extra"] == []
    assert len(junk["replies"]) == len(PROBES)


def test_bad_input_changes_nothing(kit: Any, junk: dict[str, Any]) -> None:
    before, after = junk["before"], junk["after"]
    # No auction opened, no trip, nobody drove.
    for key in ("auctions", "trips", "empty_m", "loaded_m"):
        assert kit.total(after, key) == kit.total(before, key) == 0, key
    # The only traffic the junk caused is one error reply per probe ...
    delta = {k: v - kit.total_by_type(before).get(k, 0)
             for k, v in kit.total_by_type(after).items()}
    delta = {k: v for k, v in delta.items() if v}
    expected = {kind: sum(p.expect == kind for p in PROBES) for kind in (NU, REFUSED)}
    assert delta == expected
    assert kit.total(after, "sent") - kit.total(before, "sent") == len(PROBES)
    # ... and with one worker process, only those replies (to the prober) crossed the server.
    assert kit.total(after, "xmpp_sent") - kit.total(before, "xmpp_sent") == len(PROBES)
    assert kit.total(before, "xmpp_sent") == 0


def test_normal_ride_after_the_junk_is_served_by_the_expected_vehicle(
    kit: Any, junk: dict[str, Any]
) -> None:
    outcome = junk["outcome"]
    assert outcome.served, outcome
    # The forged award went to this very vehicle: it did not make it busy.
    assert outcome.vehicle == junk["winner"]
    assert outcome.eta_s == pytest.approx(junk["travel_s"], rel=1e-6)
    assert outcome.picked_up_at is not None
    # One auction in all: the legitimate one.
    assert kit.total(junk["final"], "auctions") == 1
    # Passengers talk to the fleet in-process here: still only the probes' replies crossed.
    assert kit.total(junk["final"], "xmpp_sent") == len(PROBES)


# --- regressions: bugs this suite found -----------------------------------------------------


def test_call_for_bids_from_a_stranger_is_refused(junk: dict[str, Any]) -> None:
    hijack = junk["hijack"]
    assert hijack["call"].type == REFUSED, hijack
    assert hijack["award"] is None


def test_vehicle_whose_trip_ends_before_the_auction_closes_stays_available(
    junk: dict[str, Any]
) -> None:
    first, second = junk["instants"]
    vehicle = junk["instant_vehicle"]
    assert first.served and first.vehicle == vehicle, first
    # The vehicle stands idle at this very pickup: nobody can be closer.
    assert second.served and second.vehicle == vehicle, second
