"""The vehicle's whole protocol: announce availability, answer sealed calls (one per request,
or one per batch of requests) and English or Dutch rounds, accept or decline an award,
drive, and hold a certificate for laws that require one. Every message a vehicle handles
or sends is in this module.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import math
from dataclasses import dataclass
from typing import Any, ClassVar

from spade.behaviour import OneShotBehaviour
from spade.message import Message

from fleetbid.auction.rules import equilibrium_bid
from fleetbid.behaviours.auction_types import auction_type
from fleetbid.behaviours.base import AcknowledgedBids, Rejected, check_declared, sender_of
from fleetbid.core.text import loggable
from fleetbid.laws import auctions, certificates
from fleetbid.maps import RoadMap
from fleetbid.policies import reposition
from fleetbid.policies.batch import k_best
from fleetbid.protocol import codec
from fleetbid.protocol import law_messages as lm
from fleetbid.protocol import messages as m

log = logging.getLogger("fleetbid.vehicle")
laws_log = logging.getLogger("fleetbid.laws")
RENEW_AT = 0.8  # of a certificate's lifetime

CALLERS_KEPT = 256  # auctions a vehicle remembers having bid in (see BiddingBehaviour.callers)
IDLE, TO_PICKUP, WITH_PASSENGER = "idle", "to_pickup", "with_passenger"
REPOSITIONING = "repositioning"  # driving empty toward demand: not available, bids nowhere


@dataclass
class Leg:
    """One driven route, so the odometer can count a leg still under way at the end."""

    start: float  # simulated seconds
    duration: float
    length_m: float
    loaded: bool


class BiddingBehaviour(AcknowledgedBids):
    """Answers calls for bids while idle; takes the first award it gets, declines later ones."""

    SENDS: ClassVar[frozenset[type[m.Body]]] = frozenset({
        m.Bid, m.BidDeclined, m.AwardConfirmed, m.AwardDeclined, m.DispatchConfirmed,
        m.DispatchDeclined, m.BatchBid,
    })

    async def on_start(self) -> None:
        self.handlers = {
            m.CallForBids: self.on_call,
            m.Award: self.on_award,
            m.BidReceived: self.on_bid_received,
            m.Dispatch: self.on_dispatch,  # policies other than auction
            m.BatchCall: self.on_batch_call,  # batch-auction
            m.BatchAward: self.on_batch_award,
            # English and Dutch rounds (laws/), straight from the auction manager
            lm.EnglishRound: self.on_english_round,
            lm.DutchTick: self.on_dutch_tick,
            lm.Outbid: self.on_outbid,
            # certificates, for laws that require them
            lm.CertificateIssued: self.on_certificate,
            lm.Revoked: self.on_revoked,
        }
        # auction id -> who called us (a proxy or the auction manager): awards must come from
        # it. Losers are not told they lost (no message to a vehicle that cannot win), so the
        # note is bounded: the oldest go first, long after their auctions ended.
        self.callers: collections.OrderedDict[str, str] = collections.OrderedDict()
        # batch id -> the manager that clears it (its awards must come from it); bounded too.
        self.batches: collections.OrderedDict[str, str] = collections.OrderedDict()

    # --- calls to bid -----------------------------------------------------------------------

    async def eta_or_decline(self, caller: str, auction_id: str, pickup: str,
                             round_no: int) -> float | None:
        """The travel time to the pickup if we can bid now; else decline and return None."""
        agent = self.agent
        # A call for an auction we already bid in starts a new round: it supersedes the old.
        self.callers.pop(auction_id, None)
        reason = ""
        eta = math.inf
        if agent.state != IDLE:
            reason = agent.state
        elif agent.world.roadmap.has_node(pickup):
            eta = agent.world.travel.time_to(agent.node, pickup)
        if not reason and not math.isfinite(eta):
            reason = f"pickup {pickup} is not reachable on my map"
        if reason:
            await self.tell(caller, m.BidDeclined(auction_id=auction_id, reason=reason,
                                                  round=round_no))
            return None
        return eta

    def remember_caller(self, auction_id: str, caller: str) -> None:
        self.callers[auction_id] = caller
        self.callers.move_to_end(auction_id)
        while len(self.callers) > CALLERS_KEPT:
            self.callers.popitem(last=False)

    async def bid(self, caller: str, auction_id: str, bid: float, eta: float,
                  round_no: int) -> None:
        self.remember_caller(auction_id, caller)
        min_eta = self.agent.world.config.min_eta_s
        await self.tell(caller, m.Bid(auction_id=auction_id, bid=bid, eta_s=max(eta, min_eta),
                                      round=round_no))

    async def on_call(self, msg: Message, body: m.CallForBids) -> None:
        agent = self.agent
        caller = sender_of(msg)
        if caller not in agent.managers and caller not in agent.proxies:
            raise Rejected(f"{caller} is neither an auction manager nor a proxy")
        eta = await self.eta_or_decline(caller, body.auction_id, body.pickup, body.round)
        if eta is None:
            return
        # The law was adopted on receipt of this call (law controller).
        kind = auction_type(agent.controller.law_for(body.auction_id))
        bid = kind.sealed_bid(body.n, eta, agent.world.config.min_eta_s)
        await self.bid(caller, body.auction_id, bid, eta, body.round)

    def from_manager(self, msg: Message) -> str:
        caller = sender_of(msg)
        if caller not in self.agent.managers:
            raise Rejected(f"{caller} is not an auction manager")
        return caller

    async def on_english_round(self, msg: Message, body: lm.EnglishRound) -> None:
        caller = self.from_manager(msg)
        # Declines here echo no round (0): as the rounds protocol has always answered.
        eta = await self.eta_or_decline(caller, body.auction_id, body.pickup, 0)
        if eta is None:
            return
        own = auctions.value(eta, self.agent.world.config.min_eta_s)
        bid = auctions.english_raise(own, body.minimum)
        # An earlier raise of ours may still end up losing: keep the caller for its `lost`.
        self.remember_caller(body.auction_id, caller)
        if bid is None:
            await self.tell(caller, m.BidDeclined(
                auction_id=body.auction_id, reason="the minimum raise exceeds my value",
                round=body.round))
            return
        await self.bid(caller, body.auction_id, bid, eta, body.round)

    async def on_dutch_tick(self, msg: Message, body: lm.DutchTick) -> None:
        caller = self.from_manager(msg)
        eta = await self.eta_or_decline(caller, body.auction_id, body.pickup, 0)
        if eta is None:
            return
        own = equilibrium_bid(body.n, eta, self.agent.world.config.min_eta_s)
        if not auctions.dutch_accepts(own, body.price):
            await self.tell(caller, m.BidDeclined(
                auction_id=body.auction_id, reason="waiting: the clock is above my bid",
                round=body.tick + 1))
            return
        await self.bid(caller, body.auction_id, body.price, eta, body.tick + 1)

    async def on_outbid(self, msg: Message, body: lm.Outbid) -> None:
        log.debug("%s outbid in %s by %s", self.agent.name, body.auction_id, body.leader)

    # --- batch auctions (--policy batch-auction) ---------------------------------------------

    async def on_batch_call(self, msg: Message, body: m.BatchCall) -> None:
        """One sealed bid for the whole batch: my k best pickup times (none when busy)."""
        agent = self.agent
        caller = sender_of(msg)
        if caller not in agent.managers and caller not in agent.proxies:
            raise Rejected(f"{caller} is neither an auction manager nor a proxy")
        if body.manager not in agent.managers or body.vehicles:
            raise Rejected("a batch call to a vehicle names its manager and no group")
        reason = "" if agent.state == IDLE else agent.state
        times: list[tuple[str, float]] = []
        if not reason:
            travel, roadmap = agent.world.travel, agent.world.roadmap
            times = k_best({p.request_id: travel.time_to(agent.node, p.pickup)
                            if roadmap.has_node(p.pickup) else math.inf
                            for p in body.pickups}, body.k)
            reason = "" if times else "no pickup of the batch is reachable on my map"
            self.batches[body.batch_id] = body.manager
            while len(self.batches) > CALLERS_KEPT:
                self.batches.popitem(last=False)
        floor = agent.world.config.min_eta_s
        await self.tell(caller, m.BatchBid(
            batch_id=body.batch_id, reason=reason,
            times=tuple(m.PickupTime(r, max(t, floor)) for r, t in times),
        ), conversation=body.batch_id)

    async def on_batch_award(self, msg: Message, body: m.BatchAward) -> None:
        agent = self.agent
        if self.batches.get(body.batch_id) != sender_of(msg):
            raise Rejected(f"no bid of mine in batch {body.batch_id} went to {sender_of(msg)}")
        ride = body.ride
        if not agent.world.roadmap.has_node(ride.dropoff):
            raise Rejected(f"drop-off {ride.dropoff} is not on my map")
        award = m.Award(auction_id=ride.request_id, vehicle=str(agent.jid.bare),
                        passenger=ride.passenger, pickup=ride.pickup, dropoff=ride.dropoff,
                        price=body.price)
        await self.take(sender_of(msg), award)
        await self.file_audit(body.batch_id)  # my copy of the award, if the law keeps it

    # --- awards -----------------------------------------------------------------------------

    async def on_award(self, msg: Message, body: m.Award) -> None:
        agent = self.agent
        caller = self.callers.get(body.auction_id)
        if caller is None or caller != sender_of(msg):
            raise Rejected(f"no bid of mine in auction {body.auction_id} went to {sender_of(msg)}")
        if body.vehicle != str(agent.jid.bare):
            raise Rejected(f"award names {body.vehicle}, not me")
        on_map(agent.world.roadmap, body.pickup, body.dropoff)
        del self.callers[body.auction_id]
        await self.take(caller, body)

    async def take(self, caller: str, body: m.Award) -> None:
        """Confirm the award to `caller` and drive, or decline it when already assigned."""
        agent = self.agent
        if agent.state != IDLE:
            await self.tell(caller, m.AwardDeclined(
                auction_id=body.auction_id, vehicle=body.vehicle,
                reason=f"already assigned ({agent.state})",
            ))
            return
        eta = agent.world.travel.time_to(agent.node, body.pickup)  # cached when we bid
        agent.state = TO_PICKUP  # before any await: a second award now sees us busy
        agent.rides_taken.append(body.auction_id)
        await self.tell(caller, m.AwardConfirmed(
            auction_id=body.auction_id, vehicle=body.vehicle, eta_s=eta, trips=agent.trips
        ))
        agent.add_behaviour(TripBehaviour(body))

    async def on_dispatch(self, msg: Message, body: m.Dispatch) -> None:
        """Policies other than auction: the MainManager assigns; take it if idle."""
        agent = self.agent
        if sender_of(msg) != agent.manager_jid:
            raise Rejected(f"{sender_of(msg)} is not the main manager")
        on_map(agent.world.roadmap, body.pickup, body.dropoff)
        if agent.state != IDLE:
            await self.tell(agent.manager_jid, m.DispatchDeclined(
                auction_id=body.auction_id, reason=f"already assigned ({agent.state})"))
            return
        eta = agent.world.travel.time_to(agent.node, body.pickup)
        agent.state = TO_PICKUP  # before any await: a second dispatch now sees us busy
        agent.rides_taken.append(body.auction_id)
        await self.tell(agent.manager_jid, m.DispatchConfirmed(
            auction_id=body.auction_id, eta_s=eta, trips=agent.trips))
        agent.add_behaviour(TripBehaviour(m.Award(
            auction_id=body.auction_id, vehicle=str(agent.jid.bare), passenger=body.passenger,
            pickup=body.pickup, dropoff=body.dropoff, price=0.0,
        )))

    async def on_error_reply(self, msg: Message, body: m.NotUnderstood | m.Refused) -> None:
        await super().on_error_reply(msg, body)
        # Our bid came too late (the round closed): forget it, no award can follow.
        conversation = msg.get_metadata("conversation") or ""
        if self.callers.get(conversation) == sender_of(msg):
            del self.callers[conversation]

    # --- certificates -----------------------------------------------------------------------

    def from_authority(self, msg: Message) -> None:
        if sender_of(msg) != self.agent.directory.authority:
            raise Rejected(f"{sender_of(msg)} is not the certification authority")

    async def on_certificate(self, msg: Message, body: lm.CertificateIssued) -> None:
        """Check the certificate, install it in the controller, and plan its renewal."""
        agent = self.agent
        controller = agent.controller
        self.from_authority(msg)
        cert = body.certificate
        problem = certificates.problem(cert, controller.authority_key, str(agent.jid.bare),
                                       agent.world.clock.now(), controller.revoked)
        if problem is not None:
            raise Rejected(problem)
        controller.certificate = cert
        if controller.book.default.certification.renew:
            delay = RENEW_AT * (cert.expires_at - cert.issued_at)
            loop = asyncio.get_running_loop()
            loop.call_later(agent.world.clock.wall_delay(delay),
                            lambda: agent.add_behaviour(RequestCertificate(renew=True)))

    async def on_revoked(self, msg: Message, body: lm.Revoked) -> None:
        # The controller already dropped the right to bid (it keeps the revocation).
        self.from_authority(msg)
        laws_log.warning("%s: certificate revoked: %s", self.agent.name, loggable(body.reason))


class RequestCertificate(OneShotBehaviour):
    """Ask the certification authority for a certificate (at start, and to renew it)."""

    SENDS: ClassVar[frozenset[type[m.Body]]] = frozenset({lm.CertificateRequest})

    def __init__(self, renew: bool = False) -> None:
        super().__init__()
        self.renew = renew

    async def run(self) -> None:
        agent = self.agent
        request = lm.CertificateRequest(renew=self.renew)
        check_declared(self, request)
        await agent.send(codec.encode(agent.directory.authority, request, ""), self)


class AnnounceBehaviour(OneShotBehaviour):
    """Tell the MainManager we are idle here (at start and after every drop-off)."""

    SENDS: ClassVar[frozenset[type[m.Body]]] = frozenset({m.VehicleAvailable})

    async def run(self) -> None:
        agent = self.agent
        available = m.VehicleAvailable(node=agent.node, trips=agent.trips)
        check_declared(self, available)
        await agent.send(codec.encode(agent.manager_jid, available, ""), self)


class TripBehaviour(OneShotBehaviour):
    """Drive to the pickup, tell the passenger, drive to the destination, be idle again."""

    SENDS: ClassVar[frozenset[type[m.Body]]] = frozenset({m.PickedUp})

    def __init__(self, award: m.Award) -> None:
        super().__init__()
        self.award = award

    async def run(self) -> None:
        agent = self.agent
        award = self.award
        await agent.drive(award.pickup, loaded=False)
        picked = m.PickedUp(auction_id=award.auction_id, at=agent.world.clock.now())
        check_declared(self, picked)
        await agent.send(codec.encode(award.passenger, picked), self)
        agent.state = WITH_PASSENGER
        await agent.drive(award.dropoff, loaded=True)
        agent.trips += 1
        goal = reposition_goal(agent)
        if goal is not None:
            # Not available until it arrives: the registry never counts it where it is not.
            agent.state = REPOSITIONING
            await agent.drive(goal, loaded=False, state=REPOSITIONING)
        agent.state = IDLE
        agent.add_behaviour(AnnounceBehaviour())


def reposition_goal(agent: Any) -> str | None:
    """Where a vehicle just idle drives toward demand (None: it stays), by the simulator's
    rule on the last figures its process heard (behaviours/demand.py); None without them."""
    board = agent.demand_board
    if board is None:
        return None
    world = agent.world
    goal = reposition.target(agent.node, board.figures(), world.clusters.cluster_of_node,
                             world.travel.time_to)
    if goal is not None:
        log.info("%s repositions from %s to %s", agent.name, agent.node, goal)
    return goal


def on_map(roadmap: RoadMap, pickup: str, dropoff: str) -> None:
    """Refuse a ride whose pickup or drop-off is not on this vehicle's map (before any state
    changes: a trip to nowhere would fail half-way)."""
    if not roadmap.has_node(pickup) or not roadmap.has_node(dropoff):
        raise Rejected("pickup or drop-off is not on my map")

