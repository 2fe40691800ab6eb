"""Read a multiprocessing pipe from asyncio without making it non-blocking.

`loop.add_reader` on a Connection's descriptor lets uvloop switch it to non-blocking mode,
after which a burst of `send`s fails with EAGAIN. A daemon thread doing blocking `recv`s
and handing each item to the loop keeps both ends blocking, as multiprocessing expects.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

EOF_MARK = ("eof", None)


def read_in_thread(
    conn: Connection, loop: asyncio.AbstractEventLoop, deliver: Callable[[Any], None]
) -> threading.Thread:
    """Call `deliver(item)` on `loop` for each item received; `EOF_MARK` once at the end."""

    def pump() -> None:
        while True:
            try:
                item = conn.recv()
            except Exception:  # EOF, or the connection closed under us at shutdown
                item = EOF_MARK
            try:
                loop.call_soon_threadsafe(deliver, item)
            except RuntimeError:  # loop closed: nobody is listening any more
                return
            if item is EOF_MARK:
                return

    thread = threading.Thread(target=pump, name="fleetbid-pipe", daemon=True)
    thread.start()
    return thread
