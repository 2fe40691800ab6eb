"""Bertsekas' ε-auction for the assignment problem (the object of study, so written here).

Bidders (vehicles) raise the prices of the objects (passengers) they value most: a bidder
takes its best object j at value v1 = a_ij - p_j and raises p_j by v1 - v2 + ε, where v2 is
its second-best value; the previous owner is outbid and bids again. With integer benefits
and m·ε < 1 (m = assigned pairs) the result is an optimal assignment (Bertsekas 1988):
ε-complementary slackness bounds the loss by m·ε.

- `bidders <= objects`: one forward phase from zero prices. Objects never bid on keep price
  0, the minimum, which is what makes the asymmetric result optimal (no ε-scaling, which
  would leave unassigned objects with stale positive prices).
- `bidders > objects`: the objects are padded with dummies worth 0 to everyone, making the
  problem square, and ε-scaling (ε divided by SCALE each phase) keeps price wars short.
"""

from __future__ import annotations

from collections import deque

import numpy as np
from numpy.typing import NDArray

SCALE = 5.0


def _forward(
    benefit: NDArray[np.float64], prices: NDArray[np.float64], eps: float
) -> NDArray[np.int64]:
    """One forward-auction phase until every bidder holds an object; updates `prices`."""
    m, n = benefit.shape
    owner = np.full(n, -1, dtype=np.int64)
    held = np.full(m, -1, dtype=np.int64)
    queue = deque(range(m))
    while queue:
        i = queue.popleft()
        values = benefit[i] - prices
        j = int(np.argmax(values))
        best = values[j]
        if n > 1:
            values[j] = -np.inf
            second = float(values.max())
        else:
            second = best - eps  # a lone object: the minimal raise
        prices[j] += best - second + eps
        previous = owner[j]
        if previous >= 0:
            held[previous] = -1
            queue.append(int(previous))
        owner[j] = i
        held[i] = j
    return held


def eps_auction(benefit: NDArray[np.float64], eps: float) -> NDArray[np.int64]:
    """Maximise total benefit; returns the object of each bidder (row) or -1 (more bidders
    than objects: the bidder got a dummy). Optimal for integer benefits when eps < 1/rows."""
    benefit = np.asarray(benefit, dtype=np.float64)
    if benefit.ndim != 2:
        raise ValueError(f"benefit must be a 2-D matrix, got shape {benefit.shape}")
    if not np.all(np.isfinite(benefit)):
        raise ValueError("benefits must be finite")
    if not eps > 0:
        raise ValueError(f"eps must be > 0, got {eps}")
    m, n = benefit.shape
    if m == 0 or n == 0:
        return np.full(m, -1, dtype=np.int64)
    if m <= n:
        return _forward(benefit, np.zeros(n), eps)
    square = np.zeros((m, m))
    square[:, :n] = benefit
    prices = np.zeros(m)
    spread = float(square.max() - square.min())
    phase_eps = max(spread / SCALE, eps)
    while True:
        held = _forward(square, prices, phase_eps)
        if phase_eps <= eps:
            break
        phase_eps = max(phase_eps / SCALE, eps)
    return np.where(held < n, held, -1)


def min_cost_assignment(cost: NDArray[np.int64]) -> list[tuple[int, int]]:
    """Minimum total cost matching of size min(rows, cols) on an integer cost matrix, by
    ε-auction with rows as bidders: (row, col) pairs."""
    cost = np.asarray(cost)
    if cost.size and not np.issubdtype(cost.dtype, np.integer):
        raise ValueError("costs must be integers (scale and round them first)")
    rows = cost.shape[0]
    eps = 1.0 / (rows + 1)  # rows pairs (padded square when rows > cols): loss < 1
    held = eps_auction(-cost.astype(np.float64), eps)
    return [(i, int(held[i])) for i in range(rows) if held[i] >= 0]
