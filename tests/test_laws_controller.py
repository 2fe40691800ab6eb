"""The law controller on hand-made messages: hashes, shill bids, tokens, certificates, audit."""

from __future__ import annotations

import json

import msgspec
import pytest
from spade.message import Message

from fleetbid.laws import certificates
from fleetbid.laws.book import LawBook, builtin_laws
from fleetbid.laws.controller import Controller
from fleetbid.laws.schema import law_from_dict, law_hash
from fleetbid.protocol import codec
from fleetbid.protocol import law_messages as lm
from fleetbid.protocol import messages as m

AM, VEHICLE, PASSENGER, AUDITOR = "auction-0@x", "vehicle-1@x", "passenger-1@x", "auditor@x"
CA = "certification-authority@x"
PRIVATE, PUBLIC = certificates.new_key()
CERTIFIED = law_from_dict({"name": "certified", "auction": {"type": "sealed-first-price"},
                           "eligibility": {"certified": True, "min_seats": 2},
                           "audit": {"kinds": ["bid", "award"]}})


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def controller(me: str, role: str, default: str = "sealed-first-price") -> Controller:
    law = CERTIFIED if default == "certified" else builtin_laws()[default]
    return Controller(me, role, LawBook(law), {"auditor": AUDITOR, "certification-authority": CA},
                      PUBLIC, Clock())


def incoming(sender: str, to: str, body: m.Body, **metadata: str) -> Message:
    msg = codec.encode(to, body)
    msg.sender = sender
    for key, value in metadata.items():
        msg.set_metadata(key, value)
    return msg


def open_auction(auction_id: str = "a1") -> m.OpenAuction:
    return m.OpenAuction(auction_id=auction_id, passenger=PASSENGER, pickup="1", dropoff="2",
                         cluster=0, requested_at=0.0)


def bid(auction_id: str = "a1") -> m.Bid:
    return m.Bid(auction_id=auction_id, bid=0.01, eta_s=50.0)


def test_message_under_another_law_is_refused_with_the_reason() -> None:
    ctl = controller(AM, "auction-manager")
    first = law_hash(builtin_laws()["sealed-first-price"])
    other = law_hash(builtin_laws()["vickrey"])
    spec = open_auction()
    assert ctl.on_receive(incoming("mm@x", AM, spec, law=first), spec) is None
    reason = ctl.on_receive(incoming(VEHICLE, AM, bid(), law=other), bid())
    assert reason is not None and "governed by law" in reason and first[:16] in reason
    unknown = ctl.on_receive(incoming(VEHICLE, AM, bid("a2"), law="0" * 64), bid("a2"))
    assert unknown is not None and "not one auction-0@x adopted" in unknown
    # A message without a hash is under the run's default law.
    assert ctl.on_receive(incoming(VEHICLE, AM, bid()), bid()) is None


def test_the_passenger_cannot_bid_in_its_own_auction() -> None:
    ctl = controller(AM, "auction-manager")
    spec = open_auction()
    ctl.on_receive(incoming("mm@x", AM, spec), spec)
    reason = ctl.on_receive(incoming(PASSENGER, AM, bid()), bid())
    assert reason == f"shill bid: {PASSENGER} is the passenger of auction a1"
    # Nor can the passenger's identity send one: its own controller blocks it first.
    own = controller(PASSENGER, "passenger")
    blocked = own.on_send(codec.encode(AM, bid()))
    assert blocked == "the law does not let a passenger send bid"


def test_sender_side_shill_block_learns_the_passenger_from_the_call() -> None:
    ctl = controller(PASSENGER, "vehicle")  # an agent under the passenger's identity
    call = m.CallForBids(auction_id="a1", pickup="1", n=2, deadline=10.0)
    assert ctl.on_receive(incoming("proxy@x", PASSENGER, call, passenger=PASSENGER), call) is None
    blocked = ctl.on_send(codec.encode("proxy@x", bid()))
    assert blocked is not None and blocked.startswith("shill bid")


def test_a_bid_needs_a_call_and_stamps_the_law() -> None:
    ctl = controller(VEHICLE, "vehicle")
    blocked = ctl.on_send(codec.encode(AM, bid()))
    assert blocked == f"{VEHICLE} was not called to bid in auction a1"
    call = m.CallForBids(auction_id="a1", pickup="1", n=2, deadline=10.0)
    ctl.on_receive(incoming(AM, VEHICLE, call, passenger=PASSENGER), call)
    msg = codec.encode(AM, bid())
    assert ctl.on_send(msg) is None
    assert msg.get_metadata("law") == law_hash(builtin_laws()["sealed-first-price"])
    assert msg.get_metadata("passenger") == PASSENGER
    # The token is used up: a second bid in the same round is blocked.
    assert ctl.on_send(codec.encode(AM, bid())) is not None


