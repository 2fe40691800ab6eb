"""Fast discrete-event simulator of the fleet, sharing maps, scenarios and policies with the
live agents."""

from fleetbid.sim.engine import SimGeography, SimResult, Trip, simulate
from fleetbid.sim.travel import TravelMatrix

__all__ = ["SimGeography", "SimResult", "TravelMatrix", "Trip", "simulate"]
