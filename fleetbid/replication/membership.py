"""Heartbeat failure detector and the bully rule for who coordinates a view change."""

from __future__ import annotations

from collections.abc import Iterable


class FailureDetector:
    """Suspects a member not heard from for `timeout` seconds.

    A member never heard from gets `grace` seconds (processes start at different times).
    """

    def __init__(self, timeout: float, grace: float) -> None:
        self.timeout = timeout
        self.grace = grace
        self.last: dict[int, float] = {}
        self.since: dict[int, float] = {}  # when we started watching a member

    def heard(self, member: int, now: float) -> None:
        self.last[member] = now

    def watch(self, members: Iterable[int], now: float) -> None:
        for m in members:
            self.since.setdefault(m, now)

    def unwatch(self, member: int) -> None:
        self.since.pop(member, None)
        self.last.pop(member, None)

    def suspected(self, members: Iterable[int], now: float) -> set[int]:
        out = set()
        for m in members:
            t = self.last.get(m)
            if t is None:
                if now - self.since.get(m, now) > self.grace:
                    out.add(m)
            elif now - t > self.timeout:
                out.add(m)
        return out


def coordinator(members: Iterable[int], suspected: set[int]) -> int | None:
    """Bully rule: the highest member id that is not suspected coordinates and leads."""
    alive = [m for m in members if m not in suspected]
    return max(alive) if alive else None
