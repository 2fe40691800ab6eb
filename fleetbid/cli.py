"""The `fleetbid` command line."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence

from fleetbid.bench.cluster import add_parser as add_bench_cluster_parser
from fleetbid.bench.hosts import add_parser as add_bench_hosts_parser
from fleetbid.bench.server_names import DEFAULT_SERVERS, SERVERS
from fleetbid.core.config import KILL_TARGETS, RunConfig
from fleetbid.core.values import (
    non_negative_int,
    port,
    positive_float,
    positive_int,
)
from fleetbid.laws.command import add_parsers as add_laws_parsers
from fleetbid.maps import MapError
from fleetbid.options import add_log_level, add_population_options, config_from, endpoint_from
from fleetbid.platform import eventloop, exit_guard
from fleetbid.policies import POLICIES
from fleetbid.service.command import add_parsers
from fleetbid.service.complain import add_parser as add_complain_parser
from fleetbid.service.hosts_demo import add_parser as add_demo_parser
from fleetbid.service.node import add_parser as add_node_parser
from fleetbid.tracing.command import add_parser as add_trace_parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fleetbid",
        description="Procurement-auction dispatch for vehicle fleets, SPADE agents over XMPP.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="launch the population, serve a scenario, print a summary")
    add_population_options(run)
    run.add_argument("--requests", type=non_negative_int, default=RunConfig().requests,
                     help="passenger requests in all (%(default)s)")
    run.add_argument("--rate", type=positive_float, default=RunConfig().rate,
                     help="requests per simulated minute, Poisson (%(default)s)")
    run.add_argument("--kill-leader-after", type=non_negative_int, default=None, metavar="N",
                     help="fault injection: SIGKILL the replica group's leader once N "
                          "auctions have opened")
    run.add_argument("--kill", choices=KILL_TARGETS, default=RunConfig().kill,
                     help="whose group's leader --kill-leader-after kills: the AuctionManagers' "
                          "or the MainManager's (%(default)s)")
    run.add_argument("--policy", choices=POLICIES, default=RunConfig().policy,
                     help="dispatch policy (%(default)s: the auction agents)")
    run.add_argument("--batch", type=positive_float, default=RunConfig().batch_s,
                     help="seconds between batch-policy decisions, simulated (%(default)s)")
    run.add_argument("--batch-k", type=positive_int, default=RunConfig().batch_k,
                     help="batch-auction: pickup times in a vehicle's bid, its k best "
                          "(%(default)s; at most 64)")
    run.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    run.add_argument("--plots", metavar="DIR", default=None,
                     help="write histograms of waiting times and latencies (PNG) into DIR")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")

    bench = sub.add_parser("bench", help="benchmarks")
    bench_sub = bench.add_subparsers(dest="bench", required=True)
    auction = bench_sub.add_parser("auction", help="auction latency/throughput vs raw XMPP")
    add_population_options(auction)
    auction.add_argument("--auctions", type=positive_int, default=300,
                         help="auctions in the throughput phase (%(default)s)")
    auction.add_argument("--latency-auctions", type=non_negative_int, default=300,
                         help="auctions, one at a time, in the latency phase (%(default)s)")
    auction.add_argument("--raw-messages", type=positive_int, default=20000,
                         help="messages in the raw XMPP ceiling phase (%(default)s)")
    auction.add_argument("--json", action="store_true", help="print the result as JSON")
    scale = bench_sub.add_parser("scale", help="the live auction at growing fleet sizes")
    add_population_options(scale, fleet_size=False)
    scale.add_argument("--vehicles", type=positive_int, nargs="+", default=[100, 300, 1000],
                       metavar="N", help="fleet sizes to measure (%(default)s)")
    scale.add_argument("--auctions", type=positive_int, default=200,
                       help="auctions in each size's burst (%(default)s)")
    scale.add_argument("--latency-auctions", type=non_negative_int, default=50,
                       help="auctions, one at a time, at each size (%(default)s)")
    scale.add_argument("--json", action="store_true", help="print the result as JSON")
    add_bench_hosts_parser(bench_sub)
    add_bench_cluster_parser(bench_sub)
    servers = bench_sub.add_parser("servers", help="the auction benchmark on the embedded "
                                   "server, Prosody and ejabberd, side by side")
    add_population_options(servers)
    servers.add_argument("--servers", nargs="+", default=DEFAULT_SERVERS, choices=SERVERS,
                         help="servers to measure, in turn (%(default)s)")
    servers.add_argument("--rounds", type=positive_int, default=1,
                         help="turns per server; figures are medians (%(default)s)")
    servers.add_argument("--auctions", type=positive_int, default=200,
                         help="auctions in each burst (%(default)s)")
    servers.add_argument("--latency-auctions", type=non_negative_int, default=100,
                         help="auctions, one at a time, on each server (%(default)s)")
    servers.add_argument("--json", action="store_true", help="print the result as JSON")
    repl = bench_sub.add_parser("replication", help="replication: ordered latency, throughput")
    repl.add_argument("--replicas", type=int, nargs="+", default=[3],
                      help="group sizes to measure (%(default)s)")
    repl.add_argument("--messages", type=positive_int, default=2000,
                      help="messages in the throughput phase (%(default)s)")
    repl.add_argument("--json", action="store_true", help="print the result as JSON")
    add_log_level(repl)
    xmpp = sub.add_parser("xmpp", help="run a real XMPP server (Prosody or ejabberd) on "
                          "loopback, configured for fleetbid, until Ctrl-C")
    xmpp.add_argument("server", choices=["prosody", "ejabberd"])
    xmpp.add_argument("--dir", required=True, metavar="D",
                      help="directory for its config, certificate, accounts and logs")
    xmpp.add_argument("--port", type=port, default=None,
                      help="c2s port on 127.0.0.1 (default: a free one)")
    xmpp.add_argument("--domain", default="localhost", help="XMPP domain (%(default)s)")
    add_log_level(xmpp)
    add_trace_parser(sub)
    add_parsers(sub)
    add_laws_parsers(sub)
    add_complain_parser(sub)
    add_node_parser(sub)
    add_demo_parser(sub)

    from fleetbid.experiment.command import add_parser as add_experiment_parser

    add_experiment_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("fleetbid").setLevel(args.log_level)
    try:
        if args.command == "run":
            return cmd_run(args)
        if args.command == "bench":
            if args.bench == "replication":
                from fleetbid.replication.bench import cmd_bench_replication

                return cmd_bench_replication(args)
            if args.bench == "cluster":
                return args.func(args)
            if args.bench == "hosts":
                from fleetbid.bench.hosts import cmd_bench_hosts

                return cmd_bench_hosts(args)
            if args.bench == "servers":
                from fleetbid.bench.servers import cmd_bench_servers

                return cmd_bench_servers(args)
            if args.bench == "scale":
                from fleetbid.bench.scale import cmd_bench_scale

                return cmd_bench_scale(args)
            from fleetbid.bench.auction import cmd_bench_auction

            return cmd_bench_auction(args)
        if args.command == "trace":
            return args.func(args)
        if args.command == "xmpp":
            from fleetbid.platform.external_servers.foreground import serve_foreground

            return serve_foreground(args.server, args.dir, args.port, args.domain)
        if args.command in ("serve", "request", "auctions", "status", "soak", "laws", "audit",
                            "complain", "experiment", "node", "join-token", "demo"):
            return args.func(args)
    except (ValueError, MapError) as exc:
        print(f"fleetbid: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("fleetbid: interrupted, everything stopped", file=sys.stderr)
        return 130
    except eventloop.Terminated:
        print("fleetbid: terminated, everything stopped", file=sys.stderr)
        return 143
    return 2


def cmd_run(args: argparse.Namespace) -> int:
    from fleetbid.run.job import run_scenario
    from fleetbid.run.summary import format_summary

    config = config_from(args, requests=args.requests, rate=args.rate,
                         kill_leader_after=args.kill_leader_after, kill=args.kill,
                         policy=args.policy, batch_s=args.batch, batch_k=args.batch_k)
    summary = eventloop.run(run_scenario(
        config, endpoint_from(args), progress=not args.no_progress and not args.json,
        log_level=args.log_level, plots=args.plots,
    ))
    if args.json:
        print(json.dumps(summary))
    else:
        print(format_summary(summary))
    return 0


def entry() -> None:
    """The `fleetbid` executable: run the command, then exit within a bounded time (a
    thread, atexit handler or child that never ends is reported and cut off)."""
    code = main()
    exit_guard.arm(code)
    sys.exit(code)


if __name__ == "__main__":
    entry()
