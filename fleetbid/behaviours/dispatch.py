"""The MainManager's protocol steps when a policy other than the auction dispatches.

The MainManager keeps the waiting requests (arrival order) and the idle vehicles, asks the
policy (fleetbid/policies, the same objects the simulator uses) which vehicle serves which
request, and sends `dispatch` straight to that vehicle. Immediate policies decide on every
request and every vehicle-available; batch policies at the ticks k * batch_s of simulated
time. The vehicle confirms (the passenger then hears `ride-assigned`) or declines (the request
goes back to the queue in its arrival place).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Container, Sequence
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray
from spade.message import Message

from fleetbid.behaviours.base import ProtocolBehaviour, Rejected, sender_of
from fleetbid.behaviours.demand import note_request
from fleetbid.core.text import loggable
from fleetbid.core.world import World
from fleetbid.policies import Idle, Waiting, make_policy
from fleetbid.protocol import messages as m

log = logging.getLogger("fleetbid.dispatch")


class WorldGeography:
    """The policies' Geography over a process World (cached Dijkstra of maps/travel.py)."""

    def __init__(self, world: World) -> None:
        self.world = world

    def times(self, origins: Sequence[str], targets: Sequence[str]) -> NDArray[np.float64]:
        travel = self.world.travel
        return np.array([[travel.time_to(o, t) for t in targets] for o in origins],
                        dtype=float).reshape(len(origins), len(targets))

    def cluster_of(self, node: str) -> int:
        return self.world.clusters.cluster_of_node(node)

    def neighbours(self, cluster: int) -> tuple[int, ...]:
        return self.world.clusters.neighbours(cluster)

    def distance_m(self, a: str, b: str) -> float:
        return self.world.roadmap.distance_m(a, b)


def check_request(world: World, body: m.RideRequest) -> None:
    """Refuse a request whose nodes are not on the map (before any state change)."""
    for label, node in (("source", body.source), ("destination", body.destination)):
        if not world.roadmap.has_node(node):
            raise Rejected(f"{label} node {node} is not on the map")


def new_request(world: World, msg: Message, body: m.RideRequest, seen: Container[str],
                ) -> tuple[tuple[str, m.RideRequest], Waiting]:
    """A ride request checked (on the map, not one `seen` before: open or ended) and made
    into what a registry keeps: (passenger, request), and the policy's `Waiting`."""
    check_request(world, body)
    rid = body.request_id
    if rid in seen:
        raise Rejected(f"request {rid} is already open or has ended")
    waiting = Waiting(rid, body.source, body.requested_at,
                      world.clusters.cluster_of_node(body.source))
    return (sender_of(msg), body), waiting


class WaitingRides:
    """A registry that keeps the requests not given a vehicle yet in `waiting` (arrival
    order): the worker reads their number as the queue length."""

    waiting: dict[str, Waiting]
    idle: dict[str, Idle]
    agent: Any

    @property
    def waiting_requests(self) -> list[Waiting]:
        return list(self.waiting.values())

    def idle_clusters(self) -> list[int]:
        """The cluster of every idle vehicle (the repositioning figures, behaviours/demand.py)."""
        cluster_of = self.agent.world.clusters.cluster_of_node
        return [cluster_of(v.node) for v in self.idle.values()]


def idle_announced(agent: Any, msg: Message, body: m.VehicleAvailable, now: float) -> Idle:
    """The idle vehicle a vehicle-available announces, checked: a fleet vehicle, on the map.
    A vehicle that never drove has been idle since the start (time 0), like the simulator's;
    later announcements are stamped on arrival (`now`)."""
    vehicle = sender_of(msg)
    if vehicle not in agent.fleet:
        raise Rejected(f"{vehicle} is not a vehicle of this fleet")
    if not agent.world.roadmap.has_node(body.node):
        raise Rejected(f"node {body.node} is not on the map")
    return Idle(vehicle, body.node, 0.0 if body.trips == 0 else now)


