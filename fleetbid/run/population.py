"""Which agents a run has, their names, and which OS process hosts each.

SPADE delivers messages between agents of one process without XMPP. To make protocol
messages really cross the server, roles that talk to each other live on different
processes: tier A (MainManager, Passengers, Vehicles) on even-numbered processes, tier B
(AuctionManagers, Proxies) on odd-numbered ones. With two processes every message between
the auction side and the fleet side crosses the server (calls for bids, bids, awards,
confirmations, results, auction open/close), while a manager and its proxies talk
in-process: the bulk of the traffic, the n calls and n bids of every auction, crosses,
and the critical path of an auction has the same number of server hops with or without
proxies. The launcher counts what crossed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from fleetbid.core.config import RunConfig
from fleetbid.core.directory import Directory
from fleetbid.core.roles import Role
from fleetbid.maps import RoadMap
from fleetbid.platform.xmpp_server import XmppEndpoint

MAIN_MANAGER_NAME = "main-manager"  # also the embedded server's rate-limit target

TIER_A = (Role.MAIN_MANAGER, Role.PASSENGER, Role.VEHICLE, Role.AUTHORITY, Role.AUDITOR,
          Role.COMPLAINTS)


@dataclass(frozen=True)
class AgentSpec:
    role: Role
    name: str
    node: str = ""  # vehicles: start node
    secret: str = ""  # certification authority: its private key (hex)


@dataclass
class Plan:
    directory: Directory
    processes: list[list[AgentSpec]] = field(default_factory=list)
    passenger_processes: list[int] = field(default_factory=list)
    # process index -> (replica id, standby?) for the AuctionManager replica hosts
    replica_hosts: dict[int, tuple[int, bool]] = field(default_factory=dict)

    def initial_members(self) -> tuple[int, ...]:
        return tuple(sorted(rid for rid, standby in self.replica_hosts.values() if not standby))

    def main_replicated(self) -> bool:
        """Do the replica hosts hold the MainManager too (its own group)?"""
        return any(spec.role == Role.MAIN_MANAGER
                   for index in self.replica_hosts for spec in self.processes[index])


class Names:
    """Agent names; a prefix keeps runs apart on a shared external server."""

    def __init__(self, prefix: str = "") -> None:
        self.prefix = f"{prefix}-" if prefix else ""

    def __call__(self, base: str) -> str:
        return f"{self.prefix}{base}"


def tier_processes(processes: int, role: str) -> list[int]:
    if processes == 1:
        return [0]
    even = list(range(0, processes, 2))
    odd = list(range(1, processes, 2))
    return even if role in TIER_A else odd


def vehicle_start_nodes(roadmap: RoadMap, count: int, seed: int) -> list[str]:
    """Seeded start positions, spread uniformly over the road nodes."""
    rng = random.Random(f"vehicles-{seed}")
    nodes = roadmap.nodes
    return [nodes[rng.randrange(len(nodes))] for _ in range(count)]


def join_slot_names(config: RunConfig, names: Names) -> list[str]:
    """The vehicle names reserved for joining nodes: they follow the fleet's own vehicles."""
    return [names(f"vehicle-{config.vehicles + i}") for i in range(config.join_slots)]


def make_plan(
    config: RunConfig, endpoint: XmppEndpoint, start_nodes: list[str], names: Names,
    authority_key: tuple[str, str] = ("", ""),
) -> Plan:
    mm = AgentSpec(Role.MAIN_MANAGER, names(MAIN_MANAGER_NAME))
    ams = [AgentSpec(Role.AUCTION_MANAGER, names(f"auction-{i}"))
           for i in range(config.auction_managers)]
    proxies = [AgentSpec(Role.PROXY, names(f"proxy-{i}")) for i in range(config.proxy_pool_size())]
    vehicles = [AgentSpec(Role.VEHICLE, names(f"vehicle-{i}"), node)
                for i, node in enumerate(start_nodes)]
    directory = Directory(
        main_manager=endpoint.jid(mm.name),
        auction_managers=tuple(endpoint.jid(a.name) for a in ams),
        proxies=tuple(endpoint.jid(p.name) for p in proxies),
        # Join slots: names no process here runs; `fleetbid node --join` starts them.
        vehicles=frozenset(endpoint.jid(v.name) for v in vehicles)
        | {endpoint.jid(n) for n in join_slot_names(config, names)},
        authority=endpoint.jid(names("certification-authority")),
        auditor=endpoint.jid(names("auditor")), complaints=endpoint.jid(names("complaints")),
        authority_key=authority_key[1],
    )
    # The agents laws name (docs/laws.md): CA, auditor, complaints.
    law_agents = [AgentSpec(Role.AUTHORITY, names("certification-authority"),
                            secret=authority_key[0]),
                  AgentSpec(Role.AUDITOR, names("auditor")), AgentSpec(Role.COMPLAINTS,
                                                                    names("complaints"))]
    plan = Plan(directory, [[] for _ in range(config.processes)],
                tier_processes(config.processes, Role.PASSENGER))
    replicated = config.replicas > 1
    # The MainManager's registry, when replicated (--replicate-main), is a group of its own
    # on the same hosts.
    main_replicated = config.main_replicated()
    for group in ([] if main_replicated else [mm], [] if replicated else ams, proxies,
                  vehicles, law_agents):
        where = tier_processes(config.processes, group[0].role) if group else [0]
        for i, spec in enumerate(group):
            plan.processes[where[i % len(where)]].append(spec)
    if replicated:
        # Every replica host holds every manager (and the MainManager, in a group of its
        # own). Standbys get the low replica ids, so the bully rule (highest id leads) keeps
        # the leader when one of them is recruited. Joining nodes' replicas
        # (`--replica-slots`) take the lowest ids of all.
        standby, low = config.standby_hosts, config.replica_slots
        for h in range(config.replica_hosts()):
            plan.replica_hosts[len(plan.processes)] = (h + low, h < standby)
            plan.processes.append(list(ams) + ([mm] if main_replicated else []))
    return plan
