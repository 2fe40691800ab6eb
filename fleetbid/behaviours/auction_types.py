"""The auction types in the live protocol: what the AuctionManager and the vehicles do
differently under each law (the pure rules live in laws/auctions.py).

* sealed-first-price: today's protocol, unchanged (proxies allowed).
* vickrey: the same sealed round, run directly (no proxies: the price needs the second-best
  bid of the whole auction); vehicles bid their value 1/T; the winner is paid the second-best.
* english / dutch: rounds between the manager and the admitted vehicles directly
  (`english-round` / `dutch-tick`, answered by `bid` or `bid-declined`); when the rounds
  end, the final offers fill the manager's BidBook and the usual award steps follow.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any

from spade.message import Message

from fleetbid.auction.book import BidBook, Offer
from fleetbid.auction.rules import equilibrium_bid
from fleetbid.behaviours.base import Rejected, sender_of
from fleetbid.laws import auctions
from fleetbid.laws.schema import Dutch, English, Law, Vickrey
from fleetbid.protocol import law_messages as lm
from fleetbid.protocol import messages as m

log = logging.getLogger("fleetbid.laws")


def runs_rounds(law: Law) -> bool:
    return isinstance(law.auction, English | Dutch)


def direct(law: Law) -> bool:
    """Whether the auction must run without proxies."""
    return law.kind != "sealed-first-price"


def sealed_bid(law: Law, n: int, eta_s: float, min_eta_s: float) -> float:
    """A vehicle's sealed bid: its value under Vickrey, the first-price equilibrium else."""
    if isinstance(law.auction, Vickrey):
        return auctions.value(eta_s, min_eta_s)
    return equilibrium_bid(n, eta_s, min_eta_s)


def price(law: Law, book: BidBook | None, offer: Offer) -> float:
    """What the winner is paid."""
    if isinstance(law.auction, Vickrey) and book is not None:
        live = [o for v, o in book.offers.items() if v not in book.struck]
        return auctions.second_price(live, offer.vehicle, law.auction.reserve)
    return offer.bid


# --- the AuctionManager's rounds ---------------------------------------------------------------


@dataclass
class Rounds:
    law: Law
    n: int
    english: auctions.EnglishAuction | None = None
    clock: auctions.DutchClock | None = None
    number: int = 0
    call_id: int = 0  # the current call's round (English) or tick + 1 (Dutch)
    called: set[str] = field(default_factory=set)
    answers: dict[str, Offer | None] = field(default_factory=dict)
    bidders: set[str] = field(default_factory=set)


async def start(am: Any, auction: Any, vehicles: list[str], law: Law) -> None:
    rounds = Rounds(law, len(vehicles))
    if isinstance(law.auction, English):
        rounds.english = auctions.EnglishAuction(law.auction, set(vehicles))
    else:
        assert isinstance(law.auction, Dutch)
        rounds.clock = auctions.DutchClock(law.auction, len(vehicles))
    auction.law_state = rounds
    auction.book = None
    await call_round(am, auction, rounds)


async def call_round(am: Any, auction: Any, rounds: Rounds) -> None:
    spec = auction.spec
    rounds.number += 1
    rounds.answers = {}
    window = bid_window(am, rounds.law)
    deadline = am.now() + window  # the ordered clock on a replicated manager
    call: m.Body
    if rounds.english is not None:
        english = rounds.english
        leader = english.leader
        rounds.called = set(english.callees())
        rounds.call_id = english.round + 1
        call = lm.EnglishRound(
            auction_id=spec.auction_id, pickup=spec.pickup, n=rounds.n, round=english.round + 1,
            standing=leader.bid if leader else 0.0, minimum=english.minimum(),
            deadline=deadline, leader=leader.vehicle if leader else None,
        )
    else:
        assert rounds.clock is not None
        rounds.called = set(auction.admitted)
        rounds.call_id = rounds.clock.tick + 1
        call = lm.DutchTick(auction_id=spec.auction_id, pickup=spec.pickup, n=rounds.n,
                           tick=rounds.clock.tick, price=rounds.clock.price(), deadline=deadline)
    for vehicle in sorted(rounds.called):
        await am.tell(vehicle, call)
    number = rounds.number
    auction.timers.append(am.later(window, lambda: on_deadline(am, spec.auction_id, number)))


def bid_window(am: Any, law: Law) -> float:
    configured = law.deadlines.bid_window_s
    return configured if configured is not None else am.agent.world.config.bid_window_s()


