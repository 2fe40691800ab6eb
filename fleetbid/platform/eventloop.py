"""Event-loop selection shared by every fleetbid process.

uvloop is required in practice: under the stock asyncio loop ~30 % of 20 simultaneous
XMPP logins hung in the TLS handshake, under uvloop 200 succeeded.  asyncio remains the
fallback so the code still imports where uvloop is unavailable (e.g. Windows).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import signal
from collections.abc import Awaitable, Callable, Coroutine
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


TEARDOWN_S = 10.0  # how long the tasks left over after `main` get to finish cancelling

log = logging.getLogger("fleetbid.eventloop")

# What the loop raises where it cannot handle signals (Windows: NotImplementedError; off the
# main thread: RuntimeError or ValueError): there the signal keeps its default disposition.
_NO_SIGNAL_HANDLERS = (NotImplementedError, RuntimeError, ValueError)


def run(main: Coroutine[Any, Any, T], teardown_s: float = TEARDOWN_S) -> T:
    """Run `main` on a `new_event_loop()` loop, like `asyncio.run`, with two differences.

    SIGTERM cancels `main` like Ctrl-C does, so its `finally`/`async with` clean-up runs (no
    orphaned processes). And the tasks `main` leaves behind get `teardown_s` to finish
    cancelling, not for ever: `asyncio.run` waits on each, so one that swallows its
    cancellation (slixmpp's connect loop after a server crashed a login) held a worker in
    its teardown and its error never reached the launcher. A task still running then is
    logged with its stack and abandoned with the loop.
    """
    install_uvloop()
    loop = new_event_loop()
    asyncio.set_event_loop(loop)  # spade's Container looks the loop up through the policy
    signalled: list[str] = []

    async def guarded() -> T:
        task = asyncio.current_task()
        assert task is not None

        def stop(name: str) -> None:
            if signalled and name == "SIGINT":  # a second Ctrl-C: stop waiting for clean-up
                raise KeyboardInterrupt()
            signalled.append(name)
            task.cancel()

        # Installed and removed while the loop runs: uvloop restores the default disposition
        # only then (removed after the loop stopped, SIGTERM kept the closed loop's handler).
        handlers = _install_signal_handlers(loop, stop)
        try:
            return await main
        finally:
            _remove_signal_handlers(loop, handlers)

    try:
        return loop.run_until_complete(guarded())
    except asyncio.CancelledError:
        if "SIGTERM" in signalled:
            raise Terminated() from None
        if "SIGINT" in signalled:
            raise KeyboardInterrupt() from None
        raise
    finally:
        try:
            settle(loop, teardown_s)
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(_bounded(loop.shutdown_default_executor(), teardown_s))
        finally:
            asyncio.set_event_loop(None)
            loop.close()


def settle(loop: asyncio.AbstractEventLoop, timeout_s: float) -> list[asyncio.Task[Any]]:
    """Cancel every task left on `loop`; wait at most `timeout_s` for them to end. Returns
    (and logs, with their stacks) the ones that would not."""
    pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for leftover in pending:
        leftover.cancel()
    if pending:
        loop.run_until_complete(asyncio.wait(pending, timeout=timeout_s))
    stubborn = [t for t in pending if not t.done()]
    for leftover in stubborn:
        stack = io.StringIO()
        leftover.print_stack(limit=8, file=stack)
        log.warning("task still running %.0f s after it was cancelled; abandoned: %s",
                    timeout_s, stack.getvalue().strip())
    for done in pending:
        if done.done() and not done.cancelled() and done.exception() is not None:
            loop.call_exception_handler({
                "message": "unhandled exception during shutdown",
                "exception": done.exception(), "task": done})
    return stubborn


async def _bounded(aw: Awaitable[None], timeout_s: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(aw, timeout_s)


def _install_signal_handlers(loop: asyncio.AbstractEventLoop,
                             stop: Callable[[str], None]) -> list[signal.Signals]:
    """SIGTERM always; SIGINT only where Ctrl-C still has Python's default handler (a
    worker process ignores it: the launcher decides how to stop it)."""
    wanted = [signal.SIGTERM]
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        wanted.append(signal.SIGINT)
    installed = []
    for sig in wanted:
        with contextlib.suppress(*_NO_SIGNAL_HANDLERS):
            loop.add_signal_handler(sig, stop, sig.name)
            installed.append(sig)
    return installed


def _remove_signal_handlers(loop: asyncio.AbstractEventLoop,
                            installed: list[signal.Signals]) -> None:
    for sig in installed:
        with contextlib.suppress(*_NO_SIGNAL_HANDLERS):
            loop.remove_signal_handler(sig)
