"""Replication manager: a short-handed leader recruits standby hosts over the discovery group.

The leader multicasts DISCOVER on the discovery channel; standbys answer OFFER by unicast. The
leader then runs a view change that adds the chosen standbys (see replica.py), sends them the
new view (JOIN) and, once it delivers that view change, the full state (STATE).
"""

from __future__ import annotations


class Recruiter:
    def __init__(self, target_size: int, interval: float) -> None:
        self.target_size = target_size
        self.interval = interval
        self.offers: dict[int, float] = {}  # standby id -> when it last offered
        self._last_discover = float("-inf")

    def offer(self, member: int, now: float) -> None:
        self.offers[member] = now

    def should_discover(self, size: int, now: float) -> bool:
        if size >= self.target_size or now - self._last_discover < self.interval:
            return False
        self._last_discover = now
        return True

    def candidates(self, members: tuple[int, ...], now: float) -> list[int]:
        """Fresh offers from hosts outside the view, as many as the view is short."""
        fresh = sorted(m for m, t in self.offers.items()
                       if now - t <= 3 * self.interval and m not in members)
        return fresh[: max(0, self.target_size - len(members))]

    def taken(self, members: tuple[int, ...]) -> None:
        for m in members:
            self.offers.pop(m, None)
