"""Watchdog: a member that makes no progress for too long says so, and retries if it may.

A mixin of Replica (replica.py), which holds the state it reads. See docs/replication.md,
"Watchdog".
"""

from __future__ import annotations

import logging

from fleetbid.replication.api import GroupStatus
from fleetbid.replication.membership import coordinator, quorum
from fleetbid.replication.viewchange import JOINING

log = logging.getLogger("fleetbid.replication.replica")  # one logger for the replica's lines


class Watchdog:
    """Watchdog half of Replica (uses its attributes)."""

    @property
    def group_status(self) -> GroupStatus:
        """The watchdog's verdict: frozen once no progress was made for watchdog_bound_s."""
        if self.alarm:
            return GroupStatus(True, self.stuck_reason, self.stuck_since, self.installed_vid)
        return GroupStatus(False, "", None, self.installed_vid)

    def _stuck(self, suspects: set[int]) -> str:
        """Why this member cannot make progress now ("" if it can)."""
        if self.status == JOINING:
            return "state transfer not received"
        reachable = set(self.members) - suspects - (self.stateless - {self.id})
        if self.config.primary_partition and not quorum(reachable, self.members):
            return f"quorum lost: {len(reachable)} of {len(self.members)} members reachable"
        if self.frozen:
            return "view change not finished"
        return ""

    def _watchdog(self, now: float, suspects: set[int]) -> None:
        """A member stuck longer than the bound raises the alarm (GroupStatus.frozen and an
        ERROR line, once) so its host can report it instead of hanging silently; as the bully
        winner of a stuck view change it also starts a fresh one (a higher view id)."""
        reason = self._stuck(suspects)
        if not reason:
            self._clear_alarm()
            return
        if self.stuck_since is None:
            self.stuck_since, self._retry_at = now, now
        self.stuck_reason = reason
        bound = self.config.watchdog_bound_s
        if now - self.stuck_since < bound:
            return
        if not self.alarm:
            self.alarm = True
            self.counters["watchdog_alarms"] += 1
            log.error("replica %d: group %s frozen for %.1f s in view %d: %s", self.id,
                      self.config.group_id, now - self.stuck_since, self.installed_vid, reason)
            self._notify_status()
        if (self.frozen and self.coord is None and now - self._retry_at >= bound
                and coordinator(set(self.members) - self.stateless, suspects) == self.id):
            self._retry_at = now
            self.counters["watchdog_view_changes"] += 1
            keep = tuple(m for m in self.members if m not in suspects)
            self._start_flush(keep, tuple(m for m in keep if m in self.stateless))

    def _clear_alarm(self) -> None:
        self.stuck_since = None
        self.stuck_reason = ""
        if self.alarm:
            self.alarm = False
            log.warning("replica %d: group %s makes progress again (view %d)", self.id,
                        self.config.group_id, self.installed_vid)
            self._notify_status()

    def _notify_status(self) -> None:
        st = self.group_status
        for cb in self.status_listeners:
            cb(st)

