"""The law's word on roles: which roles may send each kind of message.

Both ends enforce it. The sender's controller blocks a kind its role may not send (and an
agent whose behaviours declare such a kind fails at start-up, agents/fleet_agent.py); the
receiver's controller refuses a message whose sender's role, looked up in the run's
`Directory`, may not send it. The server vouches for the sender's address
(docs/security.md), so a passenger that writes an `award` is refused by whoever gets it.

The table is total: a kind missing here cannot be sent at all (the start-up check names
it), so a new message kind is never let through by omission.
"""

from __future__ import annotations

from fleetbid.core.roles import Role
from fleetbid.protocol import law_messages as lm
from fleetbid.protocol import messages as m

V, P, MM, AM = Role.VEHICLE, Role.PROXY, Role.MAIN_MANAGER, Role.AUCTION_MANAGER
CA, AUDITOR, COMPLAINTS, PASSENGER = (Role.AUTHORITY, Role.AUDITOR, Role.COMPLAINTS,
                                      Role.PASSENGER)

# Any role: error replies, and the receiver's audit copies it files with the auditor.
ANY_ROLE = frozenset({m.NotUnderstood.TYPE, m.Refused.TYPE, lm.AuditBatch.TYPE})

SENDERS: dict[str, frozenset[Role]] = {
    # passenger <-> MainManager
    m.RideRequest.TYPE: frozenset({PASSENGER}),
    m.RideAssigned.TYPE: frozenset({AM, MM}),
    m.RideUnserved.TYPE: frozenset({AM, MM}),
    # MainManager <-> AuctionManager
    m.OpenAuction.TYPE: frozenset({MM}),
    m.Participation.TYPE: frozenset({MM}),
    m.WithdrawAuction.TYPE: frozenset({MM}),
    m.AuctionPhase.TYPE: frozenset({AM}),
    m.AuctionClosed.TYPE: frozenset({AM}),
    # the auction: managers and proxies call, vehicles answer
    m.CallForBids.TYPE: frozenset({AM, P}),
    m.GroupCall.TYPE: frozenset({AM}),
    m.Bid.TYPE: frozenset({V}),
    m.BidDeclined.TYPE: frozenset({V}),
    m.GroupBest.TYPE: frozenset({P}),
    m.BidReceived.TYPE: frozenset({AM}),
    lm.Outbid.TYPE: frozenset({AM}),
    m.Award.TYPE: frozenset({AM, P}),
    m.AwardConfirmed.TYPE: frozenset({V, P}),
    m.AwardDeclined.TYPE: frozenset({V}),
    m.AuctionResult.TYPE: frozenset({AM}),
    lm.EnglishRound.TYPE: frozenset({AM}),
    lm.DutchTick.TYPE: frozenset({AM}),
    # the batch auction (behaviours/batch_auction.py): only vehicles bid, only a proxy
    # merges its group's bids, only an auction manager clears a batch and awards
    m.OpenBatch.TYPE: frozenset({MM}),
    m.BatchCall.TYPE: frozenset({AM, P}),
    m.BatchBid.TYPE: frozenset({V}),
    m.BatchGroupBids.TYPE: frozenset({P}),
    m.BatchAward.TYPE: frozenset({AM}),
    m.BatchClosed.TYPE: frozenset({AM}),
    # a vehicle's life
    m.VehicleAvailable.TYPE: frozenset({V}),
    m.Dispatch.TYPE: frozenset({MM}),
    m.DispatchConfirmed.TYPE: frozenset({V}),
    m.DispatchDeclined.TYPE: frozenset({V}),
    m.PickedUp.TYPE: frozenset({V}),
    # the law's services
    lm.CertificateRequest.TYPE: frozenset({V}),
    lm.CertificateIssued.TYPE: frozenset({CA}),
    lm.Revoked.TYPE: frozenset({CA}),
    lm.Revoke.TYPE: frozenset({COMPLAINTS}),
    lm.Complaint.TYPE: frozenset({PASSENGER}),
    # The auditor's record is open: the complaints agent and any client may ask for it.
    lm.AuditQuery.TYPE: frozenset({COMPLAINTS, PASSENGER}),
    lm.AuditRecord.TYPE: frozenset({AUDITOR}),
    lm.ComplaintDecision.TYPE: frozenset({COMPLAINTS}),
}


def sender_problem(role: str, kind: str) -> str | None:
    """Why the law does not let `role` send `kind` (None: it does)."""
    if kind in ANY_ROLE:
        return None
    allowed = SENDERS.get(kind)
    if allowed is None:
        return f"the law names no role that may send {kind}"
    if role not in allowed:
        article = "an" if role[:1] in "aeiou" else "a"
        return f"the law does not let {article} {role} send {kind}"
    return None
