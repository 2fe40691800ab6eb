"""A vehicle's certificate: asked for at start, checked, installed in its controller, renewed."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from spade.behaviour import OneShotBehaviour
from spade.message import Message

from fleetbid.behaviours.base import Rejected, sender_of
from fleetbid.laws import certificates
from fleetbid.protocol import codec
from fleetbid.protocol import law_messages as lm
from fleetbid.protocol import messages as m

log = logging.getLogger("fleetbid.laws")
RENEW_AT = 0.8  # of the lifetime


class RequestCertificate(OneShotBehaviour):
    def __init__(self, renew: bool = False) -> None:
        super().__init__()
        self.renew = renew

    async def run(self) -> None:
        agent = self.agent
        request = lm.CertificateRequest(renew=self.renew)
        await agent.send(codec.encode(agent.directory.authority, request, ""), self)


def certificate_handlers(bidding: Any) -> dict[type[m.Body], Any]:
    async def on_issued(msg: Message, body: lm.CertificateIssued) -> None:
        agent = bidding.agent
        controller = agent.controller
        if sender_of(msg) != agent.directory.authority:
            raise Rejected(f"{sender_of(msg)} is not the certification authority")
        cert = body.certificate
        problem = certificates.problem(cert, controller.authority_key, str(agent.jid.bare),
                                       agent.world.clock.now(), controller.revoked)
        if problem is not None:
            raise Rejected(problem)
        controller.certificate = cert
        if controller.book.default.certification.renew:
            delay = RENEW_AT * (cert.expires_at - cert.issued_at)
            loop = asyncio.get_running_loop()
            loop.call_later(agent.world.clock.wall_delay(delay),
                            lambda: agent.add_behaviour(RequestCertificate(renew=True)))

    async def on_revoked(msg: Message, body: lm.Revoked) -> None:
        # The controller already dropped the right to bid (it keeps the revocation).
        if sender_of(msg) != bidding.agent.directory.authority:
            raise Rejected(f"{sender_of(msg)} is not the certification authority")
        log.warning("%s: certificate revoked: %s", bidding.agent.name, body.reason)

    return {lm.CertificateIssued: on_issued, lm.Revoked: on_revoked}
