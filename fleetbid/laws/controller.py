"""The law controller: a layer under an agent's behaviours that enforces the laws it adopted.

Every message an agent sends passes `on_send` (in FleetAgent.send) and every message it
receives passes `on_receive` (in ProtocolBehaviour.handle, right after decoding). Using
only this agent's control state, the controller forwards or delivers the message, blocks it
with a reason (a blocked receipt is answered `refuse`), and keeps the receiver's copies of
what the law wants audited. The rules:

* an auction's messages carry its law's hash (metadata `law`, stamped here on send; a
  message without one is under the run's default law). The first one an agent sees adopts
  the law for that auction; a message under another hash, or under a law this agent does
  not know, is refused with the reason;
* each role sends only its part in the protocol (`laws/senders.py`: only vehicles bid,
  only managers and proxies award, only the CA issues certificates, ...): the sender's
  controller blocks anything else, and the receiver's refuses a message whose sender's role
  (from the run's directory) may not send it;
* a bid needs a token: a call (call-for-bids, english-round, dutch-tick) received in that
  auction. It cannot come from the auction's passenger (shill bidding), and under a law
  that requires certification it must carry (metadata `cert`) a certificate of the CA that
  is genuine, unexpired, unrevoked and shows the attributes the law requires;
* a message the law names for auditing is copied by its receiver (what arrived, as it
  arrived: the sender cannot choose what the record says it sent), and the copies of one
  auction go to the auditor in one `audit-batch` once the agent is done with them (`take_audit`).
"""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from spade.message import Message

from fleetbid.laws import certificates
from fleetbid.laws.book import LawBook
from fleetbid.laws.schema import AUCTION_KINDS, Law
from fleetbid.laws.senders import sender_problem
from fleetbid.protocol import law_messages as lm
from fleetbid.protocol import messages as m

log = logging.getLogger("fleetbid.laws")

CALLS = frozenset({m.CallForBids.TYPE, lm.EnglishRound.TYPE, lm.DutchTick.TYPE,
                   m.BatchCall.TYPE})
BIDS = frozenset({m.Bid.TYPE, m.BatchBid.TYPE})
ERRORS = frozenset({m.NotUnderstood.TYPE, m.Refused.TYPE})
MAX_AUCTIONS = 20000  # verified certificates kept per agent (oldest forgotten first)
# Auctions whose control state an agent keeps, oldest forgotten first. A bidder needs it only
# while an auction runs (a late message re-adopts its auction harmlessly); the MainManager
# keeps its whole queue's (agents/main_manager.py). It was 20,000 for every agent: 50
# vehicles each filling that for hours was most of the soak's worker growth (docs/soak.md).
CONTROL_WINDOW = 256

@dataclass
class AuctionControl:
    """This agent's control state for one auction under its adopted law."""

    law_hash: str
    law: Law
    passenger: str = ""
    tokens: int = 0  # calls to bid received, not yet used


MAX_PENDING_AUDITS = 64  # auctions whose copies wait for their batch (oldest filed first)


@dataclass
class Batch:
    """The receiver's copies of one auction, for the law's auditor."""

    auditor: str
    body: lm.AuditBatch


