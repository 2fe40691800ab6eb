"""The launcher's side of replicated AuctionManagers: group settings for each replica host,
the fault injection of `--kill-leader-after`, and the end-of-run invariant checks."""

from __future__ import annotations

import secrets
import socket
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from fleetbid.core.config import RunConfig
from fleetbid.core.outcome import RideOutcome
from fleetbid.replication import GroupConfig
from fleetbid.run.population import Plan


@dataclass(frozen=True)
class ReplicaSettings:
    """What the launcher tells a replica host."""

    member_id: int
    initial_members: tuple[int, ...]
    standby: bool
    group: GroupConfig
    password: str  # the managers' shared XMPP password (every replica logs in as them)


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def random_group(prefix: str) -> str:
    return f"{prefix}.{secrets.randbelow(250) + 1}.{secrets.randbelow(250) + 1}"


def replica_settings(plan: Plan, target_size: int | None = None,
                     net: RunConfig | None = None) -> dict[int, ReplicaSettings]:
    """Settings per replica-host process index: one fresh group (id, key, ports) per run, so
    concurrent runs on one machine ignore each other's datagrams (wrong key: dropped).
    `net` gives the multicast interface, TTL and group (docs/hosts.md); loopback without."""
    members = plan.initial_members()
    net = net or RunConfig()
    group = GroupConfig(
        group_id=f"auctions-{secrets.token_hex(4)}",
        key=secrets.token_bytes(32),
        multicast_addr=net.mcast_group or random_group("239.255"),
        port=free_udp_port(),
        discovery_addr=random_group("239.254"),
        discovery_port=free_udp_port(),
        interface=net.mcast_interface, ttl=net.mcast_ttl,
        target_size=target_size or len(members) + net.replica_slots,
        # Eight busy processes share two cores here: a 0.3 s silence is not yet a crash.
        heartbeat_s=0.05, failure_timeout_s=0.5,
    )
    password = secrets.token_urlsafe(16)
    return {index: ReplicaSettings(rid, members, standby, group, password)
            for index, (rid, standby) in plan.replica_hosts.items()}


@dataclass
class Failovers:
    """Follows the replica hosts' events; decides when `--kill-leader-after` strikes."""

    kill_after: int | None
    leader: int | None = None
    leader_pid: int | None = None
    killed_at: float | None = None  # time.monotonic() of the SIGKILL
    count: int = 0  # leader changes because the leader left the view
    times_ms: list[float] = field(default_factory=list)  # kill -> new leader took over
    views: dict[int, tuple[int, ...]] = field(default_factory=dict)  # member -> its last view
    pids: dict[int, int] = field(default_factory=dict)  # member -> host process id

    def on_event(self, event: dict[str, Any]) -> int | None:
        """Record a replica host's event; return the pid to SIGKILL now, if any."""
        kind = event.get("kind")
        if kind == "view":
            self.views[event["member"]] = tuple(event["members"])
            self.pids[event["member"]] = event["pid"]
        elif kind == "leader":
            self.leader, self.leader_pid = event["member"], event["pid"]
            if event.get("crashed"):
                self.count += 1
                if self.killed_at is not None and len(self.times_ms) < 1:
                    self.times_ms.append((event["t"] - self.killed_at) * 1000.0)
        elif kind == "opened" and self.kill_after is not None and self.killed_at is None:
            if event["count"] >= self.kill_after and self.leader_pid is not None:
                return self.strike(self.leader_pid)
        return None

    def strike(self, pid: int) -> int:
        """Note the time of a SIGKILL about to hit `pid` (the failover clock starts)."""
        self.killed_at = time.monotonic()
        return pid


def check_invariants(
    outcomes: Sequence[RideOutcome], stats: Sequence[dict[str, Any]]
) -> dict[str, int]:
    """Count what replication must never allow, from the run's end state:
    - double_assignments: passengers told of two different vehicles;
    - lost_bids: bids a manager acknowledged (in the replicated log) that some surviving
      replica's log lacks;
    - log_disagreements: surviving members whose log differs (digest at a common position)."""
    double = sum(1 for o in outcomes if o.assignments > 1)
    members = [s["replica"] for s in stats if s.get("replica", {}).get("member_of_group")]
    acknowledged = {tuple(k) for s in stats for k in s.get("bids_acknowledged", [])}
    lost = set()
    for replica in members:
        logged = {tuple(k) for k in replica["bid_keys"]}
        lost |= acknowledged - logged
    disagreements = 0
    if members:
        common = min(r["seq"] for r in members)
        # JSON round trips turn int keys into strings; accept both.
        digests = [r["digests"].get(common, r["digests"].get(str(common))) for r in members]
        if common >= 0:
            majority, _ = Counter(digests).most_common(1)[0]
            disagreements = sum(1 for d in digests if d != majority or d is None)
    return {"double_assignments": double, "lost_bids": len(lost),
            "log_disagreements": disagreements}
