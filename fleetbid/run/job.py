"""`fleetbid run`: launch the population, replay the scenario's requests, summarize."""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from typing import Any

from tqdm import tqdm

from fleetbid.core.config import RunConfig
from fleetbid.core.outcome import RideOutcome
from fleetbid.core.scenario import Request, poisson_requests
from fleetbid.platform.xmpp_server import XmppEndpoint
from fleetbid.run.launcher import Fleet
from fleetbid.run.plots import write_plots
from fleetbid.run.replica_setup import check_invariants
from fleetbid.run.summary import summarize

LOGIN_LEAD_S = 1.0  # wall seconds a passenger agent starts before its request time

log = logging.getLogger("fleetbid.run")


async def run_scenario(
    config: RunConfig, endpoint: XmppEndpoint | None = None, progress: bool = True,
    log_level: str = "WARNING", requests: list[Request] | None = None,
    plots: str | None = None,
) -> dict[str, Any]:
    started = time.perf_counter()
    if progress:
        print(f"starting {config.vehicles} vehicles and their managers in "
              f"{config.processes} processes...", file=sys.stderr, flush=True)
    async with Fleet(config, endpoint=endpoint, log_level=log_level) as fleet:
        if progress:
            assert fleet.plan is not None
            agents = sum(len(specs) for specs in fleet.plan.processes)
            print(f"{agents} agents up in {time.perf_counter() - started:.1f} s",
                  file=sys.stderr, flush=True)
        todo = requests if requests is not None else poisson_requests(
            fleet.roadmap, config.requests, config.rate, config.seed
        )
        bar = tqdm(total=len(todo), desc="requests", unit="req", file=sys.stderr,
                   disable=not progress, leave=False)
        outcomes: list[RideOutcome] = []

        async def one(request: Request) -> None:
            # Start the passenger agent a little early: it logs in, then asks on time.
            await asyncio.sleep(max(0.0, (request.at - fleet.now()) / config.speed - LOGIN_LEAD_S))
            outcome = await fleet.ride(request.request_id, request.source, request.destination,
                                       at=request.at)
            outcomes.append(outcome)
            # One line per ride (--log-level INFO): what a watcher of the run waits on.
            log.info("ride %s ended: %s", outcome.request_id, f"served by {outcome.vehicle}"
                     if outcome.served else f"not served: {outcome.reason}")
            bar.update(1)
            bar.set_postfix(served=sum(o.served for o in outcomes))

        await asyncio.gather(*(one(r) for r in todo))
        bar.close()
        stats = await fleet.stats()
        invariants = check_invariants(outcomes, stats)
        assert fleet.plan is not None
        extra = {
            "processes": config.processes,
            "vehicles": config.vehicles,
            "proxies": config.proxies,
            "proxy_agents": len(fleet.plan.directory.proxies),
            "auction_managers": config.auction_managers,
            "map": fleet.roadmap.name,
            "seed": config.seed,
            "speed": config.speed,
            "simulated_s": round(fleet.now(), 1),
            "wall_s": round(time.perf_counter() - started, 2),
            "replicas": config.replicas,
            "failovers": fleet.failovers.count,
            "failover_ms_max": _max(fleet.failovers.times_ms),
            "invariant_violations": sum(invariants.values()),
            "invariants": invariants,
        }
        if plots is not None:
            extra["plots"] = [str(p) for p in write_plots(outcomes, plots)]
        return summarize(outcomes, stats, extra)


def _max(values: list[float]) -> float | None:
    return round(max(values), 1) if values else None
