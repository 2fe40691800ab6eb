"""FleetAgent: what every fleetbid agent knows besides its XMPP identity."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fleetbid.platform.world import World
from fleetbid.platform.xmpp_agent import XmppAgent
from fleetbid.platform.xmpp_server import XmppEndpoint


@dataclass(frozen=True)
class Directory:
    """The population's well-known JIDs (agents check senders against these)."""

    main_manager: str
    auction_managers: tuple[str, ...]
    proxies: tuple[str, ...]
    vehicles: frozenset[str]


class FleetAgent(XmppAgent):
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
