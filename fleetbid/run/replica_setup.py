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
    # The MainManager's group on the same hosts (None: the MainManager is not replicated).
    main: ReplicaSettings | None = None


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def random_group(prefix: str) -> str:
    return f"{prefix}.{secrets.randbelow(250) + 1}.{secrets.randbelow(250) + 1}"


def group_config(name: str, target_size: int, net: RunConfig | None = None) -> GroupConfig:
    """One fresh group (id, key, ports) per run, so concurrent runs on one machine ignore
    each other's datagrams (wrong key: dropped). `net` gives the multicast interface, TTL
    and group (docs/hosts.md); loopback without."""
    net = net or RunConfig()
    return GroupConfig(
        group_id=f"{name}-{secrets.token_hex(4)}",
        key=secrets.token_bytes(32),
        multicast_addr=net.mcast_group or random_group("239.255"),
        port=free_udp_port(),
        discovery_addr=random_group("239.254"),
        discovery_port=free_udp_port(),
        interface=net.mcast_interface, ttl=net.mcast_ttl,
        target_size=target_size,
        # Eight busy processes share two cores here: a 0.3 s silence is not yet a crash.
        heartbeat_s=0.05, failure_timeout_s=0.5,
    )


def main_member_id(rid: int, members: tuple[int, ...]) -> int:
    """The host's id in the MainManager's group: the initial members' ids in reverse order,
    so the two groups' leaders (highest id) sit on different hosts and one crash does not
    fail both over; standbys keep their low ids."""
    if rid not in members:
        return rid
    return members[len(members) - 1 - members.index(rid)]


def replica_settings(plan: Plan, target_size: int | None = None,
                     net: RunConfig | None = None) -> dict[int, ReplicaSettings]:
    """Settings per replica-host process index: the AuctionManagers' group, and the
    MainManager's when the hosts hold it. `net`: multicast options and replica slots (the
    AuctionManagers' group also counts the joining nodes' replicas, docs/hosts.md)."""
    members = plan.initial_members()
    size = target_size or len(members)
    slots = net.replica_slots if net else 0
    group = group_config("auctions", size + slots, net)
    main = group_config("main", size, net) if plan.main_replicated() else None
    password = secrets.token_urlsafe(16)
    return {index: ReplicaSettings(
        rid, members, standby, group, password,
        main=None if main is None else ReplicaSettings(
            main_member_id(rid, members), members, standby, main, password))
        for index, (rid, standby) in plan.replica_hosts.items()}


@dataclass
class Failovers:
    """Follows the replica hosts' events; decides when `--kill-leader-after` strikes, and
    whose leader (`target`: the AuctionManagers' group, or the MainManager's)."""

    kill_after: int | None
    target: str = "auction"
    leader: int | None = None  # the AuctionManagers' group's leader (member id)
    leader_pid: int | None = None
    leaders: dict[str, int] = field(default_factory=dict)  # group -> its leader's host pid
    killed_at: float | None = None  # time.monotonic() of the SIGKILL
    count: int = 0  # leader changes because the leader left the view (any group)
    times_ms: list[float] = field(default_factory=list)  # kill -> new leader took over
    views: dict[int, tuple[int, ...]] = field(default_factory=dict)  # member -> its last view
    pids: dict[int, int] = field(default_factory=dict)  # member -> host process id

    def on_event(self, event: dict[str, Any]) -> int | None:
        """Record a replica host's event; return the pid to SIGKILL now, if any."""
        kind = event.get("kind")
        group = event.get("group", "auction")
        if kind == "view" and group == "auction":  # member ids are the auction group's
            self.views[event["member"]] = tuple(event["members"])
            self.pids[event["member"]] = event["pid"]
        elif kind == "leader":
            self.leaders[group] = event["pid"]
            if group == "auction":
                self.leader, self.leader_pid = event["member"], event["pid"]
            if event.get("crashed"):
                self.count += 1
                if self.killed_at is not None and group == self.target and not self.times_ms:
                    self.times_ms.append((event["t"] - self.killed_at) * 1000.0)
        elif kind == "opened" and self.kill_after is not None and self.killed_at is None:
            victim = self.leaders.get(self.target)
            if event["count"] >= self.kill_after and victim is not None:
                return self.strike(victim)
        return None

    def strike(self, pid: int) -> int:
        """Note the time of a SIGKILL about to hit `pid` (the failover clock starts)."""
        self.killed_at = time.monotonic()
        return pid


