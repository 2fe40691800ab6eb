"""Run configuration: one frozen value shared by the launcher and every agent process."""

from __future__ import annotations

import math
from dataclasses import dataclass

from fleetbid.policies import POLICIES

KILL_TARGETS = ("auction", "main")  # replica groups `--kill-leader-after` can strike


@dataclass(frozen=True)
class RunConfig:
    vehicles: int = 100
    requests: int = 200
    rate: float = 8.0  # passenger requests per simulated minute (Poisson)
    speed: float = 120.0  # simulated seconds per wall second
    seed: int = 0
    map: str | None = None  # None: the built-in generated city; else a GraphML path
    clusters: int = 4
    radius_m: float = 1500.0  # δ: admission radius around the pickup
    proxies: str = "auto"  # "auto" (about √n groups), or an int K >= 0 as a string
    processes: int = 2
    auction_managers: int = 16  # pool of AuctionManager agents (one auction at a time each)
    bid_timeout_s: float = 30.0  # simulated seconds the bidding phase may last
    patience_s: float = 900.0  # simulated seconds a passenger waits for an auction to succeed
    min_eta_s: float = 1.0  # floor on T so that a vehicle at the pickup has a finite bid
    # Messages take wall time whatever the simulation speed: a bidding round lasts at least
    # this many wall seconds, or fast simulations would close rounds before bids arrive.
    min_bid_wall_s: float = 0.5
    # Eligibility: at most this many of the nearest admissible vehicles bid (0: all of them).
    max_bidders: int = 8
    # Requests waiting for a free AuctionManager; beyond it a request is turned away at once.
    queue_limit: int = 1000
    # Messages per passenger account per minute to the MainManager (the embedded server
    # refuses the excess; platform/rate_limit.py). A passenger asks once per account.
    max_requests_per_minute: int = 10
    trace: str | None = None  # JSON-lines file every process appends its messages to
    law: str = "sealed-first-price"  # default law: a built-in name or a TOML file (docs/laws.md)
    audit: str | None = None  # the auditor's SQLite file (None: kept in memory)
    # Replicated AuctionManagers: the group's size (1 = no replication) and standby hosts
    # the replication manager can recruit after a crash.
    replicas: int = 3  # the documented default configuration (docs/replication.md)
    standby_hosts: int = 1
    kill_leader_after: int | None = None  # fault injection: SIGKILL the leader's host then
    kill: str = "auction"  # whose leader: the AuctionManagers' group or the MainManager's
    # The MainManager's registry replicated too (its own group on the replica hosts). Off by
    # default: every message to it then crosses the server to every replica (measured cost
    # in docs/replication.md); `kill == "main"` implies it.
    replicate_main: bool = False
    # Dispatch policy (fleetbid/policies): "auction" runs the auction agents as always; the
    # others are decided by the MainManager over its registry of idle vehicles.
    policy: str = "auction"
    batch_s: float = 10.0  # simulated seconds between decisions of the batch policies
    batch_k: int = 5  # batch-auction: pickup times per vehicle bid (its k best)
    # Idle repositioning (policies/reposition.py): the MainManager announces demand figures
    # on the announcement group and an idle vehicle may drive toward demand. Off by default.
    reposition: bool = False
    # Several hosts (docs/hosts.md). The embedded server's address: loopback unless the fleet
    # spans hosts (then an address of a private LAN, e.g. inside test namespaces).
    listen: str = "127.0.0.1"
    # Vehicle names reserved in the Directory for `fleetbid node --join` (0: no joining).
    join_slots: int = 0
    # Replica ids reserved for joining nodes' replica hosts: the group's target size grows by
    # this many, so the leader recruits each node's replica as soon as it offers itself.
    replica_slots: int = 0
    # The replicas' multicast: interface address, TTL (1 = this LAN segment only), group
    # ("" = a random 239.255.x.y per run; discovery uses 239.254.x.y).
    mcast_interface: str = "127.0.0.1"
    mcast_ttl: int = 1
    mcast_group: str = ""

    def __post_init__(self) -> None:
        checks = [
            (self.vehicles >= 1, "--vehicles must be >= 1"),
            (self.requests >= 0, "--requests must be >= 0"),
            (self.rate > 0 and math.isfinite(self.rate), "--rate must be > 0"),
            (self.speed > 0 and math.isfinite(self.speed), "--speed must be > 0"),
            (self.clusters >= 1, "--clusters must be >= 1"),
            (self.radius_m > 0, "--radius must be > 0"),
            (self.max_bidders >= 0, "--max-bidders must be >= 0"),
            (self.queue_limit >= 1, "--queue-limit must be >= 1"),
            (self.max_requests_per_minute >= 1, "--max-requests-per-minute must be >= 1"),
            (self.processes >= 1, "--processes must be >= 1"),
            (self.auction_managers >= 1, "--auction-managers must be >= 1"),
            (self.bid_timeout_s > 0, "--bid-timeout must be > 0"),
            (self.patience_s > 0, "--patience must be > 0"),
            (1 <= self.replicas <= 9, "--replicas must be between 1 and 9"),
            (0 <= self.standby_hosts <= 9, "--standby-hosts must be between 0 and 9"),
            (self.kill_leader_after is None or self.kill_leader_after >= 0,
             "--kill-leader-after must be >= 0"),
            (self.kill_leader_after is None or self.replicas >= 2,
             "--kill-leader-after needs --replicas >= 2 (a lone manager has no one to fail "
             "over to)"),
            (self.kill in KILL_TARGETS, f"--kill must be one of {', '.join(KILL_TARGETS)}"),
            (self.kill == "auction" or self.policy == "auction",
             "--kill main needs --policy auction (only the auction registry is replicated)"),
            (self.policy in POLICIES, f"--policy must be one of {', '.join(POLICIES)}"),
            (self.batch_s > 0 and math.isfinite(self.batch_s), "--batch must be > 0"),
            (1 <= self.batch_k <= 64, "--batch-k must be between 1 and 64"),
            (0 <= self.join_slots <= 10000, "--join-slots must be between 0 and 10000"),
            (1 <= self.mcast_ttl <= 255, "--mcast-ttl must be between 1 and 255"),
            (0 <= self.replica_slots <= 6, "--replica-slots must be between 0 and 6"),
            (self.replica_slots == 0 or self.replicas > 1,
             "--replica-slots needs --replicas >= 2"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
        self.proxy_setting()  # validates

    def main_replicated(self) -> bool:
        """Does the MainManager's registry run on the replica hosts, replicated?"""
        return self.replicas > 1 and self.policy == "auction" and (
            self.replicate_main or self.kill == "main")

    def replica_hosts(self) -> int:
        """OS processes holding AuctionManager replicas (0: managers are ordinary agents)."""
        return self.replicas + self.standby_hosts if self.replicas > 1 else 0

    def bid_window_s(self) -> float:
        """Simulated duration of a bidding round: the configured timeout, or longer so that it
        lasts `min_bid_wall_s` of wall time."""
        return max(self.bid_timeout_s, self.min_bid_wall_s * self.speed)

    def proxy_setting(self) -> int | None:
        """None for auto, else the fixed number of proxies K (0 = no proxy)."""
        if self.proxies == "auto":
            return None
        try:
            k = int(self.proxies)
        except ValueError:
            raise ValueError(
                f"--proxies must be 'auto' or an integer >= 0, got {self.proxies!r}"
            ) from None
        if k < 0:
            raise ValueError(f"--proxies must be >= 0, got {k}")
        return k

    def proxy_pool_size(self) -> int:
        """Proxy agents to launch: enough for the largest auction (all vehicles admitted)."""
        k = self.proxy_setting()
        if k is None:
            return max(1, round(math.sqrt(self.vehicles)))
        return k
