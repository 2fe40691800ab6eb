"""`fleetbid bench auction`: auction latency and throughput against the raw XMPP ceiling,
measured in one run on one server, so the ratio holds however busy the machine is.

Phases, all on the same XMPP server:
1. raw ceiling: one-way SPADE messages/s between two processes (raw_bench);
2. latency: auctions one at a time (each passenger logs in first; the login is not timed);
3. throughput: a burst of passengers, all logged in beforehand, ask at the same simulated
   instant; auctions/s = burst size / time until the last one is decided.
The fleet runs at a high simulation speed so winners are free again almost at once: the
benchmark measures the dispatch system, not how long simulated trips take.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from fleetbid.bench.raw_xmpp import measure_xmpp_throughput
from fleetbid.core.config import RunConfig
from fleetbid.core.scenario import poisson_requests
from fleetbid.options import config_from, endpoint_from
from fleetbid.platform import eventloop
from fleetbid.platform.xmpp_server import EmbeddedXmppServer, XmppEndpoint
from fleetbid.run.launcher import Fleet
from fleetbid.run.summary import percentile

Result = TypeVar("Result")

BENCH_SPEED = 20000.0  # a ten-minute trip lasts 30 wall ms
LOGIN_LEAD_S = 0.05  # wall seconds per passenger of login lead before the burst
SETTLE_S = 0.1  # wall seconds between a passenger's login and its request (latency phase)


def _totals(stats: list[dict[str, Any]]) -> tuple[int, int]:
    return sum(s["sent"] for s in stats), sum(s["xmpp_sent"] for s in stats)


async def bench_auction(
    config: RunConfig, endpoint: XmppEndpoint, latency_auctions: int, burst: int,
    raw_messages: int, log: Any = None,
) -> dict[str, Any]:
    def say(text: str) -> None:
        if log is not None:
            print(text, file=log, flush=True)

    say(f"raw XMPP ceiling: {raw_messages} one-way messages between two processes...")
    raw = await asyncio.to_thread(measure_xmpp_throughput, endpoint, raw_messages)
    say(f"  {raw['xmpp_msgs_per_s']:.0f} msgs/s, rtt p50 {raw['xmpp_rtt_p50_ms']:.2f} ms")
    async with Fleet(config, endpoint=endpoint) as fleet:
        figures = await measure_auctions(fleet, config, latency_auctions, burst, say)
    raw_share = figures["auctions_per_s"] / raw["xmpp_msgs_per_s"]
    return {
        **figures,
        "xmpp_msgs_per_s": round(raw["xmpp_msgs_per_s"], 0),
        "xmpp_rtt_p50_ms": round(raw["xmpp_rtt_p50_ms"], 2),
        # The yardstick: protocol traffic the auctions sustain vs the raw ceiling.
        "ceiling_share": round(raw_share * figures["messages_per_auction"], 3),
        "ceiling_share_xmpp_only": round(raw_share * figures["xmpp_messages_per_auction"], 3),
        "vehicles": config.vehicles,
        "proxies": config.proxies,
        "processes": config.processes,
        "replicas": config.replicas,
        "failovers": figures.pop("failovers"),
        "radius_m": config.radius_m,
        "map": figures.pop("map"),
    }


async def measure_auctions(
    fleet: Fleet, config: RunConfig, latency_auctions: int, burst: int, say: Any,
) -> dict[str, Any]:
    """Sequential auction latency, then a burst's throughput, on a running fleet."""
    requests = poisson_requests(fleet.roadmap, latency_auctions + burst, 1.0, config.seed)
    say(f"latency: {latency_auctions} auctions one at a time...")
    latencies = []
    before = _totals(await fleet.stats())
    for r in requests[:latency_auctions]:
        # Log in first, ask a moment later: the login's server work is not the auction's.
        at = fleet.now() + SETTLE_S * config.speed
        outcome = await fleet.ride(r.request_id, r.source, r.destination, at=at)
        if outcome.latency_ms is not None:
            latencies.append(outcome.latency_ms)
    after_sequential = _totals(await fleet.stats())
    say(f"throughput: a burst of {burst} auctions...")
    lead = max(2.0, LOGIN_LEAD_S * burst / config.processes)
    at = fleet.now() + lead * config.speed
    started = time.perf_counter()
    outcomes = await asyncio.gather(*(
        fleet.ride(r.request_id, r.source, r.destination, at=at)
        for r in requests[latency_auctions:]
    ))
    decided = [o for o in outcomes if o.latency_ms is not None]
    burst_latencies = [o.latency_ms for o in decided if o.latency_ms is not None]
    after = _totals(await fleet.stats())
    # From the first request sent to the last auction decided (late logins included).
    first = min(o.requested_at for o in decided) / config.speed
    span_s = max(o.requested_at / config.speed + (o.latency_ms or 0.0) / 1000.0
                 for o in decided) - first
    n_seq = max(1, latency_auctions)
    return {
        "latency_p50_ms": round(percentile(latencies, 50) or float("nan"), 2),
        "latency_p99_ms": round(percentile(latencies, 99) or float("nan"), 2),
        "latency_auctions": len(latencies),
        "auctions_per_s": round(burst / span_s, 1),
        "burst": burst,
        "burst_served": sum(o.served for o in outcomes),
        "burst_latency_p50_ms": round(percentile(burst_latencies, 50) or float("nan"), 1),
        "burst_latency_p99_ms": round(percentile(burst_latencies, 99) or float("nan"), 1),
        "messages_per_auction": round((after[0] - after_sequential[0]) / burst, 1),
        "xmpp_messages_per_auction": round((after[1] - after_sequential[1]) / burst, 1),
        # One auction at a time: no concurrent auction shares (or steals) the traffic.
        "messages_per_sequential_auction": round((after_sequential[0] - before[0]) / n_seq, 1),
        "failovers": fleet.failovers.count,
        "map": fleet.roadmap.name,
        "wall_s_burst": round(time.perf_counter() - started, 2),
    }


def on_a_server(args: argparse.Namespace,
                main: Callable[[XmppEndpoint], Awaitable[Result]]) -> Result:
    """Run `main` on the `--xmpp` server, or on an embedded one started for the benchmark."""
    if args.xmpp:
        endpoint = endpoint_from(args)
        assert endpoint is not None
        return eventloop.run(main(endpoint))
    with tempfile.TemporaryDirectory(prefix="fleetbid-bench-") as tmp, \
            EmbeddedXmppServer(Path(tmp) / "xmpp") as server:
        return eventloop.run(main(server.endpoint))


def cmd_bench_auction(args: argparse.Namespace) -> int:
    config = config_from(args, requests=0)
    # Patience of a minute of wall time: long enough never to end a live auction, finite so
    # that a lost one ends the benchmark with an unserved ride instead of hanging it.
    config = dataclasses.replace(config, speed=BENCH_SPEED, patience_s=60 * BENCH_SPEED)

    async def main(endpoint: XmppEndpoint) -> dict[str, Any]:
        return await bench_auction(config, endpoint, args.latency_auctions, args.auctions,
                                   args.raw_messages, log=sys.stderr)

    result = on_a_server(args, main)
    result["command"] = "fleetbid " + " ".join(sys.argv[1:])
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:28} {value}")
    return 0
