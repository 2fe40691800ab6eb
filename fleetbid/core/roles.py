"""The roles of a fleet's agents: one list, used by the population, the agents and the laws."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """An agent's role. The values are the names laws and traces use (docs/laws.md)."""

    PASSENGER = "passenger"
    VEHICLE = "vehicle"
    MAIN_MANAGER = "main-manager"
    AUCTION_MANAGER = "auction-manager"
    PROXY = "proxy"
    AUTHORITY = "certification-authority"
    AUDITOR = "auditor"
    COMPLAINTS = "complaints"


# The law service agents, by the names a law gives them.
LAW_SERVICES = (Role.AUTHORITY, Role.AUDITOR, Role.COMPLAINTS)