@dataclass
class Controller:
    me: str  # bare JID
    role: str
    book: LawBook
    services: dict[str, str]  # law agent name (auditor, ...) -> JID
    authority_key: str  # hex Ed25519 public key of the CA ("" when the run has none)
    now: Callable[[], float]
    chosen: str = ""  # hash a passenger starts its auctions under ("": the default law)
    # The role of a sender's bare JID (Directory.role_of); None only where no directory
    # exists (unit benches), and then receipts are not checked against roles.
    role_of: Callable[[str], str] | None = None
    auctions: OrderedDict[str, AuctionControl] = field(default_factory=OrderedDict)
    certificate: lm.Certificate | None = None
    revoked: set[str] = field(default_factory=set)  # serials the CA revoked
    revoked_subjects: set[str] = field(default_factory=set)
    # Certificates (as presented) whose signature was already verified: a vehicle presents
    # the same one with every bid, and Ed25519 verification dominates the controller's cost.
    verified: OrderedDict[str, lm.Certificate] = field(default_factory=OrderedDict)
    # Receiver's copies not yet filed, per auction; and batches ready to file at once (their
    # auction was pushed out by newer ones).
    audits: OrderedDict[str, list[lm.AuditCopy]] = field(default_factory=OrderedDict)
    overflow: list[Batch] = field(default_factory=list)
    max_auctions: int = CONTROL_WINDOW  # control states kept (see CONTROL_WINDOW)

    @property
    def certified(self) -> bool:
        return self.certificate_problem() is None

    def certificate_problem(self) -> str | None:
        if self.certificate is None:
            return f"{self.me} holds no certificate"
        if self.me in self.revoked_subjects:
            return f"the certificate of {self.me} was revoked"
        # Its signature was verified when it was installed (behaviours/vehicle.py).
        return certificates.problem(self.certificate, self.authority_key, self.me, self.now(),
                                    self.revoked, signature_checked=True)

    def choose(self, law: Law) -> None:
        """The law under which this agent starts auctions (a passenger's `--law`)."""
        self.chosen = self.book.add(law)

    def role_problem(self, kind: str) -> str | None:
        """Why the law does not let this agent's role send `kind` (None: it does)."""
        return sender_problem(self.role, kind)

    def law_for(self, auction_id: str) -> Law:
        control = self.auctions.get(auction_id)
        return control.law if control is not None else self.book.default

    # --- receipt ------------------------------------------------------------------------------

    def on_receive(self, msg: Message, body: m.Body) -> str | None:
        """None to deliver `body` to the behaviour, else the reason it is refused. (Once the
        behaviour has acted on it, `copy_received` keeps the receiver's audit copy.)"""
        kind = body.TYPE
        if self.role_of is not None:
            reason = sender_problem(self.role_of(str(msg.sender.bare)), kind)
            if reason is not None:
                return f"{msg.sender.bare}: {reason}"
        if isinstance(body, lm.Revoked):
            if str(msg.sender.bare) != self.services.get("certification-authority"):
                return f"{msg.sender.bare} is not the certification authority"
            self.revoked.update(body.serials)
            self.revoked_subjects.add(body.subject)
        conversation = msg.get_metadata("conversation") or ""
        if kind not in AUCTION_KINDS or not conversation:
            return None
        sender = str(msg.sender.bare)
        digest = msg.get_metadata("law") or self.book.default_hash
        control, reason = self.adopt(conversation, digest)
        if control is None:
            return reason
        passenger = msg.get_metadata("passenger") or ""
        if isinstance(body, m.RideRequest):
            passenger = sender
        elif isinstance(body, m.OpenAuction | m.Award):
            passenger = body.passenger
        if passenger and not control.passenger:
            control.passenger = passenger
        batch_id = getattr(body, "batch_id", conversation)
        if batch_id != conversation:
            return f"a message of batch {batch_id} sent in conversation {conversation}"
        if kind in BIDS and not is_decline(body):
            if sender == control.passenger:
                return f"shill bid: {sender} is the passenger of auction {conversation}"
            if control.law.eligibility.certified:
                return self.bid_certificate_problem(msg, sender, control.law)
        elif kind in CALLS:
            control.tokens += 1
        return None

    def adopt(self, conversation: str, digest: str) -> tuple[AuctionControl | None, str]:
        control = self.auctions.get(conversation)
        if control is not None:
            if control.law_hash != digest:
                return None, (f"auction {conversation} is governed by law "
                              f"{control.law_hash[:16]}, not {digest[:16]}")
            return control, ""
        law = self.book.get(digest)
        if law is None:
            return None, f"law {digest[:16]} is not one {self.me} adopted"
        control = self.auctions[conversation] = AuctionControl(digest, law)
        if len(self.auctions) > self.max_auctions:
            self.auctions.popitem(last=False)
        return control, ""

    def bid_certificate_problem(self, msg: Message, sender: str, law: Law) -> str | None:
        text = msg.get_metadata("cert")
        if not text:
            return f"law {law.name} requires a certificate and {sender} presented none"
        if not self.authority_key:
            return "this agent has no certification authority key to check certificates"
        cert = self.verified.get(text)
        if cert is None:
            try:
                cert = certificates.decode(text)
            except ValueError as exc:
                return str(exc)
            forged = certificates.signature_problem(cert, self.authority_key)
            if forged is not None:
                return forged
            self.verified[text] = cert
            if len(self.verified) > MAX_AUCTIONS:
                self.verified.popitem(last=False)
        if cert.subject in self.revoked_subjects:
            return f"the certificate of {cert.subject} was revoked"
        problem = certificates.problem(cert, self.authority_key, sender, self.now(), self.revoked,
                                       signature_checked=True)
        if problem is None:
            problem = attribute_problem(cert, law)
        return problem

    # --- audit --------------------------------------------------------------------------------

    def copy_received(self, msg: Message, body: m.Body) -> lm.AuditCopy | None:
        """Keep a copy of a received message the auction's law audits (the behaviour
        `discard`s it again if its handler refuses the message: a refused message changed
        nothing and is not part of the record)."""
        conversation = msg.get_metadata("conversation") or ""
        control = self.auctions.get(conversation)
        if control is None or body.TYPE not in control.law.audit.kinds:
            return None
        copy = lm.AuditCopy(
            auction_id=conversation, law=control.law_hash, kind=body.TYPE,
            performative=msg.get_metadata("performative") or "",
            sender=str(msg.sender.bare), receiver=self.me, body=(msg.body or "")[:65536],
            at=max(0.0, self.now()),
        )
        self.audits.setdefault(conversation, []).append(copy)
        self.audits.move_to_end(conversation)
        while len(self.audits) > MAX_PENDING_AUDITS:
            oldest = next(iter(self.audits))
            batch = self.take_audit(oldest)
            if batch is not None:
                self.overflow.append(batch)
        return copy

    def discard(self, copy: lm.AuditCopy) -> None:
        copies = self.audits.get(copy.auction_id)
        if copies and copy in copies:
            copies.remove(copy)

    def take_audit(self, conversation: str) -> Batch | None:
        """The copies of `conversation` waiting to be filed, as one batch (None: none)."""
        copies = self.audits.pop(conversation, None)
        control = self.auctions.get(conversation)
        if not copies or control is None:
            return None
        auditor = self.services.get(control.law.audit.auditor)
        if not auditor:
            log.warning("%s: law %s names auditor %r, unknown in this run", self.me,
                        control.law.name, control.law.audit.auditor)
            return None
        return Batch(auditor, lm.AuditBatch(auction_id=conversation, copies=tuple(copies)))

    def take_all_audits(self) -> list[Batch]:
        """Everything not yet filed (the agent stops)."""
        batches, self.overflow = self.overflow, []
        for conversation in list(self.audits):
            batch = self.take_audit(conversation)
            if batch is not None:
                batches.append(batch)
        return batches

    # --- sending ------------------------------------------------------------------------------

    def on_send(self, msg: Message) -> str | None:
        """The reason to block this send, or None. Stamps the law's hash (and the passenger,
        once known) on an auction's messages."""
        kind = msg.get_metadata("type") or ""
        conversation = msg.get_metadata("conversation") or ""
        if kind in ERRORS or kind == lm.AuditBatch.TYPE:
            control = self.auctions.get(conversation)
            if control is not None:
                msg.set_metadata("law", control.law_hash)
            return None
        reason = self.role_problem(kind)
        if reason is not None:
            return reason
        if kind not in AUCTION_KINDS or not conversation:
            return None
        control = self.auctions.get(conversation)
        if control is None:
            control, reason = self.adopt(conversation, self.chosen or self.book.default_hash)
            if control is None:
                return reason
        if kind in BIDS and not sends_decline(msg):
            reason = self.may_bid(conversation, control)
            if reason is not None:
                return reason
            control.tokens -= 1
            if control.law.eligibility.certified and self.certificate is not None:
                msg.set_metadata("cert", certificates.encode(self.certificate))
        msg.set_metadata("law", control.law_hash)
        if control.passenger:
            msg.set_metadata("passenger", control.passenger)
        return None

    def may_bid(self, conversation: str, control: AuctionControl) -> str | None:
        if self.me == control.passenger:
            return f"shill bid: {self.me} is the passenger of auction {conversation}"
        if control.tokens <= 0:
            return f"{self.me} was not called to bid in auction {conversation}"
        if control.law.eligibility.certified:
            problem = self.certificate_problem()
            if problem is None and self.certificate is not None:
                problem = attribute_problem(self.certificate, control.law)
            if problem is not None:
                return f"law {control.law.name} requires a valid certificate: {problem}"
        return None


def is_decline(body: m.Body) -> bool:
    """A batch bid listing no pickup time declines the batch: no token or certificate needed
    (it is what a vehicle sends when its own bid is blocked, or when it is busy)."""
    return isinstance(body, m.BatchBid) and not body.times


def sends_decline(msg: Message) -> bool:
    if msg.get_metadata("type") != m.BatchBid.TYPE:
        return False
    try:
        body = json.loads(msg.body or "{}")
    except ValueError:
        return False
    return isinstance(body, dict) and not body.get("times")


def attribute_problem(cert: lm.Certificate, law: Law) -> str | None:
    wanted = law.eligibility
    if cert.seats < wanted.min_seats:
        return f"{cert.subject} has {cert.seats} seats, law {law.name} requires {wanted.min_seats}"
    if wanted.wheelchair and not cert.wheelchair:
        return f"{cert.subject} is not wheelchair accessible, law {law.name} requires it"
    return None
