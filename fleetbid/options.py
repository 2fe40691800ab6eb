"""The population options shared by `run`, `serve` and `bench`, and how they become a RunConfig."""

from __future__ import annotations

import argparse

from fleetbid.core.config import RunConfig
from fleetbid.core.values import (
    ipv4_address,
    multicast_group,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
)
from fleetbid.platform.xmpp_server import XmppEndpoint, external_endpoint


def add_log_level(p: argparse.ArgumentParser) -> None:
    """`--log-level`, the same choices and default on every command that starts agents."""
    p.add_argument("--log-level", default="WARNING",
                   choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="log level")


def add_population_options(p: argparse.ArgumentParser, fleet_size: bool = True) -> None:
    """The options of a population; `fleet_size=False` leaves --vehicles to the caller."""
    d = RunConfig()
    if fleet_size:
        p.add_argument("--vehicles", type=positive_int, default=d.vehicles,
                       help="fleet size (%(default)s)")
    p.add_argument("--map", default=None,
                   help="OSMnx-style GraphML file, or 'dense' (central Bengaluru, packaged) or "
                        "'suburb' (default: the built-in generated city)")
    p.add_argument("--clusters", type=positive_int, default=d.clusters,
                   help="number of geographic clusters (%(default)s)")
    p.add_argument("--radius", type=positive_float, default=d.radius_m,
                   help="admission radius δ around the pickup, metres (%(default)s)")
    p.add_argument("--max-bidders", type=non_negative_int, default=d.max_bidders,
                   help="at most this many of the nearest eligible vehicles bid in an "
                        "auction (0: every vehicle in the cluster and radius; %(default)s)")
    p.add_argument("--queue-limit", type=positive_int, default=d.queue_limit,
                   help="requests that may wait for a free AuctionManager; more are turned "
                        "away with the reason (%(default)s)")
    p.add_argument("--max-requests-per-minute", type=positive_int,
                   default=d.max_requests_per_minute,
                   help="requests a passenger account may send a minute; the embedded XMPP "
                        "server refuses more with the reason (%(default)s)")
    p.add_argument("--proxies", default=d.proxies,
                   help="'auto' (about √n groups of √n), 0 (no proxy) or a fixed K")
    p.add_argument("--processes", type=positive_int, default=d.processes,
                   help="OS processes for the agents (%(default)s)")
    p.add_argument("--auction-managers", type=positive_int, default=d.auction_managers,
                   help="pool of AuctionManager agents (%(default)s)")
    p.add_argument("--speed", type=positive_float, default=d.speed,
                   help="simulated seconds per wall second (%(default)s)")
    p.add_argument("--bid-timeout", type=positive_float, default=d.bid_timeout_s,
                   help="longest bidding phase, simulated s (%(default)s)")
    p.add_argument("--patience", type=positive_float, default=d.patience_s,
                   help="how long a passenger waits for a vehicle, simulated s (%(default)s)")
    p.add_argument("--seed", type=non_negative_int, default=d.seed,
                   help="scenario seed (%(default)s)")
    p.add_argument("--xmpp", metavar="HOST:PORT[,HOST:PORT...]", default=None,
                   help="use this XMPP server instead of the embedded one; several "
                        "addresses (nodes of one cluster): worker processes alternate "
                        "between them and fail over to the next when a node is lost")
    p.add_argument("--domain", default="localhost",
                   help="XMPP domain of --xmpp (%(default)s)")
    p.add_argument("--trace", metavar="FILE", default=None,
                   help="record every message of every agent into FILE (JSON lines)")
    p.add_argument("--replicas", type=int, default=d.replicas,
                   help="replicas of the AuctionManagers' state, each its own process, kept "
                        "identical by ISIS total order over UDP multicast (1 = no "
                        "replication; %(default)s)")
    p.add_argument("--replicate-main", action="store_true",
                   help="replicate the MainManager's registry too, in a group of its own on "
                        "the same replica hosts (implied by --kill main; off by default: it "
                        "costs throughput, docs/replication.md)")
    p.add_argument("--standby-hosts", type=non_negative_int, default=d.standby_hosts,
                   help="spare replica hosts the group recruits after a crash (%(default)s)")
    add_log_level(p)
    p.add_argument("--law", default=d.law,
                   help="default law: a built-in name or a TOML law file (%(default)s)")
    p.add_argument("--audit", metavar="PATH", default=None,
                   help="the auditor's SQLite file (append-only; default: in memory)")
    p.add_argument("--reposition", action="store_true",
                   help="idle vehicles drive toward demand, from the figures the MainManager "
                        "announces on the signed announcement group (docs/paper.md; off by "
                        "default)")
    add_host_options(p)


def add_host_options(p: argparse.ArgumentParser) -> None:
    """Where the server listens and how the replicas multicast (docs/hosts.md)."""
    d = RunConfig()
    p.add_argument("--listen", type=ipv4_address, default=d.listen, metavar="ADDR",
                   help="address the embedded XMPP server binds (%(default)s; another "
                        "address only on a private LAN of the fleet's own hosts)")
    p.add_argument("--mcast-interface", type=ipv4_address, default=d.mcast_interface,
                   metavar="ADDR", help="interface address of the replicas' multicast "
                                        "(%(default)s)")
    p.add_argument("--mcast-ttl", type=positive_int, default=d.mcast_ttl, metavar="N",
                   help="multicast TTL of the replicas (%(default)s: this LAN segment)")
    p.add_argument("--mcast-group", type=multicast_group, default=None,
                   metavar="ADDR", help="the replicas' multicast group (default: random "
                                        "239.255.x.y per run)")


def add_lab_options(p: argparse.ArgumentParser, requests: int, interval: float) -> None:
    """What `fleetbid demo hosts` and `fleetbid bench hosts` share: the requests sent from
    host 2, their spacing, the seed, JSON output and the agents' log level."""
    p.add_argument("--requests", type=positive_int, default=requests,
                   help="requests sent from host 2 (%(default)s)")
    p.add_argument("--interval", type=non_negative_float, default=interval,
                   help="simulated seconds between requests (%(default)s; 0: a burst)")
    p.add_argument("--seed", type=non_negative_int, default=1, help="(%(default)s)")
    p.add_argument("--json", action="store_true", help="print the outcome as JSON")
    add_log_level(p)


def config_from(args: argparse.Namespace, **extra: object) -> RunConfig:
    return RunConfig(
        vehicles=args.vehicles, map=args.map, clusters=args.clusters, radius_m=args.radius,
        proxies=args.proxies, processes=args.processes, auction_managers=args.auction_managers,
        speed=args.speed, bid_timeout_s=args.bid_timeout, patience_s=args.patience,
        seed=args.seed, trace=args.trace, replicas=args.replicas, max_bidders=args.max_bidders,
        queue_limit=args.queue_limit, max_requests_per_minute=args.max_requests_per_minute,
        standby_hosts=args.standby_hosts, law=args.law, audit=args.audit,
        replicate_main=args.replicate_main, reposition=args.reposition,
        listen=args.listen, mcast_interface=args.mcast_interface, mcast_ttl=args.mcast_ttl,
        mcast_group=args.mcast_group or "",
        **extra,  # type: ignore[arg-type]
    )


def endpoint_from(args: argparse.Namespace) -> XmppEndpoint | None:
    return external_endpoint(args.xmpp, args.domain) if args.xmpp else None
