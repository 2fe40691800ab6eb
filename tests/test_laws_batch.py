"""The batch auction under the laws, on hand-made bids and messages: the clearing and the
price each law pays, the check of a batch from its audit record, and the controller's
checks of batch bids (token, certificate, conversation)."""

from __future__ import annotations

import msgspec
import pytest
from test_laws_controller import AM, VEHICLE, cert_for, controller, incoming

from fleetbid.laws import batch as batch_law
from fleetbid.laws import certificates
from fleetbid.laws.book import builtin_laws
from fleetbid.protocol import codec
from fleetbid.protocol import law_messages as lm
from fleetbid.protocol import messages as m

FIRST, VICKREY = builtin_laws()["sealed-first-price"], builtin_laws()["vickrey"]
# Three vehicles, two rides: the clearing is a-r1 + b-r2 (35 s of pickup in all).
BIDS = {"a": [("r1", 10.0), ("r2", 30.0)], "b": [("r1", 20.0), ("r2", 25.0)],
        "c": [("r1", 40.0), ("r2", 50.0)]}


def priced(law: object, bids: dict) -> dict[str, tuple[str, float]]:
    return {c.request_id: (c.vehicle, c.price) for c in batch_law.clearing(law, bids)}


def test_first_price_pays_each_winner_its_own_bid() -> None:
    assert priced(FIRST, BIDS) == {"r1": ("a", 1 / 10), "r2": ("b", 1 / 25)}


def test_vickrey_pays_the_vcg_price_of_the_assignment() -> None:
    # Without a: b-r2 + c-r1 = 65 s, so a's critical time is 65 - (35 - 10) = 40 s;
    # without b: a-r1 + c-r2 = 60 s, so b's is 60 - (35 - 25) = 50 s.
    assert priced(VICKREY, BIDS) == {"r1": ("a", 1 / 40), "r2": ("b", 1 / 50)}


def test_vickrey_with_one_ride_is_the_second_price_and_alone_the_reserve() -> None:
    one = {"a": [("r1", 10.0)], "b": [("r1", 20.0)], "c": [("r1", 30.0)]}
    assert priced(VICKREY, one) == {"r1": ("a", 1 / 20)}
    assert priced(VICKREY, {"a": [("r1", 10.0)]}) == {"r1": ("a", VICKREY.auction.reserve)}


@pytest.mark.parametrize("name", ["english", "dutch"])
def test_rounds_laws_cannot_clear_a_batch(name: str) -> None:
    law = builtin_laws()[name]
    reason = batch_law.problem(law)
    assert reason is not None and "--policy batch-auction" in reason and name in reason
    with pytest.raises(ValueError):
        batch_law.clearing(law, BIDS)
    assert batch_law.problem(FIRST) is None and batch_law.problem(VICKREY) is None


# --- a batch's audit record ------------------------------------------------------------------


def entry(seq: int, sender: str, receiver: str, body: m.Body) -> lm.AuditEntry:
    return lm.AuditEntry(seq=seq, law="h", kind=body.TYPE, performative="", sender=sender,
                         receiver=receiver, body=codec.encode(receiver, body).body, at=float(seq))


def record(law: object, bids: dict, tamper: dict | None = None) -> list[lm.AuditEntry]:
    out = [entry(i, v, AM, m.BatchBid(batch_id="b1", times=tuple(
        m.PickupTime(r, t) for r, t in times))) for i, (v, times) in enumerate(bids.items())]
    for c in batch_law.clearing(law, bids):
        price = (tamper or {}).get(c.request_id, c.price)
        ride = m.BatchRide(c.request_id, "p@x", "1", "2")
        out.append(entry(len(out), AM, c.vehicle,
                         m.BatchAward(batch_id="b1", ride=ride, price=price)))
    return out


@pytest.mark.parametrize("law", [FIRST, VICKREY], ids=["first-price", "vickrey"])
def test_a_batch_record_is_checked_against_its_law(law: object) -> None:
    bids = {f"{v}@x": times for v, times in BIDS.items()}
    assert batch_law.check(law, "b1", record(law, bids)) == []
    overpaid = batch_law.check(law, "b1", record(law, bids, tamper={"r1": 0.5}))
    assert len(overpaid) == 1 and overpaid[0].startswith("r1: a@x was paid 0.5")
    # A bid rewritten after the fact: the awards no longer follow from the bids.
    entries = record(law, bids)
    forged = msgspec.structs.replace(entries[0], body=codec.encode(AM, m.BatchBid(
        batch_id="b1", times=(m.PickupTime("r1", 90.0),))).body)
    problems = batch_law.check(law, "b1", [forged, *entries[1:]])
    assert any("the clearing gives it to" in p for p in problems)
    assert batch_law.check(builtin_laws()["english"], "b1", entries) != []


