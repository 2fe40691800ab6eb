"""The three agents a law names: CertificationAuthority, Auditor and ComplaintsAgent."""

from __future__ import annotations

import logging
from typing import ClassVar

from spade.message import Message

from fleetbid.agents.fleet_agent import FleetAgent
from fleetbid.behaviours.base import ProtocolBehaviour, Rejected, sender_of
from fleetbid.core.directory import Directory
from fleetbid.core.roles import Role
from fleetbid.core.text import loggable
from fleetbid.core.world import World
from fleetbid.laws import certificates
from fleetbid.laws.audit_store import AuditStore
from fleetbid.laws.decisions import decide
from fleetbid.platform.xmpp_server import XmppEndpoint
from fleetbid.protocol import law_messages as lm
from fleetbid.protocol.schema import Body

log = logging.getLogger("fleetbid.laws")


# --- certification authority ------------------------------------------------------------------


class AuthorityBehaviour(ProtocolBehaviour):
    SENDS: ClassVar[frozenset[type[Body]]] = frozenset({lm.CertificateIssued, lm.Revoked})

    async def on_start(self) -> None:
        self.handlers = {lm.CertificateRequest: self.on_request, lm.Revoke: self.on_revoke}
        self.serials: dict[str, list[str]] = {}  # subject -> serials issued
        self.revoked: dict[str, str] = {}  # subject -> reason

    async def on_request(self, msg: Message, body: lm.CertificateRequest) -> None:
        agent: AuthorityAgent = self.agent
        subject = sender_of(msg)
        if subject not in agent.fleet:
            raise Rejected(f"{subject} is not a vehicle of this fleet")
        if subject in self.revoked:
            raise Rejected(f"the certificate of {subject} was revoked: {self.revoked[subject]}")
        rules = agent.controller.book.default.certification
        if body.renew and not rules.renew:
            raise Rejected("the law does not let certificates be renewed")
        cert = certificates.issue(agent.secret, subject, str(agent.jid.bare),
                                  agent.world.clock.now(), rules.lifetime_s)
        self.serials.setdefault(subject, []).append(cert.serial)
        await self.tell(subject, lm.CertificateIssued(certificate=cert))

    async def on_revoke(self, msg: Message, body: lm.Revoke) -> None:
        agent: AuthorityAgent = self.agent
        if sender_of(msg) != agent.directory.complaints:
            raise Rejected(f"{sender_of(msg)} is not the complaints agent")
        self.revoked[body.subject] = body.reason
        note = lm.Revoked(subject=body.subject, reason=body.reason,
                         serials=tuple(self.serials.get(body.subject, ())))
        told = {body.subject, sender_of(msg), *agent.directory.auction_managers,
                *agent.directory.proxies}
        for jid in sorted(told):
            await self.tell(jid, note)
        log.warning("%s revoked %s: %s", agent.name, loggable(body.subject), loggable(body.reason))


class AuthorityAgent(FleetAgent):
    ROLE = Role.AUTHORITY
    BEHAVIOURS = (AuthorityBehaviour,)

    def __init__(self, name: str, endpoint: XmppEndpoint, world: World, directory: Directory,
                 secret: str) -> None:
        super().__init__(name, endpoint, world, directory)
        self.secret = secret  # hex Ed25519 private key

    async def setup(self) -> None:
        self.add_behaviour(AuthorityBehaviour())


# --- auditor ----------------------------------------------------------------------------------


class AuditorBehaviour(ProtocolBehaviour):
    SENDS: ClassVar[frozenset[type[Body]]] = frozenset({lm.AuditRecord})

    async def on_start(self) -> None:
        self.handlers = {lm.AuditBatch: self.on_batch, lm.AuditQuery: self.on_query}

    async def on_batch(self, msg: Message, body: lm.AuditBatch) -> None:
        # A controller files the copies of what its own agent received, one auction a batch:
        # check all before storing any (a bad batch changes nothing).
        filer = sender_of(msg)
        for copy in body.copies:
            if copy.receiver != filer:
                raise Rejected(f"{filer} cannot file a copy of a message to {copy.receiver}")
            if copy.auction_id != body.auction_id:
                raise Rejected(f"a copy of auction {copy.auction_id} in the batch of "
                               f"{body.auction_id}")
        for copy in body.copies:
            self.agent.store.append(copy)

    async def on_query(self, msg: Message, body: lm.AuditQuery) -> None:
        entries = self.agent.store.record(body.auction_id)
        await self.tell(sender_of(msg), lm.AuditRecord(auction_id=body.auction_id,
                                                      entries=entries))


class AuditorAgent(FleetAgent):
    ROLE = Role.AUDITOR
    BEHAVIOURS = (AuditorBehaviour,)

    def __init__(self, name: str, endpoint: XmppEndpoint, world: World,
                 directory: Directory) -> None:
        super().__init__(name, endpoint, world, directory)
        self.store = AuditStore(world.config.audit)

    async def setup(self) -> None:
        self.add_behaviour(AuditorBehaviour())

    async def stop(self) -> None:
        await super().stop()
        # The head of the hash chain pins the whole record (`fleetbid audit verify`).
        log.info("%s: audit log %s ends at hash %s", self.name, self.store.path, self.store.head)
        self.store.close()


# --- complaints -------------------------------------------------------------------------------


class ComplaintsBehaviour(ProtocolBehaviour):
    SENDS: ClassVar[frozenset[type[Body]]] = frozenset({
        lm.AuditQuery, lm.Revoke, lm.ComplaintDecision,
    })

    async def on_start(self) -> None:
        self.handlers = {lm.Complaint: self.on_complaint, lm.AuditRecord: self.on_record}
        self.pending: dict[str, list[tuple[str, lm.Complaint]]] = {}

    async def on_complaint(self, msg: Message, body: lm.Complaint) -> None:
        auditor = self.agent.directory.auditor
        if not auditor:
            raise Rejected("this fleet has no auditor to check complaints against")
        waiting = self.pending.setdefault(body.auction_id, [])
        waiting.append((sender_of(msg), body))
        if len(waiting) == 1:
            await self.tell(auditor, lm.AuditQuery(auction_id=body.auction_id),
                            performative="query-ref")

    async def on_record(self, msg: Message, body: lm.AuditRecord) -> None:
        agent = self.agent
        if sender_of(msg) != agent.directory.auditor:
            raise Rejected(f"{sender_of(msg)} is not the auditor")
        waiting = self.pending.pop(body.auction_id, None)
        if waiting is None:
            raise Rejected(f"no complaint about {body.auction_id} is pending")
        for complainant, complaint in waiting:
            decision = decide(complaint.reason, body.auction_id, body.entries,
                              agent.world.clock.now(), agent.controller.book.get)
            revoke = decision.upheld and decision.offender is not None \
                and bool(agent.directory.authority)
            if revoke:
                assert decision.offender is not None
                await self.tell(agent.directory.authority, lm.Revoke(
                    subject=decision.offender, reason=f"{complaint.reason} in "
                                                      f"{body.auction_id}: {decision.reason}"[:500],
                ))
            await self.tell(complainant, lm.ComplaintDecision(
                auction_id=body.auction_id, upheld=decision.upheld, reason=decision.reason[:500],
                offender=decision.offender, revoked=revoke,
            ))


class ComplaintsAgent(FleetAgent):
    ROLE = Role.COMPLAINTS
    BEHAVIOURS = (ComplaintsBehaviour,)

    async def setup(self) -> None:
        self.add_behaviour(ComplaintsBehaviour())
