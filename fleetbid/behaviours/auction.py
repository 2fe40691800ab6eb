"""The AuctionManager's protocol steps for one auction at a time.

open -> admission (cluster, radius) -> bidding (through proxies, or directly) -> award ->
confirmed -> result to proxies, passenger and MainManager. When nobody bids, the auction
waits for newly available vehicles until the passenger's patience runs out.
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import ClassVar

from spade.message import Message

from fleetbid.auction import admission
from fleetbid.auction.book import BidBook, Offer
from fleetbid.auction.rules import group_count, split_groups
from fleetbid.behaviours.auction_types import AuctionType, RoundsAuction, auction_type
from fleetbid.behaviours.base import (
    Cancellable,
    Ended,
    Late,
    ProtocolBehaviour,
    Rejected,
    sender_of,
)
from fleetbid.protocol import law_messages as lm
from fleetbid.protocol import messages as m

log = logging.getLogger("fleetbid.auction")

OPENING, WAITING, BIDDING, AWARDING = "opening", "waiting", "bidding", "awarding"
RECALLS = 2  # rounds re-run with the same vehicles when none bid in time
WITHDRAWN = "the auction was withdrawn at its deadline"


@dataclass
class Award:
    offer: Offer
    via: str  # the proxy that relays it, or the vehicle itself without proxies


@dataclass
class Auction:
    spec: m.OpenAuction
    type: AuctionType  # under the law the auction adopted when it opened
    phase: str = OPENING
    admitted: dict[str, str] = field(default_factory=dict)  # vehicle -> node, this round
    book: BidBook | None = None  # without proxies: every bid of the round
    groups: dict[str, tuple[str, ...]] = field(default_factory=dict)  # proxy -> members
    standing: dict[str, Offer | None] = field(default_factory=dict)  # proxy -> its best
    award: Award | None = None
    bidders: int = 0
    timers: list[asyncio.Handle] = field(default_factory=list)
    rounds: int = 0
    recalls: int = 0  # rounds re-run because nobody bid in time (see `no_bids`)
    called_n: int = 0  # bidders the current round's calls announced (the bid rule's n)
    withdrawn: bool = False  # the MainManager asked to end it: award nobody new


class AuctionBehaviour(ProtocolBehaviour):
    SENDS: ClassVar[frozenset[type[m.Body]]] = frozenset({
        m.AuctionPhase, m.AuctionClosed, m.GroupCall, m.CallForBids,
        m.Award, m.AuctionResult, m.RideAssigned, m.RideUnserved, m.BidReceived,
        lm.EnglishRound, lm.DutchTick, lm.Outbid,
    })

    AUDIT_ON_SEND = False  # the auction's copies go in one batch, when it is decided

    async def on_start(self) -> None:
        self.handlers = {
            m.OpenAuction: self.on_open,
            m.Participation: self.on_participation,
            m.GroupBest: self.on_group_best,
            m.Bid: self.on_bid,
            m.BidDeclined: self.on_bid_declined,
            m.AwardConfirmed: self.on_award_confirmed,
            m.AwardDeclined: self.on_award_declined,
            m.WithdrawAuction: self.on_withdraw,
        }
        self.auction: Auction | None = None
        self.ended = Ended()  # auctions this manager ran: late messages about them are benign

    def idle(self) -> bool:
        return self.auction is None

    def reset_state(self) -> None:
        self.auction = None
        self.ended.clear()

    async def acknowledge(self, msg: Message, auction_id: str) -> None:
        """Replicated, vehicles bidding directly: tell a bidder its bid is in the replicated
        log (it cannot be lost). A proxy learns it from the auction's result instead, which
        the manager sends anyway (one message fewer per group)."""
        if self.ordered is not None:
            await self.tell(sender_of(msg), m.BidReceived(auction_id=auction_id))

    # --- helpers ----------------------------------------------------------------------------

    def current(self, auction_id: str) -> Auction:
        auction = self.auction
        if auction is None or auction.spec.auction_id != auction_id:
            if auction_id in self.ended:
                raise Late(f"auction {auction_id} has ended")
            raise Rejected(f"unknown auction {auction_id}")
        return auction

    def from_main_manager(self, msg: Message) -> None:
        if sender_of(msg) != self.agent.manager_jid:
            raise Rejected(f"{sender_of(msg)} is not the main manager")

    def eligible(self, auction: Auction, vehicles: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """Of these (vehicle, node), the ones admitted: fleet vehicles in the cluster and the
        radius (or in a spill-over cluster), nearest first, up to the run's bound on bidders
        (auction/admission.py)."""
        world = self.agent.world
        spec = auction.spec
        radius = auction.type.law.eligibility.radius_m or world.config.radius_m
        ours = [(v, n) for v, n in vehicles if v in self.agent.fleet]
        room = 0  # no bound
        if world.config.max_bidders:
            room = world.config.max_bidders - len(auction.admitted)
            if room <= 0:
                return []
        return admission.eligible(world.roadmap, world.clusters, radius, spec.cluster,
                                  spec.pickup, ours, room, spec.spill)

    def patience_end(self, auction: Auction) -> float:
        """When the passenger's patience ends: the law's patience, else the run's."""
        patience = auction.type.law.deadlines.patience_s or self.agent.world.config.patience_s
        return auction.spec.requested_at + patience

    # --- opening and admission --------------------------------------------------------------

    async def on_open(self, msg: Message, body: m.OpenAuction) -> None:
        self.from_main_manager(msg)
        world = self.agent.world
        if self.auction is not None:
            raise Rejected(f"busy with auction {self.auction.spec.auction_id}")
        for node in (body.pickup, body.dropoff):
            if not world.roadmap.has_node(node):
                raise Rejected(f"node {node} is not on the map")
        if world.clusters.cluster_of_node(body.pickup) != body.cluster:
            raise Rejected(f"pickup {body.pickup} is not in cluster {body.cluster}")
        # The law was adopted on receipt of this message (law controller): look it up once.
        law = self.agent.controller.law_for(body.auction_id)
        self.auction = auction = Auction(body, auction_type(law))
        patience_end = self.patience_end(auction)
        auction.timers.append(self.later(
            patience_end - self.now(), lambda: self.on_patience(body.auction_id)
        ))
        # The MainManager sent only eligible vehicles; a vehicle this check drops was not
        # called and is not told (no message to a vehicle that cannot win).
        candidates = [(c.vehicle, c.node) for c in body.candidates]
        auction.admitted.update(self.eligible(auction, candidates))
        if len(auction.admitted) < len(candidates):
            log.debug("%s: %d of %d candidates of %s not admitted", self.agent.name,
                      len(candidates) - len(auction.admitted), len(candidates), body.auction_id)
        if auction.admitted:
            await self.start_bidding(auction)
        else:
            await self.set_phase(auction, WAITING)

    async def on_participation(self, msg: Message, body: m.Participation) -> None:
        self.from_main_manager(msg)
        auction = self.current(body.auction_id)
        if auction.phase != WAITING:
            # Bidding started meanwhile (the MainManager had not heard yet): nothing to do.
            log.debug("%s: participants too late for %s", self.agent.name, body.auction_id)
            return
        auction.admitted.update(self.eligible(auction, [(c.vehicle, c.node)
                                                        for c in body.candidates]))
        if auction.admitted:
            await self.start_bidding(auction)

    async def set_phase(self, auction: Auction, phase: str) -> None:
        auction.phase = phase
        if phase in (WAITING, BIDDING):
            note = m.AuctionPhase(auction_id=auction.spec.auction_id, phase=phase)
            await self.tell(self.agent.manager_jid, note)

    # --- bidding ----------------------------------------------------------------------------

    async def start_bidding(self, auction: Auction) -> None:
        world = self.agent.world
        spec = auction.spec
        auction.rounds += 1
        if auction.phase == WAITING:
            await self.set_phase(auction, BIDDING)  # stop the forwarding of participants
        else:
            auction.phase = BIDDING  # the manager assumes bidding until told to wait
        vehicles = sorted(auction.admitted)
        n = auction.called_n = len(vehicles)
        window = world.config.bid_window_s()
        deadline = self.now() + window
        proxies = self.agent.proxies
        if isinstance(auction.type, RoundsAuction):  # English/Dutch: rounds of their own
            auction.book = None
            await auction.type.start(Desk(self, auction), spec, vehicles)
            return
        k = 0 if auction.type.direct() else group_count(n, world.config.proxy_setting(),
                                                          len(proxies))
        if k == 0:
            auction.book = BidBook(frozenset(vehicles))
            call = m.CallForBids(auction_id=spec.auction_id, pickup=spec.pickup, n=n,
                                 deadline=deadline, round=auction.rounds)
            for vehicle in vehicles:
                await self.tell(vehicle, call)
        else:
            # Spread auctions over the proxy pool, deterministically per auction id.
            start = zlib.crc32(spec.auction_id.encode()) % len(proxies)
            chosen = [proxies[(start + i) % len(proxies)] for i in range(k)]
            for proxy, members in zip(chosen, split_groups(vehicles, k), strict=False):
                auction.groups[proxy] = tuple(members)
                await self.tell(proxy, m.GroupCall(
                    auction_id=spec.auction_id, pickup=spec.pickup, n=n, deadline=deadline,
                    vehicles=tuple(members), round=auction.rounds,
                ))
        round_no = auction.rounds
        auction.timers.append(self.later(
            window, lambda: self.on_bid_deadline(spec.auction_id, round_no)
        ))

    async def on_group_best(self, msg: Message, body: m.GroupBest) -> None:
        auction = self.current(body.auction_id)
        proxy = sender_of(msg)
        if proxy not in auction.groups:
            if proxy in self.agent.proxies:  # a report for an earlier round of this auction
                raise Late(f"{proxy} serves no group of this round of {body.auction_id}")
            raise Rejected(f"{proxy} serves no group of auction {body.auction_id}")
        if body.vehicle is not None and body.vehicle not in auction.groups[proxy]:
            raise Rejected(f"{body.vehicle} is not in {proxy}'s group")
        if body.vehicle is not None:
            self.check_offer(auction, body.vehicle, body.bid, body.eta_s)
        offer = None if body.vehicle is None else Offer(body.vehicle, body.bid, body.eta_s)
        revision = auction.phase == AWARDING and auction.award and auction.award.via == proxy
        if auction.phase == BIDDING and proxy in auction.standing:
            raise Rejected(f"{proxy} already reported for auction {body.auction_id}")
        if auction.phase == BIDDING:
            auction.standing[proxy] = offer
            auction.bidders += body.bidders
            if len(auction.standing) == len(auction.groups):
                await self.decide(auction)
        elif revision:
            # The awarded vehicle declined (assigned elsewhere): this is its group's next best.
            auction.standing[proxy] = offer
            auction.award = None
            auction.phase = BIDDING
            await self.decide(auction)
        else:
            log.debug("late report from %s for %s ignored", proxy, body.auction_id)

    def check_offer(self, auction: Auction, vehicle: str, bid: float, eta_s: float) -> None:
        """Receivers enforce the law's bid rule: no more than the law's bid for the ETA sent,
        the ETA no shorter than the floor. Refused before any state change.

        The ETA itself cannot be checked against the node the vehicle was admitted at: in a
        burst a vehicle may finish a trip and be idle elsewhere before it answers, and then
        it rightly bids from where it is (docs/security.md: what is still trusted)."""
        if vehicle not in auction.admitted:
            raise Rejected(f"{vehicle} was not admitted to {auction.spec.auction_id}")
        problem = auction.type.bid_problem(auction.called_n, bid, eta_s,
                                           self.agent.world.config.min_eta_s)
        if problem is not None:
            raise Rejected(problem)

    async def on_bid(self, msg: Message, body: m.Bid) -> None:
        offer = Offer(sender_of(msg), body.bid, body.eta_s)
        await self.direct_answer(msg, body, lambda book: book.add_bid(offer), offer)

    async def on_bid_declined(self, msg: Message, body: m.BidDeclined) -> None:
        await self.direct_answer(msg, body, lambda book: book.add_decline(sender_of(msg)))

    async def direct_answer(
        self, msg: Message, body: m.Bid | m.BidDeclined, record: Callable[[BidBook], None],
        offer: Offer | None = None,
    ) -> None:
        """A vehicle's answer sent to the manager itself (no proxies, or a law's rounds)."""
        auction = self.current(body.auction_id)
        if isinstance(auction.type, RoundsAuction) and auction.type.in_rounds:
            await auction.type.on_answer(Desk(self, auction), auction.spec, sender_of(msg), body)
            return
        if body.round and body.round != auction.rounds:
            log.debug("late answer of %s to round %d of %s ignored", sender_of(msg), body.round,
                      body.auction_id)
            return
        book = self.direct_book(auction, msg)
        if offer is not None:
            self.check_offer(auction, offer.vehicle, offer.bid, offer.eta_s)
        try:
            record(book)
        except ValueError as exc:
            raise Rejected(str(exc)) from None
        await self.acknowledge(msg, body.auction_id)
        if auction.phase == BIDDING and book.complete():
            await self.decide(auction)

    def direct_book(self, auction: Auction, msg: Message) -> BidBook:
        """The bid book when vehicles bid to the manager directly (no proxies)."""
        book = auction.book
        if book is None or sender_of(msg) not in book.expected:
            raise Rejected(f"{sender_of(msg)} was not admitted to {auction.spec.auction_id}")
        return book

    async def on_bid_deadline(self, auction_id: str, round_no: int) -> None:
        auction = self.auction
        if auction and auction.spec.auction_id == auction_id and auction.rounds == round_no:
            if auction.phase == BIDDING:
                await self.decide(auction)

    # --- deciding and awarding --------------------------------------------------------------

    def best(self, auction: Auction) -> tuple[Offer, str] | None:
        if auction.book is not None:
            offer = auction.book.best()
            return None if offer is None else (offer, offer.vehicle)
        standing = [(o, p) for p, o in auction.standing.items() if o is not None]
        return min(standing, key=lambda item: item[0].key(), default=None)

    async def decide(self, auction: Auction) -> None:
        if auction.withdrawn:  # the pending award was declined: nobody else is asked
            await self.close_round(auction, winner=None)
            await self.finish(auction, None, WITHDRAWN)
            return
        best = self.best(auction)
        if best is None:
            await self.no_bids(auction)
            return
        offer, via = best
        auction.phase = AWARDING
        auction.award = Award(offer, via)
        spec = auction.spec
        await self.tell(via, m.Award(
            auction_id=spec.auction_id, vehicle=offer.vehicle, passenger=spec.passenger,
            pickup=spec.pickup, dropoff=spec.dropoff, price=self.price(auction, offer),
        ))

    def price(self, auction: Auction, offer: Offer) -> float:
        """What the winner is paid under the auction's law (its bid, or the second-best)."""
        return auction.type.price(auction.book, offer)

    async def no_bids(self, auction: Auction) -> None:
        """Nobody (left) to award: close this round; wait for new vehicles while patience lasts.

        A round in which no vehicle bid at all may only have been slow (a burst of auctions
        loads the machine and bids arrive after the deadline): the same vehicles are called
        again, up to RECALLS times, before the auction waits for newly idle vehicles, which
        the vehicles that were merely late would never become."""
        await self.close_round(auction, winner=None)
        silent = (auction.bidders or _book_bidders(auction)) == 0 and auction.award is None
        if self.now() < self.patience_end(auction):
            if silent and auction.admitted and auction.recalls < RECALLS:
                auction.recalls += 1
                auction.book = None
                auction.groups.clear()
                auction.standing.clear()
                await self.start_bidding(auction)
                return
            auction.admitted.clear()
            auction.book = None
            auction.groups.clear()
            auction.standing.clear()
            auction.bidders = 0
            auction.type.stop()
            await self.set_phase(auction, WAITING)
        else:
            await self.finish(auction, None, "no eligible vehicle bid before the deadline")

    async def on_award_confirmed(self, msg: Message, body: m.AwardConfirmed) -> None:
        auction = self.current(body.auction_id)
        award = auction.award
        if auction.phase != AWARDING or award is None or sender_of(msg) != award.via \
                or body.vehicle != award.offer.vehicle:
            raise Rejected(f"no award of auction {body.auction_id} is pending for {body.vehicle}")
        await self.finish(auction, award.offer, "", eta_s=body.eta_s, trips=body.trips)

    async def on_award_declined(self, msg: Message, body: m.AwardDeclined) -> None:
        # Only without proxies: a proxy answers a decline with a revised group report.
        auction = self.current(body.auction_id)
        award = auction.award
        if auction.phase != AWARDING or award is None or auction.book is None \
                or sender_of(msg) != award.via or body.vehicle != award.offer.vehicle:
            raise Rejected(f"no award of auction {body.auction_id} is pending for {body.vehicle}")
        auction.book.strike(body.vehicle)
        auction.award = None
        auction.phase = BIDDING
        await self.decide(auction)

    async def on_error_reply(self, msg: Message, body: m.NotUnderstood | m.Refused) -> None:
        await super().on_error_reply(msg, body)
        auction = self.auction
        award = auction.award if auction else None
        if auction is None or award is None or body.in_reply_to != m.Award.TYPE \
                or sender_of(msg) != award.via:
            return
        # The award could not be delivered: treat it as declined and move on to the next bid.
        if auction.book is not None:
            auction.book.strike(award.offer.vehicle)
        else:
            auction.standing[award.via] = None
        auction.award = None
        auction.phase = BIDDING
        await self.decide(auction)

    async def close_round(self, auction: Auction, winner: str | None) -> None:
        """Tell the proxies the round is over (they forget their groups; for a replicated
        manager it also confirms their reports are in its log). Losing vehicles are not
        told: they hold nothing for the auction but a bounded note of whom they bid to."""
        auction_id = auction.spec.auction_id
        for proxy in auction.groups:
            await self.tell(proxy, m.AuctionResult(auction_id=auction_id, winner=winner))

    async def on_patience(self, auction_id: str) -> None:
        auction = self.auction
        if auction is None or auction.spec.auction_id != auction_id:
            return
        if auction.phase == WAITING:
            await self.finish(auction, None, "no eligible vehicle before the passenger's deadline")
        elif auction.phase == AWARDING and auction.award is not None:
            # A vehicle is answering: give it one more bid window, then free this manager
            # (a crashed winner must not hold a pool slot forever).
            award = auction.award
            window = self.agent.world.config.bid_window_s()
            auction.timers.append(self.later(window, lambda: self.on_award_silence(award)))
        # BIDDING: the round's own deadline ends it.

    async def on_withdraw(self, msg: Message, body: m.WithdrawAuction) -> None:
        """The MainManager's deadline for this auction passed: end it here, where the ride's
        outcome is told, so the passenger hears once. An award already sent may still be
        confirmed (the ride is then served): it gets one bidding window, like an award
        pending when the passenger's patience ends; a decline ends the auction unserved."""
        self.from_main_manager(msg)
        auction = self.current(body.auction_id)  # ended: our auction-closed is on its way
        if auction.withdrawn:
            return
        auction.withdrawn = True
        award = auction.award
        if auction.phase == AWARDING and award is not None:
            window = self.agent.world.config.bid_window_s()
            auction.timers.append(self.later(window, lambda: self.on_award_silence(award)))
            return
        auction.type.stop()
        await self.close_round(auction, winner=None)
        await self.finish(auction, None, WITHDRAWN)

    async def on_award_silence(self, award: Award) -> None:
        auction = self.auction
        if auction is None or auction.award is not award or auction.phase != AWARDING:
            return
        log.warning("%s: %s never answered the award of %s", self.agent.name,
                    award.offer.vehicle, auction.spec.auction_id)
        await self.close_round(auction, winner=None)
        await self.finish(auction, None, "the winning vehicle never confirmed")

    async def finish(
        self, auction: Auction, offer: Offer | None, reason: str, eta_s: float = 0.0,
        trips: int = 0,
    ) -> None:
        spec = auction.spec
        for timer in auction.timers:
            timer.cancel()
        self.auction = None
        self.ended.add(spec.auction_id)
        if offer is None:
            await self.tell(spec.passenger, m.RideUnserved(auction_id=spec.auction_id,
                                                           reason=reason))
        else:
            await self.tell(spec.passenger, m.RideAssigned(
                auction_id=spec.auction_id, vehicle=offer.vehicle, eta_s=eta_s,
                price=self.price(auction, offer),
                bidders=max(1, auction.bidders or _book_bidders(auction)),
            ))
        winner = None if offer is None else offer.vehicle
        await self.tell(self.agent.manager_jid, m.AuctionClosed(auction_id=spec.auction_id,
                                                                winner=winner,
                                                                winner_trips=trips))
        # Passenger and registry first: the proxies' result is off the critical path.
        if offer is not None:
            await self.close_round(auction, winner=winner)
        await self.file_audit(spec.auction_id)


def _book_bidders(auction: Auction) -> int:
    return auction.book.bidders if auction.book is not None else 0


@dataclass
class Desk:
    """The AuctionManager as the type of one of its auctions sees it (auction_types.Manager):
    timers are the auction's own, and the decision is on its record."""

    behaviour: AuctionBehaviour
    auction: Auction

    async def tell(self, to: str, body: m.Body, conversation: str | None = None,
                   performative: str = "") -> None:
        await self.behaviour.tell(to, body, conversation, performative)

    def later(self, sim_seconds: float, callback: Callable[[], Awaitable[None]]) -> Cancellable:
        handle = self.behaviour.later(sim_seconds, callback)
        self.auction.timers.append(handle)  # cancelled when the auction finishes
        return handle

    def now(self) -> float:
        return self.behaviour.now()

    def bid_window(self) -> float:
        return float(self.behaviour.agent.world.config.bid_window_s())

    def bidding(self) -> bool:
        return self.behaviour.auction is self.auction and self.auction.phase == BIDDING

    async def decide_on(self, book: BidBook, bidders: int) -> None:
        self.auction.book = book
        self.auction.bidders = bidders
        await self.behaviour.decide(self.auction)
