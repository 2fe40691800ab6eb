"""The auction types of the live protocol, one class each, behind one interface.

The AuctionManager picks the type once, when an auction opens (`auction_type(law)`), and
keeps it on its `Auction` record; vehicles ask the same classes how to bid. The pure rules
live in laws/auctions.py.

* sealed-first-price: one sealed round, through proxies; the winner is paid its bid.
* vickrey: the same sealed round, run directly (the price needs the second-best bid of the
  whole auction, which a group report does not carry); vehicles bid their value 1/T.
* english / dutch: rounds between the manager and the admitted vehicles directly
  (`english-round` / `dutch-tick`, answered by `bid` or `bid-declined`); when the rounds
  end, the final offers go back to the manager, whose usual award steps follow.

Sealed rounds are the AuctionManager's own protocol (calls, group reports, deadline); a
type only says whether it runs through proxies and what the winner is paid.
"""

from __future__ import annotations

import logging
import math
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from fleetbid.auction.book import BidBook, Offer
from fleetbid.auction.rules import equilibrium_bid
from fleetbid.behaviours.base import Cancellable, Rejected
from fleetbid.laws import auctions
from fleetbid.laws.schema import Dutch, English, Law, Vickrey
from fleetbid.protocol import law_messages as lm
from fleetbid.protocol import messages as m

log = logging.getLogger("fleetbid.laws")


class Manager(Protocol):
    """What an auction type may use of the AuctionManager, bound to one auction (its timers
    are that auction's, cancelled when it ends)."""

    async def tell(self, to: str, body: m.Body, conversation: str | None = None,
                   performative: str = "") -> None: ...

    def later(self, sim_seconds: float,
              callback: Callable[[], Awaitable[None]]) -> Cancellable: ...

    def now(self) -> float: ...

    def bid_window(self) -> float:
        """The run's bidding window in simulated seconds."""
        ...

    def bidding(self) -> bool:
        """Whether the manager still runs this auction and is in its bidding phase."""
        ...

    async def decide_on(self, book: BidBook, bidders: int) -> None:
        """The rounds are over: award from the book of final offers (`bidders` distinct)."""
        ...


class AuctionType(ABC):
    """One auction type under one law: how vehicles bid and what the winner is paid."""

    def __init__(self, law: Law) -> None:
        self.law = law

    @property
    @abstractmethod
    def uses_proxies(self) -> bool:
        """Whether the sealed round may go through proxies (only first price: see above)."""

    def direct(self) -> bool:
        """Whether the auction runs without proxies."""
        return not self.uses_proxies

    @property
    def runs_rounds(self) -> bool:
        """Whether the type runs rounds of its own (`start`, `on_answer`)."""
        return False

    @property
    def in_rounds(self) -> bool:
        """Whether a vehicle's answer now belongs to the type's rounds (else to the sealed
        round of the manager)."""
        return False

    def sealed_bid(self, n: int, eta_s: float, min_eta_s: float) -> float:
        """A vehicle's answer to a sealed call: the first-price equilibrium bid."""
        return equilibrium_bid(n, eta_s, min_eta_s)

    def price(self, book: BidBook | None, offer: Offer) -> float:
        """What the winner is paid: its own bid."""
        return offer.bid

    def max_bid(self, n: int, eta_s: float, min_eta_s: float) -> float:
        """The highest bid the law's bid rule allows a vehicle with this ETA among n bidders
        (bidding lower only hurts the bidder; higher is a lie the receivers refuse)."""
        return self.sealed_bid(n, eta_s, min_eta_s)

    def bid_problem(self, n: int, bid: float, eta_s: float, min_eta_s: float) -> str | None:
        """Why a bid breaks the law's bid rule (None: it does not)."""
        if eta_s < min_eta_s * (1 - 1e-9):
            return f"eta_s {eta_s:.6g} is below the floor of {min_eta_s:.6g} s"
        limit = self.max_bid(max(1, n), eta_s, min_eta_s)
        if bid > limit * (1 + 1e-9) + 1e-12:
            return f"bid {bid:.6g} exceeds the law's bid for an ETA of {eta_s:.6g} s ({limit:.6g})"
        return None

    def stop(self) -> None:
        """Forget the rounds under way (the manager gave up on them)."""
        return None  # a sealed round keeps its state on the manager's record


class SealedFirstPrice(AuctionType):
    @property
    def uses_proxies(self) -> bool:
        return True


