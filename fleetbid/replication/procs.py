"""Replica host processes for tests and the benchmark (multiprocessing, spawn).

Each process runs one ReplicaNode with a LogMachine and obeys commands from a queue; it
reports its deliveries with time.monotonic() stamps (comparable across processes on Linux).
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing as mp
import os
import queue
import time
from dataclasses import dataclass, field
from typing import Any

from fleetbid.replication.api import Delivery, GroupConfig, View
from fleetbid.replication.logmachine import LogMachine
from fleetbid.replication.node import FaultSpec, ReplicaNode


@dataclass
class Report:
    member: int
    log: list[tuple[int, int, int, bytes]]
    delivered_at: dict[tuple[int, int], float]
    submitted_at: dict[tuple[int, int], float]
    views: list[tuple[int, tuple[int, ...], int, float]]  # view id, members, leader, when
    counters: dict[str, int]
    restored_from: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def replica_main(config: GroupConfig, member: int, initial: tuple[int, ...], standby: bool,
                 commands: Any, events: Any, faults: FaultSpec | None = None) -> None:
    try:
        import uvloop
        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        pass
    asyncio.run(_serve(config, member, initial, standby, commands, events, faults))


async def _serve(config: GroupConfig, member: int, initial: tuple[int, ...], standby: bool,
                 commands: Any, events: Any, faults: FaultSpec | None) -> None:
    machine = LogMachine()
    delivered_at: dict[tuple[int, int], float] = {}
    submitted_at: dict[tuple[int, int], float] = {}
    views: list[tuple[int, tuple[int, ...], int, float]] = []
    machine.listeners.append(
        lambda d: delivered_at.__setitem__((d.sender, d.msg_id), time.monotonic()))
    node = ReplicaNode(config, member, machine, initial_members=initial, standby=standby,
                       faults=faults)
    await node.start()
    assert node.core is not None

    def on_view(v: View) -> None:
        views.append((v.view_id, v.members, v.leader, time.monotonic()))
        events.put(("view", member, v.view_id, v.members, v.leader, time.monotonic()))
    node.core.view_listeners.append(on_view)
    if node.view is not None:
        on_view(node.view)
    events.put(("ready", member, os.getpid()))
    loop = asyncio.get_running_loop()
    while True:
        cmd = await loop.run_in_executor(None, _get, commands)
        if cmd is None:
            continue
        op = cmd[0]
        if op == "stop":
            break
        if op == "submit":  # ("submit", count, window, size)
            _, count, window, size = cmd
            failed = await _submit(node, count, window, size, submitted_at)
            events.put(("submitted", member, count, failed))
        elif op == "report":
            core = node.core
            state = {"status": core.status, "view": core.view, "members": core.members,
                     "frozen": core.frozen, "flush": core.flush_key, "pending_out": len(core.out),
                     "hold": len(core.hold), "head": repr(core.hold.head())[:300],
                     "unacked": core.ep.unacked}
            events.put(("report", Report(member, machine.log, delivered_at, submitted_at, views,
                                         node.counters, machine.restored_from, state)))
    await node.stop()


def _get(q: Any) -> Any:
    try:
        return q.get(timeout=0.2)
    except queue.Empty:
        return None


async def _submit(node: ReplicaNode, count: int, window: int, size: int,
                  submitted_at: dict[tuple[int, int], float]) -> int:
    """Submits `count` messages, `window` at a time; returns how many failed."""
    sem = asyncio.Semaphore(window)
    pad = b"x" * size
    futs = []

    def release(_: asyncio.Future[Delivery]) -> None:
        sem.release()
    for i in range(count):
        await sem.acquire()
        t = time.monotonic()
        fut = node.submit(i.to_bytes(4, "big") + pad)
        assert node.core is not None
        submitted_at[(node.member_id, node.core.next_mid - 1)] = t
        fut.add_done_callback(release)
        futs.append(fut)
    results = await asyncio.gather(*futs, return_exceptions=True)
    return sum(1 for r in results if isinstance(r, BaseException))


class Cluster:
    """Parent-side handle on replica processes."""

    def __init__(self, config: GroupConfig, members: tuple[int, ...],
                 standbys: tuple[int, ...] = (), faults: FaultSpec | None = None) -> None:
        self.ctx = mp.get_context("spawn")
        self.config = config
        self.members = members
        self.events = self.ctx.Queue()
        self.commands: dict[int, Any] = {}
        self.procs: dict[int, Any] = {}
        self.pids: dict[int, int] = {}
        self.view_events: list[tuple] = []
        self.backlog: list[tuple] = []  # events not consumed by wait_event yet
        for m in (*members, *standbys):
            q = self.ctx.Queue()
            self.commands[m] = q
            f = None if faults is None else FaultSpec(faults.seed + m, faults.loss, faults.dup,
                                                      faults.reorder, faults.delay_s,
                                                      faults.max_extra_delay_s)
            p = self.ctx.Process(target=replica_main, daemon=True,
                                 args=(config, m, members if m in members else (),
                                       m not in members, q, self.events, f))
            p.start()
            self.procs[m] = p
        self.wait_for(lambda: len(self.pids) == len(self.procs), 60.0)

    def _pump(self, timeout: float) -> tuple | None:
        try:
            ev = self.events.get(timeout=timeout)
        except queue.Empty:
            return None
        if ev[0] == "ready":
            self.pids[ev[1]] = ev[2]
        elif ev[0] == "view":
            self.view_events.append(ev)
        return ev

    def wait_for(self, pred: Any, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while not pred():
            left = end - time.monotonic()
            if left <= 0:
                return False
            self._pump(min(left, 0.1))
        return True

    def wait_event(self, kind: str, member: int | None, timeout: float) -> tuple | None:
        """The first not yet consumed event of that kind (and member)."""
        def match(ev: tuple) -> bool:
            return ev[0] == kind and (member is None or ev[1] == member)
        for i, ev in enumerate(self.backlog):
            if match(ev):
                return self.backlog.pop(i)
        end = time.monotonic() + timeout
        while (left := end - time.monotonic()) > 0:
            ev = self._pump(min(left, 0.1))
            if ev is None or ev[0] == "report":
                continue
            if match(ev):
                return ev
            self.backlog.append(ev)
        return None

    def submit(self, member: int, count: int, window: int = 1, size: int = 16) -> None:
        self.commands[member].put(("submit", count, window, size))

    def report(self, member: int, timeout: float = 30.0) -> Report:
        self.commands[member].put(("report",))
        end = time.monotonic() + timeout
        while (left := end - time.monotonic()) > 0:
            ev = self._pump(min(left, 0.1))
            if ev is not None and ev[0] == "report" and ev[1].member == member:
                return ev[1]
        raise TimeoutError(f"no report from replica {member}")

    def kill(self, member: int) -> float:
        """SIGKILL; returns time.monotonic() just before the kill."""
        t = time.monotonic()
        os.kill(self.pids[member], 9)
        self.procs[member].join(5)
        return t

    def close(self) -> None:
        for m, p in self.procs.items():
            if p.is_alive():
                with contextlib.suppress(Exception):
                    self.commands[m].put(("stop",))
        for p in self.procs.values():
            p.join(3)
            if p.is_alive():
                p.kill()
                p.join(3)


def free_udp_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
