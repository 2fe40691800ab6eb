"""Turn sweep points and latency rows into results.json, PNG plots, tables and report.md."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fleetbid.experiment import grid
from fleetbid.experiment import paper_numbers as paper
from fleetbid.experiment.sweep import Point, mean_std

# The paper's FIFO baseline, in both readings (docs/paper.md): strict longest-idle over the
# whole fleet, and longest-idle within the pickup's cluster. Every policy is compared to each.
FIFOS = {"fifo": "FIFO", "fifo-cluster": "FIFO-cluster"}


def improvement_key(baseline: str) -> str:
    """Summary key of the improvements over a baseline: "wait_improvement_vs_fifo_cluster"."""
    return "wait_improvement_vs_" + baseline.replace("-", "_")


def _stat(points: Sequence[Point], field: str, **where: Any) -> tuple[float | None, float | None]:
    chosen = [p for p in points if all(getattr(p, k) == v for k, v in where.items())]
    return mean_std([getattr(p, field) for p in chosen])


def summary(points: Sequence[Point], latency: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The --json summary: figures at the grid's highest passenger count."""
    top = max(p.passengers for p in points)
    maps = sorted({p.map for p in points})
    policies = list(dict.fromkeys(p.policy for p in points))
    improvement: dict[str, dict[str, dict[str, float | None]]] = {b: {} for b in FIFOS}
    deadhead: dict[str, dict[str, float | None]] = {}
    wait: dict[str, dict[str, float | None]] = {}
    unserved: dict[str, dict[str, float | None]] = {}
    gap: dict[str, float | None] = {}
    batch_wait_gap: dict[str, float | None] = {}
    for m in maps:
        base = {b: _stat(points, "wait_avg_s", map=m, policy=b, passengers=top)[0]
                for b in FIFOS}
        deadhead[m], wait[m], unserved[m] = {}, {}, {}
        for b in FIFOS:
            improvement[b][m] = {}
        for pol in policies:
            w, _ = _stat(points, "wait_avg_s", map=m, policy=pol, passengers=top)
            wait[m][pol] = w
            unserved[m][pol], _ = _stat(points, "unserved", map=m, policy=pol, passengers=top)
            for b, ref in base.items():
                improvement[b][m][pol] = None if w is None or not ref else round(1 - w / ref, 4)
            d, _ = _stat(points, "deadhead_ratio", map=m, policy=pol, passengers=top)
            deadhead[m][pol] = None if d is None else round(d, 4)
        g, _ = _stat(points, "batch_gap", map=m, policy="batch-auction", passengers=top)
        gap[m] = g
        b, _ = _stat(points, "wait_avg_s", map=m, policy="batch-auction", passengers=top)
        o, _ = _stat(points, "wait_avg_s", map=m, policy="optimal", passengers=top)
        batch_wait_gap[m] = None if b is None or not o else round(b / o - 1, 4)
    sim = [p.run_s for p in points if p.source == "sim" and p.passengers == top]
    return {
        "passengers": top,
        # 1 - wait / baseline's wait: "wait_improvement_vs_fifo", "..._vs_fifo_cluster"
        **{improvement_key(b): improvement[b] for b in FIFOS},
        "deadhead_ratio": deadhead,
        "wait_avg_s": wait,
        # never picked up (not in the averages): left in a cluster no vehicle came back to
        "unserved": unserved,
        "batch_vs_optimal_gap": gap,
        "batch_vs_optimal_wait_gap": batch_wait_gap,
        "sim_point_max_s": round(max(sim), 2) if sim else None,
        "latency_ms": {f"{r['passengers']}/{r['proxies']}": r["latency_avg_ms"] for r in latency},
    }


