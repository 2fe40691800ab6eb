"""Waiting-time sweeps: passengers × policy × map × seed, in the simulator or on live agents."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from fleetbid.core.scenario import poisson_requests
from fleetbid.maps import load_map, make_clusters
from fleetbid.policies import make_policy
from fleetbid.run.population import vehicle_start_nodes
from fleetbid.sim import TravelMatrix, simulate
from fleetbid.sim.reposition import Repositioner

DENSE_SPEC = "dense"  # the packaged Bengaluru extract (fleetbid/maps/data)
SPARSE_SPEC = "suburb"
# A policy name with this suffix runs with idle repositioning (--reposition live,
# sim/reposition.py in the simulator): e.g. "auction+reposition".
REPOSITION = "+reposition"


def split_policy(name: str) -> tuple[str, bool]:
    """(the dispatch policy, whether idle vehicles reposition) of a sweep's policy name."""
    base = name.removesuffix(REPOSITION)
    return base, base != name


@dataclass(frozen=True)
class SweepSettings:
    maps: dict[str, str]  # label ("dense"/"sparse") -> load_map spec
    policies: tuple[str, ...]
    passengers: tuple[int, ...]
    seeds: int = 1
    vehicles: int = 100
    rate_per_min: float = 8.0  # Poisson arrivals; more passengers = a longer run at this rate
    clusters: int = 4
    batch_s: float = 10.0
    radius_m: float = math.inf  # the paper's auction: the whole cluster bids


@dataclass(frozen=True)
class Point:
    map: str
    policy: str
    passengers: int
    seed: int
    wait_avg_s: float | None
    wait_max_s: float | None
    deadhead_ratio: float | None
    served: int
    unserved: int
    batch_gap: float | None  # batch policies: total pickup time vs optimum, over all batches
    run_s: float  # wall seconds of this point
    source: str  # "sim" or "live"
    messages_per_served: float | None = None  # live runs: every agent message / rides served

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def sim_sweep(settings: SweepSettings, say: Callable[[str], None] = lambda _: None) -> list[Point]:
    points: list[Point] = []
    for label, spec in settings.maps.items():
        roadmap = load_map(spec)
        clusters = make_clusters(roadmap, settings.clusters, 0)
        started = time.perf_counter()
        TravelMatrix.for_map(roadmap)
        say(f"{label}: travel-time matrix in {time.perf_counter() - started:.1f} s")
        for seed in range(settings.seeds):
            everyone = poisson_requests(roadmap, max(settings.passengers), settings.rate_per_min,
                                        seed)
            starts = vehicle_start_nodes(roadmap, settings.vehicles, seed)
            for n in settings.passengers:
                for name in settings.policies:
                    base, moves = split_policy(name)
                    policy = make_policy(base, radius_m=settings.radius_m,
                                         batch_s=settings.batch_s, audit=True)
                    t0 = time.perf_counter()
                    # The first n requests of the seed's stream: nested scenarios across n.
                    res = simulate(roadmap, clusters, policy, everyone[:n], starts,
                                   reposition=Repositioner() if moves else None)
                    audit = getattr(policy, "audit", None)
                    points.append(Point(
                        label, name, n, seed, res.wait_avg(), res.wait_max(),
                        res.deadhead_ratio(), len(res.trips), len(res.unserved),
                        audit.gap() if audit is not None else None,
                        time.perf_counter() - t0, "sim",
                    ))
                say(f"{label} seed {seed}: {n} passengers done")
    return points


def live_sweep(
    settings: SweepSettings, run: Callable[[str, str, int, int], dict[str, Any]],
    say: Callable[[str], None] = lambda _: None,
) -> list[Point]:
    """The same grid on live agents; `run(spec, policy, passengers, seed)` returns a run
    summary (run/summary.py)."""
    points: list[Point] = []
    for label, spec in settings.maps.items():
        for seed in range(settings.seeds):
            for n in settings.passengers:
                for name in settings.policies:
                    t0 = time.perf_counter()
                    s = run(spec, name, n, seed)
                    points.append(Point(
                        label, name, n, seed, s["wait_avg_s"], s["wait_max_s"],
                        s["deadhead_ratio"], s["served"], s["rejected"], None,
                        time.perf_counter() - t0, "live",
                        s["messages"] / s["served"] if s["served"] else None,
                    ))
                    say(f"{label} seed {seed} {n} {name}: live run done")
    return points


def mean_std(values: Sequence[float | None]) -> tuple[float | None, float | None]:
    vals = [v for v in values if v is not None]
    if not vals:
        return None, None
    mean = sum(vals) / len(vals)
    var = sum((v - mean) ** 2 for v in vals) / len(vals)
    return mean, math.sqrt(var)
