"""`fleetbid soak --minutes N`: keep a fleet busy with a mixed load and report what held.

The load, all at once for N wall minutes: passengers at a steady Poisson rate (each its own
PassengerPersonalAgent in the fleet's workers), one client account flooding the MainManager
with ride requests, one sending malformed and hostile stanzas, and SIGKILLs of the replica
group's leader at even intervals (no more than the group survives: a standby steps in).
The fleet's health is watched as `fleetbid serve` watches it.

The report: rides served, rejected by reason, the run's invariant checks (double
assignments must be 0), what the flood and the hostile client got back, the resident
memory of the server and of every worker over time with its least-squares slope (a leak
shows as a slope that does not fade), and restarts.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fleetbid.core.config import RunConfig
from fleetbid.core.outcome import RideOutcome
from fleetbid.options import config_from, endpoint_from
from fleetbid.platform import eventloop
from fleetbid.platform.xmpp_agent import start_agents
from fleetbid.run.launcher import Fleet, LaunchError
from fleetbid.run.replica_setup import check_invariants
from fleetbid.service.soak_load import (
    LoadClient,
    flood_request,
    hostile_stanzas,
    stream_breaker,
)

FLAT_MB_PER_MIN = 0.5  # a slope under this (after warm-up) counts as flat
JUDGE_MEMORY_MIN = 5.0  # shorter soaks report memory but are too short to call it flat
# A process is judged on the second half of its own sampled time: its first half is warm-up.
# Not the first quarter of the run: a standby replica host starts mid-run, and caches (the
# audit ring, the duplicate-id rings, the allocator's free lists) fill over minutes; in a
# 10-minute run even hosts flat over 30 minutes showed 0.7-1.9 MB/min after the first
# quarter (docs/soak.md).
JUDGED_PART = 0.5
MIN_JUDGED_MIN = 2.5  # a process sampled for less than twice this is shown, not judged
EXITED_BEFORE_END_MIN = 1.0  # samples ending this long before the run's: the process exited
CLIENT_STOP_S = 10.0  # a load client's logout at the end


@dataclass
class Settings:
    minutes: float
    passengers_per_s: float
    flood_per_s: float
    hostile_every_s: float
    replica_kills: int
    sample_s: float


@dataclass
class Soak:
    fleet: Fleet
    settings: Settings
    outcomes: list[RideOutcome] = field(default_factory=list)
    errors: collections.Counter[str] = field(default_factory=collections.Counter)
    memory: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    kills: list[dict[str, Any]] = field(default_factory=list)
    fatal: str = ""
    started: float = 0.0
    hostile_streams_closed: int = 0  # streams the server closed on a stanza that is not XML
    hostile_clients: list[LoadClient] = field(default_factory=list)
    hostile_answers: collections.Counter[str] = field(default_factory=collections.Counter)
    hostile_sent: int = 0

    def absorb(self, client: LoadClient) -> None:
        """Keep a finished hostile client's counts."""
        self.hostile_answers.update(client.answers)
        self.hostile_sent += client.sent_raw

    def elapsed_min(self) -> float:
        return (time.monotonic() - self.started) / 60.0

    # --- the load -------------------------------------------------------------------------
    async def passengers(self, until: float) -> None:
        rng = random.Random(1)
        roadmap = self.fleet.roadmap
        rides: set[asyncio.Task[None]] = set()
        n = 0
        while time.monotonic() < until and not self.fatal:
            n += 1
            source, destination = roadmap.random_node(rng), roadmap.random_node(rng)
            task = asyncio.ensure_future(self.one_ride(f"soak{n}", source, destination))
            rides.add(task)
            task.add_done_callback(rides.discard)
            await asyncio.sleep(rng.expovariate(self.settings.passengers_per_s))
        if rides:  # each passenger gives up by itself after its patience
            await asyncio.wait(rides, timeout=120.0)

    async def one_ride(self, request_id: str, source: str, destination: str) -> None:
        try:
            self.outcomes.append(await self.fleet.ride(request_id, source, destination))
        except (LaunchError, OSError) as exc:  # a worker died: the fleet stops
            self.errors[str(exc)] += 1

    async def flood(self, client: LoadClient, until: float) -> None:
        if self.settings.flood_per_s <= 0:
            return
        node = self.fleet.start_nodes[0]
        main = self.fleet.plan.directory.main_manager if self.fleet.plan else ""
        n = 0
        while time.monotonic() < until and not self.fatal:
            n += 1
            flood_request(client, main, node, n)
            await asyncio.sleep(1.0 / self.settings.flood_per_s)

    async def hostile(self, client: LoadClient, until: float) -> None:
        """A batch of hostile stanzas every few seconds; every other batch ends with one
        that is not XML, after which the server closes the stream and a new client logs in."""
        node = self.fleet.start_nodes[0]
        main = self.fleet.plan.directory.main_manager if self.fleet.plan else ""
        n = 0
        while time.monotonic() < until and not self.fatal:
            n += 1
            if not client.client or not client.client.is_connected():
                self.hostile_streams_closed += 1
                self.absorb(client)
                await client.stop()
                client = LoadClient("hostile", self.fleet.endpoint)  # type: ignore[arg-type]
                self.hostile_clients.append(client)
                await start_agents([client])
            for raw in hostile_stanzas(main, node, n):
                client.write(raw)
            if n % 2 == 0:
                client.write(stream_breaker(main))
            await asyncio.sleep(self.settings.hostile_every_s)

    async def kill_replicas(self, until: float) -> None:
        kills = self.settings.replica_kills
        span = until - time.monotonic()
        for k in range(kills):
            at = until - span + span * (k + 1) / (kills + 1)
            await asyncio.sleep(max(0.0, at - time.monotonic()))
            leader = self.fleet.failovers.leader
            if self.fatal or leader is None:
                continue
            try:
                self.fleet.kill_replica(leader)
            except ValueError as exc:
                self.errors[f"replica kill skipped: {exc}"] += 1
                continue
            self.kills.append({"minute": round(self.elapsed_min(), 2), "member": leader})

    async def sample_memory(self, until: float) -> None:
        while time.monotonic() < until + self.settings.sample_s and not self.fatal:
            for name, pid in self.processes().items():
                rss = rss_mb(pid)
                if rss is not None:
                    self.memory.setdefault(name, []).append((self.elapsed_min(), rss))
            await asyncio.sleep(self.settings.sample_s)

    def processes(self) -> dict[str, int]:
        out = {}
        if self.fleet.server is not None and self.fleet.server.pid:
            out["server"] = self.fleet.server.pid
        health = self.fleet.health
        for index, pid in health.worker_pids.items():
            if index not in health.dead:
                kind = "replica" if index in health.replica_hosts else "worker"
                out[f"{kind}-{index}"] = pid
        return out

    async def watch(self) -> None:
        self.fatal = await self.fleet.watch()

    # --- the run --------------------------------------------------------------------------
    async def run(self) -> dict[str, Any]:
        assert self.fleet.endpoint is not None
        flooder = LoadClient("flood", self.fleet.endpoint)
        hostile = LoadClient("hostile", self.fleet.endpoint)
        self.hostile_clients.append(hostile)
        await start_agents([flooder, hostile])
        self.started = time.monotonic()
        until = self.started + self.settings.minutes * 60.0
        watcher = asyncio.ensure_future(self.watch())
        try:
            await asyncio.gather(self.passengers(until), self.flood(flooder, until),
                                 self.hostile(hostile, until), self.kill_replicas(until),
                                 self.sample_memory(until))
            stats = [] if self.fatal else await self.fleet.stats()
        finally:
            watcher.cancel()
            # Bounded: a client whose logout hangs is left to die with the server.
            await asyncio.gather(*(asyncio.wait_for(c.stop(), CLIENT_STOP_S)
                                   for c in [flooder, *self.hostile_clients]),
                                 return_exceptions=True)
        self.absorb(self.hostile_clients[-1])  # earlier ones were absorbed when replaced
        return self.report(stats, flooder)

    def report(self, stats: list[dict[str, Any]], flooder: LoadClient) -> dict[str, Any]:
        reasons = collections.Counter(o.reason or "?" for o in self.outcomes if not o.served)
        invariants = check_invariants(self.outcomes, stats) if stats else {}
        # The other invariant counters (double outcomes, if the run checks them) count too.
        doubles = sum(v for k, v in invariants.items() if k.startswith("double"))
        run_end = max((series[-1][0] for series in self.memory.values() if series), default=0.0)
        memory = {name: memory_trend(series, run_end)
                  for name, series in sorted(self.memory.items())}
        slopes = [t["slope_mb_per_min"] for t in memory.values()
                  if t["judged"] and t["slope_mb_per_min"] is not None]
        health = self.fleet.health
        return {
            "minutes": round(self.elapsed_min(), 2),
            "requests": len(self.outcomes) + sum(self.errors.values()),
            "served": sum(1 for o in self.outcomes if o.served),
            "rejected": dict(reasons.most_common()),
            "errors": dict(self.errors),
            "double_outcomes": doubles,
            "invariants": invariants,
            "flood": {"sent": flooder.sent_raw, "answers": dict(flooder.answers)},
            "hostile": {"sent": self.hostile_sent, "answers": dict(self.hostile_answers),
                        "streams_closed": self.hostile_streams_closed},
            "memory": memory,
            # None: too short to tell a leak from start-up growth.
            "memory_flat": (all(abs(s) <= FLAT_MB_PER_MIN for s in slopes)
                            if self.elapsed_min() >= JUDGE_MEMORY_MIN else None),
            "replica_kills": self.kills,
            "restarts": {"server": 0, "workers": 0,
                         "replica_hosts_exited": health.replica_exits,
                         "failovers": self.fleet.failovers.count},
            "quorum": not health.quorum_lost,
            "fatal": self.fatal,
        }