class DispatchBehaviour(WaitingRides, ProtocolBehaviour):
    SENDS: ClassVar[frozenset[type[m.Body]]] = frozenset({
        m.Dispatch, m.RideAssigned, m.RideUnserved,
    })

    async def on_start(self) -> None:
        self.handlers = {
            m.RideRequest: self.on_ride_request,
            m.VehicleAvailable: self.on_vehicle_available,
            m.DispatchConfirmed: self.on_confirmed,
            m.DispatchDeclined: self.on_declined,
        }
        world = self.agent.world
        config = world.config
        self.policy = make_policy(config.policy, radius_m=config.radius_m,
                                  min_eta_s=config.min_eta_s, batch_s=config.batch_s)
        self.geo = WorldGeography(world)
        self.waiting: dict[str, Waiting] = {}  # arrival order
        self.requests: dict[str, tuple[str, m.RideRequest]] = {}  # id -> (passenger, body)
        self.idle: dict[str, Idle] = {}
        self.pending: dict[str, str] = {}  # request id -> vehicle dispatched, not yet confirmed
        self.patience: dict[str, asyncio.Handle] = {}
        self.tick: asyncio.Handle | None = None
        self.opened = 0  # dispatches sent (the worker reports it like auctions opened)

    async def on_ride_request(self, msg: Message, body: m.RideRequest) -> None:
        world = self.agent.world
        rid = body.request_id
        self.requests[rid], self.waiting[rid] = new_request(world, msg, body, self.requests)
        note_request(self.agent, body.source)
        self.patience[rid] = self.later(world.config.patience_s, lambda: self.give_up(rid))
        await self.changed()

    async def on_vehicle_available(self, msg: Message, body: m.VehicleAvailable) -> None:
        idle = idle_announced(self.agent, msg, body, self.agent.world.clock.now())
        self.idle[idle.vehicle] = idle
        await self.changed()

    def dispatched_to(self, msg: Message, auction_id: str) -> str:
        vehicle = self.pending.get(auction_id)
        if vehicle is None or vehicle != sender_of(msg):
            raise Rejected(f"no dispatch of {auction_id} to {sender_of(msg)} is pending")
        return vehicle

    async def on_confirmed(self, msg: Message, body: m.DispatchConfirmed) -> None:
        vehicle = self.dispatched_to(msg, body.auction_id)
        del self.pending[body.auction_id]
        passenger, _ = self.requests[body.auction_id]
        timer = self.patience.pop(body.auction_id, None)
        if timer is not None:
            timer.cancel()
        await self.tell(passenger, m.RideAssigned(auction_id=body.auction_id, vehicle=vehicle,
                                                  eta_s=body.eta_s, price=0.0, bidders=1))

    async def on_declined(self, msg: Message, body: m.DispatchDeclined) -> None:
        self.dispatched_to(msg, body.auction_id)
        del self.pending[body.auction_id]
        log.info("%s declined %s: %s", sender_of(msg), body.auction_id, loggable(body.reason))
        _, request = self.requests[body.auction_id]
        self.waiting[body.auction_id] = Waiting(
            request.request_id, request.source, request.requested_at,
            self.agent.world.clusters.cluster_of_node(request.source),
        )
        self.waiting = dict(sorted(self.waiting.items(), key=lambda kv: kv[1].requested_at))
        await self.changed()

    async def changed(self) -> None:
        if self.policy.batch_s > 0:
            self.schedule_tick()
        else:
            await self.decide()

    def schedule_tick(self) -> None:
        """Next tick at the next multiple of batch_s, like the simulator's ticks."""
        if self.tick is not None or not self.waiting:
            return
        now = self.agent.world.clock.now()
        at = (math.floor(now / self.policy.batch_s) + 1) * self.policy.batch_s
        self.tick = self.later(at - now, self.on_tick)

    async def on_tick(self) -> None:
        self.tick = None
        await self.decide()
        self.schedule_tick()

    async def decide(self) -> None:
        if not self.waiting or not self.idle:
            return
        for a in self.policy.assign(list(self.waiting.values()), list(self.idle.values()),
                                    self.geo):
            del self.waiting[a.request_id]
            del self.idle[a.vehicle]
            self.pending[a.request_id] = a.vehicle
            self.opened += 1
            passenger, request = self.requests[a.request_id]
            await self.tell(a.vehicle, m.Dispatch(
                auction_id=a.request_id, passenger=passenger, pickup=request.source,
                dropoff=request.destination,
            ))

    async def give_up(self, request_id: str) -> None:
        self.patience.pop(request_id, None)
        if self.waiting.pop(request_id, None) is None:
            return  # dispatched meanwhile
        passenger, _ = self.requests[request_id]
        await self.tell(passenger, m.RideUnserved(
            auction_id=request_id, reason="no vehicle was dispatched within the patience"))
