"""Every message fleetbid agents exchange: one typed schema per message type, and the codec.

A message is a SPADE message whose metadata carries the FIPA-ACL envelope
(`performative`, `protocol`, `ontology`, `conversation` = auction id) plus `type`, the
name of the body schema below. Bodies are JSON objects decoded and validated by msgspec
(see docs/decisions.md for why msgspec): unknown fields, missing fields, wrong types and
out-of-range numbers are rejected before any handler sees them.
"""

from __future__ import annotations

import itertools
import math
import secrets
from typing import Annotated, Any, ClassVar

import msgspec
from spade.message import Message

PROTOCOL = "fleetbid-auction"
ONTOLOGY = "fleetbid"

NodeId = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Jid = Annotated[str, msgspec.Meta(min_length=3, max_length=256, pattern=r"^[^@\s]+@[^@\s]+$")]
AuctionId = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
NonNeg = Annotated[float, msgspec.Meta(ge=0)]
Positive = Annotated[float, msgspec.Meta(gt=0)]
Reason = Annotated[str, msgspec.Meta(max_length=500)]


class Body(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """Base of every body. `TYPE` names the schema; `PERFORMATIVES` are those it may travel with."""

    TYPE: ClassVar[str]
    PERFORMATIVES: ClassVar[tuple[str, ...]]

    def __post_init__(self) -> None:
        # JSON has no NaN/inf, but bodies built in code never went through JSON: check here.
        for name in self.__struct_fields__:
            value = getattr(self, name)
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"{name} must be finite")


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


class Participation(Body):
    """MainManager -> AuctionManager: a vehicle's participation request, forwarded while the
    auction still waits for bidders."""

    TYPE = "participation"
    PERFORMATIVES = ("propagate",)
    auction_id: AuctionId
    vehicle: Jid
    node: NodeId


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


# --- auction manager -> vehicles (admission) ------------------------------------------------


class AdmissionRefused(Body):
    """AuctionManager -> Vehicle: you may not bid in this auction, and why."""

    TYPE = "admission-refused"
    PERFORMATIVES = ("refuse",)
    auction_id: AuctionId
    reason: Reason


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


class Lost(Body):
    """Proxy (or AuctionManager) -> Vehicle: your bid lost."""

    TYPE = "lost"
    PERFORMATIVES = ("reject-proposal",)
    auction_id: AuctionId


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


SCHEMAS: dict[str, type[Body]] = {
    cls.TYPE: cls
    for cls in (
        RideRequest, RideAssigned, RideUnserved, PickedUp, VehicleAvailable, OpenAuction,
        Participation, AuctionPhase, AuctionClosed, AdmissionRefused, GroupCall, CallForBids,
        Bid, BidDeclined, GroupBest, BidReceived, Award, AwardConfirmed, AwardDeclined,
        AuctionResult, Lost, NotUnderstood, Refused, Dispatch, DispatchConfirmed,
        DispatchDeclined,
    )
}
# --- law-governed auctions (docs/laws.md): rounds, certificates, audit, complaints ----------

Serial = Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{32}$")]
LawHash = Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{64}$")]


class EnglishRound(Body):
    """AuctionManager -> Vehicle: raise to at least `minimum` (a `bid`) or drop out
    (`bid-declined`). `leader` holds the standing bid."""

    TYPE = "english-round"
    PERFORMATIVES = ("cfp",)
    auction_id: AuctionId
    pickup: NodeId
    n: Annotated[int, msgspec.Meta(ge=1)]
    round: Annotated[int, msgspec.Meta(ge=1)]
    standing: NonNeg
    minimum: NonNeg
    deadline: NonNeg
    leader: Jid | None = None


class Outbid(Body):
    """AuctionManager -> Vehicle: a better raise now leads the English auction."""

    TYPE = "outbid"
    PERFORMATIVES = ("inform",)
    auction_id: AuctionId
    standing: NonNeg
    leader: Jid


class DutchTick(Body):
    """AuctionManager -> Vehicle: accept this clock value (a `bid` of `price`) or wait
    (`bid-declined`)."""

    TYPE = "dutch-tick"
    PERFORMATIVES = ("cfp",)
    auction_id: AuctionId
    pickup: NodeId
    n: Annotated[int, msgspec.Meta(ge=1)]
    tick: Annotated[int, msgspec.Meta(ge=0)]
    price: NonNeg
    deadline: NonNeg


