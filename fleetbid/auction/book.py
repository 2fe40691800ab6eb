"""Standing bids of one group (a proxy's group, or the whole auction without proxies)."""

from __future__ import annotations

from dataclasses import dataclass, field

from fleetbid.auction.rules import rank_key


@dataclass(frozen=True)
class Offer:
    vehicle: str
    bid: float
    eta_s: float

    def key(self) -> tuple[float, float, str]:
        return rank_key(self.bid, self.eta_s, self.vehicle)


@dataclass
class BidBook:
    """Bids of an expected set of vehicles; tracks who answered and who dropped out.

    A vehicle that declines an award is struck off, so `best()` moves on to the next one:
    this is how an auction survives a winner that was just assigned elsewhere.
    """

    expected: frozenset[str]
    offers: dict[str, Offer] = field(default_factory=dict)
    answered: set[str] = field(default_factory=set)
    struck: set[str] = field(default_factory=set)

    def add_bid(self, offer: Offer) -> None:
        if offer.vehicle not in self.expected:
            raise KeyError(f"{offer.vehicle} is not a bidder of this group")
        if offer.vehicle in self.answered:
            raise ValueError(f"{offer.vehicle} already answered")
        self.answered.add(offer.vehicle)
        self.offers[offer.vehicle] = offer

    def add_decline(self, vehicle: str) -> None:
        if vehicle not in self.expected:
            raise KeyError(f"{vehicle} is not a bidder of this group")
        if vehicle in self.answered:
            raise ValueError(f"{vehicle} already answered")
        self.answered.add(vehicle)

    def strike(self, vehicle: str) -> None:
        self.struck.add(vehicle)

    def complete(self) -> bool:
        return self.answered >= self.expected

    def best(self) -> Offer | None:
        live = [o for v, o in self.offers.items() if v not in self.struck]
        return min(live, key=Offer.key, default=None)

    @property
    def bidders(self) -> int:
        return len(self.offers)
