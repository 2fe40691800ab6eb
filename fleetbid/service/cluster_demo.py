"""`fleetbid demo cluster`: a fleet on a 2-node ejabberd cluster, one node killed mid-run.

Three network namespaces on a bridge: ejabberd nodes `ejabberd@10.77.0.1` and
`ejabberd@10.77.0.2` joined with `ejabberdctl join_cluster`, and `fleetbid run --xmpp
10.77.0.1:5222,10.77.0.2:5222` on 10.77.0.3, whose worker processes enter at the two nodes
in turn. After `--kill-after` rides are served, node 2's Erlang VM is SIGKILLed; its agents
fail over to node 1. Everything is torn down at the end, also on Ctrl-C. Needs root and
Debian's ejabberd.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

from fleetbid.options import add_log_level
from fleetbid.run.cluster_fleet import ClusterFleet, ClusterRunError, failovers, rides
from fleetbid.run.ejabberd_cluster import ClusterError
from fleetbid.run.netlab import LabError, NetLab, unavailable


def cmd_demo_cluster(args: argparse.Namespace) -> int:
    reason = unavailable() if shutil.which("ejabberdctl") else "ejabberd is not installed"
    if reason is not None:
        print(f"fleetbid demo cluster: cannot run here: {reason}", file=sys.stderr)
        return 1
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    lab = NetLab(hosts=3)
    workdir = Path(tempfile.mkdtemp(prefix="fleetbid-cluster-"))
    fleet = ClusterFleet(lab, workdir)
    try:
        lab.create()
        say("namespaces: ejabberd nodes on 10.77.0.1 and 10.77.0.2, the fleet on 10.77.0.3")
        cluster = fleet.start_cluster()
        say(f"cluster up: {' '.join(cluster.members(0))}")
        fleet.launch("run", "--processes", "4", "--vehicles", str(args.vehicles),
                     "--requests", str(args.requests), "--rate", f"{args.rate:g}",
                     "--speed", "400", "--clusters", "1", "--radius", "100000", "--json",
                     "--no-progress", "--log-level", "INFO")
        killed = None
        if args.kill_after:
            fleet.wait_for(lambda t: sum(1 for r in rides(t) if r["vehicle"])
                           >= args.kill_after, f"{args.kill_after} rides served")
            say(f"sessions per node: {fleet.sample_sessions()}")
            killed = cluster.kill(1)
            say(f"killed {cluster.node(1)} (beam pid {killed}) with SIGKILL")
        summary = fleet.result()
        moved = failovers(fleet.text())
        report = {
            "nodes": [cluster.node(0), cluster.node(1)], "node_killed": bool(killed),
            "sessions_per_node_before_kill": fleet.sessions[0] if fleet.sessions else None,
            "agents_failed_over": sum(1 for f in moved.values() if "lost" in f),
            "agents_resumed": sum(1 for f in moved.values() if "resumed" in f),
            **{k: summary.get(k) for k in ("requests", "served", "rejections",
                                           "latency_p50_ms", "latency_p99_ms",
                                           "invariant_violations", "wall_s")},
        }
        print(json.dumps(report) if args.json else format_report(report))
        return 0 if summary.get("served") else 1
    except (LabError, ClusterError, ClusterRunError) as exc:
        say(f"error: {exc}")
        return 1
    except KeyboardInterrupt:
        say("interrupted: tearing everything down")
        return 130
    finally:
        fleet.stop()
        lab.delete()
        shutil.rmtree(workdir, ignore_errors=True)
        say("torn down: nodes and fleet stopped, namespaces deleted")


def format_report(r: dict[str, Any]) -> str:
    return (f"{r['served']}/{r['requests']} rides served on {' + '.join(r['nodes'])}; "
            f"sessions per node before the kill {r['sessions_per_node_before_kill']}; "
            f"{r['agents_failed_over']} agents lost their node, {r['agents_resumed']} resumed "
            f"on the other; latency p50 {r['latency_p50_ms']} ms, p99 {r['latency_p99_ms']} "
            f"ms; invariant violations {r['invariant_violations']}")


def say(text: str) -> None:
    print(f"fleetbid demo cluster: {text}", file=sys.stderr, flush=True)


def add_parser(demo_sub: Any) -> None:
    from fleetbid.core.values import non_negative_int, positive_float, positive_int

    p = demo_sub.add_parser("cluster", help="a fleet on a 2-node ejabberd cluster in network "
                                            "namespaces, one node killed mid-run (needs root)",
                            description=__doc__)
    p.add_argument("--vehicles", type=positive_int, default=12, help="(%(default)s)")
    p.add_argument("--requests", type=positive_int, default=16, help="(%(default)s)")
    p.add_argument("--rate", type=positive_float, default=0.1,
                   help="requests per simulated minute, at speed 400 (%(default)s)")
    p.add_argument("--kill-after", type=non_negative_int, default=3, metavar="N",
                   help="SIGKILL node 2 once N rides are served; 0: never (%(default)s)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    add_log_level(p)
    p.set_defaults(func=cmd_demo_cluster)
