"""Fleet: start the XMPP server and the agent processes, hand out rides, stop everything.

Used by `fleetbid run`, the benchmark and the end-to-end tests:

    async with Fleet(config) as fleet:
        outcome = await fleet.ride("r1", source, destination)
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import multiprocessing as mp
import os
import secrets
import shutil
import signal
import time
from multiprocessing.connection import Connection
from pathlib import Path
from types import TracebackType
from typing import Any

from fleetbid.core.config import RunConfig
from fleetbid.core.outcome import RideOutcome
from fleetbid.laws import batch as batch_law
from fleetbid.laws import certificates
from fleetbid.laws.book import book_for
from fleetbid.laws.schema import LawError
from fleetbid.maps import RoadMap, load_map
from fleetbid.platform.announce import AnnounceGroup
from fleetbid.platform.xmpp_server import EmbeddedXmppServer, XmppEndpoint
from fleetbid.run import rundir
from fleetbid.run.health import Health
from fleetbid.run.pipes import read_in_thread
from fleetbid.run.population import MAIN_MANAGER_NAME, Names, Plan, make_plan, vehicle_start_nodes
from fleetbid.run.process import worker_main
from fleetbid.run.replica_setup import Failovers, ReplicaSettings, replica_settings

READY_TIMEOUT_S = 120.0

log = logging.getLogger("fleetbid.launcher")


class LaunchError(RuntimeError):
    """The population could not be started."""


class Fleet:
    def __init__(
        self,
        config: RunConfig,
        *,
        endpoint: XmppEndpoint | None = None,
        run_dir: str | Path | None = None,
        start_nodes: list[str] | None = None,
        log_level: str = "WARNING",
        announce: AnnounceGroup | None = None,
    ) -> None:
        self.config = config
        # Where the workers announce auctions and vehicles, if any; --reposition needs the
        # group (the demand figures travel on it): a fresh one when none is given.
        self.announce = announce or (AnnounceGroup.fresh() if config.reposition else None)
        self.roadmap: RoadMap = load_map(config.map, config.seed)
        self.start_nodes = start_nodes or vehicle_start_nodes(
            self.roadmap, config.vehicles, config.seed
        )
        if len(self.start_nodes) != config.vehicles:
            raise ValueError(f"{len(self.start_nodes)} start nodes for {config.vehicles} vehicles")
        book = book_for(config.law)  # a bad law fails here, before anything starts
        if config.policy == "batch-auction" and batch_law.problem(book.default) is not None:
            raise LawError(str(batch_law.problem(book.default)))
        self.authority_key = certificates.new_key()  # (private, public) hex, for this run
        self._external = endpoint
        self._own_run_dir = run_dir is None
        if run_dir is None:
            rundir.clean_stale()  # what a fleet killed with SIGKILL left behind
        self.run_dir = Path(run_dir) if run_dir else rundir.make_run_dir()
        self.log_level = log_level
        self.server: EmbeddedXmppServer | None = None
        self.endpoint: XmppEndpoint | None = None
        self.plan: Plan | None = None
        self.procs: list[mp.process.BaseProcess] = []
        self.conns: list[Connection] = []
        self._waiters: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._replies: list[asyncio.Queue[tuple[str, Any]]] = []
        self._passenger_turn = 0
        self.epoch = 0.0
        self._stopping = False
        self.dead: set[int] = set()  # processes that exited (replica hosts may: by design)
        self.failovers = Failovers(config.kill_leader_after, config.kill)
        self.health = Health(config.replicas, {})
        self.counters: dict[int, dict[str, Any]] = {}  # worker -> its last "counters" answer
        self.replicas: dict[int, ReplicaSettings] = {}  # replica-host index -> its settings

    # --- lifecycle --------------------------------------------------------------------------

    async def __aenter__(self) -> Fleet:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        if self._external is None:
            self.server = EmbeddedXmppServer(
                self.run_dir / "xmpp", host=self.config.listen, limit_target=MAIN_MANAGER_NAME,
                max_requests_per_minute=self.config.max_requests_per_minute,
                session_watcher=MAIN_MANAGER_NAME)
            self.endpoint = await asyncio.to_thread(self.server.start)
            names = Names()
        else:
            self.endpoint = self._external
            # Accounts persist on an external server: fresh names per run, fresh passwords.
            names = Names(secrets.token_hex(3))
        self.names = names
        self.plan = make_plan(self.config, self.endpoint, self.start_nodes, names,
                              self.authority_key)
        self.health = Health(self.config.replicas, dict(self.plan.replica_hosts),
                             server_pid=self.server.pid if self.server else None)
        ctx = mp.get_context("spawn")
        loop = asyncio.get_running_loop()
        replicas = replica_settings(self.plan, net=self.config) if self.plan.replica_hosts else {}
        self.replicas = replicas  # joining nodes' replicas get the same group (run/node.py)
        for index, specs in enumerate(self.plan.processes):
            parent, child = ctx.Pipe()
            endpoint = self.worker_endpoint(index)
            proc = ctx.Process(
                target=worker_main, name=f"fleetbid-worker-{index}", daemon=True,
                args=(index, self.config, endpoint, specs, self.plan.directory, child,
                      self.log_level, replicas.get(index), self.announce),
            )
            proc.start()
            child.close()
            if proc.pid is not None:
                self.health.worker_pids[index] = proc.pid
            self.procs.append(proc)
            self.conns.append(parent)
            queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
            self._replies.append(queue)
            read_in_thread(parent, loop, functools.partial(self._deliver, index))
        await self._all_ready()
        self.epoch = time.time()
        for conn in self.conns:
            conn.send(("go", self.epoch))

    def worker_endpoint(self, index: int) -> XmppEndpoint:
        """Where worker `index` connects. With several server addresses (a cluster), a
        tier-A process and its tier-B partner (population.py) enter at one node and the
        next pair at the next node: vehicles, proxies, passengers and manager replicas are
        spread over the nodes, and an auction's messages cross between them."""
        assert self.endpoint is not None
        return self.endpoint.rotated(index // 2)

    def _deliver(self, index: int, item: tuple[str, Any]) -> None:
        kind, payload = item
        if kind == "eof":
            self.dead.add(index)
            self._replies[index].put_nowait(("dead", f"worker {index} exited"))
            assert self.plan is not None
            if not self._stopping:
                self.health.on_exit(index)
            if index in self.plan.replica_hosts:
                # A replica host may die (or be killed): its group carries on without it.
                return
            if not self._stopping:
                # Rides hosted there will never report: fail them rather than hang.
                for waiter in self._waiters.values():
                    if not waiter.done():
                        waiter.set_exception(LaunchError(f"worker process {index} died"))
            return
        if kind == "event":
            if payload.get("kind") in ("view", "leader"):
                log.info("replica event: %s", payload)
            elif payload.get("kind") == "group-status":
                self.health.on_group_status(payload["member"], payload["frozen"],
                                            payload["reason"])
                if payload["frozen"]:
                    log.error("replica %s: the managers' group is frozen: %s",
                              payload["member"], payload["reason"])
                else:
                    log.warning("replica %s: the managers' group makes progress again",
                                payload["member"])
            victim = self.failovers.on_event(payload)
            if victim is not None and victim in self._pids():
                os.kill(victim, signal.SIGKILL)
            return
        if kind == "counters":
            self.counters[index] = payload
            return
        if kind == "outcome":
            waiter = self._waiters.pop(payload.request_id, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(payload)
        else:
            self._replies[index].put_nowait((kind, payload))

    async def _all_ready(self) -> None:
        """Every worker's 'ready'; the first worker to fail (or time out) fails the start at
        once, whichever its index."""
        waits = [asyncio.create_task(self._reply(index, "ready", READY_TIMEOUT_S))
                 for index in range(len(self.procs))]
        try:
            for first in asyncio.as_completed(waits):
                await first
        finally:
            for wait in waits:
                wait.cancel()

    async def _reply(self, index: int, expected: str, timeout: float) -> tuple[str, Any]:
        try:
            kind, payload = await asyncio.wait_for(self._replies[index].get(), timeout)
        except TimeoutError:
            raise LaunchError(f"worker {index}: no {expected!r} within {timeout:.0f} s") from None
        if kind != expected:
            raise LaunchError(f"worker {index} failed: {payload}")
        return kind, payload

    async def stop(self) -> None:
        """Stop agents, workers and the embedded server; remove the run dir we made."""
        self._stopping = True
        for conn in self.conns:
            with contextlib.suppress(Exception):
                conn.send(("stop",))
        for index in range(len(self.conns)):
            if index in self.dead:
                continue
            with contextlib.suppress(Exception):
                await self._reply(index, "stopped", 15.0)
        for conn in self.conns:
            conn.close()
        for proc in self.procs:
            await asyncio.to_thread(proc.join, 5.0)
            if proc.is_alive():
                proc.kill()
                await asyncio.to_thread(proc.join, 5.0)
        self.conns.clear()
        self.procs.clear()
        if self.server is not None:
            await asyncio.to_thread(self.server.stop)
            self.server = None
        if self._own_run_dir:
            shutil.rmtree(self.run_dir, ignore_errors=True)

    async def watch(self, every_s: float = 0.5, counters_every_s: float = 2.0) -> str:
        """Follow the fleet's health until something it cannot do without dies; return why.

        Worker exits and replica events arrive on their pipes at once; the server is a
        child process without a pipe to us, so its exit is polled (every `every_s`)."""
        last_counters = 0.0
        while not self.health.fatal:
            code = self.server.exit_code() if self.server is not None else None
            if code is not None:
                self.health.on_server_exit(code)
                break
            if time.monotonic() - last_counters >= counters_every_s:
                last_counters = time.monotonic()
                await self.sample_counters()
            await asyncio.sleep(every_s)
        return self.health.fatal

    async def sample_counters(self) -> None:
        """Ask every live worker for its counters, and put the answers to the previous
        request into `health` (outcomes sent, for served/min; the MainManager's queue).

        Never waits: answers land in `self.counters` as they come (see `_deliver`), apart
        from the replies `stats()` and `stop()` wait for."""
        for index in range(len(self.conns)):
            if index not in self.dead:
                with contextlib.suppress(OSError, ValueError):
                    self.conns[index].send(("counters",))
        if not self.counters:
            return
        sent = {i: (c["by_type"].get("ride-assigned", 0), c["by_type"].get("ride-unserved", 0))
                for i, c in self.counters.items()}
        queues = [c["queue"] for c in self.counters.values() if c.get("queue") is not None]
        self.health.on_counters(sent, sum(queues) if queues else None)

    # --- using the fleet --------------------------------------------------------------------

    def now(self) -> float:
        """Simulated seconds since the fleet was ready."""
        return (time.time() - self.epoch) * self.config.speed

    async def ride(
        self, request_id: str, source: str, destination: str, at: float | None = None
    ) -> RideOutcome:
        """Create a PassengerPersonalAgent for this request and wait for its outcome.

        With `at` (simulated seconds) the passenger logs in now and asks at that time, so its
        XMPP login is not part of the request's latency or waiting time."""
        assert self.plan is not None
        if request_id in self._waiters:
            raise ValueError(f"request {request_id} is already running")
        if self.health.quorum_lost:
            # The managers cannot run an auction: say so now, not after the patience.
            return RideOutcome(request_id, source, destination, requested_at=self.now(),
                               reason=f"refused: {self.health.quorum_lost}")
        where = self.plan.passenger_processes
        index = where[self._passenger_turn % len(where)]
        self._passenger_turn += 1
        waiter: asyncio.Future[RideOutcome] = asyncio.get_running_loop().create_future()
        self._waiters[request_id] = waiter
        name = self.names(f"passenger-{request_id}")
        self.conns[index].send(("ride", {"request_id": request_id, "source": source,
                                         "destination": destination, "name": name,
                                         "at": at}))
        return await waiter

    def kill_replica(self, member: int) -> None:
        """SIGKILL the host of replica `member` (fault injection for tests and benchmarks)."""
        pid = self.failovers.pids.get(member)
        if pid is None or pid not in self._pids():
            raise ValueError(f"no live replica host for member {member}")
        if member == self.failovers.leader:
            self.failovers.strike(pid)
        os.kill(pid, signal.SIGKILL)

    def _pids(self) -> set[int]:
        return {p.pid for i, p in enumerate(self.procs) if i not in self.dead and p.pid}

    async def stats(self) -> list[dict[str, Any]]:
        """Counters of every live process."""
        live = [i for i in range(len(self.conns)) if i not in self.dead]
        for i in live:
            self.conns[i].send(("stats",))
        out = []
        for i in live:
            kind, payload = await asyncio.wait_for(self._replies[i].get(), 15.0)
            if kind == "stats":
                out.append(payload)
        return out
