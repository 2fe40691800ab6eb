"""Proxy: serves one group of vehicles in each auction it is called for."""

from __future__ import annotations

from fleetbid.agents.fleet_agent import FleetAgent
from fleetbid.behaviours.proxy import ProxyBehaviour


class ProxyAgent(FleetAgent):
    ROLE = "proxy"

    async def setup(self) -> None:
        self.proxy_behaviour = ProxyBehaviour()
        self.add_behaviour(self.proxy_behaviour)
