"""The live grid: the same scenarios on live agents beside the simulator's figures.

`fleetbid experiment paper --fast --live-grid` runs the simulator sweeps and then a reduced
grid (both maps × a few loads × every policy, one seed) on live agents over the real XMPP
server. Same requests, same vehicle starts, same clusters: what differs is the protocol
(messages, latencies, replicated managers) and the live clock. The report puts each
point's average wait beside the simulator's and says how far apart they are; the target is
10 %.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from fleetbid.experiment.sweep import Point

TARGET = 0.10  # |live / sim - 1| on the average wait
GRID_PASSENGERS = (100, 250, 500)
# 60 simulated seconds per wall second: an auction's ~45 ms costs a passenger ~3 s of
# simulated wait (a few % of the waits compared); at the sweeps' 600 it cost ~30 s.
GRID_SPEED = 60.0


@dataclass(frozen=True)
class Pair:
    map: str
    policy: str
    passengers: int
    sim_wait_s: float | None
    live_wait_s: float | None
    sim_unserved: int
    live_unserved: int
    messages_per_served: float | None
    live_deadhead: float | None = None  # the live run's empty-distance ratio

    @property
    def gap(self) -> float | None:
        """live / sim − 1 on the average wait (None when either served nobody)."""
        if self.sim_wait_s is None or self.live_wait_s is None or self.sim_wait_s <= 0:
            return None
        return self.live_wait_s / self.sim_wait_s - 1


def pairs(sim: Sequence[Point], live: Sequence[Point]) -> list[Pair]:
    """Each live point beside the simulator's point of the same map, policy, load and seed."""
    by_key = {(p.map, p.policy, p.passengers, p.seed): p for p in sim}
    out = []
    for p in live:
        s = by_key.get((p.map, p.policy, p.passengers, p.seed))
        if s is None:
            continue
        out.append(Pair(p.map, p.policy, p.passengers, s.wait_avg_s, p.wait_avg_s,
                        s.unserved, p.unserved, p.messages_per_served, p.deadhead_ratio))
    return out


def summary(rows: Sequence[Pair]) -> dict[str, object]:
    gaps = [abs(r.gap) for r in rows if r.gap is not None]
    top = max((r.passengers for r in rows), default=0)
    messages = {f"{r.map}/{r.policy}": (None if r.messages_per_served is None
                                        else round(r.messages_per_served, 2))
                for r in rows if r.passengers == top}
    return {
        "points": len(rows),
        "max_abs_wait_gap": round(max(gaps), 4) if gaps else None,
        "within_target": sum(g <= TARGET for g in gaps),
        "target": TARGET,
        "messages_per_served_at_top_load": messages,
        "top_load": top,
    }


def report_lines(rows: Sequence[Pair], speed: float = GRID_SPEED) -> list[str]:
    if not rows:
        return []
    summ = summary(rows)
    lines = [
        "",
        "## Live agents beside the simulator",
        "",
        f"The same scenarios on live agents (real XMPP server, one replica, the clock at "
        f"{speed:g} simulated seconds per wall second). {summ['within_target']} of "
        f"{summ['points']} points have their average wait within {TARGET:.0%} of the "
        f"simulator's; the largest gap is {_pct(summ['max_abs_wait_gap'])}.",
        "",
        "| map | policy | passengers | sim wait (s) | live wait (s) | live / sim − 1 "
        "| unserved sim / live | messages per served passenger (live) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.map} | {r.policy} | {r.passengers} | {_num(r.sim_wait_s)} | "
            f"{_num(r.live_wait_s)} | {_pct(r.gap)} | {r.sim_unserved} / {r.live_unserved} | "
            f"{_num(r.messages_per_served)} |")
    return lines


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def _pct(value: object) -> str:
    return "n/a" if not isinstance(value, int | float) else f"{value:+.1%}"
