"""`fleetbid bench hosts`: a fleet over 3 "hosts" (network namespaces) at growing node sizes.

For each `--per-node` size, a fresh LAN of namespaces: serve on host 1 (the embedded
pyjabber server on 10.77.0.1), two joined nodes with that many vehicles and one manager
replica each, then `--requests` requests from a client on host 2, `--interval` simulated
seconds apart. Reported: how fast the nodes joined (vehicles per second, replicas recruited
included), served, latency p50/p99 and requests ended per wall second (the client's own
start included). The namespaces share this machine's cores: these are figures of the
multi-host path, not of more hardware (docs/hosts.md).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from fleetbid.core.values import positive_int
from fleetbid.options import add_lab_options
from fleetbid.run.hosts import HostsFleet, report
from fleetbid.run.netlab import NetLab, unavailable


def bench_nodes(per_node: int, requests: int, interval_s: float, seed: int) -> dict[str, Any]:
    lab = NetLab(hosts=3)
    with tempfile.TemporaryDirectory(prefix="fleetbid-bench-hosts-") as tmp:
        fleet = HostsFleet(lab, Path(tmp), nodes=2, per_node=per_node)
        try:
            lab.create()
            fleet.start()
            outcomes = fleet.requests(2, requests, seed=seed, interval_s=interval_s)
        finally:
            fleet.stop()
            lab.delete()
    row = report(fleet, outcomes)
    row["vehicles_joined_per_s"] = round(row["joined_vehicles"] / row["nodes_joined_s"], 1)
    row["requests_ended_per_s"] = round(len(outcomes) / row["requests_wall_s"], 1)
    return row


def cmd_bench_hosts(args: argparse.Namespace) -> int:
    reason = unavailable()
    if reason is not None:
        print(f"fleetbid bench hosts: cannot run here: {reason}", file=sys.stderr)
        return 1
    rows = []
    for per_node in args.per_node:
        print(f"2 nodes x {per_node} vehicles ...", file=sys.stderr, flush=True)
        rows.append(bench_nodes(per_node, args.requests, args.interval, args.seed))
    result = {"rows": rows, "server": "embedded pyjabber on host 1",
              "command": "fleetbid " + " ".join(sys.argv[1:])}
    if args.json:
        print(json.dumps(result))
        return 0
    keys = ("joined_vehicles", "vehicles_joined_per_s", "served", "requests",
            "latency_ms_p50", "latency_ms_p99", "requests_ended_per_s", "serve_ready_s")
    print("  ".join(f"{k:>21}" for k in keys))
    for row in rows:
        print("  ".join(f"{row[k]!s:>21}" for k in keys))
    return 0


def add_parser(bench_sub: Any) -> None:
    """Register `fleetbid bench hosts`."""
    p = bench_sub.add_parser("hosts", help="a fleet over 3 network namespaces at growing "
                                           "node sizes (needs root)")
    p.add_argument("--per-node", type=positive_int, nargs="+", default=[25, 100],
                   metavar="K", help="vehicles on each of the 2 joined hosts (%(default)s)")
    add_lab_options(p, requests=60, interval=2.0)  # the requests at each size
