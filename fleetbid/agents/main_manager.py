"""MainManager: the registry of live auctions; gives each request an AuctionManager of the
pool (one auction per AuctionManager at a time)."""

from __future__ import annotations

from fleetbid.agents.fleet_agent import FleetAgent
from fleetbid.behaviours.dispatch import DispatchBehaviour
from fleetbid.behaviours.registry import RegistryBehaviour
from fleetbid.core.roles import Role


class MainManagerAgent(FleetAgent):
    ROLE = Role.MAIN_MANAGER
    BEHAVIOURS = (RegistryBehaviour, DispatchBehaviour)  # by the run's policy

    async def setup(self) -> None:
        # Any other policy: the MainManager dispatches directly (behaviours/dispatch.py).
        auction = self.world.config.policy == "auction"
        self.registry: RegistryBehaviour | DispatchBehaviour = (
            RegistryBehaviour() if auction else DispatchBehaviour()
        )
        self.add_behaviour(self.registry)
        if self.replicate is not None:  # a replica host's copy: inputs go through the group
            self.replicate(self.registry)

    @property
    def auction_managers(self) -> tuple[str, ...]:
        return self.directory.auction_managers
