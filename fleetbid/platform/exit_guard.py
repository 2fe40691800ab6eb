"""A bounded exit: once a command's work is done, the process ends within a grace period.

After a command has printed its result, the interpreter still joins non-daemon threads,
runs atexit handlers (multiprocessing's joins every child process it started) and flushes
its streams; any of these can wait for ever on a thread, a child or a pipe nobody reads
(docs/soak.md: a 10-minute soak had not exited a minute after its report). `arm` starts a
daemon watchdog: if the process is still alive `grace_s` later, it writes why to stderr
(every live thread's stack, every live child process), kills those children and ends the
process with the command's own exit code. A daemon thread keeps running while the main
thread waits in those joins, so the watchdog fires exactly where a hang can happen.
"""

from __future__ import annotations

import faulthandler
import multiprocessing
import os
import sys
import threading
import time
from typing import TextIO

EXIT_GRACE_S = 30.0  # generous: a normal exit after the report takes about a second


def arm(code: int, grace_s: float = EXIT_GRACE_S, stream: TextIO | None = None
        ) -> threading.Thread:
    """Make sure this process exits with `code` within `grace_s` seconds from now."""

    def watch() -> None:
        time.sleep(grace_s)
        out = stream or sys.stderr
        report_stragglers(out, grace_s)
        kill_children(out)
        out.flush()
        os._exit(code)

    thread = threading.Thread(target=watch, name="fleetbid-exit-guard", daemon=True)
    thread.start()
    return thread


def report_stragglers(out: TextIO, grace_s: float) -> None:
    """What still holds the process: threads (with stacks) and child processes."""
    threads = [t for t in threading.enumerate() if t is not threading.current_thread()]
    names = ", ".join(f"{t.name}{' (daemon)' if t.daemon else ''}" for t in threads)
    print(f"fleetbid: still running {grace_s:g} s after the command finished; "
          f"threads: {names or 'none'}; stacks follow, then the process is ended", file=out,
          flush=True)
    try:
        faulthandler.dump_traceback(file=out, all_threads=True)
    except (ValueError, OSError, AttributeError):  # a stream without a file descriptor
        for thread in threads:
            print(f"  thread {thread.name}", file=out)


def kill_children(out: TextIO) -> None:
    """SIGKILL the child processes multiprocessing still knows, naming each."""
    try:
        children = multiprocessing.active_children()
    except Exception:  # the main thread may be reaping the same children right now
        children = []
    for child in children:
        print(f"fleetbid: killing child process {child.name} (pid {child.pid}), still alive "
              "after the command finished", file=out, flush=True)
        child.kill()
