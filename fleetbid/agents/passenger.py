"""PassengerPersonalAgent: one per request; asks for a ride and reports how it went."""

from __future__ import annotations

from collections.abc import Callable

from fleetbid.agents.fleet_agent import FleetAgent
from fleetbid.behaviours.passenger import RideBehaviour, RideOutcome
from fleetbid.core.directory import Directory
from fleetbid.core.roles import Role
from fleetbid.core.world import World
from fleetbid.platform.xmpp_server import XmppEndpoint


class PassengerAgent(FleetAgent):
    ROLE = Role.PASSENGER
    BEHAVIOURS = (RideBehaviour,)

    def __init__(
        self, name: str, endpoint: XmppEndpoint, world: World, directory: Directory,
        request_id: str, source: str, destination: str,
        on_outcome: Callable[[RideOutcome], None], at: float | None = None,
    ) -> None:
        super().__init__(name, endpoint, world, directory)
        self.request_id, self.source, self.destination = request_id, source, destination
        self.at = at  # simulated time to send the request (None: as soon as online)
        self.on_outcome = on_outcome

    async def setup(self) -> None:
        # Runs once connected: the ride request goes out as soon as the agent is online.
        self.add_behaviour(RideBehaviour())

    def ride_ended(self, outcome: RideOutcome) -> None:
        self.on_outcome(outcome)
