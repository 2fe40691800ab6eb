"""Per-request greedy baselines: FIFO in its two readings (the paper's baseline does not say
which) and nearest idle vehicle."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

from fleetbid.policies.base import Assignment, Geography, Idle, Policy, Waiting


class Fifo(Policy):
    """Requests in arrival order; each takes the vehicle idle the longest (earliest `since`,
    then smallest id), wherever it is. Distance plays no part."""

    name = "fifo"

    def assign(
        self, waiting: Sequence[Waiting], idle: Sequence[Idle], geo: Geography
    ) -> list[Assignment]:
        pool = sorted(idle, key=_longest_idle_first)
        return [Assignment(w.request_id, v.vehicle) for w, v in zip(waiting, pool, strict=False)]


class FifoCluster(Policy):
    """FIFO within the passenger's cluster: one queue of passengers and one of idle vehicles per
    cluster. Requests in arrival order; each takes the vehicle idle the longest among those
    idle in its pickup's cluster (earliest `since`, then smallest id). Distance within the
    cluster plays no part.

    When its cluster has no idle vehicle, a request does not wait for one (that strands
    requests, as the cluster auction shows): with `spill_over` (the default), the requests
    left over, in arrival order, take the vehicles left over, longest idle first, wherever they
    are, i.e. strict FIFO over the rest. Without it they wait for a vehicle of their cluster.
    """

    name = "fifo-cluster"

    def __init__(self, spill_over: bool = True) -> None:
        self.spill_over = spill_over

    def assign(
        self, waiting: Sequence[Waiting], idle: Sequence[Idle], geo: Geography
    ) -> list[Assignment]:
        queue = sorted(idle, key=_longest_idle_first)
        by_cluster: dict[int, deque[Idle]] = {}
        for v in queue:
            by_cluster.setdefault(geo.cluster_of(v.node), deque()).append(v)
        out: list[Assignment] = []
        taken: set[str] = set()
        left: list[Waiting] = []
        for w in waiting:
            pool = by_cluster.get(w.cluster)
            if not pool:
                left.append(w)
                continue
            v = pool.popleft()
            taken.add(v.vehicle)
            out.append(Assignment(w.request_id, v.vehicle))
        if self.spill_over:
            rest = [v for v in queue if v.vehicle not in taken]
            out.extend(Assignment(w.request_id, v.vehicle)
                       for w, v in zip(left, rest, strict=False))
        return out


def _longest_idle_first(v: Idle) -> tuple[float, str]:
    return v.since, v.vehicle


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
