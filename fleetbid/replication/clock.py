"""The clock protocol the sans-IO protocol code uses, and its asyncio implementation."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Protocol


class Handle(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    def now(self) -> float: ...

    def call_later(self, delay: float, cb: Callable[[], None]) -> Handle: ...


class AsyncioClock:
    """Monotonic time and timers of the running asyncio loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._loop = loop or asyncio.get_running_loop()

    def now(self) -> float:
        return time.monotonic()

    def call_later(self, delay: float, cb: Callable[[], None]) -> Handle:
        if delay <= 0:
            return self._loop.call_soon(cb)
        return self._loop.call_later(delay, cb)
