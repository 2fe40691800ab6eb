"""The batch auction under a law: which auction types can clear a batch, and the prices.

A batch bid is a list of pickup times (a vehicle's k best); the clearing is the matching of
the bids that serves the most passengers at the least total pickup time (policies/batch.py
`clear`). A law's auction type sets what each matched vehicle is paid, in bid units (1/s,
a score, as in the per-request auction: a faster pickup is a higher score):

* sealed-first-price: its own bid for the ride, 1/t (t its pickup time to that passenger).
* vickrey: the VCG price of the assignment. The vehicle's critical time is
  p = C(without it) - (C - t): the total pickup time of the best clearing without its bids,
  less what the others take in the actual clearing. It is the longest pickup time at which
  it would still have been given a passenger, so bidding its true times is dominant, and it
  is paid 1/p (<= 1/t). With one passenger this is the per-request Vickrey price, 1/(the
  runner-up's time). When the clearing without it serves fewer passengers, nobody could
  replace it: it is paid the law's reserve, as a lone per-request bidder is.
* english, dutch: not defined for a batch (their rounds are one ride's); a run under such
  a law with --policy batch-auction is refused at start-up (`problem`).

`check` re-clears a batch from its audit record (the bids its manager received and the
awards it sent) and lists every difference: what the complaints agent and
`fleetbid audit check` use.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fleetbid.laws.schema import Law, SealedFirstPrice, Vickrey
from fleetbid.policies.batch import clear
from fleetbid.protocol import law_messages as lm
from fleetbid.protocol import messages as m

Bids = Mapping[str, Sequence[tuple[str, float]]]  # vehicle -> (request id, pickup time s)
PRICE_TOLERANCE = 1e-9  # relative: prices travel as JSON floats


@dataclass(frozen=True)
class Cleared:
    request_id: str
    vehicle: str
    price: float  # bid units (1/s)


def problem(law: Law) -> str | None:
    """Why this law cannot govern a batch auction (None: it can)."""
    if isinstance(law.auction, SealedFirstPrice | Vickrey):
        return None
    return (f"law {law.name} runs {law.kind} auctions, which are defined for one ride at a "
            "time: --policy batch-auction needs a sealed-first-price or vickrey law")


def _total(bids: Bids, pairs: Sequence[tuple[str, str]]) -> float:
    times = {(v, r): t for v, listed in bids.items() for r, t in listed}
    return sum(times[(v, r)] for r, v in pairs)


def clearing(law: Law, bids: Bids) -> list[Cleared]:
    """The batch's assignment and each winner's price under `law` (sorted by request id)."""
    pairs = clear(bids)
    own = {(v, r): t for v, listed in bids.items() for r, t in listed}
    if isinstance(law.auction, SealedFirstPrice):
        return [Cleared(r, v, 1.0 / own[(v, r)]) for r, v in pairs]
    if not isinstance(law.auction, Vickrey):
        raise ValueError(problem(law))
    total = _total(bids, pairs)
    out = []
    for r, v in pairs:
        others = {u: listed for u, listed in bids.items() if u != v}
        without = clear(others)
        if len(without) < len(pairs):
            out.append(Cleared(r, v, law.auction.reserve))
            continue
        critical = _total(others, without) - (total - own[(v, r)])
        out.append(Cleared(r, v, 1.0 / max(critical, own[(v, r)])))
    return out


# --- checking a batch from its audit record --------------------------------------------------


def entry_body(entry: lm.AuditEntry) -> dict[str, Any]:
    """An audit entry's message body as a dict (empty if it is not a JSON object)."""
    try:
        body = json.loads(entry.body)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _times(raw: Any) -> list[tuple[str, float]]:
    return [(str(t["request_id"]), float(t["eta_s"])) for t in raw or ()]


def recorded(entries: Sequence[lm.AuditEntry]) -> tuple[str, dict[str, list[tuple[str, float]]],
                                                        dict[str, tuple[str, float]]]:
    """(manager, bids it received, awards it sent: request id -> (vehicle, price)). The
    manager is the sender of the batch's awards (the receiver of its bids if none)."""
    awards = [e for e in entries if e.kind == m.BatchAward.TYPE]
    bid_kinds = (m.BatchBid.TYPE, m.BatchGroupBids.TYPE)
    manager = awards[0].sender if awards else next(
        (e.receiver for e in entries if e.kind in bid_kinds), "")
    bids: dict[str, list[tuple[str, float]]] = {}
    for e in entries:
        if e.receiver != manager:
            continue  # a proxy's copies of its members' bids: the group report counts
        body = entry_body(e)
        if e.kind == m.BatchBid.TYPE and body.get("times"):
            bids[e.sender] = _times(body["times"])
        elif e.kind == m.BatchGroupBids.TYPE:
            for bid in body.get("bids") or ():
                if bid.get("times"):
                    bids[str(bid["vehicle"])] = _times(bid["times"])
    given = {}
    for e in awards:
        body = entry_body(e)
        ride = body.get("ride") or {}
        given[str(ride.get("request_id"))] = (e.receiver, float(body.get("price", 0.0)))
    return manager, bids, given


def check(law: Law, batch_id: str, entries: Sequence[lm.AuditEntry]) -> list[str]:
    """Every way the recorded awards of `batch_id` differ from its clearing under `law`
    (empty: the batch was cleared by the law)."""
    if problem(law) is not None:
        return [str(problem(law))]
    manager, bids, given = recorded(entries)
    if not manager:
        return [f"the record of batch {batch_id} holds no bid and no award"]
    expected = {c.request_id: c for c in clearing(law, bids)}
    out = []
    for rid, (vehicle, price) in sorted(given.items()):
        want = expected.get(rid)
        if want is None:
            out.append(f"{rid} was awarded to {vehicle}, but the clearing gives it to nobody")
        elif want.vehicle != vehicle:
            out.append(f"{rid} was awarded to {vehicle}, the clearing gives it to {want.vehicle}")
        elif abs(price - want.price) > PRICE_TOLERANCE * max(1.0, abs(want.price)):
            out.append(f"{rid}: {vehicle} was paid {price:.9g}, law {law.name} says "
                       f"{want.price:.9g}")
    for rid in sorted(expected.keys() - given.keys()):
        out.append(f"{rid}: the clearing gives it to {expected[rid].vehicle}, no award recorded")
    return out
