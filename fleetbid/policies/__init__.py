"""Dispatch policies behind one interface (base.Policy), used by the live MainManager and by
the simulator alike."""

from __future__ import annotations

import math

from fleetbid.policies.auction import ClusterAuction
from fleetbid.policies.base import Assignment, Geography, Idle, Policy, Waiting
from fleetbid.policies.batch import BatchAuction, Optimal
from fleetbid.policies.greedy import Fifo, FifoCluster, Nearest

# Every name here is a valid --policy (platform/config.py and the CLI read this tuple).
POLICIES = ("fifo", "fifo-cluster", "nearest", "auction", "batch-auction", "optimal")
DEFAULT_BATCH_S = 10.0


def make_policy(
    name: str, *, radius_m: float = math.inf, min_eta_s: float = 1.0,
    batch_s: float = DEFAULT_BATCH_S, audit: bool = False,
) -> Policy:
    """A fresh policy by name; ValueError naming the choices for an unknown one."""
    if name == "fifo":
        return Fifo()
    if name == "fifo-cluster":
        return FifoCluster()
    if name == "nearest":
        return Nearest()
    if name == "auction":
        return ClusterAuction(radius_m, min_eta_s)
    if name == "batch-auction":
        return BatchAuction(batch_s, audit)
    if name == "optimal":
        return Optimal(batch_s, audit)
    raise ValueError(f"unknown policy {name!r}; choose one of {', '.join(POLICIES)}")


__all__ = [
    "POLICIES", "Assignment", "BatchAuction", "ClusterAuction", "Fifo", "FifoCluster",
    "Geography", "Idle", "Nearest", "Optimal", "Policy", "Waiting", "make_policy",
]
