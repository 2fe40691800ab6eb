"""Batch policies: every `batch_s` simulated seconds, match the waiting passengers and the
idle vehicles of each cluster so as to minimise the total pickup time of the batch.
A cluster with fewer idle vehicles than passengers borrows a neighbour's spare vehicles
(policies/spill.py).

`batch-auction` is what the live agents do (behaviours/batch_auction.py): each vehicle
bids its k best pickup times (`k_best`), and the manager clears the bids with the
ε-auction (`clear`); `optimal` solves each batch on the full matrix with scipy's
`linear_sum_assignment`, the reference. Times are rounded to RESOLUTION_S so the auction is
exact on the rounded costs.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import linear_sum_assignment

from fleetbid.policies.base import Assignment, Geography, Idle, Policy, Waiting
from fleetbid.policies.eps_auction import min_cost_assignment
from fleetbid.policies.spill import batch_groups

RESOLUTION_S = 0.1
UNREACHABLE_S = 1e7  # strongly connected maps have none; keep the matrix finite anyway
DEFAULT_K = 5  # pickup times per vehicle bid


def k_best(times: Mapping[str, float], k: int) -> list[tuple[str, float]]:
    """A vehicle's sealed batch bid: its k shortest finite pickup times (then request id)."""
    finite = [(t, r) for r, t in times.items() if math.isfinite(t)]
    return [(r, t) for t, r in sorted(finite)[:k]]


def clear(bids: Mapping[str, Sequence[tuple[str, float]]]) -> list[tuple[str, str]]:
    """Clear a batch: (request id, vehicle) pairs of a matching of the bids that serves as
    many passengers as the bids allow and, among those, minimises the total pickup time
    (times rounded to RESOLUTION_S). ε-auction over the listed pairs; an unlisted pair costs
    more than all listed ones together, so it is never preferred to a listed one."""
    vehicles = sorted(v for v, times in bids.items() if times)
    requests = sorted({r for v in vehicles for r, _ in bids[v]})
    if not vehicles or not requests:
        return []
    col = {r: j for j, r in enumerate(requests)}
    listed = np.zeros((len(vehicles), len(requests)), dtype=bool)
    cost = np.zeros(listed.shape, dtype=np.int64)
    for i, v in enumerate(vehicles):
        for r, t in bids[v]:
            cost[i, col[r]] = int(round(t / RESOLUTION_S))
            listed[i, col[r]] = True
    # More than any matching of listed pairs costs: unlisted pairs only fill the matrix.
    cost[~listed] = int(cost[listed].max()) * min(cost.shape) + 1
    if cost.shape[0] <= cost.shape[1]:
        pairs = min_cost_assignment(cost)
    else:
        # More vehicles than rides (the usual case below capacity): the rides take the
        # bidder's side of the ε-auction, one forward phase with no dummies or ε-scaling
        # (the same optimum; Bertsekas' auction is symmetric in its two sides).
        pairs = [(i, j) for j, i in min_cost_assignment(cost.T)]
    return sorted((requests[j], vehicles[i]) for i, j in pairs if listed[i, j])


@dataclass
class BatchAudit:
    """Per cluster batch: total pickup time of the policy's matching and of the optimum."""

    policy_s: list[float] = field(default_factory=list)
    optimal_s: list[float] = field(default_factory=list)

    def gap(self) -> float | None:
        """Relative excess of the policy's total over the optimum, over all batches."""
        total = sum(self.optimal_s)
        return None if not self.policy_s else (sum(self.policy_s) - total) / max(total, 1e-9)


class _Batch(Policy):
    def __init__(self, batch_s: float = 10.0, audit: bool = False) -> None:
        if not (batch_s > 0 and math.isfinite(batch_s)):
            raise ValueError(f"batch_s must be > 0, got {batch_s}")
        self.batch_s = batch_s
        self.audit = BatchAudit() if audit else None

    @abstractmethod
    def solve(self, times: NDArray[np.float64]) -> list[tuple[int, int]]:
        """(vehicle row, passenger column) pairs matched on this batch's pickup times."""

    def assign(
        self, waiting: Sequence[Waiting], idle: Sequence[Idle], geo: Geography
    ) -> list[Assignment]:
        out: list[Assignment] = []
        for vs, ps in batch_groups(waiting, idle, geo).values():
            out.extend(self.match(vs, ps, geo))
        return out

    def match(self, vs: list[Idle], ps: list[Waiting], geo: Geography) -> list[Assignment]:
        if not vs or not ps:
            return []
        times = geo.times([v.node for v in vs], [p.pickup for p in ps])
        times = np.where(np.isfinite(times), times, UNREACHABLE_S)
        pairs = self.solve(times)
        if self.audit is not None:
            rows, cols = linear_sum_assignment(times)
            self.audit.optimal_s.append(float(times[rows, cols].sum()))
            self.audit.policy_s.append(float(sum(times[i, j] for i, j in pairs)))
        return [Assignment(ps[j].request_id, vs[i].vehicle) for i, j in sorted(pairs)]


class BatchAuction(_Batch):
    """The live agents' batch procurement auction: k-best bids, ε-auction clearing."""

    name = "batch-auction"

    def __init__(self, batch_s: float = 10.0, audit: bool = False, k: int = DEFAULT_K) -> None:
        super().__init__(batch_s, audit)
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        self.k = k

    def solve(self, times: NDArray[np.float64]) -> list[tuple[int, int]]:
        columns = [str(j) for j in range(times.shape[1])]
        bids = {str(i): k_best(dict(zip(columns, row.tolist(), strict=True)), self.k)
                for i, row in enumerate(times)}
        return [(int(v), int(r)) for r, v in clear(bids)]


class Optimal(_Batch):
    name = "optimal"

    def solve(self, times: NDArray[np.float64]) -> list[tuple[int, int]]:
        cost = np.rint(times / RESOLUTION_S).astype(np.int64)
        rows, cols = linear_sum_assignment(cost)
        return [(int(i), int(j)) for i, j in zip(rows, cols, strict=True)]
