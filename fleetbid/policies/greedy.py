"""Per-request greedy baselines: FIFO (the paper's) and nearest idle vehicle."""

from __future__ import annotations

from collections.abc import Sequence

from fleetbid.policies.base import Assignment, Geography, Idle, Policy, Waiting


class Fifo(Policy):
    """Requests in arrival order; each takes the vehicle idle the longest (earliest `since`,
    then smallest id), wherever it is. Distance plays no part."""

    name = "fifo"

    def assign(
        self, waiting: Sequence[Waiting], idle: Sequence[Idle], geo: Geography
    ) -> list[Assignment]:
        pool = sorted(idle, key=lambda v: (v.since, v.vehicle))
        return [Assignment(w.request_id, v.vehicle) for w, v in zip(waiting, pool, strict=False)]


class Nearest(Policy):
    """Requests in arrival order; each takes the idle vehicle with the shortest travel time to
    its pickup over the whole fleet (ties: smallest id)."""

    name = "nearest"

    def assign(
        self, waiting: Sequence[Waiting], idle: Sequence[Idle], geo: Geography
    ) -> list[Assignment]:
        pool = sorted(idle, key=lambda v: v.vehicle)
        out: list[Assignment] = []
        for w in waiting:
            if not pool:
                break
            times = geo.times([v.node for v in pool], [w.pickup])[:, 0]
            best = min(range(len(pool)), key=lambda k: (times[k], pool[k].vehicle))
            out.append(Assignment(w.request_id, pool.pop(best).vehicle))
        return out
