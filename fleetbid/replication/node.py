"""asyncio runtime: a replica on real UDP (unicast + IP multicast), one per process per group."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass

from fleetbid.replication.api import (
    Delivery,
    GroupConfig,
    GroupStatus,
    ReplicationError,
    StateMachine,
    View,
)
from fleetbid.replication.clock import AsyncioClock
from fleetbid.replication.replica import Replica
from fleetbid.replication.transport import DISCOVERY, GROUP, FaultyTransport, UdpTransport


@dataclass(frozen=True)
class FaultSpec:
    """Seeded faults injected on receipt (the kernel here has no netem)."""

    seed: int
    loss: float = 0.0
    dup: float = 0.0
    reorder: float = 0.0
    delay_s: float = 0.0
    max_extra_delay_s: float = 0.005


def channels_of(config: GroupConfig) -> dict[str, tuple[str, int]]:
    if not config.port:
        raise ValueError("GroupConfig.port must be set for the UDP runtime")
    ch = {GROUP: (config.multicast_addr, config.port)}
    if config.discovery_port:
        ch[DISCOVERY] = (config.discovery_addr, config.discovery_port)
    return ch


async def open_transport(config: GroupConfig, faults: FaultSpec | None,
                         clock: AsyncioClock) -> tuple[UdpTransport, object]:
    udp = UdpTransport(config.interface, channels_of(config), config.ttl)
    await udp.open()
    if faults is None:
        return udp, udp
    return udp, FaultyTransport(udp, clock, seed=faults.seed, loss=faults.loss, dup=faults.dup,
                                reorder=faults.reorder, delay_s=faults.delay_s,
                                max_extra_delay_s=faults.max_extra_delay_s)


class ReplicaNode:
    def __init__(self, config: GroupConfig, member_id: int, machine: StateMachine, *,
                 initial_members: tuple[int, ...] = (), standby: bool = False,
                 faults: FaultSpec | None = None) -> None:
        if not standby and member_id not in initial_members:
            raise ValueError("a non-standby replica must be one of initial_members")
        channels_of(config)  # validates the ports early
        self.config = config
        self._member_id = member_id
        self.machine = machine
        self.initial_members = tuple(initial_members)
        self.standby = standby
        self.faults = faults
        self.core: Replica | None = None
        self._udp: UdpTransport | None = None

    async def start(self) -> None:
        clock = AsyncioClock()
        self._udp, transport = await open_transport(self.config, self.faults, clock)
        await self._udp.subscribe_now(DISCOVERY if self.standby else GROUP)
        self.core = Replica(self.config, self._member_id, self.machine, transport,  # type: ignore[arg-type]
                            clock, initial_members=self.initial_members,
                            standby=self.standby, incarnation=time.time_ns() // 1000)
        self.core.lost_listeners.append(self._fail_lost)
        self._futures: dict[int, asyncio.Future[Delivery]] = {}
        self.core.start()
        if not self.standby:
            # View 1 is installed at once; wait until every initial member has been heard so
            # the first messages do not wait on retransmissions to unknown addresses.
            others = set(self.initial_members) - {self._member_id}
            deadline = time.monotonic() + self.config.startup_grace_s
            while time.monotonic() < deadline and not others <= set(self.core.fd.last):
                await asyncio.sleep(self.config.heartbeat_s / 2)

    def _fail_lost(self, mids: list[int]) -> None:
        for mid in mids:
            fut = self._futures.pop(mid, None)
            if fut is not None and not fut.done():
                fut.set_exception(ReplicationError("excluded from the group before delivery"))

    async def stop(self) -> None:
        if self.core is not None:
            self.core.stop()
            for fut in self._futures.values():
                fut.cancel()
            self._futures.clear()
        if self._udp is not None:
            self._udp.close()

    def submit(self, payload: bytes) -> asyncio.Future[Delivery]:
        """Submits into the total order; the future resolves when it is delivered here."""
        fut: asyncio.Future[Delivery] = asyncio.get_running_loop().create_future()
        if self.core is None:
            raise RuntimeError("start() the node first")

        def done(d: Delivery) -> None:
            self._futures.pop(d.msg_id, None)
            if not fut.done():
                fut.set_result(d)
        mid = self.core.submit(payload, done)
        if not fut.done():  # a group of one delivers inside submit()
            self._futures[mid] = fut
        return fut

    @property
    def view(self) -> View | None:
        return None if self.core is None else self.core.view

    @property
    def is_leader(self) -> bool:
        return self.core is not None and self.core.is_leader and self.core.view is not None \
            and self.core.view.leader == self._member_id

    @property
    def group_status(self) -> GroupStatus:
        """The watchdog's verdict: frozen=True (with a reason such as "quorum lost: ...")
        once this replica made no progress for GroupConfig.watchdog_bound_s."""
        return GroupStatus() if self.core is None else self.core.group_status

    @property
    def member_id(self) -> int:
        return self._member_id

    @property
    def address(self) -> tuple[str, int] | None:
        return None if self._udp is None else self._udp.address

    @property
    def counters(self) -> dict[str, int]:
        c: Counter[str] = Counter()
        if self.core is not None:
            c.update(self.core.counters)
        if self._udp is not None:
            c["socket_errors"] = self._udp.errors
        return dict(c)
