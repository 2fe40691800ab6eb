"""Conversation tracing: every message an agent sends or receives, as JSON lines.

All processes of a run append to one file. Each record is written with a single
`os.write` on an O_APPEND descriptor, so records of different processes never interleave
within a line; records are buffered briefly and flushed in batches to keep the cost low.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import os
import time
from collections.abc import Callable
from typing import Any

from spade.message import Message

from fleetbid.platform import xmpp_agent

FLUSH_EVERY = 256  # records
FLUSH_AFTER_S = 0.2


class TraceWriter:
    def __init__(self, path: str, process: int, sim_now: Callable[[], float]) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.process = process
        self.sim_now = sim_now
        self.buffer: list[str] = []
        self.last_flush = time.monotonic()
        atexit.register(self.close)

    def record(self, direction: str, msg: Message) -> None:
        body: Any
        try:
            body = json.loads(msg.body) if msg.body else None
        except ValueError:
            body = msg.body  # malformed bodies are traced as they came
        entry = {
            "wall": time.time(),
            "sim": round(self.sim_now(), 3),
            "dir": direction,
            "process": self.process,
            "from": str(msg.sender.bare) if str(msg.sender) else "",
            "to": str(msg.to.bare),
            "performative": msg.get_metadata("performative"),
            "protocol": msg.get_metadata("protocol"),
            "conversation": msg.get_metadata("conversation"),
            "type": msg.get_metadata("type"),
            "body": body,
        }
        if not self.buffer:
            # A quiet process must not hold its last records back: a reader (the live map's
            # diagrams) wants a conversation soon after it ends, not at the next message.
            with contextlib.suppress(RuntimeError):  # no event loop: flushed at exit
                asyncio.get_running_loop().call_later(FLUSH_AFTER_S, self.flush)
        self.buffer.append(json.dumps(entry, separators=(",", ":")))
        now = time.monotonic()
        if len(self.buffer) >= FLUSH_EVERY or now - self.last_flush > FLUSH_AFTER_S:
            self.flush()

    def flush(self) -> None:
        self.last_flush = time.monotonic()
        if self.buffer and self.fd >= 0:
            os.write(self.fd, ("\n".join(self.buffer) + "\n").encode())
            self.buffer.clear()

    def close(self) -> None:
        if self.fd >= 0:
            self.flush()
            os.close(self.fd)
            self.fd = -1


def install(path: str, process: int, sim_now: Callable[[], float]) -> TraceWriter:
    """Trace every message sent and received by the agents of this process into `path`."""
    writer = TraceWriter(path, process, sim_now)

    def sent(msg: Message) -> None:
        writer.record("send", msg)

    def received(msg: Message) -> None:
        writer.record("recv", msg)

    xmpp_agent.on_send.append(sent)
    xmpp_agent.on_receive.append(received)
    return writer
