"""`fleetbid bench servers`: the same auction benchmark on the embedded server, Prosody and
ejabberd, one after the other in one run (docs/scale-out.md, README's table).

Each server is started for its turn (fleetbid's own config, `fleetbid xmpp`), measured with
`bench_size` (start-up agents/s, sequential latency, a burst's auctions/s) and stopped.
With `--rounds N` the servers take turns N times and each figure is the median of its N
values, so a load spike on a shared machine does not land on one server only.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import shutil
import statistics
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from fleetbid.bench.auction import BENCH_SPEED
from fleetbid.bench.scale import bench_size
from fleetbid.bench.server_names import SERVERS
from fleetbid.core.config import RunConfig
from fleetbid.options import config_from
from fleetbid.platform import eventloop
from fleetbid.platform.external_servers.ejabberd import Ejabberd
from fleetbid.platform.external_servers.prosody import Prosody
from fleetbid.platform.external_servers.server import Flavor, ManagedServer, installed
from fleetbid.platform.xmpp_server import EmbeddedXmppServer, XmppEndpoint

# Debian's sample prosody.cfg.lua enables mod_limits at this rate: kept measurable as its
# own column to show what it costs (fleetbid's own Prosody config does not load it).
DEBIAN_C2S_RATE = "10kb/s"

EXTERNAL: dict[str, Callable[[], Flavor]] = {
    "prosody": Prosody,
    "prosody-debian-limits": lambda: Prosody(c2s_rate_limit=DEBIAN_C2S_RATE),
    "ejabberd": Ejabberd,
}
assert set(SERVERS) == {"embedded", *EXTERNAL}
COLUMNS = ("latency_p50_ms", "latency_p99_ms", "auctions_per_s", "agents_per_s",
           "burst_served")


@contextlib.contextmanager
def running(name: str) -> Iterator[XmppEndpoint]:
    # Under /tmp: the external servers run as their own users and must reach the directory.
    tmp = tempfile.mkdtemp(prefix=f"fleetbid-bench-{name}-")
    try:
        if name == "embedded":
            with EmbeddedXmppServer(Path(tmp) / "xmpp") as server:
                yield server.endpoint
        else:
            with ManagedServer(EXTERNAL[name](), tmp) as managed:
                yield managed.endpoint
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def bench_servers(config: RunConfig, servers: list[str], rounds: int, latency_auctions: int,
                  burst: int, say: Callable[[str], None]) -> dict[str, dict[str, Any]]:
    samples: dict[str, list[dict[str, Any]]] = {name: [] for name in servers}
    for turn in range(rounds):
        for name in servers:
            say(f"round {turn + 1}/{rounds}: {name}")
            with running(name) as endpoint:
                samples[name].append(eventloop.run(
                    bench_size(config, endpoint, latency_auctions, burst, say)))
    return {name: {key: statistics.median(row[key] for row in rows) for key in COLUMNS}
            for name, rows in samples.items()}


def markdown_table(figures: dict[str, dict[str, Any]]) -> str:
    head = ("| server | p50 ms | p99 ms | auctions/s | start-up agents/s | burst served |\n"
            "|---|---:|---:|---:|---:|---:|")
    rows = [f"| {name} | " + " | ".join(str(row[k]) for k in COLUMNS) + " |"
            for name, row in figures.items()]
    return "\n".join([head, *rows])


def cmd_bench_servers(args: argparse.Namespace) -> int:
    config = config_from(args, requests=0)
    config = dataclasses.replace(config, speed=BENCH_SPEED, patience_s=60 * BENCH_SPEED)
    servers = list(dict.fromkeys(args.servers))
    missing = [n for n in servers if n != "embedded" and not installed(EXTERNAL[n]())]
    for name in missing:
        print(f"fleetbid: {name} is not installed: left out (apt-get install -y "
              f"{name.split('-')[0]})", file=sys.stderr)
    servers = [n for n in servers if n not in missing]

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    figures = bench_servers(config, servers, args.rounds, args.latency_auctions,
                            args.auctions, say)
    command = "fleetbid " + " ".join(sys.argv[1:])
    if args.json:
        print(json.dumps({"servers": figures, "vehicles": config.vehicles,
                          "rounds": args.rounds, "command": command}))
    else:
        print(markdown_table(figures))
        print(f"\n{config.vehicles} vehicles, median of {args.rounds} round(s): `{command}`")
    return 0
