"""`fleetbid bench cluster`: `fleetbid bench scale` on a 2-node ejabberd cluster, across hosts.

Network namespaces: ejabberd nodes on 10.77.0.1 and 10.77.0.2 (one cluster), the fleet on
10.77.0.3 running `fleetbid bench scale --xmpp 10.77.0.1:5222,10.77.0.2:5222` (its worker
processes enter at the two nodes in turn). Reported per fleet size: vehicles, agent
start-up rate, auctions/s, p50/p99, the servers used and, per node, its sessions (as the
node counts them, `ejabberdctl stats onlineusersnode`, sampled once the agents are up) and
the stanzas its clients sent it per second during the auction phases. All namespaces
share this machine's cores: these are figures of the clustered path, not of more hardware.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from fleetbid.core.values import non_negative_int, positive_int
from fleetbid.options import add_log_level
from fleetbid.run.cluster_fleet import ClusterFleet
from fleetbid.run.netlab import NetLab, unavailable


def bench_cluster(sizes: list[int], latency_auctions: int, burst: int,
                  processes: int) -> dict[str, Any]:
    lab = NetLab(hosts=3)
    workdir = Path(tempfile.mkdtemp(prefix="fleetbid-bench-cluster-"))
    fleet = ClusterFleet(lab, workdir)
    try:
        lab.create()
        fleet.start_cluster()
        fleet.launch("bench", "scale", "--vehicles", *map(str, sizes), "--processes",
                     str(processes), "--latency-auctions", str(latency_auctions),
                     "--auctions", str(burst), "--clusters", "1", "--radius", "100000",
                     "--json")
        for k in range(1, len(sizes) + 1):  # one sample of each node once a size is up
            fleet.wait_for(lambda text, k=k: text.count(" agents up in ") >= k,
                           f"size {k} up")
            fleet.sample_sessions()
        result = fleet.result()
    finally:
        fleet.stop()
        lab.delete()
        shutil.rmtree(workdir, ignore_errors=True)
    for row, sessions in zip(result["sizes"], fleet.sessions, strict=False):
        row["node_sessions"] = sessions
    return result


def cmd_bench_cluster(args: argparse.Namespace) -> int:
    reason = unavailable() if shutil.which("ejabberdctl") else "ejabberd is not installed"
    if reason is not None:
        print(f"fleetbid bench cluster: cannot run here: {reason}", file=sys.stderr)
        return 1
    result = bench_cluster(list(args.vehicles), args.latency_auctions, args.auctions,
                           args.processes)
    result["command"] = "fleetbid " + " ".join(sys.argv[1:])
    if args.json:
        print(json.dumps(result))
        return 0
    print("| vehicles | agents/s | auctions/s | p50 ms | p99 ms | burst served | sessions per "
          "node | stanzas in/s per node |\n|---:|---:|---:|---:|---:|---:|---|---|")
    for r in result["sizes"]:
        per = r.get("per_server", {})
        print(f"| {r['vehicles']} | {r['agents_per_s']} | {r['auctions_per_s']} | "
              f"{r['latency_p50_ms']} | {r['latency_p99_ms']} | {r['burst_served']}/"
              f"{r['burst']} | {r.get('node_sessions')} | "
              f"{ {k: v['stanzas_in_per_s'] for k, v in per.items()} } |")
    print(f"\nservers: {', '.join(result['sizes'][0]['servers']) if result['sizes'] else '-'}"
          f" (ejabberd 23.01, one cluster); `{result['command']}`")
    return 0


def add_parser(bench_sub: Any) -> None:
    """Register `fleetbid bench cluster`."""
    p = bench_sub.add_parser("cluster", help="bench scale on a 2-node ejabberd cluster in "
                                             "network namespaces (needs root)")
    p.add_argument("--vehicles", type=positive_int, nargs="+", default=[30, 100],
                   metavar="N", help="fleet sizes (%(default)s)")
    p.add_argument("--processes", type=positive_int, default=4,
                   help="worker processes; pairs alternate between the nodes (%(default)s)")
    p.add_argument("--auctions", type=positive_int, default=40,
                   help="auctions in each size's burst (%(default)s)")
    p.add_argument("--latency-auctions", type=non_negative_int, default=20,
                   help="auctions, one at a time, at each size (%(default)s)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    add_log_level(p)
    p.set_defaults(func=cmd_bench_cluster)
