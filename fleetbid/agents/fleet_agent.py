"""FleetAgent: what every fleetbid agent knows besides its XMPP identity, and what it may send.

An agent class lists the behaviours it runs (`BEHAVIOURS`); each behaviour declares the body
types it sends (`SENDS`). The agent checks at construction that the laws it runs under let
its role send all of them, and refuses, with a TypeError, to send anything undeclared: a
forgotten declaration fails the first test that builds or drives the role, not silently
at run time.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from typing import Any, ClassVar

from spade.message import Message

from fleetbid.core.directory import Directory
from fleetbid.core.recent import RecentSet
from fleetbid.core.world import World
from fleetbid.platform.xmpp_agent import XmppAgent
from fleetbid.platform.xmpp_server import XmppEndpoint
from fleetbid.protocol import codec
from fleetbid.protocol import law_messages as lm
from fleetbid.protocol import messages as m

# Sent by any agent without a declaration: error replies (ProtocolBehaviour) and the copies
# its law controller files with the auditor (below).
UNDECLARED_KINDS = frozenset({m.NotUnderstood.TYPE, m.Refused.TYPE, lm.AuditBatch.TYPE})
OUTCOME_KINDS = frozenset({m.RideAssigned.TYPE, m.RideUnserved.TYPE})  # a ride's end, told


class FleetAgent(XmppAgent):
    ROLE = ""  # the role the law controller enforces
    BEHAVIOURS: ClassVar[tuple[type, ...]] = ()  # every behaviour class this agent may run

    @classmethod
    def sends(cls) -> frozenset[type[m.Body]]:
        """The body types this agent's behaviours declare they send."""
        declared: set[type[m.Body]] = set()
        for behaviour in cls.BEHAVIOURS:
            declared |= getattr(behaviour, "SENDS", frozenset())
        return frozenset(declared)

    @classmethod
    def send_kinds(cls) -> frozenset[str]:
        return _send_kinds(cls)

    def __init__(
        self, name: str, endpoint: XmppEndpoint, world: World, directory: Directory,
        password: str | None = None,
    ) -> None:
        super().__init__(name, endpoint, password)
        self.world = world
        self.directory = directory
        self.manager_jid = directory.main_manager
        self.managers = frozenset(directory.auction_managers)
        self.proxies = directory.proxies
        self.fleet = directory.vehicles
        # Auctions whose replicated manager confirmed our bid is in its log (invariant check).
        # Both records keep the newest INVARIANT_WINDOW entries: a fleet runs for days.
        self.bids_acknowledged: RecentSet[str] = RecentSet()
        # (ride id, message id) of every outcome this agent told a passenger: the run checks
        # no ride got two (a new leader's re-sent copy keeps its id and counts once).
        self.outcomes_told: RecentSet[tuple[str, str]] = RecentSet()
        # Set on replica hosts: turns the role's behaviour into a replica (behaviours.ordered).
        self.replicate: Callable[[Any], None] | None = None
        self.controller = make_controller(self)
        self.check_sends()

    def control_window(self) -> int:
        """How many auctions' law-control state this agent keeps (laws/controller.py)."""
        from fleetbid.laws.controller import CONTROL_WINDOW  # laws import agents' messages

        return CONTROL_WINDOW

    def check_sends(self) -> None:
        """At start-up: the law must let this role send what its behaviours declare."""
        problems = [p for kind in sorted(self.send_kinds())
                    if (p := self.controller.role_problem(kind)) is not None]
        if problems:
            raise TypeError(f"{type(self).__name__}: " + "; ".join(problems))

    async def send(self, msg: Message, behaviour: Any) -> None:
        """Every send passes the law controller: blocked, or forwarded."""
        kind = msg.get_metadata("type") or ""
        if kind not in self.send_kinds() and kind not in UNDECLARED_KINDS:
            raise TypeError(f"{type(self).__name__} sends {kind!r}, which none of its "
                            "BEHAVIOURS declares in SENDS")
        reason = self.controller.on_send(msg)
        if reason is not None:
            await blocked_send(self, msg, reason, behaviour)
            return
        if kind in OUTCOME_KINDS:
            self.outcomes_told.add((msg.get_metadata("conversation") or "",
                                    msg.get_metadata("mid") or ""))
        await super().send(msg, behaviour)

    async def stop(self) -> None:
        """File the audit copies not filed yet, then stop. Not on a replica of a replicated
        role: its copies are filed by the group's leader, through the ordered outputs."""
        sender = next(iter(self.behaviours), None)  # in-process delivery needs a behaviour
        if self.replicate is None and self.is_alive() and sender is not None:
            for batch in self.controller.take_all_audits():
                with contextlib.suppress(Exception):
                    await super().send(codec.encode(batch.auditor, batch.body), sender)
        await super().stop()


@functools.cache  # once per class: `send` checks every message against it
def _send_kinds(agent_class: type[FleetAgent]) -> frozenset[str]:
    return frozenset(body.TYPE for body in agent_class.sends())


def make_controller(agent: FleetAgent) -> Any:
    from fleetbid.laws.book import book_for  # laws import the agents' messages: import late
    from fleetbid.laws.controller import Controller

    directory = agent.directory
    # The clock is looked up at each call: a worker replaces it on `go`, after the agents
    # exist, and certificates must expire on the run's clock, not on the one at start-up.
    return Controller(str(agent.jid.bare), agent.ROLE, book_for(agent.world.config.law),
                      directory.services(), directory.authority_key,
                      lambda: agent.world.clock.now(), role_of=directory.role_of,
                      max_auctions=agent.control_window())


async def blocked_send(agent: FleetAgent, msg: Message, reason: str, behaviour: Any) -> None:
    """The controller blocked a send: log it; a blocked bid becomes a decline with the reason
    (so the auction does not wait for it)."""
    import logging

    logging.getLogger("fleetbid.laws").warning("%s: blocked %s to %s: %s", agent.name,
                                               msg.get_metadata("type"), msg.to, reason)
    conversation = msg.get_metadata("conversation") or ""
    why = f"blocked by law: {reason}"[:500]
    if msg.get_metadata("type") == m.Bid.TYPE:
        declined: m.Body = m.BidDeclined(auction_id=conversation, reason=why)
    elif msg.get_metadata("type") == m.BatchBid.TYPE:
        declined = m.BatchBid(batch_id=conversation, reason=why)  # no times: a decline
    else:
        return
    await agent.send(codec.encode(str(msg.to), declined, conversation), behaviour)