def check_invariants(
    outcomes: Sequence[RideOutcome], stats: Sequence[dict[str, Any]]
) -> dict[str, int]:
    """Count what the fleet must never allow, from the run's end state:
    - double_assignments: passengers told of two different vehicles;
    - double_outcomes: rides whose passenger was told its outcome (assigned or unserved)
      more than once, by anyone (copies of one message, same id, count once);
    - drives_to_nobody: vehicles that took a ride whose passenger's outcome is not that
      vehicle (the ride had already ended: unserved, given up, or served by another);
    - lost_bids: bids a manager acknowledged (in the replicated log) that some surviving
      replica's log lacks;
    - log_disagreements: surviving members whose log differs (digest at a common position),
      in the AuctionManagers' group and in the MainManager's."""
    double = sum(1 for o in outcomes if o.assignments > 1)
    members = [s["replica"] for s in stats if s.get("replica", {}).get("member_of_group")]
    acknowledged = {tuple(k) for s in stats for k in s.get("bids_acknowledged", [])}
    lost = set()
    for replica in members:
        lost |= missing_bids(acknowledged, replica)
    main = [s["main_replica"] for s in stats
            if s.get("main_replica", {}).get("member_of_group")]
    disagreements = disagreeing(members) + disagreeing(main)
    return {"double_assignments": double, "double_outcomes": double_outcomes(stats),
            "drives_to_nobody": drives_to_nobody(outcomes, stats), "lost_bids": len(lost),
            "log_disagreements": disagreements}


def missing_bids(acknowledged: set[tuple[Any, ...]], replica: dict[str, Any]
                 ) -> set[tuple[Any, ...]]:
    """Acknowledged bids this replica did not order. A replica keeps the bids of its last
    few thousand auctions (replicated/bidkeys.py): once it has forgotten some
    (`bid_keys_evicted`), an auction it no longer holds cannot be checked and is skipped."""
    logged = {tuple(k) for k in replica["bid_keys"]}
    missing = acknowledged - logged
    if replica.get("bid_keys_evicted", 0):
        held = {k[0] for k in logged}
        missing = {k for k in missing if k[0] in held}
    return missing


def disagreeing(members: Sequence[dict[str, Any]]) -> int:
    """Members of one group whose rolling log digest (a hash chain over every entry
    applied, kept for the last DIGESTS_KEPT positions) at the latest position they all
    still hold is not the majority's."""
    if not members:
        return 0
    # JSON round trips turn int keys into strings; accept both.
    held = [{int(k) for k in r["digests"]} for r in members]
    shared = set.intersection(*held)
    common = max(shared) if shared else min(r["seq"] for r in members)
    if common < 0:
        return 0
    digests = [r["digests"].get(common, r["digests"].get(str(common))) for r in members]
    majority, _ = Counter(digests).most_common(1)[0]
    return sum(1 for d in digests if d != majority or d is None)


def double_outcomes(stats: Sequence[dict[str, Any]]) -> int:
    """Rides told their outcome by more than one message (distinct ids), fleet-wide."""
    told = {tuple(k) for s in stats for k in s.get("outcomes_told", [])}
    per_ride = Counter(ride for ride, _mid in told)
    return sum(1 for count in per_ride.values() if count > 1)


def drives_to_nobody(outcomes: Sequence[RideOutcome], stats: Sequence[dict[str, Any]]) -> int:
    """Rides a vehicle took although its passenger's outcome names no such vehicle."""
    vehicle_of = {o.request_id: (o.vehicle if o.served else None) for o in outcomes}
    return sum(1 for s in stats for ride, vehicle in s.get("rides_taken", [])
               if ride in vehicle_of and vehicle_of[ride] != vehicle)
