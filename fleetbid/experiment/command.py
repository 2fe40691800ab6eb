"""`fleetbid experiment paper --out DIR [--fast] [--quick] [--seeds K] [--json]`."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

from fleetbid.core.values import non_negative_float, positive_float, positive_int
from fleetbid.experiment.grid import GRID_PASSENGERS, GRID_SPEED
from fleetbid.experiment.sweep import REPOSITION, SPARSE_SPEC, SweepSettings, split_policy
from fleetbid.options import add_log_level

FULL_PASSENGERS = (100, 250, 500, 1000, 1500, 2000)
QUICK_PASSENGERS = (150, 400)
FULL_LATENCY = ((50, 100, 1000), ("0", "1", "2", "auto"), 100)
QUICK_LATENCY = ((50,), ("0", "auto"), 50)
LIVE_SPEED = 600.0  # simulated seconds per wall second in live sweeps
# Both FIFO readings: the report compares every policy with each (report.FIFOS).
POLICY_ORDER = ("fifo", "fifo-cluster", "nearest", "auction", "batch-auction", "optimal")
# --reposition: these also with idle repositioning (policies/reposition.py), live and simulated
REPOSITION_POLICIES = ("auction", "batch-auction")


def add_parser(sub: Any) -> None:
    exp = sub.add_parser("experiment", help="reproduce published evaluations")
    which = exp.add_subparsers(dest="experiment", required=True)
    p = which.add_parser("paper", help="the fleet paper: waiting times, Tables I and II")
    p.add_argument("--out", required=True, help="directory for plots, report.md, results.json")
    p.add_argument("--fast", action="store_true",
                   help="waiting-time sweeps in the simulator (Table II is always live)")
    p.add_argument("--quick", action="store_true", help="a reduced grid for smoke runs")
    p.add_argument("--seeds", type=positive_int, default=1, help="repetitions (%(default)s)")
    # Default: the packaged Bengaluru extract (fleetbid/maps/data), so any directory works.
    p.add_argument("--dense-map", default=None,
                   help="GraphML of the dense city (default: the packaged central Bengaluru)")
    p.add_argument("--live-grid", action="store_true",
                   help="with --fast: also run a reduced grid on live agents (both maps, "
                        "--live-passengers, every policy, seed 0) and report it beside the "
                        "simulator's figures")
    p.add_argument("--live-passengers", type=positive_int, nargs="+", default=None,
                   help="the live grid's loads (default: 100 250 500; with --quick the quick "
                        "grid's)")
    p.add_argument("--live-speed", type=positive_float, default=GRID_SPEED,
                   help="the live grid's clock: simulated seconds per wall second "
                        "(%(default)s; every wall millisecond of protocol delay adds this many "
                        "simulated milliseconds to a wait)")
    p.add_argument("--no-latency", action="store_true", help="skip Table II (live agents)")
    p.add_argument("--reposition", action="store_true",
                   help="also run " + ", ".join(x + REPOSITION for x in REPOSITION_POLICIES)
                        + ": idle vehicles drive toward demand (in the simulator and the live "
                          "grid)")
    p.add_argument("--spacing", type=non_negative_float, default=0.1,
                   help="Table II: wall seconds between two requests (%(default)s); keep the "
                        "rate below what `fleetbid bench auction` sustains")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    add_log_level(p)
    p.set_defaults(func=cmd_paper)
    r = which.add_parser("reposition", help="does idle repositioning pay? (simulator, with and "
                                            "without, both maps)")
    r.add_argument("--passengers", type=positive_int, nargs="+", default=[500, 2000])
    r.add_argument("--policies", nargs="+", default=["auction", "batch-auction"],
                   choices=POLICY_ORDER)
    r.add_argument("--seeds", type=positive_int, default=3, help="repetitions (%(default)s)")
    r.add_argument("--window", type=positive_float, default=900.0,
                   help="simulated seconds of recent demand a vehicle looks at (%(default)s)")
    r.add_argument("--maps", nargs="+", choices=("dense", "sparse"), default=["dense", "sparse"],
                   help="(%(default)s)")
    r.add_argument("--live", action="store_true",
                   help="also on live agents, seed 0, with and without --reposition, beside "
                        "the simulator's seed 0")
    r.add_argument("--live-speed", type=positive_float, default=GRID_SPEED,
                   help="the live runs' clock: simulated seconds per wall second (%(default)s)")
    r.add_argument("--json", action="store_true", help="rows as one JSON list")
    add_log_level(r)
    r.set_defaults(func=cmd_reposition)


def cmd_reposition(args: argparse.Namespace) -> int:
    from fleetbid.experiment.reposition import MAPS, live_table, measure, measure_live, table

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    maps = {label: MAPS[label] for label in args.maps}
    if args.live:
        pairs = measure_live(args.policies, args.passengers, maps, lambda settings, spec, pol,
                             n, seed: _live_run(settings, spec, pol, n, seed, args.live_speed),
                             say)
        print(json.dumps([dataclasses.asdict(p) for p in pairs]) if args.json
              else live_table(pairs))
        return 0
    rows = measure(args.policies, args.passengers, args.seeds, args.window, say, maps)
    print(json.dumps([r.to_dict() for r in rows]) if args.json else table(rows))
    return 0


def cmd_paper(args: argparse.Namespace) -> int:
    from fleetbid.core.config import RunConfig
    from fleetbid.experiment.latency import latency_table
    from fleetbid.experiment.report import write_report
    from fleetbid.experiment.sweep import live_sweep, sim_sweep
    from fleetbid.platform import eventloop

    if args.seeds < 1:
        raise ValueError("--seeds must be >= 1")
    if not args.spacing > 0:
        raise ValueError("--spacing must be > 0")
    if args.dense_map is not None and not Path(args.dense_map).is_file():
        raise ValueError(f"dense map not found: {args.dense_map}")
    started = time.perf_counter()

    def say(text: str) -> None:
        print(f"[{time.perf_counter() - started:6.1f} s] {text}", file=sys.stderr, flush=True)

    if args.live_grid and not args.fast:
        raise ValueError("--live-grid compares live agents with the simulator: add --fast")
    grid_loads = tuple(args.live_passengers or (QUICK_PASSENGERS if args.quick
                                                else GRID_PASSENGERS))
    passengers = QUICK_PASSENGERS if args.quick else FULL_PASSENGERS
    if args.live_grid:  # the simulator runs every load the live grid runs
        passengers = tuple(sorted(set(passengers) | set(grid_loads)))
    settings = SweepSettings(
        maps={"dense": "dense" if args.dense_map is None else "dense:" + args.dense_map,
              "sparse": SPARSE_SPEC},
        policies=POLICY_ORDER + (tuple(x + REPOSITION for x in REPOSITION_POLICIES)
                                 if args.reposition else ()),
        passengers=passengers,
        seeds=args.seeds,
    )
    live: list[Any] = []
    if args.fast:
        points = sim_sweep(settings, say)
        if args.live_grid:
            small = dataclasses.replace(settings, passengers=grid_loads, seeds=1)
            live = live_sweep(small, lambda spec, pol, n, seed: _live_run(
                small, spec, pol, n, seed, args.live_speed), say)
    else:
        points = live_sweep(settings, lambda spec, pol, n, seed: _live_run(settings, spec, pol,
                                                                           n, seed), say)
    latency: list[dict[str, Any]] = []
    if not args.no_latency:
        sizes, proxies, vehicles = QUICK_LATENCY if args.quick else FULL_LATENCY
        base = RunConfig(vehicles=vehicles, map=settings.maps["dense"], requests=0, replicas=1)
        latency = eventloop.run(latency_table(base, proxies, sizes, say, args.spacing))
    meta = {
        "command": "fleetbid " + " ".join(sys.argv[1:]),
        "source": "simulator" if args.fast else "live agents",
        "vehicles": settings.vehicles, "rate_per_min": settings.rate_per_min,
        "passengers": list(settings.passengers), "seeds": settings.seeds,
        "batch_s": settings.batch_s, "clusters": settings.clusters,
        "latency_spacing_s": args.spacing,
        "live_grid_passengers": list(grid_loads) if args.live_grid else None,
        "live_grid_speed": args.live_speed if args.live_grid else None,
        "wall_s": None,
    }
    meta["wall_s"] = round(time.perf_counter() - started, 1)
    summ = write_report(Path(args.out), points, latency, meta, live)
    say(f"wrote {args.out}/report.md, results.json and plots")
    if args.json:
        print(json.dumps(summ))
    else:
        print((Path(args.out) / "report.md").read_text())
    return 0


def _live_run(settings: SweepSettings, spec: str, policy: str, n: int, seed: int,
              speed: float = LIVE_SPEED) -> dict[str, Any]:
    from fleetbid.core.config import RunConfig
    from fleetbid.platform import eventloop
    from fleetbid.run.job import run_scenario

    base, moves = split_policy(policy)
    config = RunConfig(
        vehicles=settings.vehicles, requests=n, rate=settings.rate_per_min, speed=speed,
        seed=seed, map=spec, clusters=settings.clusters, radius_m=1e9, patience_s=1e9,
        policy=base, batch_s=settings.batch_s, replicas=1, reposition=moves,
    )
    return eventloop.run(run_scenario(config, progress=False))
