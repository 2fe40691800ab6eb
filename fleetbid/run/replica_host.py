"""A replica host: one OS process holding one replica of every AuctionManager.

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

from fleetbid.agents import AuctionManagerAgent, FleetAgent
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
        self.machine = AuctionReplicas(self.port, settings.member_id, self.send_event)
        self.node: ReplicaNode | None = None

    def send_event(self, kind: str, payload: dict[str, Any]) -> None:
        with contextlib.suppress(Exception):
            self.conn.send((kind, payload))

    def make(self, spec: AgentSpec) -> FleetAgent:
        assert self.world is not None
        if spec.role != Role.AUCTION_MANAGER:
            raise ValueError(f"a replica host runs auction managers only, not {spec.role}")
        agent = AuctionManagerAgent(spec.name, self.endpoint, self.world, self.directory,
                                    password=self.settings.password)
        agent.replicate = self.machine.attach
        return agent

    def speaks(self) -> bool:
        return self.node is not None and self.node.is_leader

    async def before_ready(self) -> None:
        s = self.settings
        self.node = ReplicaNode(s.group, s.member_id, self.machine,
                                initial_members=s.initial_members, standby=s.standby)
        self.port.node = self.node
        self.spawn(self.machine.consume())
        self.spawn(self.machine.watch_pending())
        await self.node.start()
        if self.node.core is not None:
            self.node.core.status_listeners.append(self.on_group_status)

    def on_group_status(self, status: GroupStatus) -> None:
        """The group's watchdog changed its verdict: tell the launcher (a frozen group, e.g.
        quorum lost, must not look like a quiet fleet)."""
        self.send_event("event", {"kind": "group-status", "frozen": status.frozen,
                                  "reason": status.reason,
                                  "member": self.settings.member_id})

    def stats(self) -> dict[str, Any]:
        out = super().stats()
        out["replica"] = self.machine.stats()
        if self.node is not None:
            out["replica"]["counters"] = dict(self.node.counters)
        return out

    async def shutdown(self) -> None:
        if self.node is not None:
            with contextlib.suppress(Exception):
                await self.node.stop()
        await super().shutdown()