async def on_answer(am: Any, auction: Any, msg: Message, body: m.Bid | m.BidDeclined) -> None:
    rounds: Rounds = auction.law_state
    sender = sender_of(msg)
    if sender not in rounds.called:
        raise Rejected(f"{sender} was not called in this round of {auction.spec.auction_id}")
    if body.round and body.round != rounds.call_id:
        # An answer to an earlier call that closed on its deadline: it is not this round's.
        log.debug("late answer of %s to call %d of %s ignored", sender, body.round,
                  auction.spec.auction_id)
        return
    if sender in rounds.answers:
        raise Rejected(f"{sender} already answered this round of {auction.spec.auction_id}")
    if isinstance(body, m.Bid):
        if rounds.english is not None and body.bid < rounds.english.minimum() * (1 - 1e-9):
            raise Rejected(f"a raise must be at least {rounds.english.minimum():.6g}")
        if rounds.clock is not None and not math.isclose(body.bid, rounds.clock.price(),
                                                         rel_tol=1e-9, abs_tol=1e-12):
            raise Rejected(f"the clock asks {rounds.clock.price():.6g}, not {body.bid:.6g}")
        rounds.answers[sender] = Offer(sender, body.bid, body.eta_s)
        rounds.bidders.add(sender)
    else:
        rounds.answers[sender] = None
    if set(rounds.answers) >= rounds.called:
        await close_round(am, auction, rounds)


async def on_deadline(am: Any, auction_id: str, number: int) -> None:
    auction = am.auction
    if auction is None or auction.spec.auction_id != auction_id:
        return
    rounds = auction.law_state
    if isinstance(rounds, Rounds) and rounds.number == number and auction.phase == "bidding":
        await close_round(am, auction, rounds)


async def close_round(am: Any, auction: Any, rounds: Rounds) -> None:
    offers = [o for o in rounds.answers.values() if o is not None]
    auction_id = auction.spec.auction_id
    final: dict[str, Offer]
    if rounds.english is not None:
        english = rounds.english
        for vehicle in english.close_round(offers):
            leader = english.leader
            assert leader is not None
            await am.tell(vehicle, lm.Outbid(auction_id=auction_id, standing=leader.bid,
                                            leader=leader.vehicle))
        if not english.done:
            await call_round(am, auction, rounds)
            return
        final = dict(english.last_bid)
    else:
        assert rounds.clock is not None
        if not offers and not rounds.clock.last():
            rounds.clock.advance()
            await call_round(am, auction, rounds)
            return
        final = {o.vehicle: o for o in offers}
    # The rounds are over: the usual award steps run on a book of the final offers.
    auction.law_state = None
    book = BidBook(frozenset(final), dict(final), set(final))
    auction.book = book
    auction.bidders = len(rounds.bidders)
    await am.decide(auction)


# --- the vehicle's side -----------------------------------------------------------------------


def vehicle_handlers(bidding: Any) -> dict[type[m.Body], Any]:
    async def on_english_round(msg: Message, body: lm.EnglishRound) -> None:
        eta = await _ready(bidding, msg, body.auction_id, body.pickup)
        if eta is None:
            return
        own = auctions.value(eta, bidding.agent.world.config.min_eta_s)
        bid = auctions.english_raise(own, body.minimum)
        # An earlier raise of ours may still end up losing: keep the caller for its `lost`.
        bidding.callers[body.auction_id] = sender_of(msg)
        await _answer(bidding, msg, body.auction_id, bid, eta, body.round,
                      "the minimum raise exceeds my value")

    async def on_dutch_tick(msg: Message, body: lm.DutchTick) -> None:
        eta = await _ready(bidding, msg, body.auction_id, body.pickup)
        if eta is None:
            return
        min_eta = bidding.agent.world.config.min_eta_s
        own = equilibrium_bid(body.n, eta, min_eta)
        accept = auctions.dutch_accepts(own, body.price)
        await _answer(bidding, msg, body.auction_id, body.price if accept else None, eta,
                      body.tick + 1,
                      "waiting: the clock is above my bid")

    async def on_outbid(msg: Message, body: lm.Outbid) -> None:
        log.debug("%s outbid in %s by %s", bidding.agent.name, body.auction_id, body.leader)

    return {lm.EnglishRound: on_english_round, lm.DutchTick: on_dutch_tick, lm.Outbid: on_outbid}


async def _ready(bidding: Any, msg: Message, auction_id: str, pickup: str) -> float | None:
    """The travel time to the pickup if we can bid now; else decline and return None."""
    agent = bidding.agent
    caller = sender_of(msg)
    if caller not in agent.managers:
        raise Rejected(f"{caller} is not an auction manager")
    bidding.callers.pop(auction_id, None)
    reason = ""
    eta = math.inf
    if agent.state != "idle":
        reason = agent.state
    elif agent.world.roadmap.has_node(pickup):
        eta = agent.world.travel.time_to(agent.node, pickup)
    if not reason and not math.isfinite(eta):
        reason = f"pickup {pickup} is not reachable on my map"
    if reason:
        await bidding.tell(caller, m.BidDeclined(auction_id=auction_id, reason=reason))
        return None
    return eta


async def _answer(bidding: Any, msg: Message, auction_id: str, bid: float | None, eta: float,
                  call_id: int, why_not: str) -> None:
    caller = sender_of(msg)
    if bid is None:
        await bidding.tell(caller, m.BidDeclined(auction_id=auction_id, reason=why_not,
                                                 round=call_id))
        return
    bidding.callers[auction_id] = caller
    min_eta = bidding.agent.world.config.min_eta_s
    await bidding.tell(caller, m.Bid(auction_id=auction_id, bid=bid, eta_s=max(eta, min_eta),
                                     round=call_id))
