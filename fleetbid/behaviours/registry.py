"""The MainManager's protocol steps: the registry of live auctions and of idle vehicles.

A ride request opens an auction on a free AuctionManager of the pool (queued while none is
free). A vehicle's participation request is remembered and forwarded to its cluster's
auctions: in one batch when an auction opens, one by one to auctions waiting for bidders.

A request's life (queued -> auctioning -> ended) is kept in one `RideLives`
(core/ride_life.py) and ends once: the registry tells the passenger only about a request
no manager ran; an auction a manager runs ends with that manager's `auction-closed`, which
is also the only thing that frees the manager. An auction past its deadline is withdrawn by
asking its manager to end it (`withdraw-auction`), never by ending it here.

A request whose cluster has no eligible idle vehicle spills over to the nearest cluster
that has some (policies/spill.py), once it has waited the spill-over grace (an own vehicle
freed meanwhile is usually nearer); a waiting auction past its grace takes a vehicle newly
idle next door when no auction of that cluster waits for it.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field
from typing import ClassVar

from spade.message import Message

from fleetbid.auction import admission
from fleetbid.behaviours.base import Cancellable, Late, ProtocolBehaviour, Rejected, sender_of
from fleetbid.behaviours.demand import note_request
from fleetbid.core.config import RunConfig
from fleetbid.core.ride_life import RideLives, Stage, Teller
from fleetbid.laws.schema import Law
from fleetbid.policies.spill import SPILL_GRACE_S, may_spill, spill_order
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
    stamped_at: float = 0.0  # when the MainManager received the request (spill-over grace)
    grace: Cancellable | None = None  # ends the spill-over grace (cancelled at the close)
    # Set by that timer: it may fire a hair before the clock reads the grace's end.
    grace_ended: bool = False

    def may_spill(self, now: float) -> bool:
        return self.grace_ended or may_spill(self.stamped_at, now)


@dataclass(frozen=True)
class Pending:
    passenger: str
    request: m.RideRequest
    # When the MainManager received it: the auction's clock starts here, whatever time the
    # passenger wrote (a far-future `requested_at` must not pin a manager for ever).
    stamped_at: float


class RegistryBehaviour(ProtocolBehaviour):
    SENDS: ClassVar[frozenset[type[m.Body]]] = frozenset({
        m.OpenAuction, m.Participation, m.RideUnserved, m.WithdrawAuction,
    })

    async def on_start(self) -> None:
        self.handlers = {
            m.RideRequest: self.on_ride_request,
            m.VehicleAvailable: self.on_vehicle_available,
            m.AuctionPhase: self.on_phase,
            m.AuctionClosed: self.on_closed,
        }
        self.reset_state()

    def reset_state(self) -> None:
        """The registry's whole state (also: a replica about to replay a transferred log)."""
        # Every request's stage and the managers' pool; ended requests are remembered (a
        # late report about one is benign, and a replayed request is not opened again).
        self.lives: RideLives[Pending] = RideLives(self.agent.auction_managers)
        self.live: dict[str, LiveAuction] = {}  # what the registry knows of each auction
        self.idle_vehicles: dict[str, tuple[str, int]] = {}  # vehicle -> (node, cluster)
        self.announced_trips: dict[str, int] = {}  # vehicle -> trips at its last announcement
        self.opened = 0

    @property
    def free_managers(self) -> deque[str]:
        return self.lives.free

    @property
    def waiting_requests(self) -> list[Pending]:
        """The queue, oldest first."""
        return list(self.lives.queue.values())

    async def on_ride_request(self, msg: Message, body: m.RideRequest) -> None:
        roadmap = self.agent.world.roadmap
        for label, node in (("source", body.source), ("destination", body.destination)):
            if not roadmap.has_node(node):
                raise Rejected(f"{label} node {node} is not on the map")
        auction_id = body.request_id
        stage = self.lives.stage(auction_id)
        if stage is Stage.ENDED:
            raise Rejected(f"request {auction_id} has already ended")
        if stage is not None:
            raise Rejected(f"request {auction_id} is already open")
        pending = Pending(sender_of(msg), body, self.now())
        note_request(self.agent, body.source)
        queued = len(self.lives.queue)
        if self.lives.free:
            await self.open(pending)
        elif queued >= self.agent.world.config.queue_limit:
            self.lives.turn_away(auction_id)
            await self.tell_unserved(pending, f"the fleet is overloaded: {queued} requests are "
                                              "already waiting")
        else:
            self.lives.enqueue(auction_id, pending)
            log.info("no free auction manager: %s queued (%d waiting)", auction_id, queued + 1)
            patience = self.agent.controller.law_for(auction_id).deadlines.patience_s \
                or self.agent.world.config.patience_s
            self.later(patience, lambda: self.expire(pending))

    async def expire(self, pending: Pending) -> None:
        """The passenger's patience ran out while its request waited for a free manager."""
        auction_id = pending.request.request_id
        if self.lives.queue.get(auction_id) is pending:
            self.lives.end(auction_id, Teller.REGISTRY)
            await self.tell_unserved(pending, "no auction manager became free within the "
                                              "passenger's patience")

    async def tell_unserved(self, pending: Pending, reason: str) -> None:
        """The one outcome of a request no manager ran (its life already ended here)."""
        auction_id = pending.request.request_id
        log.warning("%s: %s turned away: %s", self.agent.name, auction_id, reason)
        await self.tell(pending.passenger, m.RideUnserved(auction_id=auction_id, reason=reason))

    async def open(self, pending: Pending) -> None:
        request = pending.request
        manager = self.lives.start(request.request_id)
        world = self.agent.world
        cluster = world.clusters.cluster_of_node(request.source)
        law = self.agent.controller.law_for(request.request_id)
        live = LiveAuction(manager, cluster, pending.passenger, pickup=request.source,
                           destination=request.destination, law=law.hash,
                           deadline=withdrawal_time(self.agent.world.config, law,
                                                    pending.stamped_at),
                           spill=tuple(spill_order(world.clusters, cluster)),
                           stamped_at=pending.stamped_at)
        candidates = self.spilled(request.request_id, live)
        self.later(live.deadline - self.now(),  # the ordered clock on a replica
                   lambda: self.withdraw(request.request_id, live))
        if live.spill:
            live.grace = self.later(max(0.0, pending.stamped_at + SPILL_GRACE_S - self.now()),
                                    lambda: self.grace_over(request.request_id, live))
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
        self.idle_vehicles[vehicle] = (body.node, cluster)
        self.announced_trips[vehicle] = body.trips
        waiting = [(a, live) for a, live in self.live.items() if live.phase == "waiting"]
        # Its own cluster's auctions first; when none of them waits, only the oldest waiting
        # auction that spills over to this cluster (as the simulator, in arrival order): the
        # vehicle called by every hungry auction of the city would multiply the messages.
        own = [(a, live) for a, live in waiting if live.cluster == cluster]
        spill = [(a, live) for a, live in waiting if cluster in live.spill
                 and live.may_spill(self.now())][:1]
        for auction_id, live in own or spill:
            await self.forward(auction_id, live, [(vehicle, body.node)])

    def spilled(self, auction_id: str, live: LiveAuction,
                ) -> tuple[m.Candidate, ...]:
        """The auction's eligible idle vehicles not forwarded yet: its own cluster's, else
        those of the first cluster it spills over to that has some (after the grace)."""
        spill = live.spill if live.may_spill(self.now()) else ()
        for cluster in (live.cluster, *spill):
            idle = [(v, node) for v, node in self.idle_in(cluster)
                    if (v, node) not in live.forwarded]
            found = self.eligible(auction_id, live.pickup, live.cluster, idle, live.spill)
            if found:
                return found
        return ()

    def idle_clusters(self) -> list[int]:
        """The cluster of every idle vehicle (the repositioning figures, behaviours/demand.py)."""
        return [cluster for _, cluster in self.idle_vehicles.values()]

    def idle_in(self, cluster: int) -> list[tuple[str, str]]:
        """The idle (vehicle, node) of a cluster, in a fixed order."""
        return sorted((v, node) for v, (node, c) in self.idle_vehicles.items() if c == cluster)

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
            if self.lives.stage(auction_id) is Stage.ENDED:
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

    async def grace_over(self, auction_id: str, live: LiveAuction) -> None:
        """The request may now spill over: an auction still waiting for bidders gets the
        neighbours' idle vehicles (one bidding in its own cluster gets them if it waits)."""
        live.grace_ended = True
        if self.live.get(auction_id) is live and live.phase == "waiting":
            await self.forward(auction_id, live,
                               [(c.vehicle, c.node) for c in self.spilled(auction_id, live)])

    async def on_error_reply(self, msg: Message, body: m.NotUnderstood | m.Refused) -> None:
        await super().on_error_reply(msg, body)
        if body.in_reply_to not in (m.OpenAuction.TYPE, m.WithdrawAuction.TYPE):
            return
        auction_id = msg.get_metadata("conversation") or ""
        live = self.live.get(auction_id)
        if live is None or live.manager != sender_of(msg):
            return
        # The manager would not open the auction, or does not know it: it runs nothing for
        # this request and will tell the passenger nothing, so the registry does, once.
        what = "opened" if body.in_reply_to == m.OpenAuction.TYPE else "withdrawn"
        reason = f"the auction could not be {what}: {body.reason}"
        await self.close(auction_id, live, winner=None, teller=Teller.REGISTRY)
        await self.tell(live.passenger, m.RideUnserved(auction_id=auction_id, reason=reason),
                        performative="refuse")
        await self.open_queued()

    async def withdraw(self, auction_id: str, live: LiveAuction) -> None:
        """The auction outlived its deadline (its manager has not closed it): ask the manager
        to end it. The manager tells the passenger and answers `auction-closed`, which frees
        it; nothing is told or freed here, so the ride cannot get a second outcome."""
        if self.live.get(auction_id) is not live or not self.lives.withdraw(auction_id):
            return
        log.warning("auction %s withdrawn at its deadline t=%.0f s", auction_id, live.deadline)
        await self.tell(live.manager, m.WithdrawAuction(auction_id=auction_id))

    async def on_closed(self, msg: Message, body: m.AuctionClosed) -> None:
        live = self.from_its_manager(msg, body.auction_id)
        await self.close(body.auction_id, live, body.winner, teller=Teller.MANAGER,
                         winner_trips=body.winner_trips)
        await self.open_queued()

    async def close(
        self, auction_id: str, live: LiveAuction, winner: str | None, teller: Teller,
        winner_trips: int = 0,
    ) -> None:
        """The auction ended (its manager said so, or never ran it): the manager is free."""
        del self.live[auction_id]
        if live.grace is not None:
            live.grace.cancel()
        self.lives.end(auction_id, teller)
        # The winner is busy, unless it already finished this trip and announced itself.
        if winner is not None and self.announced_trips.get(winner, 0) <= winner_trips:
            self.idle_vehicles.pop(winner, None)

    async def open_queued(self) -> None:
        """A manager is free: the oldest waiting request gets it."""
        nxt = self.lives.next_queued()
        if nxt is not None:
            await self.open(nxt[1])


def withdrawal_time(config: RunConfig, law: Law, requested_at: float) -> float:
    """When the registry asks an auction's manager to end it: the passenger's patience (the
    law's, else the run's) plus three bidding windows. A manager normally closes it before;
    this only bounds how long a stuck auction (an award nobody answers) holds its manager."""
    patience = law.deadlines.patience_s or config.patience_s
    window = law.deadlines.bid_window_s or config.bid_window_s()
    return requested_at + patience + 3 * window
