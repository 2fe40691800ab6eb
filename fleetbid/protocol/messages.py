"""The messages of dispatch: ride requests, auctions, bidding, direct dispatch, errors.

One typed schema per message type (msgspec; see docs/decisions.md): unknown fields, missing
fields, wrong types and out-of-range numbers are rejected before any handler sees them.
Law-governed auctions add theirs in `protocol.law_messages`; `protocol.codec` turns bodies
into SPADE messages and back.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from fleetbid.protocol.schema import AuctionId, Body, Jid, NodeId, NonNeg, Positive, Reason

# --- passenger <-> main manager -------------------------------------------------------------


class RideRequest(Body):
    """Passenger -> MainManager: please find me a vehicle. The request id becomes the auction id."""

    TYPE = "ride-request"
    PERFORMATIVES = ("request",)
    request_id: AuctionId
    source: NodeId
    destination: NodeId
    requested_at: NonNeg  # simulated seconds


class RideAssigned(Body):
    """AuctionManager -> Passenger: the auction's outcome when a vehicle won."""

    TYPE = "ride-assigned"
    PERFORMATIVES = ("inform",)
    auction_id: AuctionId
    vehicle: Jid
    eta_s: NonNeg  # simulated seconds from award to pickup
    price: NonNeg
    bidders: Annotated[int, msgspec.Meta(ge=1)]


class RideUnserved(Body):
    """AuctionManager or MainManager -> Passenger: no vehicle (nobody eligible bid in time)."""

    TYPE = "ride-unserved"
    PERFORMATIVES = ("failure", "refuse")
    auction_id: AuctionId
    reason: Reason


class PickedUp(Body):
    """Vehicle -> Passenger: I am at the pickup (waiting time ends here)."""

    TYPE = "picked-up"
    PERFORMATIVES = ("inform",)
    auction_id: AuctionId
    at: NonNeg  # simulated seconds


# --- vehicle <-> main manager ---------------------------------------------------------------


class VehicleAvailable(Body):
    """Vehicle -> MainManager: I am idle at `node`; let me take part in my cluster's auctions."""

    TYPE = "vehicle-available"
    PERFORMATIVES = ("subscribe",)
    node: NodeId
    trips: Annotated[int, msgspec.Meta(ge=0)] = 0  # trips completed: orders announcements


# --- main manager <-> auction manager -------------------------------------------------------


