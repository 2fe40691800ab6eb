"""One OS process of the agent population, driven by the launcher over a pipe.

The pipe is the run's control plane (start, go, create a passenger, report, stop); the
agents themselves talk only through SPADE/XMPP. A worker exits when its pipe closes, so a
dying launcher never leaves agent processes behind.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import resource
from multiprocessing.connection import Connection
from typing import Any

from fleetbid.agents import (
    AuctionManagerAgent,
    FleetAgent,
    MainManagerAgent,
    PassengerAgent,
    ProxyAgent,
    VehicleAgent,
)
from fleetbid.agents.law_services import AuditorAgent, AuthorityAgent, ComplaintsAgent
from fleetbid.agents.passenger import passenger, ride_session
from fleetbid.behaviours.demand import DemandBoard
from fleetbid.core.clock import SimClock
from fleetbid.core.config import RunConfig
from fleetbid.core.directory import Directory
from fleetbid.core.roles import Role
from fleetbid.core.world import World
from fleetbid.platform import newsroom, trace, xmpp_agent
from fleetbid.platform.announce import AnnounceGroup, Listener
from fleetbid.platform.xmpp_agent import COUNTERS, start_agents
from fleetbid.platform.xmpp_server import XmppEndpoint
from fleetbid.run.pipes import read_in_thread
from fleetbid.run.population import AgentSpec

log = logging.getLogger("fleetbid.worker")

PASSENGER_LOGINS = 8  # concurrent passenger logins per process


class Worker:
    def __init__(
        self, index: int, config: RunConfig, endpoint: XmppEndpoint, specs: list[AgentSpec],
        directory: Directory, conn: Connection, announce: AnnounceGroup | None = None,
    ) -> None:
        self.index, self.config, self.endpoint = index, config, endpoint
        self.announce = announce
        self.specs, self.directory, self.conn = specs, directory, conn
        self.agents: list[FleetAgent] = []
        self.passengers: set[PassengerAgent] = set()
        self.tasks: set[asyncio.Task[Any]] = set()
        self.inbox: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
        self.world: World | None = None
        self.listener: Listener | None = None  # --reposition: the demand figures
        self.board: DemandBoard | None = None
        self.by_type: collections.Counter[str] = collections.Counter()
        self.received_by_type: collections.Counter[str] = collections.Counter()
        xmpp_agent.on_send.append(lambda msg: self.by_type.update((msg.get_metadata("type"),)))
        # What arrived, by type: tests wait on these events instead of on the clock.
        xmpp_agent.on_receive.append(
            lambda msg: self.received_by_type.update((msg.get_metadata("type"),)))

    async def main(self) -> None:
        read_in_thread(self.conn, asyncio.get_running_loop(), self.inbox.put_nowait)
        self.world = World.build(self.config)
        if self.config.trace:
            world = self.world
            trace.install(self.config.trace, self.index, lambda: world.clock.now())
        if self.announce is not None:
            world = self.world
            room = await newsroom.install(self.announce, self.index, lambda: world.clock.now(),
                                          self.config.speed, self.speaks)
            self.spawn(room.stats(self.index))
        self.login_gate = asyncio.Semaphore(PASSENGER_LOGINS)
        self.agents = [self.make(spec) for spec in self.specs]
        if self.config.reposition and self.announce is not None:
            await self.hear_demand(self.announce)
        await start_agents(self.agents)
        await self.before_ready()
        self.conn.send(("ready", {"index": self.index, "pid": os.getpid(),
                                  "agents": len(self.agents)}))
        while True:
            command = await self.inbox.get()
            if command[0] == "stop" or command[0] == "eof":
                break
            await self.on_command(command)
        await self.shutdown()

    async def hear_demand(self, group: AnnounceGroup) -> None:
        """--reposition: the process's vehicles and MainManager share one view of the
        demand figures on the announcement group (behaviours/demand.py)."""
        assert self.world is not None
        board = DemandBoard(self.world, len(self.directory.vehicles))
        listener = Listener(group, board.on_news)
        await listener.open()
        self.listener, self.board = listener, board
        for agent in self.agents:
            if isinstance(agent, VehicleAgent | MainManagerAgent):
                agent.demand_board = board

    def demand_counts(self) -> dict[str, int]:
        """--reposition: demand figures this process took, refused (out of range) and
        datagrams its listener dropped (forged, garbled, replayed)."""
        listener, board = self.listener, self.board
        if listener is None or board is None:
            return {}
        return {"demand_heard": board.heard, "demand_refused": board.refused,
                "demand_dropped": sum(listener.dropped.values())}

    def speaks(self) -> bool:
        """Whether what this process receives is news (a replica host: only its leader)."""
        return True

    async def before_ready(self) -> None:
        """Subclasses start what else they run once the agents are logged in."""

    def make(self, spec: AgentSpec) -> FleetAgent:
        assert self.world is not None
        args = (spec.name, self.endpoint, self.world, self.directory)
        match spec.role:
            case Role.MAIN_MANAGER:
                return MainManagerAgent(*args)
            case Role.AUCTION_MANAGER:
                return AuctionManagerAgent(*args)
            case Role.PROXY:
                return ProxyAgent(*args)
            case Role.VEHICLE:
                return VehicleAgent(*args, node=spec.node)
            case Role.AUTHORITY:
                return AuthorityAgent(*args, secret=spec.secret)
            case Role.AUDITOR:
                return AuditorAgent(*args)
            case Role.COMPLAINTS:
                return ComplaintsAgent(*args)
        raise ValueError(f"unknown role {spec.role}")

    async def on_command(self, command: tuple[Any, ...]) -> None:
        assert self.world is not None
        kind = command[0]
        if kind == "go":
            # Simulated time 0 is now, on every process: the launcher sent one epoch to all.
            self.world.clock = SimClock(command[1], self.config.speed)
            for agent in self.agents:
                if isinstance(agent, VehicleAgent):
                    agent.announce()
        elif kind == "ride":
            self.spawn(self.ride(**command[1]))
        elif kind == "stats":
            self.conn.send(("stats", self.stats()))
        elif kind == "counters":  # the light sample the serve's health watch takes often
            self.conn.send(("counters", {"index": self.index, "by_type": dict(self.by_type),
                                         "queue": self.queue_length()}))
        else:
            log.error("unknown control command %r", kind)

    def spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def ride(
        self, request_id: str, source: str, destination: str, name: str, at: float | None
    ) -> None:
        assert self.world is not None
        agent, done = passenger(name, self.endpoint, self.world, self.directory, request_id,
                                source, destination, at)
        self.passengers.add(agent)
        try:
            await ride_session(agent, done, self.login_gate,
                               report=lambda outcome: self.conn.send(("outcome", outcome)))
        finally:
            self.passengers.discard(agent)

    def queue_length(self) -> int | None:
        """Requests waiting for a free AuctionManager (None: no MainManager here)."""
        for agent in self.agents:
            if isinstance(agent, MainManagerAgent):
                return len(agent.registry.waiting_requests)
        return None

    def stats(self) -> dict[str, Any]:
        empty = loaded = 0.0
        trips = repositioned = 0
        auctions = 0
        acknowledged: list[tuple[str, str]] = []
        told: set[tuple[str, str]] = set()
        taken: list[tuple[str, str]] = []
        for agent in self.agents:
            acknowledged += [(a, str(agent.jid.bare)) for a in agent.bids_acknowledged]
            told.update(agent.outcomes_told)
            if isinstance(agent, VehicleAgent):
                taken += [(ride, str(agent.jid.bare)) for ride in agent.rides_taken]
                e, ld = agent.odometer()
                empty, loaded, trips = empty + e, loaded + ld, trips + agent.trips
                repositioned += agent.repositioned
            if isinstance(agent, MainManagerAgent) and agent.replicate is None:
                auctions += agent.registry.opened
        return {"index": self.index, **COUNTERS.as_dict(), "empty_m": empty,
                "loaded_m": loaded, "trips": trips, "auctions": auctions,
                "repositioned": repositioned, **self.demand_counts(),
                "queue": self.queue_length(),
                "by_type": dict(self.by_type),
                "received_by_type": dict(self.received_by_type),
                "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
                "bids_acknowledged": acknowledged, "outcomes_told": sorted(told),
                "rides_taken": taken}

    async def shutdown(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        if self.listener is not None:
            self.listener.close()
        everyone = [*self.agents, *self.passengers]
        await asyncio.gather(*(a.stop() for a in everyone), return_exceptions=True)
        # slixmpp leaves keepalive and reconnect tasks behind: end them before the loop closes.
        current = asyncio.current_task()
        leftovers = [t for t in asyncio.all_tasks() if t is not current]
        for task in leftovers:
            task.cancel()
        await asyncio.gather(*leftovers, return_exceptions=True)
        with contextlib.suppress(Exception):
            self.conn.send(("stopped", self.stats()))
