"""Registers `fleetbid serve` and `fleetbid request` on the `fleetbid` parser.

The command modules are imported only when a command runs: `fleetbid --help` stays fast.
"""

from __future__ import annotations

import argparse
from typing import Any

from fleetbid.core.values import (
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
)
from fleetbid.options import add_population_options

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
                            "hosts; the state file then holds the fleet's join token "
                            "(docs/hosts.md; default %(default)s: no joining)")
    serve.add_argument("--replica-slots", type=non_negative_int, default=0, metavar="K",
                       help="let K joined nodes each add a replica of the AuctionManagers "
                            "to the group (`fleetbid node --replica-slot R`; %(default)s)")
    serve.set_defaults(func=run_serve)

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
    request.add_argument("--log-level", default="WARNING",
                         choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="agent log level")
    request.set_defaults(func=run_request)
