"""FleetAgent: what every fleetbid agent knows besides its XMPP identity."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from spade.message import Message

from fleetbid.core.directory import Directory
from fleetbid.core.world import World
from fleetbid.platform.xmpp_agent import XmppAgent
from fleetbid.platform.xmpp_server import XmppEndpoint
from fleetbid.protocol import codec
from fleetbid.protocol import messages as m


class FleetAgent(XmppAgent):
    ROLE = ""  # the role the law controller enforces ("" : no role restriction)

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
        self.bids_acknowledged: set[str] = set()
        # Set on replica hosts: turns the role's behaviour into a replica (behaviours.ordered).
        self.replicate: Callable[[Any], None] | None = None
        self.controller = make_controller(self)

    async def send(self, msg: Message, behaviour: Any) -> None:
        """Every send passes the law controller: blocked, or forwarded (plus audit copy)."""
        reason, copy = self.controller.on_send(msg)
        if reason is not None:
            await blocked_send(self, msg, reason, behaviour)
            return
        await super().send(msg, behaviour)
        if copy is not None:
            await super().send(codec.encode(copy.auditor, copy.body), behaviour)


def make_controller(agent: FleetAgent) -> Any:
    from fleetbid.laws.book import book_for  # laws import the agents' messages: import late
    from fleetbid.laws.controller import Controller

    directory = agent.directory
    return Controller(str(agent.jid.bare), agent.ROLE, book_for(agent.world.config.law),
                      directory.services(), directory.authority_key, agent.world.clock.now)


async def blocked_send(agent: FleetAgent, msg: Message, reason: str, behaviour: Any) -> None:
    """The controller blocked a send: log it; a blocked bid becomes a decline with the reason
    (so the auction does not wait for it)."""
    import logging

    logging.getLogger("fleetbid.laws").warning("%s: blocked %s to %s: %s", agent.name,
                                               msg.get_metadata("type"), msg.to, reason)
    if msg.get_metadata("type") == m.Bid.TYPE:
        conversation = msg.get_metadata("conversation") or ""
        declined = m.BidDeclined(auction_id=conversation, reason=f"blocked by law: {reason}"[:500])
        await agent.send(codec.encode(str(msg.to), declined), behaviour)
