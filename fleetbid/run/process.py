"""Entry point of an agent process: a plain worker, or a replica host of the managers."""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import traceback
from collections.abc import Coroutine
from multiprocessing.connection import Connection
from typing import Any

from fleetbid.core.config import RunConfig
from fleetbid.core.directory import Directory
from fleetbid.platform import eventloop
from fleetbid.platform.announce import AnnounceGroup
from fleetbid.platform.xmpp_server import XmppEndpoint
from fleetbid.run.population import AgentSpec
from fleetbid.run.replica_host import ReplicaHost
from fleetbid.run.worker import Worker


def worker_main(
    index: int, config: RunConfig, endpoint: XmppEndpoint, specs: list[AgentSpec],
    directory: Directory, conn: Connection, log_level: str, replica: Any = None,
    announce: AnnounceGroup | None = None,
) -> None:
    """Process entry point (multiprocessing, spawn start method)."""
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr,
        format=f"%(asctime)s p{index} %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("fleetbid").setLevel(log_level)
    # Ctrl-C reaches the whole process group; the launcher decides how to stop us.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    worker: Worker
    if replica is not None:  # a replica host of the AuctionManagers (see replica_host.py)
        worker = ReplicaHost(index, config, endpoint, specs, directory, conn, announce,
                             settings=replica)
    else:
        worker = Worker(index, config, endpoint, specs, directory, conn, announce)
    eventloop.run(report_failure(worker.main(), conn))


async def report_failure(main: Coroutine[Any, Any, None], conn: Connection) -> None:
    """Run `main`; if it fails, tell the launcher at once, before the loop's teardown (which
    may take a while: the launcher must not wait for it to learn why we failed)."""
    try:
        await main
    except Exception:
        with contextlib.suppress(Exception):
            conn.send(("error", traceback.format_exc()))
        raise