class Candidate(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    vehicle: Jid
    node: NodeId


class OpenAuction(Body):
    """MainManager -> AuctionManager: run this auction; `candidates` are the participation
    requests of the cluster's idle vehicles, forwarded in one message."""

    TYPE = "open-auction"
    PERFORMATIVES = ("request",)
    auction_id: AuctionId
    passenger: Jid
    pickup: NodeId
    dropoff: NodeId
    cluster: Annotated[int, msgspec.Meta(ge=0)]
    requested_at: NonNeg
    candidates: tuple[Candidate, ...] = ()
    # Spill-over (policies/spill.py): the clusters whose idle vehicles may bid when this
    # one has none, nearest first; the registry forwards them only then.
    spill: Annotated[tuple[Annotated[int, msgspec.Meta(ge=0)], ...],
                     msgspec.Meta(max_length=64)] = ()


class Participation(Body):
    """MainManager -> AuctionManager: idle vehicles that may bid, forwarded while the auction
    waits for bidders (all it may take at once when it starts waiting, then each vehicle
    that becomes available)."""

    TYPE = "participation"
    PERFORMATIVES = ("propagate",)
    auction_id: AuctionId
    candidates: Annotated[tuple[Candidate, ...], msgspec.Meta(min_length=1, max_length=1024)]


class AuctionPhase(Body):
    """AuctionManager -> MainManager: `waiting` (forward me new participants) or `bidding`."""

    TYPE = "auction-phase"
    PERFORMATIVES = ("inform",)
    auction_id: AuctionId
    phase: Annotated[str, msgspec.Meta(pattern=r"^(waiting|bidding)$")]


class AuctionClosed(Body):
    """AuctionManager -> MainManager: the auction is over (winner None: unserved)."""

    TYPE = "auction-closed"
    PERFORMATIVES = ("inform",)
    auction_id: AuctionId
    winner: Jid | None = None
    # The winner's completed trips when it took this ride: a later announcement (it may
    # arrive before this message) means the vehicle is idle again.
    winner_trips: Annotated[int, msgspec.Meta(ge=0)] = 0


class WithdrawAuction(Body):
    """MainManager -> AuctionManager: the auction outlived its deadline; end it. The manager
    answers as for any end (the passenger's outcome, then `auction-closed`); a pending
    award gets one more bidding window to be confirmed. The registry never tells the
    passenger itself about an auction a manager runs, so the ride ends once."""

    TYPE = "withdraw-auction"
    PERFORMATIVES = ("cancel",)
    auction_id: AuctionId

# --- bidding: auction manager <-> proxies <-> vehicles --------------------------------------


class GroupCall(Body):
    """AuctionManager -> Proxy: call for proposals to this group of admitted vehicles."""

    TYPE = "group-call"
    PERFORMATIVES = ("cfp",)
    auction_id: AuctionId
    pickup: NodeId
    n: Annotated[int, msgspec.Meta(ge=1)]  # bidders in the whole auction
    deadline: NonNeg  # simulated seconds
    vehicles: tuple[Jid, ...]
    round: Annotated[int, msgspec.Meta(ge=0)] = 0  # the manager's round number


class CallForBids(Body):
    """Proxy (or AuctionManager without proxies) -> Vehicle: bid for this pickup."""

    TYPE = "call-for-bids"
    PERFORMATIVES = ("cfp",)
    auction_id: AuctionId
    pickup: NodeId
    n: Annotated[int, msgspec.Meta(ge=1)]
    deadline: NonNeg
    round: Annotated[int, msgspec.Meta(ge=0)] = 0  # the manager's round number


class Bid(Body):
    """Vehicle -> Proxy (or AuctionManager): b = (n-1)/n * 1/T, T its travel time to the pickup."""

    TYPE = "bid"
    PERFORMATIVES = ("propose",)
    auction_id: AuctionId
    bid: NonNeg
    eta_s: Positive
    # Which call this answers: the manager's round (sealed bids), the English round or the
    # Dutch tick + 1; a late answer must not count in the next round. 0: not said.
    round: Annotated[int, msgspec.Meta(ge=0)] = 0


class BidDeclined(Body):
    """Vehicle -> Proxy (or AuctionManager): I will not bid (busy, unreachable pickup...)."""

    TYPE = "bid-declined"
    PERFORMATIVES = ("refuse",)
    auction_id: AuctionId
    reason: Reason
    round: Annotated[int, msgspec.Meta(ge=0)] = 0  # as in Bid


class GroupBest(Body):
    """Proxy -> AuctionManager: the group's best standing bid (vehicle None: no bid left)."""

    TYPE = "group-best"
    PERFORMATIVES = ("propose",)
    auction_id: AuctionId
    vehicle: Jid | None = None
    bid: NonNeg = 0.0
    eta_s: NonNeg = 0.0
    bidders: Annotated[int, msgspec.Meta(ge=0)] = 0


class BidReceived(Body):
    """Replicated AuctionManager -> Proxy (or Vehicle): your bid (group report, or decline) is
    in the auction's replicated log, so no crash of a manager replica can lose it."""

    TYPE = "bid-received"
    PERFORMATIVES = ("confirm",)
    auction_id: AuctionId


class Award(Body):
    """AuctionManager -> Proxy -> Vehicle: you won; confirm (you may have won elsewhere)."""

    TYPE = "award"
    PERFORMATIVES = ("accept-proposal",)
    auction_id: AuctionId
    vehicle: Jid
    passenger: Jid
    pickup: NodeId
    dropoff: NodeId
    price: NonNeg


class AwardConfirmed(Body):
    """Vehicle -> Proxy -> AuctionManager: I take this passenger."""

    TYPE = "award-confirmed"
    PERFORMATIVES = ("inform",)
    auction_id: AuctionId
    vehicle: Jid
    eta_s: NonNeg
    trips: Annotated[int, msgspec.Meta(ge=0)] = 0  # trips completed before this one


class AwardDeclined(Body):
    """Vehicle -> Proxy -> AuctionManager: I cannot take it (already assigned)."""

    TYPE = "award-declined"
    PERFORMATIVES = ("refuse",)
    auction_id: AuctionId
    vehicle: Jid
    reason: Reason


class AuctionResult(Body):
    """AuctionManager -> Proxy: final outcome; the proxy tells its group's losers."""

    TYPE = "auction-result"
    PERFORMATIVES = ("inform",)
    auction_id: AuctionId
    winner: Jid | None = None


# --- batch procurement auction (--policy batch-auction; behaviours/batch_auction.py) ---------

Rides = Annotated[int, msgspec.Meta(ge=1, le=1024)]
Count = Annotated[int, msgspec.Meta(ge=0)]


class BatchRide(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """A waiting passenger of a batch."""

    request_id: AuctionId
    passenger: Jid
    pickup: NodeId
    dropoff: NodeId


class OpenBatch(Body):
    """MainManager -> AuctionManager: clear this batch of a cluster's waiting passengers (and
    those spilled over to it) among its idle vehicles (`candidates`)."""

    TYPE = "open-batch"
    PERFORMATIVES = ("request",)
    batch_id: AuctionId
    cluster: Count
    rides: Annotated[tuple[BatchRide, ...], msgspec.Meta(min_length=1, max_length=1024)]
    candidates: Annotated[tuple[Candidate, ...], msgspec.Meta(min_length=1, max_length=1024)]


class BatchPickup(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    request_id: AuctionId
    pickup: NodeId


class BatchCall(Body):
    """AuctionManager -> Proxy (its group in `vehicles`) or -> Vehicle (`vehicles` empty):
    one call for all the batch's pickups; answer with one sealed bid of your k best."""

    TYPE = "batch-call"
    PERFORMATIVES = ("cfp",)
    batch_id: AuctionId
    manager: Jid  # who clears the batch and awards
    pickups: Annotated[tuple[BatchPickup, ...], msgspec.Meta(min_length=1, max_length=1024)]
    k: Rides
    deadline: NonNeg  # simulated seconds
    vehicles: Annotated[tuple[Jid, ...], msgspec.Meta(max_length=1024)] = ()


class PickupTime(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    request_id: AuctionId
    eta_s: Positive


class BatchBid(Body):
    """Vehicle -> AuctionManager (or its proxy): my pickup times to the batch's passengers I
    can reach, my k best (empty: I cannot take any; `reason` says why)."""

    TYPE = "batch-bid"
    PERFORMATIVES = ("propose",)
    batch_id: AuctionId
    times: Annotated[tuple[PickupTime, ...], msgspec.Meta(max_length=64)] = ()
    reason: Annotated[str, msgspec.Meta(max_length=500)] = ""


class VehicleBid(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    vehicle: Jid
    times: Annotated[tuple[PickupTime, ...], msgspec.Meta(max_length=64)]


class BatchGroupBids(Body):
    """Proxy -> AuctionManager: its group's batch bids merged in one message (members that
    did not bid in time are left out)."""

    TYPE = "batch-group-bids"
    PERFORMATIVES = ("propose",)
    batch_id: AuctionId
    bids: Annotated[tuple[VehicleBid, ...], msgspec.Meta(max_length=1024)] = ()


class BatchAward(Body):
    """AuctionManager -> Vehicle: the batch's clearing gives you this passenger; confirm
    (`award-confirmed`, `award-declined`, with the request id as auction id)."""

    TYPE = "batch-award"
    PERFORMATIVES = ("accept-proposal",)
    batch_id: AuctionId
    ride: BatchRide
    price: NonNeg = 0.0  # what the batch's law pays the winner (laws/batch.py), bid units


class ServedRide(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    request_id: AuctionId
    vehicle: Jid
    trips: Count = 0  # the vehicle's completed trips when it took the ride


class BatchClosed(Body):
    """AuctionManager -> MainManager: the batch is cleared; rides not in `served` wait for
    the next batch."""

    TYPE = "batch-closed"
    PERFORMATIVES = ("inform",)
    batch_id: AuctionId
    served: Annotated[tuple[ServedRide, ...], msgspec.Meta(max_length=1024)] = ()


# --- direct dispatch (policies other than auction, fleetbid/policies) --------------------------


class Dispatch(Body):
    """MainManager -> Vehicle: the policy gave you this passenger; drive there."""

    TYPE = "dispatch"
    PERFORMATIVES = ("request",)
    auction_id: AuctionId  # the request id, as for auctions
    passenger: Jid
    pickup: NodeId
    dropoff: NodeId


class DispatchConfirmed(Body):
    """Vehicle -> MainManager: on my way (`eta_s` from my node to the pickup)."""

    TYPE = "dispatch-confirmed"
    PERFORMATIVES = ("agree",)
    auction_id: AuctionId
    eta_s: NonNeg
    trips: Annotated[int, msgspec.Meta(ge=0)] = 0


class DispatchDeclined(Body):
    """Vehicle -> MainManager: I am not idle (the registry was stale); ask someone else."""

    TYPE = "dispatch-declined"
    PERFORMATIVES = ("refuse",)
    auction_id: AuctionId
    reason: Reason


# --- errors ---------------------------------------------------------------------------------


class NotUnderstood(Body):
    """Any agent -> sender of a message it could not parse or did not expect."""

    TYPE = "not-understood"
    PERFORMATIVES = ("not-understood",)
    reason: Reason
    in_reply_to: Annotated[str, msgspec.Meta(max_length=64)] = ""


class Refused(Body):
    """Any agent -> sender of a well-formed message it will not act on (unknown auction,
    unknown sender...)."""

    TYPE = "refused"
    PERFORMATIVES = ("refuse",)
    reason: Reason
    in_reply_to: Annotated[str, msgspec.Meta(max_length=64)] = ""
