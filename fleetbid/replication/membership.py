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


def quorum(holders: Iterable[int], members: Iterable[int]) -> bool:
    """A quorum of the view `members`: more than half of it, or exactly half when that half
    holds the highest member id (the leader).

    Any two quorums of one view share a member (two halves cannot both hold the highest
    id), which is all that stability and view changes rely on: no two views can follow one
    view, and a stable message is reported by some survivor of any later one. The tie-break
    lets the leader's half of an even view go on alone: in a group of 2 whose other member
    died (or was cut off), the leader re-forms a view and recruits, where a strict majority
    (2 of 2) left the group frozen for good (docs/soak.md, issue 15).
    """
    ms = set(members)
    have = ms.intersection(holders)
    return 2 * len(have) > len(ms) or (2 * len(have) == len(ms) > 0 and max(ms) in have)