class SecondPrice(AuctionType):
    """Vickrey: truthful bids; the winner is paid the runner-up's bid (or the reserve)."""

    def __init__(self, law: Law) -> None:
        super().__init__(law)
        assert isinstance(law.auction, Vickrey)
        self.rules = law.auction

    @property
    def uses_proxies(self) -> bool:
        return False

    def sealed_bid(self, n: int, eta_s: float, min_eta_s: float) -> float:
        return auctions.value(eta_s, min_eta_s)

    def price(self, book: BidBook | None, offer: Offer) -> float:
        if book is None:
            return offer.bid
        live = [o for v, o in book.offers.items() if v not in book.struck]
        return auctions.second_price(live, offer.vehicle, self.rules.reserve)


# --- rounds (English, Dutch) ------------------------------------------------------------------


@dataclass
class Rounds:
    """The rounds under way in one bidding phase of an auction."""

    n: int  # bidders in the whole auction
    number: int = 0  # rounds called so far (timers name theirs)
    call_id: int = 0  # what answers echo: the English round, or the Dutch tick + 1
    called: set[str] = field(default_factory=set)
    answers: dict[str, Offer | None] = field(default_factory=dict)
    bidders: set[str] = field(default_factory=set)


class RoundsAuction(AuctionType):
    """Calls round after round to the admitted vehicles; the subclass says what a call asks,
    which answers are valid and when the rounds end."""

    def __init__(self, law: Law) -> None:
        super().__init__(law)
        self.rounds: Rounds | None = None

    @property
    def uses_proxies(self) -> bool:
        return False

    @property
    def runs_rounds(self) -> bool:
        return True

    def max_bid(self, n: int, eta_s: float, min_eta_s: float) -> float:
        return auctions.value(eta_s, min_eta_s)  # open rounds: up to the vehicle's value

    @property
    def in_rounds(self) -> bool:
        return self.rounds is not None

    def stop(self) -> None:
        self.rounds = None

    def window(self, mgr: Manager) -> float:
        configured = self.law.deadlines.bid_window_s
        return configured if configured is not None else mgr.bid_window()

    @abstractmethod
    def open(self, vehicles: list[str]) -> None:
        """Set up the rules' state for a bidding phase among `vehicles`."""

    @abstractmethod
    def call(self, spec: m.OpenAuction, n: int, deadline: float) -> tuple[m.Body, set[str], int]:
        """This round's call, who gets it and the id their answers echo."""

    @abstractmethod
    def check_bid(self, bid: float) -> None:
        """Raise Rejected if `bid` is not a valid answer to the current call."""

    @abstractmethod
    async def closed(self, mgr: Manager, spec: m.OpenAuction,
                     offers: list[Offer]) -> dict[str, Offer] | None:
        """The round closed with these offers: the final offers, or None for another round."""

    async def start(self, mgr: Manager, spec: m.OpenAuction, vehicles: list[str]) -> None:
        self.open(vehicles)
        self.rounds = Rounds(len(vehicles))
        await self.call_round(mgr, spec, self.rounds)

    async def call_round(self, mgr: Manager, spec: m.OpenAuction, rounds: Rounds) -> None:
        rounds.number += 1
        rounds.answers = {}
        window = self.window(mgr)
        deadline = mgr.now() + window  # the ordered clock on a replicated manager
        call, rounds.called, rounds.call_id = self.call(spec, rounds.n, deadline)
        for vehicle in sorted(rounds.called):
            await mgr.tell(vehicle, call)
        number = rounds.number
        # The timer names its rounds object and its round: a re-run of the auction starts a
        # new object whose numbers start again at 1, and an old timer must not close it.
        mgr.later(window, lambda: self.on_deadline(mgr, spec, rounds, number))

    async def on_answer(self, mgr: Manager, spec: m.OpenAuction, sender: str,
                        body: m.Bid | m.BidDeclined) -> None:
        rounds = self.rounds
        assert rounds is not None
        if sender not in rounds.called:
            raise Rejected(f"{sender} was not called in this round of {spec.auction_id}")
        if body.round and body.round != rounds.call_id:
            # An answer to an earlier call that closed on its deadline: it is not this round's.
            log.debug("late answer of %s to call %d of %s ignored", sender, body.round,
                      spec.auction_id)
            return
        if sender in rounds.answers:
            raise Rejected(f"{sender} already answered this round of {spec.auction_id}")
        if isinstance(body, m.Bid):
            self.check_bid(body.bid)
            rounds.answers[sender] = Offer(sender, body.bid, body.eta_s)
            rounds.bidders.add(sender)
        else:
            rounds.answers[sender] = None
        if set(rounds.answers) >= rounds.called:
            await self.close_round(mgr, spec, rounds)

    async def on_deadline(self, mgr: Manager, spec: m.OpenAuction, rounds: Rounds,
                          number: int) -> None:
        if self.rounds is rounds and rounds.number == number and mgr.bidding():
            await self.close_round(mgr, spec, rounds)

    async def close_round(self, mgr: Manager, spec: m.OpenAuction, rounds: Rounds) -> None:
        offers = [o for o in rounds.answers.values() if o is not None]
        final = await self.closed(mgr, spec, offers)
        if final is None:
            await self.call_round(mgr, spec, rounds)
            return
        # The rounds are over: the usual award steps run on a book of the final offers.
        self.rounds = None
        await mgr.decide_on(BidBook(frozenset(final), dict(final), set(final)),
                            len(rounds.bidders))


