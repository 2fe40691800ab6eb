"""What became of one ride request: the one typed record every reader of outcomes shares.

The passenger fills it in; worker processes send it to the launcher over their pipe; the
run summary, the benchmarks, the invariant check and `fleetbid request` read its fields.
"""

from __future__ import annotations

import msgspec


class RideOutcome(msgspec.Struct):
    request_id: str  # also the auction id
    source: str
    destination: str
    requested_at: float  # simulated seconds
    served: bool = False
    vehicle: str | None = None
    eta_s: float | None = None
    price: float | None = None
    bidders: int = 0
    reason: str = ""
    latency_ms: float | None = None  # wall ms, request sent -> outcome received
    picked_up_at: float | None = None
    wait_s: float | None = None  # simulated seconds, request -> pickup
    assignments: int = 0  # distinct vehicles we were told of (more than 1 is a bug)

    def to_json(self) -> dict[str, object]:
        """Plain data for JSON output (`auction_id` spelled out for readers of the CLI)."""
        return {**msgspec.to_builtins(self), "auction_id": self.request_id}