class Certificate(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """Signed by the certification authority (Ed25519 over the fields but `signature`)."""

    subject: Jid
    issuer: Jid
    serial: Serial
    seats: Annotated[int, msgspec.Meta(ge=1, le=64)]
    wheelchair: bool
    issued_at: NonNeg  # simulated seconds
    expires_at: NonNeg
    signature: Annotated[str, msgspec.Meta(max_length=128)] = ""


class CertificateRequest(Body):
    """Vehicle -> CA: certify me (again, to renew)."""

    TYPE = "certificate-request"
    PERFORMATIVES = ("request",)
    renew: bool = False


class CertificateIssued(Body):
    """CA -> Vehicle: your certificate."""

    TYPE = "certificate-issued"
    PERFORMATIVES = ("inform",)
    certificate: Certificate


class Revoke(Body):
    """ComplaintsAgent -> CA: revoke (and never renew) this subject's certificates."""

    TYPE = "revoke"
    PERFORMATIVES = ("request",)
    subject: Jid
    reason: Reason


class Revoked(Body):
    """CA -> the subject, the AuctionManagers and proxies, the ComplaintsAgent."""

    TYPE = "revoked"
    PERFORMATIVES = ("inform",)
    subject: Jid
    reason: Reason
    serials: tuple[Serial, ...] = ()


class AuditCopy(Body):
    """A controller -> Auditor: a copy of a message its law names, as it was sent."""

    TYPE = "audit-copy"
    PERFORMATIVES = ("inform",)
    auction_id: AuctionId
    law: LawHash
    kind: Annotated[str, msgspec.Meta(max_length=64)]
    performative: Annotated[str, msgspec.Meta(max_length=32)]
    sender: Jid
    receiver: Jid
    body: Annotated[str, msgspec.Meta(max_length=65536)]
    at: NonNeg  # simulated seconds at the sender


class AuditEntry(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    seq: Annotated[int, msgspec.Meta(ge=1)]
    law: LawHash
    kind: str
    performative: str
    sender: Jid
    receiver: Jid
    body: str
    at: NonNeg


class AuditQuery(Body):
    """Anyone -> Auditor: the record of one auction."""

    TYPE = "audit-query"
    PERFORMATIVES = ("query-ref",)
    auction_id: AuctionId


class AuditRecord(Body):
    """Auditor -> asker: every copy stored for the auction, in arrival order."""

    TYPE = "audit-record"
    PERFORMATIVES = ("inform",)
    auction_id: AuctionId
    entries: tuple[AuditEntry, ...] = ()


class Complaint(Body):
    """Anyone -> ComplaintsAgent: `no-show` (the winner never arrived) or `shill` (the
    passenger's identity bid in its own auction)."""

    TYPE = "complaint"
    PERFORMATIVES = ("request",)
    auction_id: AuctionId
    reason: Annotated[str, msgspec.Meta(pattern=r"^(no-show|shill)$")]
    note: Reason = ""


class ComplaintDecision(Body):
    """ComplaintsAgent -> complainant: upheld or rejected, and why."""

    TYPE = "complaint-decision"
    PERFORMATIVES = ("inform",)
    auction_id: AuctionId
    upheld: bool
    reason: Reason
    offender: Jid | None = None
    revoked: bool = False


SCHEMAS.update({
    cls.TYPE: cls
    for cls in (
        EnglishRound, Outbid, DutchTick, CertificateRequest, CertificateIssued, Revoke, Revoked,
        AuditCopy, AuditQuery, AuditRecord, Complaint, ComplaintDecision,
    )
})
_DECODERS = {name: msgspec.json.Decoder(cls) for name, cls in SCHEMAS.items()}
_ENCODER = msgspec.json.Encoder()
MAX_BODY_BYTES = 1024 * 1024  # an open-auction lists every idle vehicle of a cluster


# Every message carries a unique id ("mid"): receivers drop exact duplicates (a replicated
# AuctionManager's new leader re-sends its recent outputs with their original ids).
_MID_PREFIX = secrets.token_hex(4)
_MID_COUNTER = itertools.count()


def new_mid() -> str:
    return f"{_MID_PREFIX}.{next(_MID_COUNTER)}"


class ProtocolError(Exception):
    """A message that cannot be understood: answered with `not-understood`."""


def encode(
    to: str, body: Body, conversation: str | None = None, performative: str = "",
    mid: str | None = None,
) -> Message:
    """Build the SPADE message for `body` (performative defaults to the schema's first)."""
    performative = performative or body.PERFORMATIVES[0]
    if performative not in body.PERFORMATIVES:
        raise ValueError(f"{body.TYPE} cannot travel as {performative}")
    conv = conversation if conversation is not None else getattr(body, "auction_id", "") or ""
    metadata = {
        "performative": performative,
        "protocol": PROTOCOL,
        "ontology": ONTOLOGY,
        "conversation": conv,
        "type": body.TYPE,
        "mid": mid or new_mid(),
    }
    return Message(to=to, body=_ENCODER.encode(body).decode(), metadata=metadata)


def decode(msg: Message) -> Body:
    """Validate envelope and body; raise ProtocolError with a reason a human can act on."""
    kind = msg.get_metadata("type") or ""
    protocol = msg.get_metadata("protocol")
    if protocol != PROTOCOL:
        raise ProtocolError(f"unknown protocol {protocol!r}")
    if kind not in SCHEMAS:
        raise ProtocolError(f"unknown message type {kind!r}")
    schema = SCHEMAS[kind]
    performative = msg.get_metadata("performative") or ""
    if performative not in schema.PERFORMATIVES:
        raise ProtocolError(f"{kind} cannot travel as performative {performative!r}")
    raw = (msg.body or "").encode()
    if len(raw) > MAX_BODY_BYTES:
        raise ProtocolError(f"body of {len(raw)} bytes exceeds {MAX_BODY_BYTES}")
    try:
        body = _DECODERS[kind].decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:
        raise ProtocolError(f"invalid {kind} body: {exc}") from None
    conv = msg.get_metadata("conversation") or ""
    auction_id = getattr(body, "auction_id", None)
    if auction_id is not None and conv != auction_id:
        raise ProtocolError(f"conversation {conv!r} does not match auction_id {auction_id!r}")
    return body


def to_dict(body: Body) -> dict[str, Any]:
    """The body as plain JSON-able data (for traces and logs)."""
    return msgspec.to_builtins(body)
