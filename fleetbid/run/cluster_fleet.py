"""A fleet on a 2-node ejabberd cluster, in network namespaces; optionally one node killed.

Hosts 1 and 2 of a NetLab run the ejabberd nodes (run/ejabberd_cluster.py); host 3 runs a
fleetbid command (`run`, `bench scale`) with `--xmpp 10.77.0.1:5222,10.77.0.2:5222`: its
worker processes enter at the two nodes in turn and fail over to the other one
(platform/failover.py). Used by `fleetbid demo cluster`, `fleetbid bench cluster` and
tests/test_e2e_ejabberd_cluster.py.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fleetbid.run.ejabberd_cluster import C2S_PORT, EjabberdCluster
from fleetbid.run.netlab import NetLab

FLEET_HOST = 3
DEADLINE_S = 600.0
LOST = re.compile(r"WARNING fleetbid\.xmpp: (\S+): stream to (\S+) lost")
RESUMED = re.compile(r"WARNING fleetbid\.xmpp: (\S+): session resumed on (\S+),")
ENDED = re.compile(r"fleetbid\.run: ride (\S+) ended: (served by (\S+)|not served: (.*))$")


class ClusterRunError(RuntimeError):
    """The fleet command failed or never got where it was awaited."""


@dataclass
class ClusterFleet:
    lab: NetLab
    workdir: Path
    domain: str = "fleet.test"
    cluster: EjabberdCluster | None = None
    proc: subprocess.Popen[str] | None = None
    sessions: list[dict[str, int]] = field(default_factory=list)  # samples per node

    @property
    def xmpp(self) -> str:
        return ",".join(f"{self.lab.address(h)}:{C2S_PORT}" for h in (1, 2))

    @property
    def log(self) -> Path:
        return self.workdir / "fleet.log"

    def start_cluster(self) -> EjabberdCluster:
        # The nodes run as the `ejabberd` user: their directories must be reachable by it.
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.workdir.chmod(0o755)
        self.cluster = EjabberdCluster(self.lab, (1, 2), self.workdir / "xmpp", self.domain)
        self.cluster.start()
        return self.cluster

    def launch(self, *fleetbid_args: str) -> subprocess.Popen[str]:
        """`python -m fleetbid ARGS --xmpp <both nodes> --domain D` on host 3."""
        out = open(self.log, "w")  # noqa: SIM115 - closed with the process's life
        self.proc = self.lab.popen(FLEET_HOST, [
            sys.executable, "-m", "fleetbid", *fleetbid_args, "--xmpp", self.xmpp,
            "--domain", self.domain], stdout=subprocess.PIPE, stderr=out)
        return self.proc

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, ready: Callable[[str], bool], what: str) -> None:
        """Until `ready(log text)` holds; fails as soon as the fleet exits, or at the deadline."""
        assert self.proc is not None
        deadline = time.monotonic() + DEADLINE_S
        while not ready(self.text()):
            if self.proc.poll() is not None:
                raise ClusterRunError(f"fleet exited ({self.proc.returncode}) before {what}:"
                                      f"\n{self.text()[-3000:]}")
            if time.monotonic() > deadline:
                raise ClusterRunError(f"no {what} after {DEADLINE_S:.0f} s")
            time.sleep(0.2)  # polling a log file: the wait ends on the event, not the time

    def sample_sessions(self) -> dict[str, int]:
        """Sessions on each live node, as the node itself counts them."""
        assert self.cluster is not None
        row = {}
        for k in range(2):
            try:
                row[self.cluster.node(k)] = int(self.cluster.ctl(
                    k, "stats", "onlineusersnode").strip())
            except Exception:  # noqa: BLE001 - a killed node has no count
                continue
        self.sessions.append(row)
        return row

    def result(self) -> dict[str, Any]:
        """The fleet command's JSON (stdout), once it has exited."""
        assert self.proc is not None and self.proc.stdout is not None
        out = self.proc.stdout.read()
        code = self.proc.wait(timeout=DEADLINE_S)
        try:
            return dict(json.loads(out))
        except ValueError:
            raise ClusterRunError(f"fleet printed no JSON ({code}):\n{self.text()[-3000:]}")\
                from None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if self.cluster is not None:
            self.cluster.stop()


def failovers(text: str) -> dict[str, dict[str, str]]:
    """Agent -> {"lost": address, "resumed": address} from the fleet's log."""
    agents: dict[str, dict[str, str]] = {}
    for name, address in LOST.findall(text):
        agents.setdefault(name, {})["lost"] = address
    for name, address in RESUMED.findall(text):
        agents.setdefault(name, {})["resumed"] = address
    return agents


def rides(text: str) -> list[dict[str, str | None]]:
    """Each ride's end as the log told it, in order."""
    out = []
    for line in text.splitlines():
        m = ENDED.search(line)
        if m:
            out.append({"request_id": m.group(1), "vehicle": m.group(3), "reason": m.group(4)})
    return out
