"""AuctionManager: runs one auction at a time (MainManager keeps a pool of them started, so
opening an auction costs a message, not an XMPP login); under --policy batch-auction, one
batch at a time."""

from __future__ import annotations

from fleetbid.agents.fleet_agent import FleetAgent
from fleetbid.behaviours.auction import AuctionBehaviour
from fleetbid.behaviours.batch_auction import BatchAuctionBehaviour
from fleetbid.core.roles import Role


class AuctionManagerAgent(FleetAgent):
    ROLE = Role.AUCTION_MANAGER
    BEHAVIOURS = (AuctionBehaviour, BatchAuctionBehaviour)

    async def setup(self) -> None:
        batch = self.world.config.policy == "batch-auction"
        self.auction_behaviour: AuctionBehaviour | BatchAuctionBehaviour = (
            BatchAuctionBehaviour() if batch else AuctionBehaviour())
        self.add_behaviour(self.auction_behaviour)
        if self.replicate is not None:  # no await since add_behaviour: no message handled yet
            self.replicate(self.auction_behaviour)