class EnglishAuction(RoundsAuction):
    """Open ascending rounds: raise by the minimum or drop out; the last leader wins."""

    def __init__(self, law: Law) -> None:
        super().__init__(law)
        assert isinstance(law.auction, English)
        self.rules = law.auction
        self.english: auctions.EnglishAuction | None = None

    def open(self, vehicles: list[str]) -> None:
        self.english = auctions.EnglishAuction(self.rules, set(vehicles))

    def state(self) -> auctions.EnglishAuction:
        assert self.english is not None
        return self.english

    def call(self, spec: m.OpenAuction, n: int, deadline: float) -> tuple[m.Body, set[str], int]:
        english = self.state()
        leader = english.leader
        call = lm.EnglishRound(
            auction_id=spec.auction_id, pickup=spec.pickup, n=n, round=english.round + 1,
            standing=leader.bid if leader else 0.0, minimum=english.minimum(),
            deadline=deadline, leader=leader.vehicle if leader else None,
        )
        return call, set(english.callees()), english.round + 1

    def check_bid(self, bid: float) -> None:
        minimum = self.state().minimum()
        if bid < minimum * (1 - 1e-9):
            raise Rejected(f"a raise must be at least {minimum:.6g}")

    async def closed(self, mgr: Manager, spec: m.OpenAuction,
                     offers: list[Offer]) -> dict[str, Offer] | None:
        english = self.state()
        for vehicle in english.close_round(offers):
            leader = english.leader
            assert leader is not None
            await mgr.tell(vehicle, lm.Outbid(auction_id=spec.auction_id, standing=leader.bid,
                                             leader=leader.vehicle))
        return dict(english.last_bid) if english.done else None


class DutchAuction(RoundsAuction):
    """A descending clock: the first tick someone accepts ends it, at the clock's price."""

    def __init__(self, law: Law) -> None:
        super().__init__(law)
        assert isinstance(law.auction, Dutch)
        self.rules = law.auction
        self.clock: auctions.DutchClock | None = None
        self.admitted: list[str] = []

    def open(self, vehicles: list[str]) -> None:
        self.clock = auctions.DutchClock(self.rules, len(vehicles))
        self.admitted = vehicles

    def state(self) -> auctions.DutchClock:
        assert self.clock is not None
        return self.clock

    def call(self, spec: m.OpenAuction, n: int, deadline: float) -> tuple[m.Body, set[str], int]:
        clock = self.state()
        call = lm.DutchTick(auction_id=spec.auction_id, pickup=spec.pickup, n=n,
                            tick=clock.tick, price=clock.price(), deadline=deadline)
        return call, set(self.admitted), clock.tick + 1

    def check_bid(self, bid: float) -> None:
        price = self.state().price()
        if not math.isclose(bid, price, rel_tol=1e-9, abs_tol=1e-12):
            raise Rejected(f"the clock asks {price:.6g}, not {bid:.6g}")

    async def closed(self, mgr: Manager, spec: m.OpenAuction,
                     offers: list[Offer]) -> dict[str, Offer] | None:
        clock = self.state()
        if not offers and not clock.last():
            clock.advance()
            return None
        return {o.vehicle: o for o in offers}


def auction_type(law: Law) -> AuctionType:
    """The auction type a law prescribes (a fresh one: round types keep per-auction state)."""
    match law.auction:
        case Vickrey():
            return SecondPrice(law)
        case English():
            return EnglishAuction(law)
        case Dutch():
            return DutchAuction(law)
        case _:
            return SealedFirstPrice(law)
