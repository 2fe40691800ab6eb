"""Event-loop selection shared by every fleetbid process.

uvloop is required in practice: under the stock asyncio loop ~30 % of 20 simultaneous
XMPP logins hung in the TLS handshake, under uvloop 200 succeeded.  asyncio remains the
fallback so the code still imports where uvloop is unavailable (e.g. Windows).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

try:
    import uvloop as _uvloop
except ImportError:  # pragma: no cover - uvloop is a declared dependency on POSIX
    _uvloop = None


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A fresh loop: uvloop when importable, else the stdlib loop."""
    if _uvloop is not None:
        return _uvloop.new_event_loop()
    return asyncio.new_event_loop()


def install_uvloop() -> bool:
    """Make uvloop the process-wide policy (idempotent); return True if uvloop is in use.

    Needed as well as `new_event_loop` because spade's Container creates its loop through
    the policy when no loop is running.
    """
    if _uvloop is None:
        return False
    if not isinstance(asyncio.get_event_loop_policy(), _uvloop.EventLoopPolicy):
        asyncio.set_event_loop_policy(_uvloop.EventLoopPolicy())
    return True


class Terminated(Exception):
    """The process got SIGTERM; the main coroutine was cancelled and cleaned up."""


def run(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run` on a `new_event_loop()` loop; SIGTERM cancels `main` like Ctrl-C does,
    so its `finally`/`async with` clean-up runs (no orphaned processes)."""
    install_uvloop()
    terminated = False

    async def guarded() -> T:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None

        def on_term() -> None:
            nonlocal terminated
            terminated = True
            task.cancel()

        # Not available off the main thread or on Windows: then SIGTERM keeps its default.
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signal.SIGTERM, on_term)
        try:
            return await main
        finally:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(signal.SIGTERM)

    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        try:
            return runner.run(guarded())
        except asyncio.CancelledError:
            if terminated:
                raise Terminated() from None
            raise
