"""Proxy: serves one group of vehicles in each auction it is called for."""

from __future__ import annotations

from fleetbid.agents.fleet_agent import FleetAgent
from fleetbid.behaviours.proxy import ProxyBehaviour
from fleetbid.core.roles import Role


class ProxyAgent(FleetAgent):
    ROLE = Role.PROXY
    BEHAVIOURS = (ProxyBehaviour,)

    async def setup(self) -> None:
        self.proxy_behaviour = ProxyBehaviour()
        self.add_behaviour(self.proxy_behaviour)
