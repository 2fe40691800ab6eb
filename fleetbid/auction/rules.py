"""The auction's rules: the equilibrium bid, how bids rank, how vehicles split into groups."""

from __future__ import annotations

import math
from collections.abc import Sequence


def equilibrium_bid(n: int, travel_time_s: float, min_eta_s: float = 1.0) -> float:
    """First-price sealed-bid equilibrium of the procurement auction: b = (n-1)/n * 1/T.

    T is floored at `min_eta_s` so a vehicle already at the pickup bids a finite amount.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if not travel_time_s >= 0 or not math.isfinite(travel_time_s):
        raise ValueError(f"travel time must be finite and >= 0, got {travel_time_s}")
    return (n - 1) / n / max(travel_time_s, min_eta_s)


def rank_key(bid: float, eta_s: float, vehicle: str) -> tuple[float, float, str]:
    """Sort key, smallest first: higher bid, then shorter ETA, then JID (a total order, so
    every proxy arrangement picks the same winner; with n = 1 all bids are 0 and ETA decides)."""
    return (-bid, eta_s, vehicle)


def group_count(admitted: int, proxies_setting: int | None, pool: int) -> int:
    """How many proxy groups an auction with `admitted` bidders uses.

    None (auto): about √n groups of about √n; 0: no proxy; K: K groups. Never more groups
    than bidders or than proxies launched.
    """
    if admitted <= 0 or proxies_setting == 0 or pool <= 0:
        return 0
    wanted = max(1, round(math.sqrt(admitted))) if proxies_setting is None else proxies_setting
    return max(1, min(wanted, admitted, pool))


def split_groups(vehicles: Sequence[str], groups: int) -> list[list[str]]:
    """Disjoint, balanced groups in a deterministic order (round-robin over sorted JIDs)."""
    ordered = sorted(vehicles)
    buckets: list[list[str]] = [[] for _ in range(groups)]
    for i, vehicle in enumerate(ordered):
        buckets[i % groups].append(vehicle)
    return [b for b in buckets if b]
