"""The one dispatch-policy interface shared by the live MainManager and the simulator.

A policy sees the waiting requests (in arrival order) and the idle vehicles, and returns
which vehicle serves which request now. It never mutates its inputs and keeps no state
between calls, so the live agents and the simulator get the same answer for the same
situation.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Protocol

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class Waiting:
    """A request not yet given a vehicle."""

    request_id: str
    pickup: str
    requested_at: float  # simulated seconds
    cluster: int  # the pickup's cluster


@dataclass(frozen=True)
class Idle:
    """An idle vehicle: where it waits and since when (simulated seconds)."""

    vehicle: str
    node: str
    since: float


@dataclass(frozen=True)
class Assignment:
    request_id: str
    vehicle: str


class Geography(Protocol):
    """What a policy may ask about the world."""

    def times(self, origins: Sequence[str], targets: Sequence[str]) -> NDArray[np.float64]:
        """Shortest travel times, seconds, shape (len(origins), len(targets))."""
        ...

    def cluster_of(self, node: str) -> int: ...

    def neighbours(self, cluster: int) -> tuple[int, ...]:
        """Clusters bordering this one, nearest first (maps/clusters.py; spill-over)."""
        ...

    def distance_m(self, a: str, b: str) -> float:
        """Straight-line distance in metres."""
        ...


class Policy(ABC):
    """A dispatch rule. `batch_s == 0`: decide at every event (arrival, vehicle freed);
    `batch_s > 0`: decide only at the ticks k * batch_s of simulated time."""

    name: ClassVar[str]
    batch_s: float = 0.0

    @abstractmethod
    def assign(
        self, waiting: Sequence[Waiting], idle: Sequence[Idle], geo: Geography
    ) -> list[Assignment]:
        """Assignments to make now; each request and each vehicle at most once."""
