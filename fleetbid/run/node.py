"""A joined node: vehicles of a running fleet hosted by a process on another host.

`fleetbid serve --join-slots N` reserves N vehicle names in the fleet's Directory (so every
agent, the MainManager's law controller included, already knows them as vehicles) without
running them. A node starts a share of those slots in one worker process, exactly as the
launcher starts its own workers, and gives it the fleet's clock epoch: from then on its
vehicles announce themselves to the MainManager (`vehicle-available`) and bid like any other.
Why slots rather than a growing Directory: the Directory is a frozen value every agent
checks senders against; growing it would need a new protocol to every agent of every
process. A reserved name costs nothing until a node runs it.

A node may also run a replica host of the AuctionManagers (`serve --replica-slots K`): a
standby with one of the K lowest replica ids, which the group's leader recruits at once (the
target size counts the slots), so the managers' state is kept on several hosts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing as mp
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from fleetbid.core.config import RunConfig
from fleetbid.core.directory import Directory
from fleetbid.core.roles import Role
from fleetbid.maps import load_map
from fleetbid.platform.xmpp_server import XmppEndpoint
from fleetbid.run.pipes import read_in_thread
from fleetbid.run.population import AgentSpec, vehicle_start_nodes
from fleetbid.run.process import worker_main
from fleetbid.run.replica_setup import ReplicaSettings

READY_TIMEOUT_S = 120.0

log = logging.getLogger("fleetbid.node")


class JoinError(RuntimeError):
    """The node could not take its slots."""


@dataclass(frozen=True)
class Slot:
    index: int  # position among the fleet's join slots
    name: str  # the vehicle's XMPP localpart
    node: str  # its start node on the map


def slot_plan(config: RunConfig, slot_jids: list[str], first: int, count: int) -> list[Slot]:
    """Slots `first .. first+count-1`, each with its seeded start node: the serve's own
    vehicles take the first `config.vehicles` start positions, slot i the next ones."""
    if count < 1 or first < 0 or first + count > len(slot_jids):
        raise JoinError(f"slots {first}..{first + count - 1} are not among the fleet's "
                        f"{len(slot_jids)} join slots (0..{len(slot_jids) - 1})")
    roadmap = load_map(config.map, config.seed)
    nodes = vehicle_start_nodes(roadmap, config.vehicles + len(slot_jids), config.seed)
    return [Slot(i, slot_jids[i].split("@", 1)[0], nodes[config.vehicles + i])
            for i in range(first, first + count)]


def vehicle_specs(slots: list[Slot]) -> list[AgentSpec]:
    return [AgentSpec(Role.VEHICLE, slot.name, slot.node) for slot in slots]


def manager_specs(directory: Directory) -> list[AgentSpec]:
    """A replica host holds every AuctionManager (run/replica_host.py)."""
    return [AgentSpec(Role.AUCTION_MANAGER, jid.split("@", 1)[0])
            for jid in directory.auction_managers]


class JoinedNode:
    """One worker process of a joined node, run as the launcher runs its own: the slots'
    vehicles, or (with `replica`) a replica host of the AuctionManagers. Runs until
    `stop()` or until it dies."""

    def __init__(self, config: RunConfig, endpoint: XmppEndpoint, directory: Directory,
                 epoch: float, specs: list[AgentSpec], log_level: str = "WARNING",
                 index: int = 0, replica: ReplicaSettings | None = None,
                 on_event: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.config, self.endpoint, self.directory = config, endpoint, directory
        self.epoch, self.specs, self.log_level, self.index = epoch, specs, log_level, index
        self.replica, self.on_event = replica, on_event
        self.proc: mp.process.BaseProcess | None = None
        self.conn: Connection | None = None
        self.replies: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

    def _deliver(self, item: tuple[str, Any]) -> None:
        if item[0] == "event":  # a replica host's view, leader and group-status events
            if self.on_event is not None:
                self.on_event(item[1])
            return
        self.replies.put_nowait(item)

    async def start(self) -> dict[str, Any]:
        """Log the agents in, then start their clock at the fleet's epoch (vehicles
        announce themselves to the MainManager then)."""
        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe()
        self.proc = ctx.Process(
            target=worker_main, name=f"fleetbid-node-{self.index}", daemon=True,
            args=(self.index, self.config, self.endpoint, self.specs, self.directory, child,
                  self.log_level, self.replica),
        )
        self.proc.start()
        child.close()
        self.conn = parent
        read_in_thread(parent, asyncio.get_running_loop(), self._deliver)
        kind, payload = await self._reply(READY_TIMEOUT_S)
        if kind != "ready":
            raise JoinError(f"the node's worker failed: {payload}")
        parent.send(("go", self.epoch))
        return payload  # type: ignore[no-any-return]

    async def _reply(self, timeout: float) -> tuple[str, Any]:
        try:
            return await asyncio.wait_for(self.replies.get(), timeout)
        except TimeoutError:
            raise JoinError(f"the node's worker was not ready within {timeout:.0f} s") from None

    async def wait(self) -> str:
        """Until the worker ends: why it did."""
        while True:
            kind, payload = await self.replies.get()
            if kind in ("eof", "error", "stopped"):
                return f"{kind}: {payload}" if payload else kind

    async def stop(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(Exception):
                self.conn.send(("stop",))
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._drain_until_stopped(), 15.0)
            self.conn.close()
            self.conn = None
        if self.proc is not None:
            await asyncio.to_thread(self.proc.join, 5.0)
            if self.proc.is_alive():
                self.proc.kill()
                await asyncio.to_thread(self.proc.join, 5.0)
            self.proc = None

    async def _drain_until_stopped(self) -> None:
        while (await self.replies.get())[0] not in ("stopped", "eof", "error"):
            pass
