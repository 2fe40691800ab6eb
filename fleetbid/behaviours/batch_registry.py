"""The MainManager's protocol steps under --policy batch-auction: the batch registry.

It keeps the waiting requests (arrival order) and the idle vehicles, and at every tick
k * batch_s of simulated time (like the simulator's) opens one batch per cluster that has
both, on a free AuctionManager of the pool (behaviours/batch_auction.py runs it). A
cluster short of vehicles borrows a neighbour's spare ones (policies/spill.py). A ride and
a vehicle are in at most one live batch. What a batch did not serve waits for the
next tick; a request still waiting when the passenger's patience ends is told why.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from dataclasses import dataclass
from typing import ClassVar

from spade.message import Message

from fleetbid.behaviours.base import Ended, Late, ProtocolBehaviour, Rejected, sender_of
from fleetbid.behaviours.demand import note_request
from fleetbid.behaviours.dispatch import (
    WaitingRides,
    WorldGeography,
    idle_announced,
    new_request,
)
from fleetbid.policies import Idle, Waiting
from fleetbid.policies.spill import batch_groups
from fleetbid.protocol import messages as m

log = logging.getLogger("fleetbid.batch")


@dataclass
class LiveBatch:
    manager: str
    rides: tuple[str, ...]
    vehicles: tuple[str, ...]


class BatchRegistryBehaviour(WaitingRides, ProtocolBehaviour):
    SENDS: ClassVar[frozenset[type[m.Body]]] = frozenset({m.OpenBatch, m.RideUnserved})

    async def on_start(self) -> None:
        self.handlers = {
            m.RideRequest: self.on_ride_request,
            m.VehicleAvailable: self.on_vehicle_available,
            m.BatchClosed: self.on_closed,
        }
        self.geo = WorldGeography(self.agent.world)
        self.free_managers: deque[str] = deque(self.agent.auction_managers)
        self.requests: dict[str, tuple[str, m.RideRequest]] = {}  # open: id -> (passenger, body)
        self.waiting: dict[str, Waiting] = {}  # arrival order; not in a live batch
        self.idle: dict[str, Idle] = {}  # not in a live batch
        self.last: dict[str, tuple[Idle, int]] = {}  # vehicle -> its last announcement, trips
        self.live: dict[str, LiveBatch] = {}
        self.expired: set[str] = set()  # patience ran out while in a batch
        self.ended = Ended(capacity=100_000)
        self.tick = None
        self.ticks = 0
        self.opened = 0  # batches opened (the worker reports it like auctions opened)

    # --- inputs -----------------------------------------------------------------------------

    async def on_ride_request(self, msg: Message, body: m.RideRequest) -> None:
        world = self.agent.world
        rid = body.request_id
        seen = self.ended if rid in self.ended else self.requests  # ended, else open
        self.requests[rid], self.waiting[rid] = new_request(world, msg, body, seen)
        note_request(self.agent, body.source)
        self.later(world.config.patience_s, lambda: self.give_up(rid))
        self.schedule_tick()

    async def on_vehicle_available(self, msg: Message, body: m.VehicleAvailable) -> None:
        idle = idle_announced(self.agent, msg, body, self.now())
        vehicle = idle.vehicle
        self.last[vehicle] = (idle, body.trips)
        if not any(vehicle in b.vehicles for b in self.live.values()):
            self.idle[vehicle] = idle
        self.schedule_tick()

    # --- ticks and batches ------------------------------------------------------------------

    def schedule_tick(self) -> None:
        """Next tick at the next multiple of batch_s, like the simulator's ticks."""
        if self.tick is not None or not self.waiting:
            return
        batch_s = self.agent.world.config.batch_s
        now = self.now()
        at = (math.floor(now / batch_s) + 1) * batch_s
        self.tick = self.later(at - now, self.on_tick)

    async def on_tick(self) -> None:
        self.tick = None
        self.ticks += 1
        groups = batch_groups(list(self.waiting.values()), list(self.idle.values()), self.geo)
        for cluster, (vehicles, rides) in groups.items():
            if not vehicles or not rides:
                continue
            if not self.free_managers:
                log.info("no free auction manager: cluster %d waits for the next tick", cluster)
                break
            await self.open(f"b{self.ticks}-c{cluster}", cluster, vehicles, rides)
        self.schedule_tick()

    async def open(self, batch_id: str, cluster: int, vehicles: list[Idle],
                   rides: list[Waiting]) -> None:
        manager = self.free_managers.popleft()
        self.live[batch_id] = LiveBatch(manager, tuple(w.request_id for w in rides),
                                        tuple(v.vehicle for v in vehicles))
        for w in rides:
            del self.waiting[w.request_id]
        for v in vehicles:
            del self.idle[v.vehicle]
        self.opened += 1
        body = m.OpenBatch(
            batch_id=batch_id, cluster=cluster,
            rides=tuple(m.BatchRide(w.request_id, self.requests[w.request_id][0], w.pickup,
                                    self.requests[w.request_id][1].destination) for w in rides),
            candidates=tuple(m.Candidate(v.vehicle, v.node) for v in vehicles),
        )
        await self.tell(manager, body, conversation=batch_id)

    async def on_closed(self, msg: Message, body: m.BatchClosed) -> None:
        batch = self.live.get(body.batch_id)
        if batch is None:
            if body.batch_id in self.ended:
                raise Late(f"batch {body.batch_id} has ended")
            raise Rejected(f"unknown batch {body.batch_id}")
        if sender_of(msg) != batch.manager:
            raise Rejected(f"{sender_of(msg)} does not run batch {body.batch_id}")
        served = {s.request_id: s for s in body.served}
        if not served.keys() <= set(batch.rides) or \
                not {s.vehicle for s in body.served} <= set(batch.vehicles):
            raise Rejected(f"batch {body.batch_id} served rides or vehicles it did not hold")
        await self.release(body.batch_id, batch, body.served)

    async def on_error_reply(self, msg: Message, body: m.NotUnderstood | m.Refused) -> None:
        await super().on_error_reply(msg, body)
        batch_id = msg.get_metadata("conversation") or ""
        batch = self.live.get(batch_id)
        if body.in_reply_to == m.OpenBatch.TYPE and batch is not None \
                and batch.manager == sender_of(msg):
            await self.release(batch_id, batch, ())  # rides and vehicles back, for the next tick

    async def release(self, batch_id: str, batch: LiveBatch,
                      served: tuple[m.ServedRide, ...]) -> None:
        del self.live[batch_id]
        self.ended.add(batch_id)
        self.free_managers.append(batch.manager)
        took = {s.vehicle: s.trips for s in served}
        world = self.agent.world
        for vehicle in batch.vehicles:
            idle, trips = self.last[vehicle]
            # A winner is busy, unless it already finished the trip and announced itself.
            if vehicle not in took or trips > took[vehicle]:
                self.idle[vehicle] = idle
        done = {s.request_id for s in served}
        for rid in batch.rides:
            if rid in done:
                self.end(rid)
            elif rid in self.expired:
                await self.unserved(rid)
            else:  # back in the queue, in its arrival place
                _, request = self.requests[rid]
                self.waiting[rid] = Waiting(rid, request.source, request.requested_at,
                                            world.clusters.cluster_of_node(request.source))
        self.waiting = dict(sorted(self.waiting.items(), key=lambda kv: kv[1].requested_at))
        self.schedule_tick()

    # --- the end of a request ---------------------------------------------------------------

    def end(self, rid: str) -> None:
        self.requests.pop(rid, None)
        self.expired.discard(rid)
        self.ended.add(rid)

    async def give_up(self, rid: str) -> None:
        if rid not in self.requests:
            return  # served
        if rid not in self.waiting:
            self.expired.add(rid)  # in a live batch: decided when it closes
            return
        del self.waiting[rid]
        await self.unserved(rid)

    async def unserved(self, rid: str) -> None:
        passenger, _ = self.requests[rid]
        self.end(rid)
        await self.tell(passenger, m.RideUnserved(
            auction_id=rid, reason="no vehicle was awarded within the passenger's patience "
                                   "(own and neighbouring clusters)"))

