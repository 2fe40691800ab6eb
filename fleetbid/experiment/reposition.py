"""`fleetbid experiment reposition`: does idle repositioning pay? (issue 12, part 3)

The paper's scenarios (both maps, 100 vehicles, Poisson arrivals at 8 per minute) in the
simulator, each policy with and without `sim.reposition.Repositioner`; per map, policy and
load: the average wait and the empty-distance ratio, mean over seeds, and the change.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fleetbid.core.scenario import poisson_requests
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
