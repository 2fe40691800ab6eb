"""The vehicle's protocol steps: announce availability, bid, accept or decline an award, drive."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from spade.behaviour import OneShotBehaviour
from spade.message import Message

from fleetbid.behaviours import auction_types as strategies
from fleetbid.behaviours import vehicle_certs
from fleetbid.behaviours.base import ProtocolBehaviour, Rejected, sender_of
from fleetbid.protocol import codec
from fleetbid.protocol import messages as m

log = logging.getLogger("fleetbid.vehicle")

IDLE, TO_PICKUP, WITH_PASSENGER = "idle", "to_pickup", "with_passenger"


@dataclass
class Leg:
    """One driven route, so the odometer can count a leg still under way at the end."""

    start: float  # simulated seconds
    duration: float
    length_m: float
    loaded: bool


class BiddingBehaviour(ProtocolBehaviour):
    """Answers calls for bids while idle; takes the first award it gets, declines later ones."""

    async def on_start(self) -> None:
        self.handlers = {
            m.CallForBids: self.on_call,
            m.Award: self.on_award,
            m.Lost: self.on_lost,
            m.AdmissionRefused: self.on_admission_refused,
            m.BidReceived: self.on_bid_received,
            m.Dispatch: self.on_dispatch,  # policies other than auction
        }
        self.handlers.update(strategies.vehicle_handlers(self))  # English/Dutch rounds (laws/)
        self.handlers.update(vehicle_certs.certificate_handlers(self))
        # auction id -> who called us (a proxy or the auction manager): awards must come from it
        self.callers: dict[str, str] = {}

    async def on_call(self, msg: Message, body: m.CallForBids) -> None:
        agent = self.agent
        caller = sender_of(msg)
        if caller not in agent.managers and caller not in agent.proxies:
            raise Rejected(f"{caller} is neither an auction manager nor a proxy")
        # A call for an auction we already bid in starts a new round: it supersedes the old.
        self.callers.pop(body.auction_id, None)
        if agent.state != IDLE:
            await self.tell(caller, m.BidDeclined(auction_id=body.auction_id, reason=agent.state,
                                                  round=body.round))
            return
        eta = math.inf
        if agent.world.roadmap.has_node(body.pickup):
            eta = agent.world.travel.time_to(agent.node, body.pickup)
        if not math.isfinite(eta):
            reason = f"pickup {body.pickup} is not reachable on my map"
            await self.tell(caller, m.BidDeclined(auction_id=body.auction_id, reason=reason,
                                                  round=body.round))
            return
        min_eta = agent.world.config.min_eta_s
        law = agent.controller.law_for(body.auction_id)
        bid = strategies.sealed_bid(law, body.n, eta, min_eta)
        self.callers[body.auction_id] = caller
        await self.tell(caller, m.Bid(auction_id=body.auction_id, bid=bid, eta_s=max(eta, min_eta),
                                      round=body.round))

    async def on_bid_received(self, msg: Message, body: m.BidReceived) -> None:
        if sender_of(msg) not in self.agent.managers:
            raise Rejected(f"{sender_of(msg)} is not an auction manager")
        self.agent.bids_acknowledged.add(body.auction_id)

    async def on_award(self, msg: Message, body: m.Award) -> None:
        agent = self.agent
        caller = self.callers.get(body.auction_id)
        if caller is None or caller != sender_of(msg):
            raise Rejected(f"no bid of mine in auction {body.auction_id} went to {sender_of(msg)}")
        if body.vehicle != str(agent.jid.bare):
            raise Rejected(f"award names {body.vehicle}, not me")
        del self.callers[body.auction_id]
        if agent.state != IDLE:
            await self.tell(caller, m.AwardDeclined(
                auction_id=body.auction_id, vehicle=body.vehicle,
                reason=f"already assigned ({agent.state})",
            ))
            return
        eta = agent.world.travel.time_to(agent.node, body.pickup)  # cached when we bid
        agent.state = TO_PICKUP  # before any await: a second award now sees us busy
        await self.tell(caller, m.AwardConfirmed(
            auction_id=body.auction_id, vehicle=body.vehicle, eta_s=eta, trips=agent.trips
        ))
        agent.add_behaviour(TripBehaviour(body))

    async def on_dispatch(self, msg: Message, body: m.Dispatch) -> None:
        """Policies other than auction: the MainManager assigns; take it if idle."""
        agent = self.agent
        if sender_of(msg) != agent.manager_jid:
            raise Rejected(f"{sender_of(msg)} is not the main manager")
        if not agent.world.roadmap.has_node(body.pickup) or not agent.world.roadmap.has_node(
                body.dropoff):
            raise Rejected("pickup or drop-off is not on my map")
        if agent.state != IDLE:
            await self.tell(agent.manager_jid, m.DispatchDeclined(
                auction_id=body.auction_id, reason=f"already assigned ({agent.state})"))
            return
        eta = agent.world.travel.time_to(agent.node, body.pickup)
        agent.state = TO_PICKUP  # before any await: a second dispatch now sees us busy
        await self.tell(agent.manager_jid, m.DispatchConfirmed(
            auction_id=body.auction_id, eta_s=eta, trips=agent.trips))
        agent.add_behaviour(TripBehaviour(m.Award(
            auction_id=body.auction_id, vehicle=str(agent.jid.bare), passenger=body.passenger,
            pickup=body.pickup, dropoff=body.dropoff, price=0.0,
        )))

    async def on_lost(self, msg: Message, body: m.Lost) -> None:
        if self.callers.get(body.auction_id) != sender_of(msg):
            raise Rejected(f"no bid of mine in auction {body.auction_id}")
        del self.callers[body.auction_id]

    async def on_error_reply(self, msg: Message, body: m.NotUnderstood | m.Refused) -> None:
        await super().on_error_reply(msg, body)
        # Our bid came too late (the round closed): forget it, no award can follow.
        conversation = msg.get_metadata("conversation") or ""
        if self.callers.get(conversation) == sender_of(msg):
            del self.callers[conversation]

    async def on_admission_refused(self, msg: Message, body: m.AdmissionRefused) -> None:
        log.debug("%s not admitted to %s: %s", self.agent.name, body.auction_id, body.reason)


class AnnounceBehaviour(OneShotBehaviour):
    """Tell the MainManager we are idle here (at start and after every drop-off)."""

    async def run(self) -> None:
        agent = self.agent
        available = m.VehicleAvailable(node=agent.node, trips=agent.trips)
        await agent.send(codec.encode(agent.manager_jid, available, ""), self)


class TripBehaviour(OneShotBehaviour):
    """Drive to the pickup, tell the passenger, drive to the destination, be idle again."""

    def __init__(self, award: m.Award) -> None:
        super().__init__()
        self.award = award

    async def run(self) -> None:
        agent = self.agent
        award = self.award
        await agent.drive(award.pickup, loaded=False)
        picked = m.PickedUp(auction_id=award.auction_id, at=agent.world.clock.now())
        await agent.send(codec.encode(award.passenger, picked), self)
        agent.state = WITH_PASSENGER
        await agent.drive(award.dropoff, loaded=True)
        agent.state = IDLE
        agent.trips += 1
        agent.add_behaviour(AnnounceBehaviour())
