"""Open group: a non-member submits through a member and learns the agreed outcome.

The client listens to the group's heartbeats to learn the members and their addresses, sends
its request to the leader and retries through another member if no result comes in time.
Members remember requests per client in the replicated state, so a retried request that was
already ordered is not applied twice; its original outcome is returned.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from collections.abc import Callable

import msgspec

from fleetbid.replication import messages as M
from fleetbid.replication.api import Delivery, GroupConfig
from fleetbid.replication.clock import AsyncioClock, Clock, Handle
from fleetbid.replication.reliable import Endpoint
from fleetbid.replication.transport import GROUP, Transport
from fleetbid.replication.wire import Kind

_enc = msgspec.msgpack.Encoder()
_hb = msgspec.msgpack.Decoder(M.Heartbeat)
_res = msgspec.msgpack.Decoder(M.ClientResult)


class ClientCore:
    """Sans-IO client."""

    def __init__(self, config: GroupConfig, client_id: int, transport: Transport, clock: Clock,
                 incarnation: int = 0) -> None:
        self.config = config
        self.id = client_id
        self.clock = clock
        self.counters: Counter[str] = Counter()
        self.ep = Endpoint(config, client_id, transport, clock, incarnation, self._on_message,
                           self.counters)
        transport.subscribe(GROUP)
        self.members: tuple[int, ...] = ()
        self.view_id = 0
        self._reqs = itertools.count(1)
        self._pending: dict[int, tuple[bytes, Callable[[Delivery], None], int, Handle]] = {}

    def submit(self, payload: bytes, callback: Callable[[Delivery], None]) -> int:
        req = next(self._reqs)
        self._send(req, payload, callback, 0)
        return req

    def _send(self, req: int, payload: bytes, cb: Callable[[Delivery], None],
              attempt: int) -> None:
        targets = list(reversed(self.members))  # the leader (highest id) first
        if targets:
            self.ep.send((targets[attempt % len(targets)],), Kind.CLIENT_SUBMIT,
                         _enc.encode(M.ClientSubmit(req, payload)))
        timer = self.clock.call_later(self.config.client_timeout_s if targets
                                      else self.config.heartbeat_s,
                                      lambda: self._retry(req))
        self._pending[req] = (payload, cb, attempt, timer)

    def _retry(self, req: int) -> None:
        p = self._pending.get(req)
        if p is not None:
            self.counters["client_retries"] += 1
            self._send(req, p[0], p[1], p[2] + 1)

    def _on_message(self, sender: int, kind: int, body: bytes) -> None:
        try:
            if kind == Kind.HEARTBEAT:
                hb = _hb.decode(body)
                if hb.view_id >= self.view_id:
                    self.view_id, self.members = hb.view_id, tuple(sorted(hb.members))
            elif kind == Kind.CLIENT_RESULT:
                r = _res.decode(body)
                p = self._pending.pop(r.req, None)
                if p is not None:
                    p[3].cancel()
                    p[1](Delivery(r.seq, r.sender, r.mid, p[0]))
            else:
                self.counters["dropped_unexpected"] += 1
        except (msgspec.DecodeError, msgspec.ValidationError):
            self.counters["dropped_bad_body"] += 1

    def close(self) -> None:
        for p in self._pending.values():
            p[3].cancel()
        self.ep.close()


class GroupClient:
    """asyncio client on real UDP."""

    def __init__(self, config: GroupConfig, client_id: int) -> None:
        self.config = config
        self.client_id = client_id
        self.core: ClientCore | None = None
        self._udp = None

    async def start(self, wait_for_view_s: float = 5.0) -> None:
        from fleetbid.replication.node import open_transport

        clock = AsyncioClock()
        self._udp, transport = await open_transport(self.config, None, clock)
        await self._udp.subscribe_now(GROUP)
        self.core = ClientCore(self.config, self.client_id, transport, clock,  # type: ignore[arg-type]
                               time.time_ns() // 1000)
        deadline = time.monotonic() + wait_for_view_s
        while not self.core.members and time.monotonic() < deadline:
            await asyncio.sleep(self.config.heartbeat_s / 2)

    def submit(self, payload: bytes) -> asyncio.Future[Delivery]:
        if self.core is None:
            raise RuntimeError("start() the client first")
        fut: asyncio.Future[Delivery] = asyncio.get_running_loop().create_future()
        self.core.submit(payload, lambda d: fut.done() or fut.set_result(d))
        return fut

    async def stop(self) -> None:
        if self.core is not None:
            self.core.close()
        if self._udp is not None:
            self._udp.close()
