"""The simulated clock every process shares.

All processes of a run read the same wall clock (time.time on one machine), so a shared
epoch and speed are all they need to agree on simulated time: no clock messages at all.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class SimClock:
    epoch: float  # wall time (time.time()) at simulated second 0
    speed: float  # simulated seconds per wall second

    def __post_init__(self) -> None:
        if not self.speed > 0:
            raise ValueError(f"speed must be > 0, got {self.speed}")

    @classmethod
    def starting_now(cls, speed: float) -> SimClock:
        return cls(epoch=time.time(), speed=speed)

    def now(self) -> float:
        """Simulated seconds since the epoch."""
        return (time.time() - self.epoch) * self.speed

    def wall_delay(self, sim_seconds: float) -> float:
        """Wall seconds that `sim_seconds` of simulated time take."""
        return max(0.0, sim_seconds) / self.speed

    def until(self, sim_time: float) -> float:
        """Wall seconds from now until simulated time `sim_time` (0 if past)."""
        return self.wall_delay(sim_time - self.now())

    async def sleep(self, sim_seconds: float) -> None:
        await asyncio.sleep(self.wall_delay(sim_seconds))