# --- the controller on batch bids ------------------------------------------------------------


def batch_bid(batch_id: str = "b1", times: tuple[m.PickupTime, ...] = (
        m.PickupTime("r1", 50.0),)) -> m.BatchBid:
    return m.BatchBid(batch_id=batch_id, times=times)


def test_a_batch_bid_needs_a_batch_call_and_carries_the_certificate() -> None:
    ctl = controller(VEHICLE, "vehicle", default="certified")
    ctl.certificate = cert_for(VEHICLE)
    blocked = ctl.on_send(codec.encode(AM, batch_bid()))
    assert blocked == f"{VEHICLE} was not called to bid in auction b1"
    # Declining (no pickup times) needs no call: it is what a blocked bid becomes.
    assert ctl.on_send(codec.encode(AM, batch_bid(times=()))) is None
    call = m.BatchCall(batch_id="b1", manager=AM, pickups=(m.BatchPickup("r1", "1"),), k=5,
                       deadline=10.0)
    assert ctl.on_receive(incoming(AM, VEHICLE, call), call) is None
    msg = codec.encode(AM, batch_bid())
    assert ctl.on_send(msg) is None and msg.get_metadata("cert") and msg.get_metadata("law")
    replay = ctl.on_send(codec.encode(AM, batch_bid()))  # the one call is used up
    assert replay == f"{VEHICLE} was not called to bid in auction b1"


def test_uncertified_forged_or_misaddressed_batch_bids_are_refused() -> None:
    ctl = controller(AM, "auction-manager", default="certified")
    bid = batch_bid()
    assert "presented none" in (ctl.on_receive(incoming(VEHICLE, AM, bid), bid) or "")
    good = cert_for(VEHICLE)
    forged = msgspec.structs.replace(good, wheelchair=not good.wheelchair)
    reason = ctl.on_receive(incoming(VEHICLE, AM, bid, cert=certificates.encode(forged)), bid)
    assert reason is not None and "forged" in reason
    text = certificates.encode(good)
    assert ctl.on_receive(incoming(VEHICLE, AM, bid, cert=text), bid) is None
    declined = batch_bid(times=())
    assert ctl.on_receive(incoming(VEHICLE, AM, declined), declined) is None
    elsewhere = incoming(VEHICLE, AM, bid, cert=text)
    elsewhere.set_metadata("conversation", "b2")
    assert ctl.on_receive(elsewhere, bid) == "a message of batch b1 sent in conversation b2"


def test_a_clearing_complaint_is_decided_from_the_record() -> None:
    from fleetbid.laws.decisions import decide

    bids = {f"{v}@x": times for v, times in BIDS.items()}
    book = {"h": VICKREY}.get
    fair = decide("clearing", "b1", record(VICKREY, bids), 0.0, book)
    assert not fair.upheld and "cleared and priced as law vickrey says" in fair.reason
    unfair = decide("clearing", "b1", record(VICKREY, bids, tamper={"r2": 0.0}), 0.0, book)
    assert unfair.upheld and "r2: b@x was paid 0" in unfair.reason
    unknown = decide("clearing", "b1", record(VICKREY, bids), 0.0)
    assert not unknown.upheld and "does not know" in unknown.reason


def test_audit_check_re_clears_every_batch_of_a_file(tmp_path, capsys) -> None:  # noqa: ANN001
    import sqlite3

    from fleetbid.cli import main
    from fleetbid.laws.audit_store import AuditStore

    path = tmp_path / "audit.sqlite"
    store = AuditStore(path)
    bids = {f"{v}@x": times for v, times in BIDS.items()}
    for e in record(FIRST, bids):
        store.append(lm.AuditCopy(auction_id="b1", law=FIRST.hash, kind=e.kind,
                                  performative="", sender=e.sender, receiver=e.receiver,
                                  body=e.body, at=e.at))
    store.close()
    assert main(["audit", "check", str(path)]) == 0
    assert "b1: cleared by its law" in capsys.readouterr().out
    db = sqlite3.connect(path)
    db.execute("DROP TRIGGER audit_no_update")
    db.execute("UPDATE audit SET body = replace(body, '10.0', '9.0') WHERE seq = 1")
    db.commit()
    db.close()
    assert main(["audit", "check", str(path)]) == 1
    out = capsys.readouterr().out
    assert "hash chain BROKEN at row 1" in out and "b1: VIOLATION" in out
