"""A replica host: one OS process holding one replica of every AuctionManager, and one of
the MainManager when its registry is replicated (a group of its own, same library).

The AuctionManagers' state is one replicated state machine (`AuctionReplicas`) kept identical
on every host by the group's total order (fleetbid.replication, ISIS over UDP multicast).
Every host logs in all the managers (the same JIDs, so the XMPP server hands every host
every message for them); the group's leader is the one that speaks. Initial members get
the high replica ids and standby hosts the low ones: the bully election keeps the same
leader when the replication manager recruits a standby.
"""

from __future__ import annotations

import contextlib
from typing import Any

from fleetbid.agents import AuctionManagerAgent, FleetAgent, MainManagerAgent
from fleetbid.core.roles import Role
from fleetbid.replicated.machine import AuctionReplicas, GroupPort
from fleetbid.replication.api import GroupStatus
from fleetbid.replication.node import ReplicaNode
from fleetbid.run.population import AgentSpec
from fleetbid.run.replica_setup import ReplicaSettings
from fleetbid.run.worker import Worker


class ReplicaHost(Worker):
    """A worker whose AuctionManagers are replicas of the group's state machine.

    Standbys log their managers in at start too: logging 16 managers in when recruited
    loaded the machine for about a second right after a crash, and auctions then in flight
    missed their bids (measured). The price is one more copy of each manager's messages.
    """

    def __init__(self, *args: Any, settings: ReplicaSettings, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.settings = settings
        self.port = GroupPort()
        self.machine = AuctionReplicas(self.port, settings.member_id, self.reporter("auction"))
        self.node: ReplicaNode | None = None
        # The MainManager's group: its own log, leader and failovers, on the same hosts.
        main = settings.main
        self.main_port = GroupPort()
        self.main_machine = None if main is None else AuctionReplicas(
            self.main_port, main.member_id, self.reporter("main"))
        self.main_node: ReplicaNode | None = None

    def reporter(self, group: str) -> Any:
        return lambda kind, payload: self.send_event(kind, {**payload, "group": group})

    def send_event(self, kind: str, payload: dict[str, Any]) -> None:
        with contextlib.suppress(Exception):
            self.conn.send((kind, payload))

    def make(self, spec: AgentSpec) -> FleetAgent:
        assert self.world is not None
        args = (spec.name, self.endpoint, self.world, self.directory)
        agent: FleetAgent
        if spec.role == Role.AUCTION_MANAGER:
            agent = AuctionManagerAgent(*args, password=self.settings.password)
            agent.replicate = self.machine.attach
        elif spec.role == Role.MAIN_MANAGER and self.main_machine is not None:
            agent = MainManagerAgent(*args, password=self.settings.password)
            agent.replicate = self.main_machine.attach
        else:
            raise ValueError(f"a replica host runs managers only, not {spec.role}")
        # Every replica must receive what a manager here sends to the other managers' JIDs:
        # over the server (to every resource), never in-process to this host's copy only.
        agent.always_xmpp = self.main_machine is not None
        return agent

    def speaks(self) -> bool:
        return self.node is not None and self.node.is_leader

    async def before_ready(self) -> None:
        self.node = await self.join(self.settings, self.machine, self.port)
        if self.settings.main is not None and self.main_machine is not None:
            self.main_node = await self.join(self.settings.main, self.main_machine,
                                             self.main_port)

    async def join(self, s: ReplicaSettings, machine: AuctionReplicas,
                   port: GroupPort) -> ReplicaNode:
        node = ReplicaNode(s.group, s.member_id, machine,
                           initial_members=s.initial_members, standby=s.standby)
        port.node = node
        self.spawn(machine.consume())
        self.spawn(machine.watch_pending())
        await node.start()
        if node.core is not None:
            node.core.status_listeners.append(
                lambda status: self.on_group_status(status, s.member_id))
        return node

    def on_group_status(self, status: GroupStatus, member: int) -> None:
        """The group's watchdog changed its verdict: tell the launcher (a frozen group, e.g.
        quorum lost, must not look like a quiet fleet)."""
        self.send_event("event", {"kind": "group-status", "frozen": status.frozen,
                                  "reason": status.reason, "member": member})

    def stats(self) -> dict[str, Any]:
        out = super().stats()
        out["replica"] = self.machine.stats()
        if self.node is not None:
            out["replica"]["counters"] = dict(self.node.counters)
        if self.main_machine is not None:
            out["main_replica"] = self.main_machine.stats()
            # Every host's registry counts the auctions it opened: the leader's count is the
            # fleet's (Worker.stats leaves replicated MainManagers out).
            if self.main_port.is_leader:
                out["auctions"] += sum(a.registry.opened for a in self.agents
                                       if isinstance(a, MainManagerAgent))
        return out

    async def shutdown(self) -> None:
        for node in (self.node, self.main_node):
            if node is not None:
                with contextlib.suppress(Exception):
                    await node.stop()
        await super().shutdown()
