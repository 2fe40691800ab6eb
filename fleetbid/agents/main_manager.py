"""MainManager: the registry of live auctions; gives each request an AuctionManager of the
pool (one auction per AuctionManager at a time). Under --policy batch-auction, the batch
registry: one batch per cluster and tick, each on an AuctionManager of the pool."""

from __future__ import annotations

from fleetbid.agents.fleet_agent import FleetAgent
from fleetbid.behaviours.batch_registry import BatchRegistryBehaviour
from fleetbid.behaviours.demand import DemandAnnouncer, DemandBoard
from fleetbid.behaviours.dispatch import DispatchBehaviour
from fleetbid.behaviours.liveness import Liveness
from fleetbid.behaviours.registry import RegistryBehaviour
from fleetbid.core.roles import Role
from fleetbid.policies.reposition import DemandWindow


class MainManagerAgent(FleetAgent):
    ROLE = Role.MAIN_MANAGER
    BEHAVIOURS = (RegistryBehaviour, DispatchBehaviour, BatchRegistryBehaviour, DemandAnnouncer)
    demand_board: DemandBoard | None = None  # set by the worker under --reposition

    async def setup(self) -> None:
        # --reposition: the recent requests, announced with the idle supply every tick.
        self.demand: DemandWindow | None = None
        # batch-auction: the agents' batch auction (behaviours/batch_registry.py); any other
        # policy but auction: the MainManager dispatches directly (behaviours/dispatch.py).
        policy = self.world.config.policy
        self.registry: RegistryBehaviour | DispatchBehaviour | BatchRegistryBehaviour = (
            RegistryBehaviour() if policy == "auction"
            else BatchRegistryBehaviour() if policy == "batch-auction"
            else DispatchBehaviour()
        )
        self.add_behaviour(self.registry)
        self.liveness = Liveness(self.registry, self.fleet)
        if self.replicate is not None:  # a replica host's copy: inputs go through the group
            self.replicate(self.registry)
        elif self.client is not None:  # a vehicle whose session ends leaves the idle pool
            self.liveness.attach(self.client)
        if self.world.config.reposition:
            self.demand = DemandWindow()
            self.add_behaviour(DemandAnnouncer())

    def control_window(self) -> int:
        """Every queued and running request's law (a passenger's chosen law must outlive
        its wait in the queue), and as many ended ones again."""
        return 2 * (self.world.config.queue_limit + len(self.directory.auction_managers)) \
            + super().control_window()

    @property
    def auction_managers(self) -> tuple[str, ...]:
        return self.directory.auction_managers
