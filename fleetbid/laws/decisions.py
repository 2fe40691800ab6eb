"""How the complaints agent decides, from an auction's audit record alone."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from fleetbid.laws import batch as batch_law
from fleetbid.laws.schema import Law
from fleetbid.protocol import law_messages as lm
from fleetbid.protocol import messages as m

GRACE_S = 60.0  # simulated seconds a pickup may be late beyond 1.5 x the confirmed ETA


@dataclass(frozen=True)
class Decision:
    upheld: bool
    reason: str
    offender: str | None = None


_body = batch_law.entry_body


def decide(reason: str, auction_id: str, entries: Sequence[lm.AuditEntry], now: float,
           laws: Callable[[str], Law | None] = lambda _: None) -> Decision:
    """`laws` finds a law by its hash (the run's law book), for `clearing`."""
    if not entries:
        return Decision(False, f"the auditor has no record of auction {auction_id}")
    if reason == "no-show":
        return no_show(auction_id, entries, now)
    if reason == "shill":
        return shill(auction_id, entries)
    if reason == "clearing":
        return clearing(auction_id, entries, laws)
    return Decision(False, f"unknown complaint {reason!r}")


def clearing(auction_id: str, entries: Sequence[lm.AuditEntry],
             laws: Callable[[str], Law | None]) -> Decision:
    """A batch re-cleared from its record under its law (laws/batch.py). The offender is
    its manager, which holds no certificate to revoke: the decision is the record."""
    law = laws(entries[0].law)
    if law is None:
        return Decision(False, f"the record of {auction_id} is under a law this fleet does "
                               "not know")
    problems = batch_law.check(law, auction_id, entries)
    if not problems:
        return Decision(False, f"batch {auction_id} was cleared and priced as law {law.name} "
                               "says")
    return Decision(True, f"batch {auction_id} broke law {law.name}: " + "; ".join(problems))


def no_show(auction_id: str, entries: Sequence[lm.AuditEntry], now: float) -> Decision:
    confirmed = [e for e in entries if e.kind == m.AwardConfirmed.TYPE
                 and _body(e).get("vehicle") == e.sender]
    if not confirmed:
        return Decision(False, f"the record shows no vehicle confirming an award in {auction_id}")
    first = confirmed[0]
    vehicle = first.sender
    eta = float(_body(first).get("eta_s", 0.0))
    pickups = [e for e in entries if e.kind == m.PickedUp.TYPE and e.sender == vehicle]
    if pickups:
        return Decision(False, f"the record shows {vehicle} at the pickup at "
                               f"t={pickups[0].at:.0f} s")
    due = first.at + 1.5 * eta + GRACE_S
    if now < due:
        return Decision(False, f"{vehicle} is not late yet: it confirmed at t={first.at:.0f} s "
                               f"with an ETA of {eta:.0f} s, due by t={due:.0f} s")
    return Decision(True, f"{vehicle} confirmed the award at t={first.at:.0f} s (ETA {eta:.0f} s)"
                          f" and the record has no pickup by t={now:.0f} s", vehicle)


def shill(auction_id: str, entries: Sequence[lm.AuditEntry]) -> Decision:
    passenger = None
    for e in entries:
        if e.kind in (m.RideAssigned.TYPE, m.RideUnserved.TYPE):
            passenger = e.receiver
        elif e.kind == m.Award.TYPE:
            passenger = _body(e).get("passenger") or passenger
        if passenger:
            break
    if not passenger:
        return Decision(False, f"the record of {auction_id} does not name its passenger")
    bids = [e for e in entries if e.kind == m.Bid.TYPE]
    own = [e for e in bids if e.sender == passenger]
    if own:
        return Decision(True, f"the passenger {passenger} bid in its own auction at "
                              f"t={own[0].at:.0f} s", passenger)
    return Decision(False, f"no bid from the passenger {passenger} in the record "
                           f"({len(bids)} bid(s), all from other agents)")
