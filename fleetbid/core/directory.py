"""The population's well-known JIDs: who is the MainManager, the AuctionManagers, ..."""

from __future__ import annotations

from dataclasses import dataclass

from fleetbid.core.roles import Role


@dataclass(frozen=True)
class Directory:
    """The population's well-known JIDs (agents check senders against these)."""

    main_manager: str
    auction_managers: tuple[str, ...]
    proxies: tuple[str, ...]
    vehicles: frozenset[str]
    # Law-governed auctions (docs/laws.md): the agents laws name, and the CA's public key.
    authority: str = ""
    auditor: str = ""
    complaints: str = ""
    authority_key: str = ""

    def services(self) -> dict[str, str]:
        """Law agent name -> JID (a law names its CA, auditor and complaints agent)."""
        named = {Role.AUTHORITY: self.authority, Role.AUDITOR: self.auditor,
                 Role.COMPLAINTS: self.complaints}
        return {name: jid for name, jid in named.items() if jid}

    def role_of(self, jid: str) -> Role:
        """The role of a bare JID. Anyone the directory does not name is a client of the
        fleet (a passenger, or a complainant: the law lets them do the same things)."""
        if jid == self.main_manager:
            return Role.MAIN_MANAGER
        if jid in self.vehicles:
            return Role.VEHICLE
        if jid in self.auction_managers:
            return Role.AUCTION_MANAGER
        if jid in self.proxies:
            return Role.PROXY
        for role, service in self.services().items():
            if jid == service:
                return Role(role)
        return Role.PASSENGER

