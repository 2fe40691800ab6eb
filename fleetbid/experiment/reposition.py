"""`fleetbid experiment reposition`: does idle repositioning pay? (issue 12, part 3)

The paper's scenarios (both maps, 100 vehicles, Poisson arrivals at 8 per minute) in the
simulator, each policy with and without `sim.reposition.Repositioner`; per map, policy and
load: the average wait and the empty-distance ratio, mean over seeds, and the change.

With `--live`: the same scenarios (seed 0) also on live agents with and without
`--reposition`, each beside the simulator's (`live_table`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fleetbid.core.scenario import poisson_requests
from fleetbid.experiment.grid import Pair, pairs
from fleetbid.experiment.sweep import REPOSITION, Point, SweepSettings, live_sweep, sim_sweep
from fleetbid.maps import load_map, make_clusters
from fleetbid.policies import make_policy
from fleetbid.run.population import vehicle_start_nodes
from fleetbid.sim import simulate
from fleetbid.sim.reposition import Repositioner

MAPS = {"dense": "dense", "sparse": "suburb"}


@dataclass(frozen=True)
class Row:
    map: str
    policy: str
    passengers: int
    wait_s: tuple[float, float]  # without, with (mean over seeds)
    deadhead: tuple[float, float]
    unserved: tuple[float, float]
    moves: float  # repositioning drives per run

    @property
    def wait_change(self) -> float:
        return self.wait_s[1] / self.wait_s[0] - 1 if self.wait_s[0] else math.nan

    def to_dict(self) -> dict[str, Any]:
        return {"map": self.map, "policy": self.policy, "passengers": self.passengers,
                "wait_s": list(self.wait_s), "deadhead_ratio": list(self.deadhead),
                "unserved": list(self.unserved), "moves": self.moves,
                "wait_change": round(self.wait_change, 4)}


def measure(policies: Sequence[str], passengers: Sequence[int], seeds: int,
            window_s: float = 900.0, say: Callable[[str], None] = lambda _: None,
            maps: dict[str, str] | None = None) -> list[Row]:
    rows = []
    for label, spec in (maps or MAPS).items():
        roadmap = load_map(spec)
        clusters = make_clusters(roadmap, 4, 0)
        for n in passengers:
            for name in policies:
                runs: list[list[tuple[float, float, int, int]]] = [[], []]
                for seed in range(seeds):
                    requests = poisson_requests(roadmap, n, 8.0, seed)
                    starts = vehicle_start_nodes(roadmap, 100, seed)
                    for i, mover in enumerate((None, Repositioner(window_s=window_s))):
                        policy = make_policy(name, radius_m=math.inf, batch_s=10.0)
                        res = simulate(roadmap, clusters, policy, requests, starts,
                                       reposition=mover)
                        runs[i].append((res.wait_avg() or 0.0, res.deadhead_ratio() or 0.0,
                                        len(res.unserved), res.repositions))
                rows.append(Row(label, name, n, _pair(runs, 0), _pair(runs, 1),
                                _pair(runs, 2), _mean(r[3] for r in runs[1])))
                say(f"{label} {n} {name}: wait {rows[-1].wait_change:+.1%}")
    return rows


def _mean(values: Any) -> float:
    vals = list(values)
    return sum(vals) / len(vals)


def _pair(runs: list[list[tuple[float, float, int, int]]], k: int) -> tuple[float, float]:
    return (round(_mean(r[k] for r in runs[0]), 4), round(_mean(r[k] for r in runs[1]), 4))


def table(rows: Sequence[Row]) -> str:
    lines = ["| map | policy | passengers | avg wait (s) without → with | change "
             "| empty-distance ratio without → with | unserved without → with | moves |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r.map} | {r.policy} | {r.passengers} | {r.wait_s[0]:.1f} → "
                     f"{r.wait_s[1]:.1f} | {r.wait_change:+.1%} | {r.deadhead[0]:.3f} → "
                     f"{r.deadhead[1]:.3f} | {r.unserved[0]:.1f} → {r.unserved[1]:.1f} | "
                     f"{r.moves:.1f} |")
    return "\n".join(lines)


def measure_live(policies: Sequence[str], passengers: Sequence[int], maps: dict[str, str],
                 run: Callable[[SweepSettings, str, str, int, int], dict[str, Any]],
                 say: Callable[[str], None] = lambda _: None) -> list[Pair]:
    """Each policy with and without repositioning, seed 0, in the simulator and on live
    agents (`run(settings, spec, policy, passengers, seed)`): the live points beside the
    simulator's."""
    settings = SweepSettings(maps=maps, policies=tuple(
        x for p in policies for x in (p, p + REPOSITION)), passengers=tuple(passengers))
    sim: list[Point] = sim_sweep(settings, say)
    live = live_sweep(settings, lambda spec, pol, n, seed: run(settings, spec, pol, n, seed),
                      say)
    return pairs(sim, live)


def live_table(rows: Sequence[Pair]) -> str:
    """Per map, policy and load: without → with, live (and the simulator's waits)."""
    by = {(r.map, r.policy, r.passengers): r for r in rows}
    lines = ["| map | policy | passengers | sim wait (s) without → with | live wait (s) "
             "without → with | live change | live empty-distance ratio without → with "
             "| live messages per served without → with | live / sim − 1 without, with |",
             "|---|---|---|---|---|---|---|---|---|"]
    for (label, policy, n), off in by.items():
        on = by.get((label, policy + REPOSITION, n))
        if policy.endswith(REPOSITION) or on is None:
            continue
        change = (on.live_wait_s / off.live_wait_s - 1 if on.live_wait_s and off.live_wait_s
                  else math.nan)
        lines.append(
            f"| {label} | {policy} | {n} | {_f(off.sim_wait_s)} → {_f(on.sim_wait_s)} | "
            f"{_f(off.live_wait_s)} → {_f(on.live_wait_s)} | {change:+.1%} | "
            f"{_f(off.live_deadhead, 3)} → {_f(on.live_deadhead, 3)} | "
            f"{_f(off.messages_per_served)} → {_f(on.messages_per_served)} | "
            f"{_g(off.gap)}, {_g(on.gap)} |")
    return "\n".join(lines)


def _f(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _g(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.1%}"
