"""`eventloop.run`: asyncio.run's contract, plus a bounded teardown and SIGTERM/Ctrl-C that
cancel the main coroutine (its clean-up runs)."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from fleetbid.platform import eventloop


def test_returns_the_result_and_closes_the_loop() -> None:
    seen: list[asyncio.AbstractEventLoop] = []

    async def main() -> int:
        seen.append(asyncio.get_running_loop())
        return 7

    assert eventloop.run(main()) == 7
    assert seen[0].is_closed()


def test_the_signal_dispositions_are_restored_after_a_run() -> None:
    async def main() -> None:
        await asyncio.sleep(0)

    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    eventloop.run(main())
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


def test_an_exception_of_main_propagates() -> None:
    async def main() -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        eventloop.run(main())


def test_leftover_tasks_are_cancelled_and_their_clean_up_runs() -> None:
    cleaned: list[str] = []

    async def background() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cleaned.append("background")

    async def main() -> None:
        asyncio.get_running_loop().create_task(background())
        await asyncio.sleep(0)

    eventloop.run(main())
    assert cleaned == ["background"]


def test_a_task_that_swallows_its_cancellation_is_abandoned_and_logged(
        caplog: pytest.LogCaptureFixture) -> None:
    # Before: asyncio.run waited on it for ever (a worker never reported its error).
    async def stubborn() -> None:
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                continue  # what a reconnect loop that catches everything does

    async def main() -> str:
        asyncio.get_running_loop().create_task(stubborn(), name="stubborn-task")
        await asyncio.sleep(0)
        return "done"

    with caplog.at_level(logging.WARNING, logger="fleetbid.eventloop"):
        assert eventloop.run(main(), teardown_s=0.05) == "done"
    assert any("abandoned" in r.getMessage() and "stubborn" in r.getMessage()
               for r in caplog.records), caplog.text


def test_settle_reports_exactly_the_stubborn_tasks() -> None:
    loop = eventloop.new_event_loop()
    release = asyncio.Event()
    try:
        async def polite() -> None:
            await asyncio.sleep(3600)

        async def stubborn() -> None:
            while not release.is_set():
                try:
                    await release.wait()
                except asyncio.CancelledError:
                    pass

        a = loop.create_task(polite())
        b = loop.create_task(stubborn())
        loop.run_until_complete(asyncio.sleep(0))
        assert eventloop.settle(loop, 0.05) == [b]
        assert a.cancelled()
        release.set()
        loop.run_until_complete(b)
    finally:
        loop.close()


_SCRIPT = textwrap.dedent("""
    import asyncio, sys
    from fleetbid.platform import eventloop

    async def main():
        try:
            print("ready", flush=True)
            await asyncio.Event().wait()
        finally:
            print("cleaned up", flush=True)

    try:
        eventloop.run(main())
    except eventloop.Terminated:
        print("terminated", flush=True)
        sys.exit(3)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        sys.exit(4)
""")


@pytest.mark.parametrize(("sig", "word", "code"), [(signal.SIGTERM, "terminated", 3),
                                                     (signal.SIGINT, "interrupted", 4)])
def test_a_signal_cancels_main_and_its_clean_up_runs(sig: signal.Signals, word: str,
                                                     code: int) -> None:
    proc = subprocess.Popen([sys.executable, "-c", _SCRIPT], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=60)
    assert out.split() == ["cleaned", "up", word]
    assert proc.returncode == code
