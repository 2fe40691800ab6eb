"""Replication benchmark: real replica processes on loopback UDP multicast.

Measures ordered delivery latency (submit -> delivered at every replica), sustained ordered
throughput with pipelined submissions, failover after SIGKILL of the leader, and the raw
loopback UDP round trip between two processes (the floor).
"""

from __future__ import annotations

import json
import multiprocessing as mp
import socket
import statistics
import time
from typing import Any

from fleetbid.replication.api import GroupConfig
from fleetbid.replication.procs import Cluster, Report, free_udp_port

BENCH_KEY = b"fleetbid-replication-benchmark-key"


def _echo(port_q: Any) -> None:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port_q.put(s.getsockname()[1])
    while True:
        data, addr = s.recvfrom(2048)
        if data == b"quit":
            return
        s.sendto(data, addr)


def udp_rtt_us(rounds: int = 2000) -> float:
    """Median round trip of a 64-byte datagram between two processes on loopback."""
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_echo, args=(q,), daemon=True)
    p.start()
    try:
        port = q.get(timeout=30)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(2)
        msg = b"x" * 64
        rtts = []
        for i in range(rounds + 100):
            t = time.perf_counter()
            s.sendto(msg, ("127.0.0.1", port))
            s.recvfrom(2048)
            if i >= 100:  # warm-up
                rtts.append(time.perf_counter() - t)
        s.sendto(b"quit", ("127.0.0.1", port))
        s.close()
        return statistics.median(rtts) * 1e6
    finally:
        p.join(2)
        if p.is_alive():
            p.kill()


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def _at_all(reports: list[Report], key: tuple[int, int]) -> float | None:
    ts = [r.delivered_at.get(key) for r in reports]
    return None if any(t is None for t in ts) else max(ts)  # type: ignore[type-var]


def run_bench(replicas: int, messages: int = 2000, *, latency_messages: int = 500,
              window: int = 32, payload: int = 64) -> dict[str, Any]:
    if replicas < 1 or messages < 1:
        raise ValueError("replicas and messages must be >= 1")
    rtt = udp_rtt_us()
    cfg = GroupConfig("bench", BENCH_KEY, port=free_udp_port(),
                      discovery_port=free_udp_port())
    members = tuple(range(1, replicas + 1))
    leader = members[-1]
    cluster = Cluster(cfg, members)
    try:
        # 1. Latency: one message at a time from the leader.
        cluster.submit(leader, latency_messages, window=1, size=payload)
        if not cluster.wait_event("submitted", leader, 120):
            raise TimeoutError("latency phase did not finish")
        time.sleep(0.2)
        reps = [cluster.report(m) for m in members]
        lat_keys = list(reps[-1].submitted_at)
        lats = []
        for k in lat_keys:
            t = _at_all(reps, k)
            if t is not None:
                lats.append((t - reps[-1].submitted_at[k]) * 1000)
        # 2. Throughput: every replica submits its share, pipelined.
        share = [messages // replicas + (1 if i < messages % replicas else 0)
                 for i in range(replicas)]
        for m, n in zip(members, share, strict=True):
            if n:
                cluster.submit(m, n, window=window, size=payload)
        for m, n in zip(members, share, strict=True):
            if n and not cluster.wait_event("submitted", m, 120):
                states = {r.member: r.extra for r in (cluster.report(x) for x in members)}
                raise TimeoutError(f"throughput phase did not finish: {states}")
        time.sleep(0.3)
        reps = [cluster.report(m) for m in members]
        sub = {k: t for r in reps for k, t in r.submitted_at.items() if k not in set(lat_keys)}
        done = [_at_all(reps, k) for k in sub]
        ordered = [t for t in done if t is not None]
        span = max(ordered) - min(sub.values())
        agree = all(r.log == reps[0].log for r in reps)
        counters: dict[str, int] = {}
        for r in reps:
            for k, v in r.counters.items():
                counters[k] = counters.get(k, 0) + v
        # 3. Failover: SIGKILL the leader; time until survivors install the new view.
        failover_ms = None
        if replicas > 1:
            t_kill = cluster.kill(leader)
            survivors = set(members) - {leader}
            seen: dict[int, float] = {}

            def installed() -> bool:
                for ev in cluster.view_events:
                    if ev[1] in survivors and leader not in ev[3]:
                        seen[ev[1]] = ev[5]
                return set(seen) == survivors
            if cluster.wait_for(installed, 10):
                failover_ms = (max(seen.values()) - t_kill) * 1000
        return {
            "replicas": replicas,
            "messages": len(ordered),
            "ordered_p50_ms": round(_pct(lats, 0.50), 3),
            "ordered_p90_ms": round(_pct(lats, 0.90), 3),
            "ordered_p99_ms": round(_pct(lats, 0.99), 3),
            "ordered_per_s": round(len(ordered) / span, 1),
            "failover_ms": None if failover_ms is None else round(failover_ms, 1),
            "udp_rtt_us": round(rtt, 1),
            "logs_agree": agree,
            "window": window,
            "payload_bytes": payload,
            "retransmits": counters.get("retransmits", 0),
            "datagrams_sent": counters.get("sent", 0),
        }
    finally:
        cluster.close()


def cmd_bench_replication(args: Any) -> int:
    results = [run_bench(r, args.messages) for r in args.replicas]
    if args.json:
        print(json.dumps(results if len(results) > 1 else results[0]))
    else:
        for r in results:
            print(f"replicas={r['replicas']}: ordered p50 {r['ordered_p50_ms']} ms, "
                  f"p99 {r['ordered_p99_ms']} ms, {r['ordered_per_s']} ordered/s, "
                  f"failover {r['failover_ms']} ms, UDP RTT {r['udp_rtt_us']} us, "
                  f"logs agree: {r['logs_agree']}")
    return 0
