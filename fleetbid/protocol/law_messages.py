"""The messages of law-governed auctions (docs/laws.md): rounds, certificates, audit,
complaints."""

from __future__ import annotations

from typing import Annotated

import msgspec

from fleetbid.protocol.schema import AuctionId, Body, Jid, NodeId, NonNeg, Reason

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


class AuditCopy(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """A receiver's copy of a message its law names, as it arrived (filed in an AuditBatch)."""

    auction_id: AuctionId
    law: LawHash
    kind: Annotated[str, msgspec.Meta(max_length=64)]
    performative: Annotated[str, msgspec.Meta(max_length=32)]
    sender: Jid
    receiver: Jid
    body: Annotated[str, msgspec.Meta(max_length=65536)]
    at: NonNeg  # simulated seconds at the receiver, on receipt


class AuditBatch(Body):
    """A controller -> Auditor: its copies of the messages of one auction its agent received
    that the law names (the receiver's copies: what arrived, as it arrived), filed once the
    agent is done with them (docs/laws.md)."""

    TYPE = "audit-batch"
    PERFORMATIVES = ("inform",)
    auction_id: AuctionId
    copies: Annotated[tuple[AuditCopy, ...], msgspec.Meta(min_length=1, max_length=256)]


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
    """Anyone -> ComplaintsAgent: `no-show` (the winner never arrived), `shill` (the
    passenger's identity bid in its own auction) or `clearing` (a batch auction, the id its
    batch's, was not cleared or priced by its law)."""

    TYPE = "complaint"
    PERFORMATIVES = ("request",)
    auction_id: AuctionId
    reason: Annotated[str, msgspec.Meta(pattern=r"^(no-show|shill|clearing)$")]
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
