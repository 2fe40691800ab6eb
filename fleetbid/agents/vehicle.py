"""VehiclePersonalAgent: bids while idle, drives to the pickup and the destination when it wins."""

from __future__ import annotations

from fleetbid.agents.fleet_agent import FleetAgent
from fleetbid.behaviours.demand import DemandBoard
from fleetbid.behaviours.vehicle import (
    IDLE,
    REPOSITIONING,
    AnnounceBehaviour,
    BiddingBehaviour,
    Leg,
    RequestCertificate,
    TripBehaviour,
)
from fleetbid.core.directory import Directory
from fleetbid.core.recent import RecentList
from fleetbid.core.roles import Role
from fleetbid.core.world import World
from fleetbid.platform import newsroom
from fleetbid.platform.xmpp_server import XmppEndpoint


class VehicleAgent(FleetAgent):
    ROLE = Role.VEHICLE
    BEHAVIOURS = (BiddingBehaviour, AnnounceBehaviour, TripBehaviour, RequestCertificate)

    def __init__(
        self, name: str, endpoint: XmppEndpoint, world: World, directory: Directory, node: str
    ) -> None:
        super().__init__(name, endpoint, world, directory)
        if not world.roadmap.has_node(node):
            raise ValueError(f"vehicle {name}: start node {node} is not on the map")
        self.node = node
        self.state = IDLE
        self.legs: list[Leg] = []  # legs that may still be under way
        self.driven = (0.0, 0.0)  # (empty, loaded) metres of the legs finished and folded
        self.trips = 0
        # Rides confirmed, the newest INVARIANT_WINDOW (invariant check: drives to nobody).
        self.rides_taken: RecentList[str] = RecentList()
        self.demand_board: DemandBoard | None = None  # set by the worker under --reposition
        self.repositioned = 0  # drives toward demand

    async def setup(self) -> None:
        self.bidding = BiddingBehaviour()
        self.add_behaviour(self.bidding)

    def announce(self) -> None:
        """Tell the MainManager we are idle (the launcher calls this once the fleet is up)."""
        # Get certified when a law of this run requires it (renewals follow the certificate's
        # lifetime: at high simulation speeds they would otherwise flood the CA for nothing).
        book = self.controller.book
        if self.directory.authority and any(law.eligibility.certified
                                            for law in book.by_hash.values()):
            self.add_behaviour(RequestCertificate())
        self.add_behaviour(AnnounceBehaviour())

    async def drive(self, target: str, loaded: bool, state: str = "") -> None:
        """Follow the shortest route to `target` in simulated time (`state`: announce the leg
        as this, e.g. repositioning)."""
        world = self.world
        route = world.travel.route(self.node, target)
        duration = world.travel.time_to(self.node, target)
        self.start_leg(Leg(world.clock.now(), duration, world.travel.route_length_m(route),
                           loaded))
        newsroom.vehicle_moving(str(self.jid.bare), loaded, self.node, target, world.clock.now(),
                                duration, state)
        self.repositioned += state == REPOSITIONING
        await world.clock.sleep(duration)
        self.node = target

    def start_leg(self, leg: Leg) -> None:
        """Note a new leg; the legs that ended by its start are folded into `driven` (one
        Leg per route for ever was a vehicle's memory growing with every ride)."""
        empty, loaded = self.driven
        for old in [g for g in self.legs if g.start + g.duration <= leg.start]:
            self.legs.remove(old)
            if old.loaded:
                loaded += old.length_m
            else:
                empty += old.length_m
        self.driven = (empty, loaded)
        self.legs.append(leg)

    def odometer(self) -> tuple[float, float]:
        """(empty metres, loaded metres) driven so far; a leg under way counts pro rata."""
        now = self.world.clock.now()
        empty, loaded = self.driven
        for leg in self.legs:
            elapsed = (now - leg.start) / leg.duration if leg.duration > 0 else 1.0
            done = min(1.0, max(0.0, elapsed))
            if leg.loaded:
                loaded += leg.length_m * done
            else:
                empty += leg.length_m * done
        return empty, loaded
