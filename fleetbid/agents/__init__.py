"""The SPADE agents of fleetbid; each composes the behaviours of its role."""

from fleetbid.agents.auction_manager import AuctionManagerAgent
from fleetbid.agents.fleet_agent import FleetAgent
from fleetbid.agents.main_manager import MainManagerAgent
from fleetbid.agents.passenger import PassengerAgent
from fleetbid.agents.proxy import ProxyAgent
from fleetbid.agents.vehicle import VehicleAgent

__all__ = [
    "AuctionManagerAgent", "FleetAgent", "MainManagerAgent", "PassengerAgent",
    "ProxyAgent", "VehicleAgent",
]