def test_the_receiver_copies_what_the_law_audits_and_files_it_once() -> None:
    ctl = controller(AM, "auction-manager")
    spec = open_auction()
    ctl.on_receive(incoming("mm@x", AM, spec), spec)
    assert ctl.take_audit("a1") is None  # open-auction is not an audited kind
    first, second = bid(), m.Bid(auction_id="a1", bid=0.02, eta_s=40.0)
    for sender, body in ((VEHICLE, first), ("vehicle-2@x", second)):
        msg = incoming(sender, AM, body)
        assert ctl.on_receive(msg, body) is None
        ctl.copy_received(msg, body)  # the handler accepted it
    batch = ctl.take_audit("a1")
    assert batch is not None and batch.auditor == AUDITOR
    assert batch.body.auction_id == "a1" and [c.kind for c in batch.body.copies] == ["bid"] * 2
    assert [(c.sender, c.receiver) for c in batch.body.copies] == [
        (VEHICLE, AM), ("vehicle-2@x", AM)]
    assert all(c.at == 100.0 for c in batch.body.copies)
    assert json.loads(batch.body.copies[1].body)["bid"] == 0.02  # what arrived, as it arrived
    assert ctl.take_audit("a1") is None  # filed once
    # A refused message is not copied (the behaviour copies only what its handler accepted).
    assert ctl.on_receive(incoming(PASSENGER, AM, bid()), bid()) is not None


def test_only_named_kinds_are_copied_and_roles_are_enforced() -> None:
    ctl = controller(AM, "auction-manager")
    spec = open_auction()
    ctl.on_receive(incoming("mm@x", AM, spec), spec)
    call = m.CallForBids(auction_id="a1", pickup="1", n=2, deadline=10.0)
    assert ctl.on_send(codec.encode(VEHICLE, call)) is None
    blocked = ctl.on_send(codec.encode(AM, bid()))
    assert blocked == "the law does not let an auction-manager send bid"


def certified_pair(sender: str = VEHICLE) -> tuple[Controller, m.OpenAuction]:
    ctl = controller(AM, "auction-manager", default="certified")
    spec = open_auction()
    ctl.on_receive(incoming("mm@x", AM, spec), spec)
    return ctl, spec


def cert_for(subject: str, now: float = 50.0, lifetime: float = 100.0) -> lm.Certificate:
    return certificates.issue(PRIVATE, subject, CA, now, lifetime)


def test_certificates_missing_forged_expired_revoked_are_refused() -> None:
    ctl, _ = certified_pair()
    assert "presented none" in (ctl.on_receive(incoming(VEHICLE, AM, bid()), bid()) or "")
    good = cert_for(VEHICLE)
    text = certificates.encode(good)
    assert ctl.on_receive(incoming(VEHICLE, AM, bid(), cert=text), bid()) is None
    forged = msgspec.structs.replace(good, seats=8)  # signature no longer matches
    reason = ctl.on_receive(incoming(VEHICLE, AM, bid(), cert=certificates.encode(forged)), bid())
    assert reason is not None and "forged" in reason
    other_key, _ = certificates.new_key()
    foreign = certificates.issue(other_key, VEHICLE, CA, 50.0, 100.0)
    reason = ctl.on_receive(incoming(VEHICLE, AM, bid(), cert=certificates.encode(foreign)),
                            bid())
    assert reason is not None and "forged" in reason
    stolen = ctl.on_receive(incoming("vehicle-2@x", AM, bid(), cert=text), bid())
    assert stolen == f"certificate is for {VEHICLE}, not vehicle-2@x"
    garbage = ctl.on_receive(incoming(VEHICLE, AM, bid(), cert="{not json"), bid())
    assert garbage is not None and garbage.startswith("malformed certificate")
    ctl.now.t = 151.0  # type: ignore[attr-defined]
    reason = ctl.on_receive(incoming(VEHICLE, AM, bid(), cert=text), bid())
    assert reason is not None and "expired at t=150 s" in reason
    ctl.now.t = 100.0  # type: ignore[attr-defined]
    revoke = lm.Revoked(subject=VEHICLE, reason="no-show", serials=(good.serial,))
    fake = ctl.on_receive(incoming("mallory@x", AM, revoke), revoke)
    assert fake == "mallory@x is not the certification authority"
    assert ctl.on_receive(incoming(VEHICLE, AM, bid(), cert=text), bid()) is None
    assert ctl.on_receive(incoming(CA, AM, revoke), revoke) is None
    reason = ctl.on_receive(incoming(VEHICLE, AM, bid(), cert=text), bid())
    assert reason is not None and "revoked" in reason


