"""Public types of the replication library: configuration, deliveries, views, state machine."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class GroupConfig:
    group_id: str
    key: bytes  # HMAC key of the deployment
    multicast_addr: str = "239.255.77.1"
    port: int = 0  # 0 -> the caller must choose; tests pick free ports
    discovery_addr: str = "239.255.77.2"
    discovery_port: int = 0  # discovery multicast group port (recruitment)
    ttl: int = 1
    interface: str = "127.0.0.1"
    heartbeat_s: float = 0.05
    failure_timeout_s: float = 0.3
    target_size: int = 3
    # Reliable delivery: first retransmission after rto_s, doubling up to rto_max_s.
    rto_s: float = 0.02
    rto_max_s: float = 0.5
    max_attempts: int = 40  # then the message is given up (counted); members are removed anyway
    max_datagram: int = 1400  # payload bytes per fragment; bigger messages are fragmented
    max_message: int = 64 * 1024 * 1024  # reassembly refuses messages larger than this
    dedup_window: int = 8192  # remembered message ids per sender (anti-replay, duplicates)
    startup_grace_s: float = 10.0  # an initial member never heard from is removed after this
    recruit_interval_s: float = 0.2  # how often a short-handed leader asks for standbys
    client_timeout_s: float = 1.0  # a GroupClient retries through another member after this
    # A view change needs a majority of the current view (no split brain when a process is
    # only stalled, or the network is cut); False favours availability over that.
    primary_partition: bool = True
    # Watchdog: a member that makes no progress (quorum lost, view change or state transfer
    # stuck) for this long retries the view change if it may, and reports GroupStatus.frozen.
    # 0 means 5 x failure_timeout_s (1.5 s by default, 2.5 s in the fleet).
    watchdog_s: float = 0.0

    def __post_init__(self) -> None:
        if not self.group_id or len(self.group_id.encode()) > 64:
            raise ValueError("group_id must be 1..64 bytes")
        if len(self.key) < 16:
            raise ValueError("key must be at least 16 bytes")
        if self.heartbeat_s <= 0 or self.failure_timeout_s <= self.heartbeat_s:
            raise ValueError("need 0 < heartbeat_s < failure_timeout_s")
        if self.target_size < 1:
            raise ValueError("target_size must be >= 1")
        if self.watchdog_s < 0:
            raise ValueError("watchdog_s must be >= 0")
        if not 256 <= self.max_datagram <= 60000:
            raise ValueError("max_datagram must be in 256..60000")

    @property
    def watchdog_bound_s(self) -> float:
        return self.watchdog_s or 5 * self.failure_timeout_s


@dataclass(frozen=True)
class Delivery:
    seq: int  # position in the total order, identical at every replica (0,1,2,...)
    sender: int  # member id that submitted it
    msg_id: int  # unique per sender across restarts (ids start at the sender's incarnation)
    payload: bytes
    view_id: int = 0  # the view it was delivered in (the last view before it in the order)

    @property
    def uid(self) -> tuple[int, int]:
        """The message's own identity: the same at every replica, never shared by two
        different messages (unlike `seq`, which a replica excluded while it still delivered
        may have used for another message). Name outputs after this."""
        return (self.sender, self.msg_id)


@dataclass(frozen=True)
class GroupStatus:
    """What the watchdog says about this replica's group (Replica/ReplicaNode.group_status).

    frozen: no progress for longer than GroupConfig.watchdog_s (quorum lost, a view change
    or a state transfer stuck); reason says which; since is when it started (clock time).
    """

    frozen: bool = False
    reason: str = ""
    since: float | None = None
    view_id: int = 0


@dataclass(frozen=True)
class View:
    view_id: int
    members: tuple[int, ...]
    leader: int  # bully rule: the highest member id

    @staticmethod
    def of(view_id: int, members: tuple[int, ...] | list[int] | set[int]) -> View:
        ms = tuple(sorted(set(members)))
        return View(view_id, ms, ms[-1])


class StateMachine(Protocol):
    def apply(self, delivery: Delivery) -> None: ...  # in total order at every replica

    def on_view(self, view: View) -> None: ...  # view changes, in the same total order

    def snapshot(self) -> bytes: ...  # full state for a recruited replica

    def restore(self, data: bytes) -> None: ...


class ReplicationError(Exception):
    """Misuse of the replication API (e.g. submitting at a host that is not a member)."""
