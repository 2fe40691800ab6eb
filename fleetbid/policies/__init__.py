"""Dispatch policies behind one interface (base.Policy), used by the live MainManager and by
the simulator alike."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from fleetbid.policies.auction import ClusterAuction
from fleetbid.policies.base import Assignment, Geography, Idle, Policy, Waiting
from fleetbid.policies.batch import DEFAULT_K, BatchAuction, Optimal
from fleetbid.policies.greedy import Fifo, FifoCluster, Nearest

DEFAULT_BATCH_S = 10.0


@dataclass(frozen=True)
class PolicyOptions:
    radius_m: float = math.inf
    min_eta_s: float = 1.0
    batch_s: float = DEFAULT_BATCH_S
    audit: bool = False
    batch_k: int = DEFAULT_K


# The one list of policies: every key is a valid --policy (core/config.py and the CLI read it).
FACTORIES: dict[str, Callable[[PolicyOptions], Policy]] = {
    "fifo": lambda o: Fifo(),
    "fifo-cluster": lambda o: FifoCluster(),
    "nearest": lambda o: Nearest(),
    "auction": lambda o: ClusterAuction(o.radius_m, o.min_eta_s),
    "batch-auction": lambda o: BatchAuction(o.batch_s, o.audit, o.batch_k),
    "optimal": lambda o: Optimal(o.batch_s, o.audit),
}
POLICIES = tuple(FACTORIES)


def make_policy(
    name: str, *, radius_m: float = math.inf, min_eta_s: float = 1.0,
    batch_s: float = DEFAULT_BATCH_S, audit: bool = False, batch_k: int = DEFAULT_K,
) -> Policy:
    """A fresh policy by name; ValueError naming the choices for an unknown one."""
    factory = FACTORIES.get(name)
    if factory is None:
        raise ValueError(f"unknown policy {name!r}; choose one of {', '.join(POLICIES)}")
    return factory(PolicyOptions(radius_m, min_eta_s, batch_s, audit, batch_k))


__all__ = [
    "POLICIES", "Assignment", "BatchAuction", "ClusterAuction", "Fifo", "FifoCluster",
    "Geography", "Idle", "Nearest", "Optimal", "Policy", "Waiting", "make_policy",
]
