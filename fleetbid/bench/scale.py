"""`fleetbid bench scale`: the live auction as the fleet grows (100, 300, 1,000 vehicles...).

For each fleet size, on one embedded server: how fast the population logs in (agents/s),
then `measure_auctions` (sequential latency, a burst's throughput and messages per
auction), and the peak resident memory of each agent process. The paper's promise is that
proxies keep an auction's cost near √n: messages per auction should grow far slower than n.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from typing import Any

from fleetbid.bench.auction import BENCH_SPEED, measure_auctions, on_a_server
from fleetbid.core.config import RunConfig
from fleetbid.options import config_from
from fleetbid.platform.xmpp_server import XmppEndpoint
from fleetbid.run.launcher import Fleet


async def bench_size(
    config: RunConfig, endpoint: XmppEndpoint, latency_auctions: int, burst: int, say: Any,
) -> dict[str, Any]:
    started = time.perf_counter()
    async with Fleet(config, endpoint=endpoint) as fleet:
        startup_s = time.perf_counter() - started
        assert fleet.plan is not None
        agents = sum(len(specs) for specs in fleet.plan.processes)
        say(f"{config.vehicles} vehicles: {agents} agents up in {startup_s:.1f} s")
        before, measured = await fleet.stats(), time.perf_counter()
        figures = await measure_auctions(fleet, config, latency_auctions, burst, say)
        stats = await fleet.stats()
        per_server = per_address(fleet, before, stats, time.perf_counter() - measured)
    rss = [s["maxrss_mb"] for s in stats if "maxrss_mb" in s]
    return {
        "servers": [f"{h}:{p}" for h, p in endpoint.addresses],
        **({"per_server": per_server} if len(endpoint.addresses) > 1 else {}),
        "vehicles": config.vehicles,
        "agents": agents,
        "startup_s": round(startup_s, 2),
        "agents_per_s": round(agents / startup_s, 1),
        **figures,
        "peak_rss_mb_per_process": round(max(rss), 1) if rss else None,
        "processes": len(rss),
    }


def per_address(fleet: Fleet, before: list[dict[str, Any]], after: list[dict[str, Any]],
                wall_s: float) -> dict[str, dict[str, float]]:
    """Per server address (a cluster's node): the sessions of the workers that entered
    there, and the stanzas they sent over it per wall second of the auction phases."""
    assert fleet.plan is not None
    sent_before = {s["index"]: s["xmpp_sent"] for s in before}
    rows: dict[str, dict[str, float]] = {}
    for s in after:
        i = s["index"]
        worker = fleet.worker_endpoint(i)
        host, port = worker.host, worker.port
        row = rows.setdefault(f"{host}:{port}", {"sessions": 0, "stanzas_in_per_s": 0.0})
        row["sessions"] += len(fleet.plan.processes[i])
        row["stanzas_in_per_s"] += (s["xmpp_sent"] - sent_before.get(i, 0)) / wall_s
    return {k: {**v, "stanzas_in_per_s": round(v["stanzas_in_per_s"], 1)}
            for k, v in rows.items()}


def cmd_bench_scale(args: argparse.Namespace) -> int:
    sizes = list(args.vehicles)
    if not sizes or min(sizes) < 1:
        raise ValueError("--vehicles must list fleet sizes >= 1")
    base = config_from(argparse.Namespace(**{**vars(args), "vehicles": sizes[0]}), requests=0)
    base = dataclasses.replace(base, speed=BENCH_SPEED, patience_s=60 * BENCH_SPEED)

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    async def main(endpoint: XmppEndpoint) -> list[dict[str, Any]]:
        rows = []
        for vehicles in sizes:
            config = dataclasses.replace(base, vehicles=vehicles)
            rows.append(await bench_size(config, endpoint, args.latency_auctions,
                                         args.auctions, say))
        return rows

    rows = on_a_server(args, main)
    result = {"sizes": rows, "replicas": base.replicas, "proxies": base.proxies,
              "command": "fleetbid " + " ".join(sys.argv[1:])}
    if rows and rows[0]["messages_per_auction"]:
        first = rows[0]["messages_per_auction"]
        result["messages_growth"] = [round(r["messages_per_auction"] / first, 2) for r in rows]
    if args.json:
        print(json.dumps(result))
    else:
        keys = ("vehicles", "agents_per_s", "messages_per_auction", "latency_p50_ms",
                "latency_p99_ms", "auctions_per_s", "burst_served", "peak_rss_mb_per_process")
        print("  ".join(f"{k:>14}" for k in keys))
        for row in rows:
            print("  ".join(f"{row[k]!s:>14}" for k in keys))
    return 0
