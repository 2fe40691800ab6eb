"""A seeded in-memory network with a virtual clock: time jumps to the next event.

The same protocol code as the UDP runtime runs on it. Given a seed, a run is deterministic.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from fleetbid.replication.transport import GROUP, Receiver


class _Timer:
    __slots__ = ("cancelled",)

    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class VirtualClock:
    def __init__(self) -> None:
        self._now = 0.0
        self._heap: list[tuple[float, int, _Timer, Callable[[], None]]] = []
        self._n = 0

    def now(self) -> float:
        return self._now

    def call_later(self, delay: float, cb: Callable[[], None]) -> _Timer:
        t = _Timer()
        self._n += 1
        heapq.heappush(self._heap, (self._now + max(0.0, delay), self._n, t, cb))
        return t

    def run_until(self, t_end: float, stop: Callable[[], bool] | None = None) -> None:
        """Runs events up to time t_end (or until stop() is true after an event)."""
        heap = self._heap
        while heap and heap[0][0] <= t_end:
            when, _, timer, cb = heapq.heappop(heap)
            if timer.cancelled:
                continue
            self._now = when
            cb()
            if stop is not None and stop():
                return
        self._now = max(self._now, t_end)

    def advance(self, dt: float) -> None:
        self.run_until(self._now + dt)


class NodeClock:
    """A node's view of the virtual clock: its timers stop firing once the node crashed."""

    def __init__(self, clock: VirtualClock, node: SimNode) -> None:
        self._clock = clock
        self._node = node

    def now(self) -> float:
        return self._clock.now()

    def call_later(self, delay: float, cb: Callable[[], None]) -> _Timer:
        node = self._node
        clock = self._clock

        def fire() -> None:
            if not node.alive:
                return
            if node.stalled_until > clock.now():
                # A stalled process runs nothing; the timer fires late, when it resumes.
                clock.call_later(node.stalled_until - clock.now(), fire)
                return
            cb()
        return self._clock.call_later(delay, fire)


@dataclass
class Faults:
    loss: float = 0.0
    dup: float = 0.0
    reorder: float = 0.0  # probability of an extra random delay (reorders datagrams)
    delay_s: float = 0.0002  # base one-way delay
    max_extra_delay_s: float = 0.005


class SimNode:
    """One endpoint on the SimNetwork; implements the Transport protocol."""

    def __init__(self, net: SimNetwork, addr: Hashable) -> None:
        self.net = net
        self.addr = addr
        self.alive = True
        self.stalled_until = 0.0  # virtual time until which the process runs nothing
        self.channels: set[str] = set()
        self._receiver: Receiver = lambda data, src: None
        self.clock = NodeClock(net.clock, self)

    def send(self, addr: Hashable, data: bytes) -> None:
        if self.alive:
            self.net._send(self.addr, addr, data)

    def multicast(self, data: bytes, channel: str = GROUP) -> None:
        if self.alive:
            for node in list(self.net.nodes.values()):
                if channel in node.channels:
                    self.net._send(self.addr, node.addr, data)

    def set_receiver(self, receiver: Receiver) -> None:
        self._receiver = receiver

    def subscribe(self, channel: str) -> None:
        self.channels.add(channel)


class SimNetwork:
    def __init__(self, seed: int, faults: Faults | None = None) -> None:
        self.clock = VirtualClock()
        self.rng = random.Random(seed)
        self.faults = faults or Faults()
        self.nodes: dict[Hashable, SimNode] = {}
        self.datagrams = 0
        self.blocked: set[tuple[Hashable, Hashable]] = set()  # (src, dst) links that drop all

    def node(self, addr: Hashable) -> SimNode:
        if addr in self.nodes:
            raise ValueError(f"address {addr!r} already in use")
        n = SimNode(self, addr)
        self.nodes[addr] = n
        return n

    def crash(self, addr: Hashable) -> None:
        self.nodes[addr].alive = False

    def stall(self, addr: Hashable, seconds: float) -> None:
        """The process stops handling timers and datagrams for `seconds` (a GC pause, a busy
        core); what arrived meanwhile is handled when it resumes, in arrival order."""
        node = self.nodes[addr]
        node.stalled_until = max(node.stalled_until, self.clock.now() + seconds)

    def stalled(self, addr: Hashable) -> bool:
        return self.nodes[addr].stalled_until > self.clock.now()

    def _send(self, src: Hashable, dst: Hashable, data: bytes) -> None:
        self.datagrams += 1
        f, rng = self.faults, self.rng
        if (src, dst) in self.blocked or rng.random() < f.loss:
            return
        copies = 2 if rng.random() < f.dup else 1
        for _ in range(copies):
            delay = f.delay_s
            if rng.random() < f.reorder:
                delay += rng.random() * f.max_extra_delay_s
            self.clock.call_later(delay, lambda d=data: self._deliver(src, dst, d))

    def _deliver(self, src: Hashable, dst: Hashable, data: bytes) -> None:
        node = self.nodes.get(dst)
        if node is None or not node.alive:
            return
        now = self.clock.now()
        if node.stalled_until > now:  # queued in the socket buffer until the process resumes
            self.clock.call_later(node.stalled_until - now, lambda: self._deliver(src, dst, data))
            return
        node._receiver(data, src)
