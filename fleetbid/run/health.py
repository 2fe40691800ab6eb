"""What the launcher knows about its fleet's health: server, workers, replica hosts, quorum.

`Health` is fed by the launcher (process exits, the replica hosts' `group-status` events)
and answers two questions: is something dead that the fleet cannot do without (the
embedded server, a worker of ordinary agents: `fatal`), and can the replicated
AuctionManagers still make progress (`quorum`). Losing a replica host is not fatal: the
group recruits a standby, as before; losing a majority is reported at once and new requests
are refused with that reason rather than left to time out.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("fleetbid.health")

NO_QUORUM = "no quorum"
RATE_WINDOW_S = 60.0


@dataclass
class Health:
    replicas: int  # the group's target size (1: managers are not replicated)
    replica_hosts: dict[int, tuple[int, bool]]  # process index -> (member id, standby?)
    server_pid: int | None = None
    server_exit: int | None = None  # the embedded server's exit code, once it died
    worker_pids: dict[int, int] = field(default_factory=dict)
    dead: set[int] = field(default_factory=set)  # process indexes that exited
    frozen: dict[int, str] = field(default_factory=dict)  # member -> watchdog's reason
    fatal: str = ""  # why the fleet cannot go on ("" while it can)
    quorum_lost: str = ""  # why the managers' group cannot make progress ("" while it can)
    replica_exits: int = 0
    samples: deque[tuple[float, int, int]] = field(default_factory=lambda: deque(maxlen=120))
    queue: int | None = None  # requests waiting for a free AuctionManager (last sample)
    sent: dict[int, tuple[int, int]] = field(default_factory=dict)  # index -> outcomes sent

    # --- events -------------------------------------------------------------------------
    def on_exit(self, index: int) -> None:
        """Process `index` exited (the launcher is not stopping)."""
        self.dead.add(index)
        if index in self.replica_hosts:
            self.replica_exits += 1
            member = self.replica_hosts[index][0]
            self.frozen.pop(member, None)  # a dead member's verdict no longer counts
            log.warning("replica host %d (member %d) exited; %d of %d hosts alive", index,
                        member, self.live_replica_hosts(), len(self.replica_hosts))
        elif not self.fatal:
            self.fatal = f"worker process {index} (pid {self.worker_pids.get(index)}) exited"
        self._check_quorum()

    def on_server_exit(self, code: int) -> None:
        self.server_exit = code
        if not self.fatal:
            self.fatal = f"the embedded XMPP server (pid {self.server_pid}) exited with code {code}"

    def on_group_status(self, member: int, frozen: bool, reason: str) -> None:
        if frozen:
            self.frozen[member] = reason
        else:
            self.frozen.pop(member, None)
        self._check_quorum()

    def on_counters(self, sent: dict[int, tuple[int, int]], queue: int | None,
                    now: float | None = None) -> None:
        """Per live process, outcomes it sent so far (assigned, unserved); the queue.

        A process's last counts are kept after it dies (the leader's host may be killed),
        so the totals never go down."""
        self.sent.update(sent)
        served = sum(a for a, _ in self.sent.values())
        unserved = sum(u for _, u in self.sent.values())
        self.samples.append((time.monotonic() if now is None else now, served, unserved))
        self.queue = queue

    # --- verdicts -----------------------------------------------------------------------
    def live_replica_hosts(self) -> int:
        return sum(1 for i in self.replica_hosts if i not in self.dead)

    def _check_quorum(self) -> None:
        reason = self.quorum_reason()
        if reason and not self.quorum_lost:
            log.error("the auction managers' group lost its quorum: %s; new requests are "
                      "refused", reason)
        elif self.quorum_lost and not reason:
            log.warning("the auction managers' group makes progress again")
        self.quorum_lost = reason

    def quorum_reason(self) -> str:
        """Why the group cannot order anything now ('' if it can, or is not replicated).

        Counted from the hosts alive (at once: a dead process is known the moment its pipe
        closes) and from the members' own watchdogs (which also see e.g. two members of a
        view dying together while a standby, alive but not yet in the view, is left)."""
        if not self.replica_hosts:
            return ""
        majority = self.replicas // 2 + 1
        live = self.live_replica_hosts()
        if live < majority:
            return f"{NO_QUORUM}: {live} of {self.replicas} replica hosts alive"
        quorum_verdicts = [r for r in self.frozen.values() if "quorum" in r]
        if quorum_verdicts:
            return f"{NO_QUORUM}: {quorum_verdicts[0]}"
        return ""

    def served_per_min(self, now: float | None = None) -> float | None:
        """Rides assigned over the last minute (or since the first sample), per minute."""
        if len(self.samples) < 2:
            return None
        now = time.monotonic() if now is None else now
        recent = [s for s in self.samples if now - s[0] <= RATE_WINDOW_S] or [self.samples[-1]]
        first, last = recent[0], self.samples[-1]
        if first is last:
            first = self.samples[-2]
        span = last[0] - first[0]
        return (last[1] - first[1]) * 60.0 / span if span > 0 else None

    def snapshot(self) -> dict[str, Any]:
        """Plain data for the status file and `fleetbid status --json`."""
        hosts = []
        for index, (member, standby) in sorted(self.replica_hosts.items()):
            hosts.append({"index": index, "member": member, "standby": standby,
                          "pid": self.worker_pids.get(index), "alive": index not in self.dead,
                          "frozen": self.frozen.get(member, "")})
        workers = [{"index": i, "pid": pid, "alive": i not in self.dead}
                   for i, pid in sorted(self.worker_pids.items()) if i not in self.replica_hosts]
        served = self.samples[-1][1] if self.samples else None
        unserved = self.samples[-1][2] if self.samples else None
        rate = self.served_per_min()
        return {
            "ok": not self.fatal and not self.quorum_lost,
            "fatal": self.fatal,
            "server": {"pid": self.server_pid, "alive": self.server_exit is None,
                       "exit_code": self.server_exit},
            "workers": workers,
            "replicas": {"size": self.replicas if self.replica_hosts else 1,
                         "hosts": hosts, "live_hosts": self.live_replica_hosts(),
                         "host_exits": self.replica_exits,
                         "quorum": not self.quorum_lost, "reason": self.quorum_lost},
            "queue": self.queue, "served": served, "unserved": unserved,
            "served_per_min": None if rate is None else round(rate, 2),
        }
