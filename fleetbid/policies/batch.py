"""Batch policies: every `batch_s` simulated seconds, match the waiting passengers and the
idle vehicles of each cluster so as to minimise the total pickup time of the batch; then
match, the same way, the vehicles and passengers left over in all clusters (spill-over).

`batch-auction` solves each cluster's matching with the ε-auction (vehicles bid);
`optimal` solves the same problem with scipy's `linear_sum_assignment`, the reference.
Times are rounded to RESOLUTION_S so the auction is exact on the rounded costs.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import linear_sum_assignment

from fleetbid.policies.base import Assignment, Geography, Idle, Policy, Waiting
from fleetbid.policies.eps_auction import min_cost_assignment

RESOLUTION_S = 0.1
UNREACHABLE_S = 1e7  # strongly connected maps have none; keep the matrix finite anyway


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
    def solve(self, cost: NDArray[np.int64]) -> list[tuple[int, int]]:
        """(row, column) pairs of a minimum-cost assignment of `cost` (the subclass's solver)."""

    def assign(
        self, waiting: Sequence[Waiting], idle: Sequence[Idle], geo: Geography
    ) -> list[Assignment]:
        vehicles: dict[int, list[Idle]] = {}
        for v in sorted(idle, key=lambda v: v.vehicle):
            vehicles.setdefault(geo.cluster_of(v.node), []).append(v)
        passengers: dict[int, list[Waiting]] = {}
        for w in waiting:
            passengers.setdefault(w.cluster, []).append(w)
        out: list[Assignment] = []
        spare_v: list[Idle] = []
        spare_p: list[Waiting] = []
        for cluster in sorted(vehicles.keys() | passengers.keys()):
            vs, ps = vehicles.get(cluster, []), passengers.get(cluster, [])
            got = self.match(vs, ps, geo)
            out.extend(got)
            taken = {a.vehicle for a in got}
            served = {a.request_id for a in got}
            spare_v.extend(v for v in vs if v.vehicle not in taken)
            spare_p.extend(p for p in ps if p.request_id not in served)
        # Spill-over: vehicles with nobody to fetch in their own cluster bid, in the same way,
        # for passengers left over elsewhere, so no cluster starves while others have spares.
        spare_p.sort(key=lambda p: (p.requested_at, p.request_id))
        out.extend(self.match(sorted(spare_v, key=lambda v: v.vehicle), spare_p, geo))
        return out

    def match(self, vs: list[Idle], ps: list[Waiting], geo: Geography) -> list[Assignment]:
        if not vs or not ps:
            return []
        times = geo.times([v.node for v in vs], [p.pickup for p in ps])
        times = np.where(np.isfinite(times), times, UNREACHABLE_S)
        cost = np.rint(times / RESOLUTION_S).astype(np.int64)
        pairs = self.solve(cost)
        if self.audit is not None:
            rows, cols = linear_sum_assignment(times)
            self.audit.optimal_s.append(float(times[rows, cols].sum()))
            self.audit.policy_s.append(float(sum(times[i, j] for i, j in pairs)))
        return [Assignment(ps[j].request_id, vs[i].vehicle) for i, j in sorted(pairs)]


class BatchAuction(_Batch):
    name = "batch-auction"

    def solve(self, cost: NDArray[np.int64]) -> list[tuple[int, int]]:
        return min_cost_assignment(cost)


class Optimal(_Batch):
    name = "optimal"

    def solve(self, cost: NDArray[np.int64]) -> list[tuple[int, int]]:
        rows, cols = linear_sum_assignment(cost)
        return [(int(i), int(j)) for i, j in zip(rows, cols, strict=True)]
