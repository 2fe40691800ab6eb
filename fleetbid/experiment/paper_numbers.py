"""The figures the paper reports (issue 5), kept apart from ours so reports can cite them."""

from __future__ import annotations

WAIT_IMPROVEMENT = {"dense": 0.81, "sparse": 0.73}  # auction vs FIFO, average waiting time
DEADHEAD = {"dense": {"fifo": 0.32, "auction": 0.11}, "sparse": {"fifo": 0.14, "auction": 0.08}}
# passengers -> proxies -> average ms to answer a bid
LATENCY_MS = {
    50: {"0": 7304, "1": 5295, "2": 4060},
    100: {"0": 7692, "1": 5966, "2": 4301},
    1000: {"0": 8739, "1": 6022, "2": 4824},
}
