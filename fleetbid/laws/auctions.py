"""The four auction types as pure functions and small state machines.

Bids are scores, as everywhere in fleetbid: higher wins, ties go to the shorter ETA, then
the smaller JID (`Offer.key`). A vehicle's *value* for a ride is 1/T (T its travel time to
the pickup, floored): bidding it is dominant in second-price and English auctions, while in
first-price and Dutch auctions it shades to the equilibrium bid (n-1)/n * 1/T.

The live AuctionManager drives the same `EnglishAuction` and `DutchClock` objects round by
round (behaviours/auction_types.py), so what is tested here is what runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from fleetbid.auction.book import Offer
from fleetbid.laws.schema import Dutch, English


@dataclass(frozen=True)
class Outcome:
    winner: str | None
    price: float
    rounds: int = 1
    outbid: tuple[tuple[int, str], ...] = ()  # (round, vehicle told it was outbid)


def value(travel_time_s: float, min_eta_s: float = 1.0) -> float:
    """A vehicle's true value for a ride: 1/T, T floored at min_eta_s."""
    return 1.0 / max(travel_time_s, min_eta_s)


def best(offers: Iterable[Offer]) -> Offer | None:
    return min(offers, key=Offer.key, default=None)


def first_price(bids: Iterable[Offer]) -> Outcome:
    """Sealed first-price: the best bid wins and pays (is paid) its own bid."""
    top = best(bids)
    return Outcome(None, 0.0) if top is None else Outcome(top.vehicle, top.bid)


def second_price(bids: Iterable[Offer], winner: str, reserve: float = 0.0) -> float:
    """Vickrey price for `winner`: the best bid among the others, or the reserve."""
    others = [o.bid for o in bids if o.vehicle != winner]
    return max([reserve, *others])


def vickrey(bids: Iterable[Offer], reserve: float = 0.0) -> Outcome:
    """Sealed second-price: the best bid wins and is paid the second-best bid."""
    offers = list(bids)
    top = best(offers)
    if top is None:
        return Outcome(None, 0.0)
    return Outcome(top.vehicle, second_price(offers, top.vehicle, reserve))


# --- English ---------------------------------------------------------------------------------


def english_raise(own_value: float, minimum: float) -> float | None:
    """A bidder's move in a round: the smallest admissible raise if it is worth it, else out."""
    return minimum if minimum <= own_value else None


@dataclass
class EnglishAuction:
    """Open-cry ascending rounds. Each round, every active bidder except the leader may raise
    to at least `minimum()`; one who does not is out. No raise in a round ends the auction."""

    rules: English
    active: set[str]
    leader: Offer | None = None
    round: int = 0
    last_bid: dict[str, Offer] = field(default_factory=dict)
    done: bool = False

    def minimum(self) -> float:
        if self.leader is None:
            return self.rules.opening
        return self.leader.bid * (1.0 + self.rules.increment)

    def callees(self) -> list[str]:
        """Who is called in the next round (sorted)."""
        leader = self.leader.vehicle if self.leader else None
        return sorted(v for v in self.active if v != leader)

    def close_round(self, raises: Iterable[Offer]) -> list[str]:
        """Apply one round; return the vehicles to tell they were outbid.

        `raises` must be at least `minimum()` (the caller rejects lower ones); callees that
        did not raise (declined or silent) drop out; every raise beaten is told."""
        minimum = self.minimum()
        offers = [o for o in raises if o.bid >= minimum and o.vehicle in self.active]
        called = set(self.callees())
        self.round += 1
        for vehicle in called - {o.vehicle for o in offers}:
            self.active.discard(vehicle)
        outbid: list[str] = []
        top = best(offers)
        if top is None or self.round >= self.rules.max_rounds:
            self.done = True
        for offer in offers:
            self.last_bid[offer.vehicle] = offer
        if top is not None:
            if self.leader is not None:
                outbid.append(self.leader.vehicle)
            outbid.extend(sorted(o.vehicle for o in offers if o.vehicle != top.vehicle))
            self.leader = top
        if not self.callees():
            self.done = True  # only the leader is left
        return outbid

    def outcome(self) -> Outcome:
        if self.leader is None:
            return Outcome(None, 0.0, self.round)
        return Outcome(self.leader.vehicle, self.leader.bid, self.round)


def english(values: Mapping[str, tuple[float, float]], rules: English) -> Outcome:
    """Run an English auction where every vehicle (JID -> (value, eta_s)) plays the minimal
    raise while it is worth it. The highest value wins and pays about the second-highest
    value (within one increment)."""
    auction = EnglishAuction(rules, set(values))
    told: list[tuple[int, str]] = []
    while not auction.done:
        minimum = auction.minimum()
        raises = []
        for vehicle in auction.callees():
            own, eta = values[vehicle]
            bid = english_raise(own, minimum)
            if bid is not None:
                raises.append(Offer(vehicle, bid, eta))
        number = auction.round + 1
        told.extend((number, v) for v in auction.close_round(raises))
    result = auction.outcome()
    return Outcome(result.winner, result.price, result.rounds, tuple(told))


# --- Dutch -----------------------------------------------------------------------------------


@dataclass
class DutchClock:
    """Reverse descending clock: tick k asks for a bid of start * (1 - step)^k, and the last
    tick asks 0 (any bidder accepts). With a single bidder the clock starts at that last
    tick: nobody can accept earlier than the lone bidder's equilibrium bid, which is 0."""

    rules: Dutch
    bidders: int
    tick: int = 0

    def __post_init__(self) -> None:
        if self.bidders <= 1:
            self.tick = self.rules.max_ticks

    def price(self) -> float:
        if self.tick >= self.rules.max_ticks:
            return 0.0
        return self.rules.start * (1.0 - self.rules.step) ** self.tick

    def last(self) -> bool:
        return self.tick >= self.rules.max_ticks

    def advance(self) -> None:
        self.tick += 1


def dutch_accepts(own_bid: float, clock: float) -> bool:
    """A bidder accepts once the clock has come down to its (first-price) bid."""
    return clock <= own_bid


def dutch(bids: Iterable[Offer], rules: Dutch) -> Outcome:
    """Run the clock against bidders who accept at their first-price bids: the best bid
    wins and is paid the first clock value at or below it."""
    offers = list(bids)
    if not offers:
        return Outcome(None, 0.0, 0)
    clock = DutchClock(rules, len(offers))
    ticks = 0
    while True:
        ticks += 1
        price = clock.price()
        takers = [Offer(o.vehicle, price, o.eta_s) for o in offers if dutch_accepts(o.bid, price)]
        if takers:
            top = best(takers)
            assert top is not None
            return Outcome(top.vehicle, price, ticks)
        clock.advance()