def rss_mb(pid: int) -> float | None:
    """Resident memory of `pid` in MB, from /proc (None once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except (OSError, ValueError, IndexError):
        return None
    return None


def memory_trend(series: list[tuple[float, float]], run_end: float | None = None,
                 ) -> dict[str, Any]:
    """First, last and peak RSS, and the least-squares slope (MB per minute) over the
    judged part: the second half of the process's sampled time (the first is warm-up).

    A process whose samples stop before `run_end` (the last sample of any process) exited
    mid-run, e.g. a replica host the soak killed: shown, not judged. Its memory went back to
    the OS, and a host killed at minute 10 never leaves the warm-up every replica host shows
    then (a 30-minute run judged such a host on its minutes 5-10, docs/soak.md)."""
    start, end = series[0][0], series[-1][0]
    judged_from = start + (end - start) * (1.0 - JUDGED_PART)
    rest = [(t, v) for t, v in series if t >= judged_from]
    exited = run_end is not None and end < run_end - EXITED_BEFORE_END_MIN
    return {"samples": len(series), "first_mb": round(series[0][1], 1),
            "last_mb": round(series[-1][1], 1), "peak_mb": round(max(v for _, v in series), 1),
            "slope_mb_per_min": least_squares_slope(rest),
            "judged_from_min": round(judged_from, 2),
            "judged": end - judged_from >= MIN_JUDGED_MIN and not exited,
            "exited_at_min": round(end, 2) if exited else None,
            # The samples themselves (minute, MB): to see where warm-up ends.
            "series": [[round(t, 2), round(v, 1)] for t, v in series]}


def least_squares_slope(points: list[tuple[float, float]]) -> float | None:
    """MB per minute through `points` (minute, MB); None for fewer than three."""
    if len(points) < 3:
        return None
    n = len(points)
    mx = sum(t for t, _ in points) / n
    my = sum(v for _, v in points) / n
    var = sum((t - mx) ** 2 for t, _ in points)
    if var <= 0:
        return None
    return round(sum((t - mx) * (v - my) for t, v in points) / var, 3)


async def soak(config: RunConfig, settings: Settings, args: argparse.Namespace
               ) -> dict[str, Any]:
    async with Fleet(config, endpoint=endpoint_from(args), log_level=args.log_level) as fleet:
        return await Soak(fleet, settings).run()


def format_report(r: dict[str, Any]) -> str:
    lines = [f"soak            {r['minutes']} min, {r['requests']} passenger requests",
             f"served          {r['served']}",
             f"rejected        {sum(r['rejected'].values())}"]
    lines += [f"  x{count}: {reason}" for reason, count in r["rejected"].items()]
    lines += [f"errors          {r['errors'] or 'none'}",
              f"double outcomes {r['double_outcomes']}  (invariants {r['invariants']})",
              f"flood           sent {r['flood']['sent']}, answers {r['flood']['answers']}",
              f"hostile         sent {r['hostile']['sent']}, answers {r['hostile']['answers']},"
              f" streams closed by the server {r['hostile']['streams_closed']}",
              f"memory          {verdict(r['memory_flat'])} "
              f"(slope limit {FLAT_MB_PER_MIN} MB/min over each process's second half)"]
    for name, t in r["memory"].items():
        judged = (f"from minute {t['judged_from_min']}" if t["judged"]
                  else f"not judged: exited at minute {t['exited_at_min']}"
                  if t.get("exited_at_min") is not None
                  else "not judged: sampled too briefly")
        lines.append(f"  {name:<12} {t['first_mb']} -> {t['last_mb']} MB (peak {t['peak_mb']}),"
                     f" slope {t['slope_mb_per_min']} MB/min {judged}, {t['samples']} samples")
    lines += [f"replica kills   {r['replica_kills']}",
              f"restarts        {r['restarts']}",
              f"quorum          {'kept' if r['quorum'] else 'LOST'}",
              f"fatal           {r['fatal'] or 'none'}"]
    return "\n".join(lines)


def verdict(flat: bool | None) -> str:
    return "too short to judge" if flat is None else "flat" if flat else "NOT FLAT"


def cmd_soak(args: argparse.Namespace) -> int:
    """Exit 0 when nothing broke: no double outcome, no fatal death, flat memory."""
    config = config_from(args, requests=0)
    settings = Settings(args.minutes, args.passengers_per_s, args.flood_per_s,
                        args.hostile_every, args.replica_kills, args.sample_every)
    report = eventloop.run(soak(config, settings, args))
    print(json.dumps(report) if args.json else format_report(report), flush=True)
    broken = report["double_outcomes"] or report["fatal"] or report["memory_flat"] is False
    if broken:
        print("fleetbid soak: FAILED (see the report)", file=sys.stderr)
    return 1 if broken else 0
