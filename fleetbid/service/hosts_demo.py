"""`fleetbid demo hosts`: a fleet over 3 "hosts" (network namespaces) with one command.

Host 1 runs `fleetbid serve` (the embedded XMPP server on 10.77.0.1, the MainManager,
managers, proxies and their replicas); hosts 2.. each run `fleetbid node --join` with a
share of the join slots; a passenger client on host 2 sends requests. Everything is torn
down at the end, also on Ctrl-C. The bring-up itself is `run/hosts.py`.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

from fleetbid.run.hosts import DemoError, HostsFleet, report
from fleetbid.run.netlab import LabError, NetLab, unavailable


def cmd_demo_hosts(args: argparse.Namespace) -> int:
    if args.hosts < 2:
        raise ValueError("--hosts must be >= 2 (host 1 serves, the others join)")
    reason = unavailable()
    if reason is not None:
        print(f"fleetbid demo hosts: cannot run here: {reason}", file=sys.stderr)
        return 1
    # Ctrl-C and SIGTERM both end in the teardown below (even where the shell that started
    # us left SIGINT ignored, as shells do for background jobs).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    lab = NetLab(hosts=args.hosts)
    with tempfile.TemporaryDirectory(prefix="fleetbid-hosts-") as tmp:
        fleet = HostsFleet(lab, Path(tmp), nodes=args.hosts - 1, per_node=args.per_node,
                           join_by_token=True)
        try:
            lab.create()
            say(f"{args.hosts} hosts: namespaces {lab.ns(1)} .. {lab.ns(args.hosts)} on a "
                f"bridge, 10.77.0.1 .. 10.77.0.{args.hosts}")
            fleet.start()
            say(f"serve ready on {lab.address(1)} in {fleet.timings['serve_ready_s']:.1f} s; "
                f"{fleet.nodes} nodes joined with {fleet.per_node} vehicles each in "
                f"{fleet.timings['nodes_joined_s']:.1f} s")
            outcomes = fleet.requests(2, args.requests, seed=args.seed,
                                      interval_s=args.interval)
            for o in outcomes:
                where = f"h{fleet.host_of(o['vehicle'])}" if o.get("served") else "-"
                say(f"{o['request_id']}: " + (
                    f"served by {o['vehicle'].split('@')[0]} on {where} "
                    f"in {o['latency_ms']:.0f} ms" if o.get("served")
                    else f"not served: {o.get('reason')}"))
            summary = report(fleet, outcomes)
            print(json.dumps(summary) if args.json else format_report(summary))
            return 0 if summary["served"] else 1
        except (LabError, DemoError) as exc:
            say(f"error: {exc}")
            return 1
        except KeyboardInterrupt:
            say("interrupted: tearing everything down")
            return 130
        finally:
            fleet.stop()
            lab.delete()
            say("torn down: processes stopped, namespaces and bridge deleted")


def format_report(s: dict[str, Any]) -> str:
    return (f"{s['served']}/{s['requests']} requests served over {s['hosts']} hosts "
            f"(by host: {s['served_by_host']}); latency p50 {s['latency_ms_p50']} ms, p99 "
            f"{s['latency_ms_p99']} ms; serve up in {s['serve_ready_s']} s, "
            f"{s['joined_vehicles']} vehicles joined in {s['nodes_joined_s']} s")


def say(text: str) -> None:
    print(f"fleetbid demo hosts: {text}", file=sys.stderr, flush=True)


def add_parser(subparsers: Any) -> None:
    from fleetbid.core.values import positive_int
    from fleetbid.options import add_lab_options

    demo = subparsers.add_parser("demo", help="demonstrations")
    demo_sub = demo.add_subparsers(dest="demo", required=True)
    hosts = demo_sub.add_parser(
        "hosts", help="a fleet over 3 hosts (network namespaces; needs root), a few "
                      "requests, then everything torn down", description=__doc__)
    hosts.add_argument("--hosts", type=positive_int, default=3,
                       help="namespaces: host 1 serves, the others join (%(default)s)")
    hosts.add_argument("--per-node", type=positive_int, default=4,
                       help="vehicles on each joined host (%(default)s)")
    add_lab_options(hosts, requests=6, interval=5.0)
    hosts.set_defaults(func=cmd_demo_hosts)
    from fleetbid.service.cluster_demo import add_parser as add_cluster_parser

    add_cluster_parser(demo_sub)

