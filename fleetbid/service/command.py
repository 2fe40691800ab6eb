"""Registers `fleetbid serve`, `request` and `auctions` on the `fleetbid` parser.

The command modules are imported only when a command runs: `fleetbid --help` stays fast.
"""

from __future__ import annotations

import argparse
from typing import Any

from fleetbid.core.values import (
    hex_key,
    loopback_port,
    multicast_endpoint,
    non_negative_float,
    non_negative_int,
    port_or_any,
    positive_float,
    positive_int,
)
from fleetbid.options import add_log_level, add_population_options

STATE_HELP = "state file of the running serve (default: .fleetbid/serve.json here)"

REQUEST_DESCRIPTION = """\
Join the fleet of a running `fleetbid serve` as passenger agents of this process.

One request: --from LAT,LON --to LAT,LON (snapped to the nearest road node) or
--from-node ID --to-node ID. Exit 0 when served, 1 when rejected or timed out, 2 when no
fleet runs or the input is bad.

--script FILE replays a CSV (header at,from,to[,id]) or JSON-lines file: `at` is simulated
seconds after the script starts, from/to are "lat,lon" (quoted in CSV) or node ids. Bad
rows are reported with their line number and skipped. --random N sends N requests between
random road nodes.
"""


def run_serve(args: argparse.Namespace) -> int:
    from fleetbid.service.serve import cmd_serve

    return cmd_serve(args)


def run_request(args: argparse.Namespace) -> int:
    from fleetbid.service.request import cmd_request

    return cmd_request(args)


def run_auctions(args: argparse.Namespace) -> int:
    from fleetbid.service.monitor import cmd_auctions

    return cmd_auctions(args)


def run_status(args: argparse.Namespace) -> int:
    from fleetbid.service.status import cmd_status

    return cmd_status(args)


def run_soak(args: argparse.Namespace) -> int:
    from fleetbid.service.soak import cmd_soak

    return cmd_soak(args)


