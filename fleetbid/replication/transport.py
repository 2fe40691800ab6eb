"""Transports: the protocol-side interface, real UDP (unicast + IP multicast), fault injection.

Addresses are opaque to the protocol: it learns a member's address from the source of that
member's authenticated datagrams (multicasts go out from the unicast socket, so their source is
the sender's unicast address).
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
from collections.abc import Callable, Hashable
from typing import Protocol

from fleetbid.replication.clock import Clock

log = logging.getLogger(__name__)

Receiver = Callable[[bytes, Hashable], None]
GROUP = "group"
DISCOVERY = "discovery"


class Transport(Protocol):
    def send(self, addr: Hashable, data: bytes) -> None: ...

    def multicast(self, data: bytes, channel: str = GROUP) -> None: ...

    def set_receiver(self, receiver: Receiver) -> None: ...

    def subscribe(self, channel: str) -> None: ...  # start receiving a multicast channel


class _Proto(asyncio.DatagramProtocol):
    def __init__(self, owner: UdpTransport) -> None:
        self.owner = owner

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.owner._receiver(data, addr)

    def error_received(self, exc: Exception) -> None:  # ICMP errors on loopback: peer gone
        self.owner.errors += 1


class UdpTransport:
    """Unicast socket on `interface`:ephemeral plus multicast group sockets joined there."""

    def __init__(self, interface: str, channels: dict[str, tuple[str, int]], ttl: int = 1,
                 rcvbuf: int = 4 * 1024 * 1024) -> None:
        for name, (_, port) in channels.items():
            if not 0 < port < 65536:
                raise ValueError(f"multicast port of channel {name!r} must be set (1..65535)")
        self.interface = interface
        self.channels = channels
        self.ttl = ttl
        self.rcvbuf = rcvbuf
        self.errors = 0
        self._receiver: Receiver = lambda data, addr: None
        self._uni: asyncio.DatagramTransport | None = None
        self._subs: dict[str, asyncio.DatagramTransport] = {}
        self.address: tuple[str, int] | None = None

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.rcvbuf)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF,
                        socket.inet_aton(self.interface))
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, self.ttl)
        sock.bind((self.interface, 0))
        sock.setblocking(False)
        self.address = sock.getsockname()
        self._uni, _ = await loop.create_datagram_endpoint(lambda: _Proto(self), sock=sock)

    async def _open_channel(self, name: str) -> None:
        group, port = self.channels[name]
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if hasattr(socket, "SO_REUSEPORT"):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
        sock.bind((group, port))
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                        socket.inet_aton(group) + socket.inet_aton(self.interface))
        sock.setblocking(False)
        self._subs[name], _ = await loop.create_datagram_endpoint(lambda: _Proto(self),
                                                                  sock=sock)

    def subscribe(self, channel: str) -> None:
        if channel not in self._subs and channel in self.channels:
            # Joining is quick and local; run it as a task so the protocol stays sans-IO.
            asyncio.get_running_loop().create_task(self._open_channel(channel))

    async def subscribe_now(self, channel: str) -> None:
        if channel not in self._subs:
            await self._open_channel(channel)

    def send(self, addr: Hashable, data: bytes) -> None:
        if self._uni is not None:
            self._uni.sendto(data, addr)  # type: ignore[arg-type]

    def multicast(self, data: bytes, channel: str = GROUP) -> None:
        dest = self.channels.get(channel)
        if self._uni is not None and dest is not None:
            self._uni.sendto(data, dest)

    def set_receiver(self, receiver: Receiver) -> None:
        self._receiver = receiver

    def close(self) -> None:
        for t in (self._uni, *self._subs.values()):
            if t is not None:
                t.close()
        self._uni = None
        self._subs.clear()


class FaultyTransport:
    """Wraps a transport and injects seeded loss, duplication, delay and reordering on receipt.

    Faults are applied per received datagram, so one multicast is lost at some receivers and
    not at others, as on a real network.
    """

    def __init__(self, inner: Transport, clock: Clock, *, seed: int, loss: float = 0.0,
                 dup: float = 0.0, reorder: float = 0.0, delay_s: float = 0.0,
                 max_extra_delay_s: float = 0.005) -> None:
        for p in (loss, dup, reorder):
            if not 0.0 <= p <= 1.0:
                raise ValueError("probabilities must be in [0, 1]")
        self.inner = inner
        self.clock = clock
        self.rng = random.Random(seed)
        self.loss, self.dup, self.reorder = loss, dup, reorder
        self.delay_s, self.max_extra_delay_s = delay_s, max_extra_delay_s
        self.injected: dict[str, int] = {"lost": 0, "duplicated": 0, "delayed": 0}
        self._receiver: Receiver = lambda data, addr: None
        inner.set_receiver(self._on_receive)

    def _on_receive(self, data: bytes, addr: Hashable) -> None:
        rng = self.rng
        if rng.random() < self.loss:
            self.injected["lost"] += 1
            return
        copies = 2 if rng.random() < self.dup else 1
        if copies == 2:
            self.injected["duplicated"] += 1
        for _ in range(copies):
            delay = self.delay_s
            if rng.random() < self.reorder:
                delay += rng.random() * self.max_extra_delay_s
            if delay > 0:
                self.injected["delayed"] += 1
                self.clock.call_later(delay, lambda d=data, a=addr: self._receiver(d, a))
            else:
                self._receiver(data, addr)

    def send(self, addr: Hashable, data: bytes) -> None:
        self.inner.send(addr, data)

    def multicast(self, data: bytes, channel: str = GROUP) -> None:
        self.inner.multicast(data, channel)

    def set_receiver(self, receiver: Receiver) -> None:
        self._receiver = receiver

    def subscribe(self, channel: str) -> None:
        self.inner.subscribe(channel)

    def __getattr__(self, name: str) -> object:  # open(), close(), address of the inner one
        return getattr(self.inner, name)
