"""The MainManager's protocol steps: the registry of live auctions and of idle vehicles.

A ride request opens an auction on a free AuctionManager of the pool (queued while none is
free). A vehicle's participation request is remembered and forwarded to its cluster's
auctions: in one batch when an auction opens, one by one to auctions waiting for bidders.
A request whose cluster has no eligible idle vehicle spills over to the nearest cluster
that has some (policies/spill.py), and a waiting auction takes a vehicle newly idle next
door when no auction of that cluster waits for it.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field
from typing import ClassVar

from spade.message import Message

from fleetbid.auction import admission
from fleetbid.behaviours.base import Ended, Late, ProtocolBehaviour, Rejected, sender_of
from fleetbid.core.config import RunConfig
from fleetbid.laws.schema import Law
from fleetbid.policies.spill import spill_order
from fleetbid.protocol import messages as m

log = logging.getLogger("fleetbid.registry")


@dataclass
class LiveAuction:
    manager: str
    cluster: int
    passenger: str
    phase: str = "bidding"
    forwarded: set[tuple[str, str]] = field(default_factory=set)  # (vehicle, node) sent
    # The registry's entry (docs/laws.md): where, under which law, and until when.
    pickup: str = ""
    destination: str = ""
    law: str = ""  # the law's hash
    deadline: float = 0.0  # simulated seconds; the auction is withdrawn then
    spill: tuple[int, ...] = ()  # clusters it may take vehicles from, nearest first


@dataclass(frozen=True)
class Pending:
    passenger: str
    request: m.RideRequest
    # When the MainManager received it: the auction's clock starts here, whatever time the
    # passenger wrote (a far-future `requested_at` must not pin a manager for ever).
    stamped_at: float


class RegistryBehaviour(ProtocolBehaviour):
    SENDS: ClassVar[frozenset[type[m.Body]]] = frozenset({
        m.OpenAuction, m.Participation, m.RideUnserved,
    })

    async def on_start(self) -> None:
        self.handlers = {
            m.RideRequest: self.on_ride_request,
            m.VehicleAvailable: self.on_vehicle_available,
            m.AuctionPhase: self.on_phase,
            m.AuctionClosed: self.on_closed,
        }
        self.free_managers: deque[str] = deque(self.agent.auction_managers)
        self.live: dict[str, LiveAuction] = {}
        self.waiting_requests: deque[Pending] = deque()
        self.idle: dict[str, tuple[str, int]] = {}  # vehicle -> (node, cluster)
        self.announced_trips: dict[str, int] = {}  # vehicle -> trips at its last announcement
        self.opened = 0
        # Requests that ended here: a late report about one is benign, and a replayed request
        # is not opened again.
        self.ended = Ended(capacity=100_000)

    async def on_ride_request(self, msg: Message, body: m.RideRequest) -> None:
        roadmap = self.agent.world.roadmap
        for label, node in (("source", body.source), ("destination", body.destination)):
            if not roadmap.has_node(node):
                raise Rejected(f"{label} node {node} is not on the map")
        auction_id = body.request_id
        queued = any(p.request.request_id == auction_id for p in self.waiting_requests)
        if auction_id in self.live or queued:
            raise Rejected(f"request {auction_id} is already open")
        if auction_id in self.ended:
            raise Rejected(f"request {auction_id} has already ended")
        pending = Pending(sender_of(msg), body, self.now())
        if self.free_managers:
            await self.open(pending)
        elif len(self.waiting_requests) >= self.agent.world.config.queue_limit:
            await self.turn_away(pending, f"the fleet is overloaded: {len(self.waiting_requests)} "
                                          "requests are already waiting")
        else:
            self.waiting_requests.append(pending)
            log.info("no free auction manager: %s queued (%d waiting)", auction_id,
                     len(self.waiting_requests))
            patience = self.agent.controller.law_for(auction_id).deadlines.patience_s \
                or self.agent.world.config.patience_s
            self.later(patience, lambda: self.expire(pending))

    async def expire(self, pending: Pending) -> None:
        """The passenger's patience ran out while its request waited for a free manager."""
        if pending in self.waiting_requests:
            self.waiting_requests.remove(pending)
            await self.turn_away(pending, "no auction manager became free within the "
                                          "passenger's patience")

    async def turn_away(self, pending: Pending, reason: str) -> None:
        auction_id = pending.request.request_id
        log.warning("%s: %s turned away: %s", self.agent.name, auction_id, reason)
        self.ended.add(auction_id)
        await self.tell(pending.passenger, m.RideUnserved(auction_id=auction_id, reason=reason))

    async def open(self, pending: Pending) -> None:
        request = pending.request
        manager = self.free_managers.popleft()
        world = self.agent.world
        cluster = world.clusters.cluster_of_node(request.source)
        law = self.agent.controller.law_for(request.request_id)
        live = LiveAuction(manager, cluster, pending.passenger, pickup=request.source,
                           destination=request.destination, law=law.hash,
                           deadline=withdrawal_time(self.agent.world.config, law,
                                                    pending.stamped_at),
                           spill=tuple(spill_order(world.clusters, cluster)))
        candidates = self.spilled(request.request_id, live)
        self.later(live.deadline - self.agent.world.clock.now(),
                   lambda: self.withdraw(request.request_id, live))
        live.forwarded.update((c.vehicle, c.node) for c in candidates)
        self.live[request.request_id] = live
        self.opened += 1
        await self.tell(manager, m.OpenAuction(
            auction_id=request.request_id, passenger=pending.passenger, pickup=request.source,
            dropoff=request.destination, cluster=cluster, requested_at=pending.stamped_at,
            candidates=candidates, spill=live.spill,
        ))

    async def on_vehicle_available(self, msg: Message, body: m.VehicleAvailable) -> None:
        vehicle = sender_of(msg)
        if vehicle not in self.agent.fleet:
            raise Rejected(f"{vehicle} is not a vehicle of this fleet")
        world = self.agent.world
        if not world.roadmap.has_node(body.node):
            raise Rejected(f"node {body.node} is not on the map")
        cluster = world.clusters.cluster_of_node(body.node)
        self.idle[vehicle] = (body.node, cluster)
        self.announced_trips[vehicle] = body.trips
        waiting = [(a, live) for a, live in self.live.items() if live.phase == "waiting"]
        # Its own cluster's auctions first; when none of them waits, only the oldest waiting
        # auction that spills over to this cluster (as the simulator, in arrival order): the
        # vehicle called by every hungry auction of the city would multiply the messages.
        own = [(a, live) for a, live in waiting if live.cluster == cluster]
        spill = [(a, live) for a, live in waiting if cluster in live.spill][:1]
        for auction_id, live in own or spill:
            await self.forward(auction_id, live, [(vehicle, body.node)])

    def spilled(self, auction_id: str, live: LiveAuction,
                ) -> tuple[m.Candidate, ...]:
        """The auction's eligible idle vehicles not forwarded yet: its own cluster's, else
        those of the first cluster it spills over to that has some."""
        for cluster in (live.cluster, *live.spill):
            idle = sorted((v, node) for v, (node, c) in self.idle.items()
                          if c == cluster and (v, node) not in live.forwarded)
            found = self.eligible(auction_id, live.pickup, live.cluster, idle, live.spill)
            if found:
                return found
        return ()

    def eligible(self, auction_id: str, pickup: str, cluster: int,
                 vehicles: list[tuple[str, str]], spill: tuple[int, ...] = (),
                 ) -> tuple[m.Candidate, ...]:
        """Of these idle (vehicle, node), the ones that may bid in the auction: no message
        to a vehicle that cannot win (auction/admission.py; the manager checks again)."""
        world = self.agent.world
        law = self.agent.controller.law_for(auction_id)
        radius = law.eligibility.radius_m or world.config.radius_m
        return tuple(m.Candidate(v, node) for v, node in admission.eligible(
            world.roadmap, world.clusters, radius, cluster, pickup, vehicles,
            world.config.max_bidders, spill))

    async def forward(self, auction_id: str, live: LiveAuction,
                      vehicles: list[tuple[str, str]]) -> None:
        fresh = [(v, n) for v, n in vehicles if (v, n) not in live.forwarded]
        candidates = self.eligible(auction_id, live.pickup, live.cluster, fresh, live.spill)
        if not candidates:
            return
        live.forwarded.update((c.vehicle, c.node) for c in candidates)
        await self.tell(live.manager, m.Participation(auction_id=auction_id,
                                                      candidates=candidates))

    def from_its_manager(self, msg: Message, auction_id: str) -> LiveAuction:
        live = self.live.get(auction_id)
        if live is None:
            if auction_id in self.ended:
                raise Late(f"auction {auction_id} has ended")
            raise Rejected(f"unknown auction {auction_id}")
        if sender_of(msg) != live.manager:
            raise Rejected(f"{sender_of(msg)} does not run auction {auction_id}")
        return live

    async def on_phase(self, msg: Message, body: m.AuctionPhase) -> None:
        live = self.from_its_manager(msg, body.auction_id)
        live.phase = body.phase
        if body.phase == "waiting":
            # The vehicles not tried yet (idle since, or beyond the bound at opening), in one
            # message: the manager starts its next round with all of them.
            await self.forward(body.auction_id, live,
                               [(c.vehicle, c.node) for c in self.spilled(body.auction_id, live)])

    async def on_error_reply(self, msg: Message, body: m.NotUnderstood | m.Refused) -> None:
        await super().on_error_reply(msg, body)
        if body.in_reply_to != m.OpenAuction.TYPE:
            return
        # An auction manager would not open an auction: tell the passenger, free the slot.
        auction_id = msg.get_metadata("conversation") or ""
        live = self.live.get(auction_id)
        if live is None or live.manager != sender_of(msg):
            return
        reason = f"the auction could not be opened: {body.reason}"
        await self.tell(live.passenger, m.RideUnserved(auction_id=auction_id, reason=reason),
                        performative="refuse")
        await self.close(auction_id, live, winner=None)

    async def withdraw(self, auction_id: str, live: LiveAuction) -> None:
        """The auction outlived its deadline (its manager never closed it): withdraw it, so
        its pool slot is not held forever, and tell the passenger."""
        if self.live.get(auction_id) is not live:
            return
        log.warning("auction %s withdrawn at its deadline t=%.0f s", auction_id, live.deadline)
        reason = "the auction was withdrawn at its deadline"
        await self.tell(live.passenger, m.RideUnserved(auction_id=auction_id, reason=reason))
        await self.close(auction_id, live, winner=None)

    async def on_closed(self, msg: Message, body: m.AuctionClosed) -> None:
        live = self.from_its_manager(msg, body.auction_id)
        await self.close(body.auction_id, live, body.winner, body.winner_trips)

    async def close(
        self, auction_id: str, live: LiveAuction, winner: str | None, winner_trips: int = 0
    ) -> None:
        del self.live[auction_id]
        self.ended.add(auction_id)
        # The winner is busy, unless it already finished this trip and announced itself.
        if winner is not None and self.announced_trips.get(winner, 0) <= winner_trips:
            self.idle.pop(winner, None)
        self.free_managers.append(live.manager)
        if self.waiting_requests:
            await self.open(self.waiting_requests.popleft())


def withdrawal_time(config: RunConfig, law: Law, requested_at: float) -> float:
    """When the registry withdraws an auction: the passenger's patience (the law's, else the
    run's) plus three bidding windows, by which time its manager has always closed it
    (a pending award is given up one window after the patience)."""
    patience = law.deadlines.patience_s or config.patience_s
    window = law.deadlines.bid_window_s or config.bid_window_s()
    return requested_at + patience + 3 * window