def plot(points: Sequence[Point], out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    for m in sorted({p.map for p in points}):
        for field, label in (("wait_avg_s", "average"), ("wait_max_s", "maximum")):
            fig, ax = plt.subplots(figsize=(6, 4))
            for pol in dict.fromkeys(p.policy for p in points):
                xs = sorted({p.passengers for p in points if p.map == m and p.policy == pol})
                stats = [_stat(points, field, map=m, policy=pol, passengers=x) for x in xs]
                ys = [s[0] if s[0] is not None else float("nan") for s in stats]
                es = [s[1] or 0.0 for s in stats]
                ax.errorbar(xs, [y / 60 for y in ys], yerr=[e / 60 for e in es], marker="o",
                            capsize=3, label=pol)
            ax.set_xlabel("passengers")
            ax.set_ylabel(f"{label} waiting time (min)")
            ax.set_title(f"{m} map: {label} waiting time, 100 vehicles")
            ax.grid(alpha=0.3)
            ax.legend()
            name = f"wait_{'avg' if label == 'average' else 'max'}_{m}.png"
            fig.tight_layout()
            fig.savefig(out / name, dpi=110)
            plt.close(fig)
            files.append(name)
    return files


def _fmt(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def write_report(
    out: Path, points: Sequence[Point], latency: Sequence[dict[str, Any]],
    meta: dict[str, Any], live: Sequence[Point] = (),
) -> dict[str, Any]:
    """`points`: the sweeps (one source); `live`: the live grid run beside simulator sweeps."""
    out.mkdir(parents=True, exist_ok=True)
    summ = summary(points, latency)
    pairs = grid.pairs(points, live)
    if pairs:
        summ["live_grid"] = grid.summary(pairs)
    pngs = plot(points, out)
    results = {"meta": meta, "summary": summ, "points": [p.to_dict() for p in points],
               "live_points": [p.to_dict() for p in live], "latency": list(latency)}
    (out / "results.json").write_text(json.dumps(results, indent=1))
    top = summ["passengers"]
    maps = sorted(summ["deadhead_ratio"])
    policies = list(dict.fromkeys(p.policy for p in points))
    lines = [
        "# Fleet paper evaluation, reproduced",
        "",
        f"Command: `{meta.get('command', '')}`. Sweeps: {meta.get('source')}, "
        f"{meta.get('vehicles')} vehicles, Poisson arrivals at {meta.get('rate_per_min')} "
        f"per simulated minute, passengers {meta.get('passengers')}, seeds {meta.get('seeds')}. "
        f"Figures below are at {top} passengers (mean over seeds).",
        "",
        "## Table I: empty-distance ratio (distance driven empty / total)",
        "",
        "| map | " + " | ".join(policies) + " | paper FIFO | paper auction |",
        "|---|" + "---|" * (len(policies) + 2),
    ]
    for m in maps:
        row = [_fmt(summ["deadhead_ratio"][m].get(p)) for p in policies]
        ref = paper.DEADHEAD.get(m, {})
        lines.append(f"| {m} | " + " | ".join(row)
                     + f" | {ref.get('fifo', 'n/a')} | {ref.get('auction', 'n/a')} |")
    lines += [
        "",
        "## Average waiting time and improvement over both FIFOs",
        "",
        "FIFO: the vehicle idle the longest in the whole fleet. FIFO-cluster: the vehicle idle "
        "the longest in the pickup's cluster, else (none idle there) the longest idle "
        "elsewhere. The paper does not say which FIFO its auction figure is measured against.",
        "",
        "| map | policy | avg wait (s) | "
        + " | ".join(f"1 − wait/{label}" for label in FIFOS.values())
        + " | unserved | paper (auction vs its FIFO) |",
        "|---|---|---|" + "---|" * len(FIFOS) + "---|---|",
    ]
    for m in maps:
        for p in policies:
            ref = f"{paper.WAIT_IMPROVEMENT.get(m, 0):.0%}" if p == "auction" else ""
            gains = " | ".join(_fmt(summ[improvement_key(b)][m].get(p)) for b in FIFOS)
            lines.append(f"| {m} | {p} | {_fmt(summ['wait_avg_s'][m].get(p), 1)} | {gains} | "
                         f"{_fmt(summ['unserved'][m].get(p), 1)} | {ref} |")
    lines += [
        "",
        "## Batch ε-auction vs optimal (linear_sum_assignment)",
        "",
        "| map | total pickup time gap per batch | average-wait gap |",
        "|---|---|---|",
    ]
    for m in maps:
        lines.append(f"| {m} | {_fmt(summ['batch_vs_optimal_gap'][m], 6)} | "
                     f"{_fmt(summ['batch_vs_optimal_wait_gap'][m], 4)} |")
    lines += [
        "",
        "## Table II: live auction latency (ms, request to ride-assigned, real XMPP server)",
        "",
        _rate_line(meta),
        "",
        "| passengers | proxies | ours avg | ours p50 | ours p99 | paper | paper / ours avg |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in latency:
        ref = paper.LATENCY_MS.get(r["passengers"], {}).get(str(r["proxies"]))
        ratio = f"{ref / r['latency_avg_ms']:.0f}×" if ref and r["latency_avg_ms"] else ""
        lines.append(f"| {r['passengers']} | {r['proxies']} | {_fmt(r['latency_avg_ms'], 1)} | "
                     f"{_fmt(r['latency_p50_ms'], 1)} | {_fmt(r['latency_p99_ms'], 1)} | "
                     f"{ref or ''} | {ratio} |")
    lines += grid.report_lines(pairs, meta.get("live_grid_speed") or grid.GRID_SPEED)
    lines += ["", "## Plots", ""] + [f"![{f}]({f})" for f in pngs]
    lines += ["", f"Slowest simulator point at {top} passengers: {summ['sim_point_max_s']} s.",
              "See docs/paper.md for definitions and where we differ from the paper."]
    (out / "report.md").write_text("\n".join(lines) + "\n")
    return summ


def _rate_line(meta: dict[str, Any]) -> str:
    spacing = meta.get("latency_spacing_s")
    if not spacing:
        return "Requests sent as fast as the passengers log in."
    return (f"Requests {spacing} s apart ({1 / spacing:.0f} per second), below the sustained "
            "auction throughput `fleetbid bench auction` measures, so each row shows an "
            "auction's own latency rather than a queue.")

