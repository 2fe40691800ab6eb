"""The summary of a run: service quality (simulated time) and system latency (wall time)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from fleetbid.core.outcome import RideOutcome


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[rank - 1]


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def summarize(
    outcomes: Sequence[RideOutcome], stats: Sequence[dict[str, Any]], extra: dict[str, Any]
) -> dict[str, Any]:
    served = [o for o in outcomes if o.served]
    waits = [o.wait_s for o in served if o.wait_s is not None]
    latencies = [o.latency_ms for o in outcomes if o.latency_ms is not None]
    empty = sum(s["empty_m"] for s in stats)
    loaded = sum(s["loaded_m"] for s in stats)
    reasons: dict[str, int] = {}
    for o in outcomes:
        if not o.served:
            reasons[o.reason] = reasons.get(o.reason, 0) + 1
    return {
        "requests": len(outcomes),
        "served": len(served),
        "rejected": len(outcomes) - len(served),
        "wait_avg_s": _round(sum(waits) / len(waits)) if waits else None,
        "wait_p95_s": _round(percentile(waits, 95)),
        "wait_max_s": _round(max(waits)) if waits else None,
        "deadhead_ratio": round(empty / (empty + loaded), 4) if empty + loaded > 0 else None,
        "latency_p50_ms": _round(percentile(latencies, 50), 2),
        "latency_p99_ms": _round(percentile(latencies, 99), 2),
        "messages": sum(s["sent"] for s in stats),
        "xmpp_messages": sum(s["xmpp_sent"] for s in stats),
        "rejections": reasons,
        # --reposition: drives toward demand (replica hosts report no vehicles)
        "repositioned": sum(s.get("repositioned", 0) for s in stats),
        **extra,
    }


def show(value: Any, unit: str = "") -> str:
    return "n/a" if value is None else f"{value}{unit}"


def service_lines(s: dict[str, Any]) -> tuple[str, str]:
    """The waiting-time and latency lines, shared by `run` and `request` summaries."""
    return (
        f"waiting time    avg {show(s['wait_avg_s'], ' s')}  p95 {show(s['wait_p95_s'], ' s')}"
        f"  max {show(s['wait_max_s'], ' s')}  (simulated, request to pickup)",
        f"auction latency p50 {show(s['latency_p50_ms'], ' ms')}  p99 "
        f"{show(s['latency_p99_ms'], ' ms')}  (wall, request sent to passenger informed)",
    )


def rejection_lines(s: dict[str, Any]) -> list[str]:
    return [f"  rejected x{count}: {reason}" for reason, count in s.get("rejections", {}).items()]


def format_summary(summary: dict[str, Any]) -> str:
    s = summary
    waiting, latency = service_lines(s)
    lines = [
        f"requests        {s['requests']}  (served {s['served']}, rejected {s['rejected']})",
        waiting,
        f"deadhead ratio  {show(s['deadhead_ratio'])}  (distance driven empty / total)",
        latency,
        f"messages        {s['messages']} sent, {s['xmpp_messages']} crossed the XMPP server",
        f"population      {s['vehicles']} vehicles, {s['proxies']} proxies, "
        f"{s['processes']} processes, map {s['map']}",
    ]
    if s.get("replicas", 1) > 1:
        worst = s["failover_ms_max"]
        took = "" if worst is None else f" (longest {worst} ms)"
        lines.append(
            f"replication     {s['replicas']} replicas, {s['failovers']} failover(s){took}, "
            f"invariant violations {s['invariant_violations']} {s['invariants']}"
        )
    if s.get("plots"):
        lines.append("plots           " + ", ".join(s["plots"]))
    return "\n".join(lines + rejection_lines(s))