def test_expiry_during_a_session_stops_the_vehicle_bidding() -> None:
    ctl = controller(VEHICLE, "vehicle", default="certified")
    ctl.certificate = cert_for(VEHICLE)
    for t, allowed in ((100.0, True), (150.0, False)):
        ctl.now.t = t  # type: ignore[attr-defined]
        call = m.CallForBids(auction_id="a1", pickup="1", n=2, deadline=10.0)
        ctl.on_receive(incoming(AM, VEHICLE, call), call)
        msg = codec.encode(AM, bid())
        blocked = ctl.on_send(msg)
        if allowed:
            assert blocked is None and msg.get_metadata("cert")
        else:
            assert blocked is not None and "expired" in blocked


@pytest.mark.parametrize("seats", [1])
def test_certificate_attributes_must_meet_the_law(seats: int, monkeypatch: pytest.MonkeyPatch
                                                  ) -> None:
    monkeypatch.setattr(certificates, "vehicle_attributes", lambda jid: (seats, False))
    ctl, _ = certified_pair()
    text = certificates.encode(cert_for(VEHICLE))
    reason = ctl.on_receive(incoming(VEHICLE, AM, bid(), cert=text), bid())
    assert reason == f"{VEHICLE} has 1 seats, law certified requires 2"


def test_the_law_names_the_roles_that_send_each_kind() -> None:
    for role, kind in [("passenger", "bid"), ("proxy", "certificate-issued"),
                       ("vehicle", "award"), ("passenger", "dispatch"),
                       ("vehicle", "open-auction"), ("proxy", "ride-assigned"),
                       ("auditor", "revoke")]:
        article = "an" if role == "auditor" else "a"
        assert controller(AM, role).role_problem(kind) == \
            f"the law does not let {article} {role} send {kind}"
    for role, kind in [("vehicle", "bid"), ("proxy", "award"), ("main-manager", "ride-assigned"),
                       ("passenger", "ride-request"), ("passenger", "refused"),
                       ("vehicle", "audit-batch")]:
        assert controller(AM, role).role_problem(kind) is None
    # A kind the law does not know is sent by nobody (not let through by omission).
    assert controller(AM, "proxy").role_problem("some-new-kind") == \
        "the law names no role that may send some-new-kind"


def test_the_receiver_refuses_a_kind_the_sender_s_role_may_not_send() -> None:
    # Before, only the sender's own controller checked role rules: a client that skipped it
    # (a plain XMPP client logged in as a passenger) had its award or dispatch delivered.
    roles = {AM: "auction-manager", VEHICLE: "vehicle", "mm@x": "main-manager"}
    ctl = Controller(VEHICLE, "vehicle", LawBook(builtin_laws()["sealed-first-price"]),
                     {"auditor": AUDITOR}, PUBLIC, Clock(),
                     role_of=lambda jid: roles.get(jid, "passenger"))
    award = m.Award(auction_id="a1", vehicle=VEHICLE, passenger=PASSENGER, pickup="1",
                    dropoff="2", price=0.1)
    dispatch = m.Dispatch(auction_id="r1", passenger=PASSENGER, pickup="1", dropoff="2")
    assert ctl.on_receive(incoming(PASSENGER, VEHICLE, award), award) == \
        f"{PASSENGER}: the law does not let a passenger send award"
    assert ctl.on_receive(incoming(PASSENGER, VEHICLE, dispatch), dispatch) == \
        f"{PASSENGER}: the law does not let a passenger send dispatch"
    assert ctl.on_receive(incoming(AM, VEHICLE, award), award) is None
    assert ctl.on_receive(incoming("mm@x", VEHICLE, dispatch), dispatch) is None
    # The refused award was checked before the auction's control state was touched.
    refused = Controller(VEHICLE, "vehicle", LawBook(builtin_laws()["sealed-first-price"]),
                         {}, PUBLIC, Clock(), role_of=lambda jid: "passenger")
    refused.on_receive(incoming(PASSENGER, VEHICLE, award), award)
    assert not refused.auctions