def add_parsers(subparsers: Any) -> None:
    """Register `serve` and `request` on the `fleetbid` subcommand parser."""
    serve = subparsers.add_parser(
        "serve", help="keep a fleet running for `fleetbid request` (until Ctrl-C/SIGTERM)",
        description="Start the XMPP server, the MainManager, auction managers, proxies and "
                    "vehicles, and keep them running until Ctrl-C or SIGTERM.",
    )
    add_population_options(serve)
    serve.add_argument("--state", metavar="PATH", default=None, help=STATE_HELP)
    serve.add_argument("--join-slots", type=non_negative_int, default=0, metavar="N",
                       help="reserve N vehicle names for `fleetbid node --join` on other "
                            "hosts; a join file beside the state file then holds the "
                            "fleet's join token (docs/hosts.md; default %(default)s: none)")
    serve.add_argument("--replica-slots", type=non_negative_int, default=0, metavar="K",
                       help="let K joined nodes each add a replica of the AuctionManagers "
                            "to the group (`fleetbid node --replica-slot R`; %(default)s)")
    serve.add_argument("--join-port", type=port_or_any, default=0, metavar="PORT",
                       help="with join or replica slots: the port of the join service on "
                            "the --listen address, where `fleetbid node --join fleetbid://...`"
                            " fetches what it needs with a join token (default: any free)")
    serve.add_argument("--web", metavar="[HOST:]PORT", type=loopback_port, default=None,
                       help="serve the live map on this loopback port (docs/monitoring.md); "
                            "traces into web-trace.jsonl beside the state file unless --trace")
    serve.set_defaults(func=run_serve)

    auctions = subparsers.add_parser(
        "auctions", help="follow a running fleet's auctions live (fleetbid serve)",
        description="Listen to the announcement group of a running `fleetbid serve` and show "
                    "its auctions live: auction, cluster, bidders, best bid, time left, winner.",
    )
    auctions.add_argument("--json", action="store_true",
                          help="print the announcements as JSON lines instead of a table")
    auctions.add_argument("--all", action="store_true",
                          help="with --json: vehicle and counter announcements too")
    auctions.add_argument("--count", metavar="N", type=positive_int, default=None,
                          help="exit once N auctions have ended (default: run until Ctrl-C)")
    auctions.add_argument("--state", metavar="PATH", default=None, help=STATE_HELP)
    auctions.add_argument("--group", metavar="ADDR:PORT", type=multicast_endpoint,
                          default=None, help="listen here instead of the state file's group")
    auctions.add_argument("--key", type=hex_key, default=None,
                          help="with --group: the group's HMAC key (hex)")
    auctions.set_defaults(func=run_auctions, log_level="WARNING")

    status = subparsers.add_parser(
        "status", help="the health of a running `fleetbid serve`",
        description="Server, workers, replica hosts and quorum, queue length and rides "
                    "served per minute of the running serve. Exit 0 healthy, 1 degraded "
                    "(e.g. the auction managers lost their quorum), 2 no fleet running.",
    )
    status.add_argument("--json", action="store_true", help="print one JSON object")
    status.add_argument("--state", metavar="PATH", default=None, help=STATE_HELP)
    status.set_defaults(func=run_status, log_level="WARNING")

    soak = subparsers.add_parser(
        "soak", help="keep a fleet busy with a mixed, hostile load; report what held",
        description="Passengers at a steady rate, a flood from one account, malformed and "
                    "hostile stanzas, and replica-leader kills, for --minutes; then rides "
                    "served, rejections by reason, double outcomes, memory over time and "
                    "restarts. Exit 1 on a double outcome, a fatal death or growing memory.",
    )
    add_population_options(soak)
    soak.add_argument("--minutes", type=positive_float, default=10.0,
                      help="wall minutes of load, fractions allowed (%(default)s)")
    soak.add_argument("--passengers-per-s", type=positive_float, default=1.0,
                      help="ordinary passengers per wall second, Poisson (%(default)s)")
    soak.add_argument("--flood-per-s", type=non_negative_float, default=10.0,
                      help="ride requests per second from the one flooding account "
                           "(%(default)s; 0: no flood)")
    soak.add_argument("--hostile-every", type=positive_float, default=5.0,
                      help="seconds between batches of malformed/hostile stanzas "
                           "(%(default)s)")
    soak.add_argument("--replica-kills", type=non_negative_int, default=2,
                      help="SIGKILLs of the replica group's leader, evenly spread "
                           "(%(default)s; the default group of 3 + 1 standby survives 2)")
    soak.add_argument("--sample-every", type=positive_float, default=10.0,
                      help="seconds between memory samples (%(default)s)")
    soak.add_argument("--json", action="store_true", help="print the report as JSON")
    soak.set_defaults(func=run_soak)

    request = subparsers.add_parser(
        "request", help="ask a running fleet (fleetbid serve) for rides",
        description=REQUEST_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    request.add_argument("--from", dest="source", metavar="LAT,LON", default=None,
                         help="pickup point")
    request.add_argument("--to", metavar="LAT,LON", default=None, help="drop-off point")
    request.add_argument("--from-node", metavar="ID", default=None, help="pickup road node")
    request.add_argument("--to-node", metavar="ID", default=None, help="drop-off road node")
    request.add_argument("--script", metavar="FILE", default=None,
                         help="replay a CSV or JSON-lines request script")
    request.add_argument("--random", metavar="N", type=positive_int, default=None,
                         help="send N requests between random road nodes")
    request.add_argument("--interval", type=non_negative_float, default=10.0,
                         help="with --random: simulated seconds between requests "
                              "(%(default)s)")
    request.add_argument("--seed", type=non_negative_int, default=None,
                         help="with --random: seed of the random nodes (default: fresh)")
    request.add_argument("--timeout", type=positive_float, default=None,
                         help="wall seconds to wait for an outcome (default: from the "
                              "fleet's patience and speed)")
    request.add_argument("--json", action="store_true",
                         help="print JSON (one object: the outcome, or outcomes + summary)")
    request.add_argument("--state", metavar="PATH", default=None, help=STATE_HELP)
    request.add_argument("--law", default=None,
                         help="the law to auction these rides under (a built-in name or a "
                              "TOML file the serve also adopted; default: the serve's)")
    add_log_level(request)
    request.set_defaults(func=run_request)
