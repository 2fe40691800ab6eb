"""A fleet over several "hosts" (network namespaces): serve on host 1, `fleetbid node --join`
on the others, requests from a client host; used by `fleetbid demo hosts`, `fleetbid bench
hosts` and tests/test_e2e_hosts.py. With `join_by_token`, each node joins with a join string
(`fleetbid join-token` on host 1; the node knows host, port, domain and token only), one node
after the other so that the serve hands out the slots in the nodes' order.

Host 1 runs `fleetbid serve` (the embedded XMPP server on 10.77.0.1, the MainManager,
managers, proxies and their replicas); hosts 2.. each run `fleetbid node --join` with a
share of the join slots and one more replica of the managers.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fleetbid.run.netlab import NetLab

START_TIMEOUT_S = 180.0


class DemoError(RuntimeError):
    """A process of the demo failed to come up."""


@dataclass
class HostsFleet:
    """serve on host 1, `nodes` joined nodes on hosts 2.., each with `per_node` vehicles."""

    lab: NetLab
    workdir: Path
    nodes: int = 2
    per_node: int = 4
    serve_vehicles: int = 1
    speed: float = 120.0
    # Rounds of a wall second (bid timeout / speed): the hosts share this machine's cores,
    # and a bid that misses a 0.5 s round on a loaded machine is a request waiting longer.
    bid_timeout_s: float = 120.0
    replicas: int = 3
    spread_replicas: bool = True  # each joined node also runs a replica of the managers
    join_by_token: bool = False  # nodes join with a join string, not the state file
    extra: list[str] = field(default_factory=list)  # more serve options
    procs: dict[str, subprocess.Popen[str]] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def state(self) -> Path:
        return self.workdir / "serve.json"

    def log(self, name: str) -> Path:
        return self.workdir / f"{name}.log"

    def fleetbid(self, host: int, name: str, *args: str) -> subprocess.Popen[str]:
        out = open(self.log(name), "w")  # noqa: SIM115 - closed with the process's life
        proc = self.lab.popen(host, [sys.executable, "-m", "fleetbid", *args],
                              stdout=out, stderr=subprocess.STDOUT)
        self.procs[name] = proc
        return proc

    def slots_of(self, node: int) -> list[str]:
        """Vehicle names run by joined node `node` (1-based; it lives on host node+1)."""
        first = self.serve_vehicles + (node - 1) * self.per_node
        return [f"vehicle-{i}" for i in range(first, first + self.per_node)]

    def start(self) -> None:
        t0 = time.monotonic()
        server = self.lab.address(1)
        self.fleetbid(1, "serve", "serve", "--state", str(self.state),
                      "--listen", server, "--mcast-interface", server,
                      "--vehicles", str(self.serve_vehicles),
                      "--join-slots", str(self.nodes * self.per_node),
                      "--clusters", "1", "--radius", "100000", "--speed", f"{self.speed:g}",
                      "--bid-timeout", f"{self.bid_timeout_s:g}",
                      "--replicas", str(self.replicas), "--standby-hosts", "0",
                      "--replica-slots", str(self.nodes if self.spread_replicas else 0),
                      *self.extra)
        self.wait_for("serve", lambda: self.state.exists())
        self.timings["serve_ready_s"] = time.monotonic() - t0
        t1 = time.monotonic()
        for n in range(1, self.nodes + 1):
            replica = ["--replica-slot", str(n - 1), "--mcast-interface",
                       self.lab.address(n + 1)] if self.spread_replicas else []
            if self.join_by_token:
                self.fleetbid(n + 1, f"node{n}", "node", "--join", self.join_string(),
                              "--vehicles", str(self.per_node), *replica)
                # Slots are given in the order nodes ask: one after the other.
                self.wait_for(f"node{n}", lambda n=n: "gave this node" in
                              self.log(f"node{n}").read_text())
                continue
            self.fleetbid(n + 1, f"node{n}", "node", "--join", str(self.state),
                          "--first-slot", str((n - 1) * self.per_node),
                          "--vehicles", str(self.per_node), *replica)
        # Joined: vehicles logged in and announced; with replicas, recruited into the group.
        ready = "member of the group" if self.spread_replicas else "joined the fleet"
        for n in range(1, self.nodes + 1):
            self.wait_for(f"node{n}", lambda n=n: ready in self.log(f"node{n}").read_text())
        self.timings["nodes_joined_s"] = time.monotonic() - t1

    def join_string(self) -> str:
        """A fresh single-use join string, minted on host 1 (where the join file is)."""
        done = subprocess.run(self.lab.command(1, [
            sys.executable, "-m", "fleetbid", "join-token", "--state", str(self.state)]),
            capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise DemoError(f"join-token failed: {done.stderr[-2000:]}")
        return done.stdout.strip()

    def wait_for(self, name: str, ready: Any) -> None:
        """Until `ready()` holds; fails as soon as the process exits, or at the deadline."""
        proc = self.procs[name]
        deadline = time.monotonic() + START_TIMEOUT_S
        while not ready():
            if proc.poll() is not None:
                raise DemoError(f"{name} exited ({proc.returncode}):\n"
                                f"{self.log(name).read_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise DemoError(f"{name} not ready after {START_TIMEOUT_S:.0f} s")
            time.sleep(0.1)

    def requests(self, host: int, count: int, seed: int, interval_s: float = 5.0,
                 name: str = "requests") -> list[dict[str, Any]]:
        """`fleetbid request --random` from `host`: every outcome (served or not)."""
        cmd = self.lab.command(host, [
            sys.executable, "-m", "fleetbid", "request", "--state", str(self.state),
            "--random", str(count), "--seed", str(seed), "--interval", f"{interval_s:g}",
            "--json"])
        t0 = time.monotonic()
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        self.timings[f"{name}_wall_s"] = time.monotonic() - t0
        self.log(name).write_text(done.stderr)
        if not done.stdout.strip():
            raise DemoError(f"request printed nothing ({done.returncode}):\n{done.stderr[-3000:]}")
        return list(json.loads(done.stdout)["outcomes"])

    def host_of(self, vehicle: str) -> int:
        """Which host runs this vehicle (a JID or a name)."""
        name = vehicle.split("@", 1)[0]
        for n in range(1, self.nodes + 1):
            if name in self.slots_of(n):
                return n + 1
        return 1

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


def rank(values: list[float], q: float) -> int | None:
    """Nearest-rank percentile of sorted values (None when there are none)."""
    if not values:
        return None
    return round(values[min(len(values) - 1, max(0, math.ceil(q * len(values)) - 1))])


def report(fleet: HostsFleet, outcomes: list[dict[str, Any]]) -> dict[str, Any]:
    served = [o for o in outcomes if o.get("served")]
    by_host = Counter(fleet.host_of(o["vehicle"]) for o in served)
    latencies = sorted(o["latency_ms"] for o in served if o.get("latency_ms") is not None)
    return {
        "hosts": fleet.lab.hosts, "requests": len(outcomes), "served": len(served),
        "served_by_host": {f"h{h}": n for h, n in sorted(by_host.items())},
        "not_served": [o.get("reason") for o in outcomes if not o.get("served")],
        "latency_ms_p50": rank(latencies, 0.50), "latency_ms_p99": rank(latencies, 0.99),
        "latency_ms_max": round(latencies[-1]) if latencies else None,
        "joined_vehicles": fleet.nodes * fleet.per_node,
        **{k: round(v, 2) for k, v in fleet.timings.items()},
    }
