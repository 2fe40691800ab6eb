"""The AuctionManager's protocol steps for a batch procurement auction (--policy batch-auction).

open-batch (a cluster's waiting passengers and idle vehicles, from the MainManager) -> one
`batch-call` per vehicle for all the pickups (through proxies where the batch is large: a
proxy merges its group's bids into one message) -> one sealed `batch-bid` per vehicle, its k
best pickup times -> clearing as an assignment (ε-auction, policies/batch.py `clear`) ->
`batch-award` to each matched vehicle, with the price the batch's law pays it
(laws/batch.py) -> `award-confirmed` -> `ride-assigned` to the passenger -> `batch-closed`
to the MainManager, which puts the rides not served back in its queue for the next batch.
One call and one bid per vehicle per batch, not per passenger.

The batch runs under the law the MainManager's `open-batch` carries (the run's default law):
the law controllers check its bids like per-request ones (a call is the token, a certificate
where the law wants one), and the manager files its copies of the bids it received with the
auditor once it has cleared the batch; each winner files its copy of the award.
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from dataclasses import dataclass, field
from typing import ClassVar

from spade.message import Message

from fleetbid.auction.rules import group_count, split_groups
from fleetbid.behaviours.base import Ended, Late, ProtocolBehaviour, Rejected, sender_of
from fleetbid.core.text import loggable
from fleetbid.laws import batch as batch_law
from fleetbid.protocol import messages as m

log = logging.getLogger("fleetbid.batch")

BIDDING, AWARDING = "bidding", "awarding"
# Vehicles called through proxies only from this many on: below it a proxy adds two
# messages per group and saves the manager little.
PROXY_FROM = 16


@dataclass
class Batch:
    spec: m.OpenBatch
    rides: dict[str, m.BatchRide]  # request id -> ride
    called: dict[str, str]  # vehicle -> node it was called at
    groups: dict[str, tuple[str, ...]] = field(default_factory=dict)  # proxy -> members
    answered: set[str] = field(default_factory=set)  # vehicles (direct) or proxies
    bids: dict[str, list[tuple[str, float]]] = field(default_factory=dict)  # vehicle -> times
    phase: str = BIDDING
    awards: dict[str, str] = field(default_factory=dict)  # request id -> vehicle, unconfirmed
    prices: dict[str, float] = field(default_factory=dict)  # request id -> the law's price
    served: list[m.ServedRide] = field(default_factory=list)
    timers: list[asyncio.Handle] = field(default_factory=list)

    def complete(self) -> bool:
        expected = self.groups.keys() if self.groups else self.called.keys()
        return self.answered >= set(expected)


class BatchAuctionBehaviour(ProtocolBehaviour):
    SENDS: ClassVar[frozenset[type[m.Body]]] = frozenset({
        m.BatchCall, m.BatchAward, m.BatchClosed, m.RideAssigned,
    })

    async def on_start(self) -> None:
        self.handlers = {
            m.OpenBatch: self.on_open,
            m.BatchBid: self.on_bid,
            m.BatchGroupBids: self.on_group_bids,
            m.AwardConfirmed: self.on_confirmed,
            m.AwardDeclined: self.on_declined,
        }
        self.batch: Batch | None = None
        self.ended = Ended()

    def idle(self) -> bool:
        return self.batch is None

    def reset_state(self) -> None:
        self.batch = None
        self.ended.clear()

    def current(self, batch_id: str) -> Batch:
        batch = self.batch
        if batch is None or batch.spec.batch_id != batch_id:
            if batch_id in self.ended:
                raise Late(f"batch {batch_id} has ended")
            raise Rejected(f"unknown batch {batch_id}")
        return batch

    # --- opening and calling ----------------------------------------------------------------

    async def on_open(self, msg: Message, body: m.OpenBatch) -> None:
        agent = self.agent
        if sender_of(msg) != agent.manager_jid:
            raise Rejected(f"{sender_of(msg)} is not the main manager")
        if self.batch is not None:
            raise Rejected(f"busy with batch {self.batch.spec.batch_id}")
        roadmap = agent.world.roadmap
        for node in [r.pickup for r in body.rides] + [r.dropoff for r in body.rides] \
                + [c.node for c in body.candidates]:
            if not roadmap.has_node(node):
                raise Rejected(f"node {node} is not on the map")
        rides = {r.request_id: r for r in body.rides}
        called = {c.vehicle: c.node for c in body.candidates}
        if len(rides) < len(body.rides) or len(called) < len(body.candidates):
            raise Rejected("a batch lists each ride and each vehicle once")
        if not set(called) <= agent.fleet:
            raise Rejected("a candidate is not a vehicle of this fleet")
        unlawful = batch_law.problem(agent.controller.law_for(body.batch_id))
        if unlawful is not None:
            raise Rejected(unlawful)
        self.batch = batch = Batch(body, rides, called)
        config = agent.world.config
        window = config.bid_window_s()
        pickups = tuple(m.BatchPickup(r.request_id, r.pickup) for r in body.rides)
        call = m.BatchCall(batch_id=body.batch_id, manager=str(agent.jid.bare), pickups=pickups,
                           k=config.batch_k, deadline=self.now() + window)
        vehicles = sorted(called)
        proxies = agent.proxies
        k = 0 if len(vehicles) < PROXY_FROM else group_count(
            len(vehicles), config.proxy_setting(), len(proxies))
        if k == 0:
            for vehicle in vehicles:
                await self.tell(vehicle, call, conversation=body.batch_id)
        else:
            start = zlib.crc32(body.batch_id.encode()) % len(proxies)
            chosen = [proxies[(start + i) % len(proxies)] for i in range(k)]
            for proxy, members in zip(chosen, split_groups(vehicles, k), strict=False):
                batch.groups[proxy] = tuple(members)
                await self.tell(proxy, m.BatchCall(
                    batch_id=call.batch_id, manager=call.manager, pickups=pickups, k=call.k,
                    deadline=call.deadline, vehicles=tuple(members),
                ), conversation=body.batch_id)
        batch.timers.append(self.later(window, lambda: self.on_deadline(batch)))

    # --- bids -------------------------------------------------------------------------------

    def check(self, batch: Batch, vehicle: str, times: tuple[m.PickupTime, ...]) -> None:
        """A vehicle's sealed bid: its k best at most, for this batch's rides, each at most
        once, no shorter than the run's ETA floor (Rejected before any state change)."""
        config = self.agent.world.config
        ids = [t.request_id for t in times]
        if len(ids) > config.batch_k or len(set(ids)) < len(ids):
            raise Rejected(f"a batch bid lists at most {config.batch_k} distinct rides")
        if not set(ids) <= batch.rides.keys():
            raise Rejected(f"{vehicle} bid for a ride not in batch {batch.spec.batch_id}")
        if any(t.eta_s < config.min_eta_s for t in times):
            raise Rejected(f"an ETA is below the floor of {config.min_eta_s} s")

    @staticmethod
    def keep(batch: Batch, vehicle: str, times: tuple[m.PickupTime, ...]) -> None:
        if times:
            batch.bids[vehicle] = [(t.request_id, t.eta_s) for t in times]

    async def on_bid(self, msg: Message, body: m.BatchBid) -> None:
        batch = self.current(body.batch_id)
        vehicle = sender_of(msg)
        if batch.groups or vehicle not in batch.called:
            raise Rejected(f"{vehicle} was not called to batch {body.batch_id}")
        if vehicle in batch.answered:
            raise Rejected(f"{vehicle} already bid in batch {body.batch_id}")
        if batch.phase != BIDDING:
            raise Late(f"batch {body.batch_id} is cleared")
        self.check(batch, vehicle, body.times)
        self.keep(batch, vehicle, body.times)
        batch.answered.add(vehicle)
        if batch.complete():
            await self.decide(batch)

    async def on_group_bids(self, msg: Message, body: m.BatchGroupBids) -> None:
        batch = self.current(body.batch_id)
        proxy = sender_of(msg)
        members = batch.groups.get(proxy)
        if members is None or proxy in batch.answered:
            raise Rejected(f"{proxy} holds no open group of batch {body.batch_id}")
        if batch.phase != BIDDING:
            raise Late(f"batch {body.batch_id} is cleared")
        vehicles = [b.vehicle for b in body.bids]
        if not set(vehicles) <= set(members) or len(set(vehicles)) < len(vehicles):
            raise Rejected(f"{proxy} reported bids of vehicles not in its group, or twice")
        for bid in body.bids:  # all checked first: a bad one refuses the whole report
            self.check(batch, bid.vehicle, bid.times)
        for bid in body.bids:
            self.keep(batch, bid.vehicle, bid.times)
        batch.answered.add(proxy)
        if batch.complete():
            await self.decide(batch)

    async def on_deadline(self, batch: Batch) -> None:
        if self.batch is batch and batch.phase == BIDDING:
            await self.decide(batch)

    # --- clearing and awarding --------------------------------------------------------------

    async def decide(self, batch: Batch) -> None:
        batch.phase = AWARDING
        law = self.agent.controller.law_for(batch.spec.batch_id)
        cleared = batch_law.clearing(law, batch.bids)
        if not cleared:
            await self.close(batch)
            return
        for c in cleared:
            batch.awards[c.request_id] = c.vehicle
            batch.prices[c.request_id] = c.price
            await self.tell(c.vehicle, m.BatchAward(batch_id=batch.spec.batch_id,
                                                    ride=batch.rides[c.request_id],
                                                    price=c.price),
                            conversation=batch.spec.batch_id)
        window = self.agent.world.config.bid_window_s()
        batch.timers.append(self.later(window, lambda: self.on_award_silence(batch)))

    def awarded(self, msg: Message, auction_id: str, vehicle: str) -> Batch:
        batch = self.batch
        if batch is None or batch.awards.get(auction_id) != sender_of(msg) \
                or vehicle != sender_of(msg):
            if auction_id in self.ended:
                raise Late(f"the batch of {auction_id} has ended")
            raise Rejected(f"no award of {auction_id} to {sender_of(msg)} is pending")
        return batch

    async def on_confirmed(self, msg: Message, body: m.AwardConfirmed) -> None:
        batch = self.awarded(msg, body.auction_id, body.vehicle)
        del batch.awards[body.auction_id]
        self.ended.add(body.auction_id)
        ride = batch.rides[body.auction_id]
        batch.served.append(m.ServedRide(body.auction_id, body.vehicle, body.trips))
        bidders = sum(1 for times in batch.bids.values()
                      if any(r == body.auction_id for r, _ in times))
        await self.tell(ride.passenger, m.RideAssigned(
            auction_id=body.auction_id, vehicle=body.vehicle, eta_s=body.eta_s,
            price=batch.prices[body.auction_id],
            bidders=max(1, bidders)))
        if not batch.awards:
            await self.close(batch)

    async def on_declined(self, msg: Message, body: m.AwardDeclined) -> None:
        # The ride goes back to the MainManager's queue with the batch's other leftovers.
        batch = self.awarded(msg, body.auction_id, body.vehicle)
        del batch.awards[body.auction_id]
        log.info("%s declined %s: %s", body.vehicle, body.auction_id, loggable(body.reason))
        if not batch.awards:
            await self.close(batch)

    async def on_award_silence(self, batch: Batch) -> None:
        if self.batch is batch:
            log.warning("%s: awards of batch %s unanswered: %s", self.agent.name,
                        batch.spec.batch_id, sorted(batch.awards))
            await self.close(batch)

    async def close(self, batch: Batch) -> None:
        for timer in batch.timers:
            timer.cancel()
        self.batch = None
        self.ended.add(batch.spec.batch_id)
        # An award still unanswered is lost to this batch: the MainManager queues its ride
        # again; a late confirmation is answered as late (the vehicle then drives for
        # nothing, which a bounded award window makes rare).
        await self.tell(self.agent.manager_jid, m.BatchClosed(
            batch_id=batch.spec.batch_id, served=tuple(batch.served)),
            conversation=batch.spec.batch_id)
