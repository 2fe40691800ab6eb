"""Two (or more) ejabberd nodes joined in one cluster, each in a network namespace of a NetLab.

Node k runs in lab host `hosts[k]` as `ejabberd@10.77.0.H`: c2s on 10.77.0.H:5222, Erlang
distribution on 10.77.0.H:4370 (the same port on every node, so `-erl_epmd_port` finds
the peers without epmd), one cookie for the cluster (written to each node's 0600 vm.args).
The first node starts alone; every other node starts, then runs ejabberd's own
`ejabberdctl join_cluster ejabberd@<first>` (ejabberd's documented clustering: the joining
node copies the Mnesia schema and tables, sessions and routes included). Everything binds
to the namespaces' addresses only. Used by `fleetbid demo cluster`, `fleetbid bench
cluster` and tests/test_e2e_ejabberd_cluster.py.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import secrets
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path

from fleetbid.platform.external_servers.ejabberd import ClusterNode, Ejabberd
from fleetbid.platform.external_servers.server import ManagedServer
from fleetbid.platform.xmpp_server import XmppEndpoint, XmppServerError
from fleetbid.run.netlab import SUBNET, NetLab

C2S_PORT = 5222
DIST_PORT = 4370
CTL_TIMEOUT_S = 120.0


class ClusterError(RuntimeError):
    """A node did not start or did not join."""


class EjabberdCluster:
    """ejabberd nodes on lab hosts `hosts`, joined into one cluster serving `domain`."""

    def __init__(self, lab: NetLab, hosts: Sequence[int], run_dir: Path,
                 domain: str = "fleet.test") -> None:
        if len(hosts) < 2:
            raise ValueError("a cluster needs at least 2 nodes")
        self.lab, self.hosts, self.domain = lab, list(hosts), domain
        self.run_dir = Path(run_dir)
        cookie = secrets.token_hex(16)
        self.servers: list[ManagedServer] = []
        for host in self.hosts:
            address = lab.address(host)
            node = ClusterNode(f"ejabberd@{address}", address, DIST_PORT, cookie,
                               register_from=(f"{SUBNET}.0/24",))
            self.servers.append(ManagedServer(
                Ejabberd(node), self.run_dir / f"node{host}", port=C2S_PORT, domain=domain,
                host=address, command_prefix=lab.command(host, []),
                reachable=lambda h, p, host=host: self._accepts(host, h, p)))

    def node(self, k: int) -> str:
        return f"ejabberd@{self.lab.address(self.hosts[k])}"

    def _accepts(self, lab_host: int, host: str, port: int) -> bool:
        """From inside the namespace: does host:port accept a TCP connection?"""
        probe = self.lab.command(lab_host, ["bash", "-c", f": </dev/tcp/{host}/{port}"])
        return subprocess.run(probe, capture_output=True, timeout=10).returncode == 0

    def start(self) -> XmppEndpoint:
        """Start every node, join the others to the first; the cluster's endpoint."""
        try:
            for k, server in enumerate(self.servers):
                server.start()
                if k > 0:
                    self.ctl(k, "join_cluster", self.node(0))
            members = self.members(0)
            if sorted(members) != sorted(self.node(k) for k in range(len(self.servers))):
                raise ClusterError(f"list_cluster on {self.node(0)} shows {members}")
        except (XmppServerError, subprocess.SubprocessError) as exc:
            self.stop()
            raise ClusterError(str(exc)) from None
        except BaseException:
            self.stop()
            raise
        return self.endpoint

    @property
    def endpoint(self) -> XmppEndpoint:
        """Node 0's address first, the others as failover addresses; one account key for
        all (the accounts live in the cluster's shared Mnesia)."""
        first = self.servers[0].endpoint
        return dataclasses.replace(first, alternates=tuple(
            (s.host, C2S_PORT) for s in self.servers[1:]))

    def ctl(self, k: int, *args: str) -> str:
        """`ejabberdctl` against node k, run in its namespace; its output."""
        server = self.servers[k]
        assert server.layout is not None
        flavor = server.flavor
        assert isinstance(flavor, Ejabberd)
        done = subprocess.run(self.lab.command(self.hosts[k], flavor.ctl_command(
            server.layout, *args)), capture_output=True, text=True, timeout=CTL_TIMEOUT_S)
        if done.returncode != 0:
            raise ClusterError(f"ejabberdctl {' '.join(args)} on {self.node(k)} failed "
                               f"({done.returncode}): {(done.stdout + done.stderr).strip()}")
        return done.stdout

    def members(self, k: int) -> list[str]:
        """The cluster as node k sees it (`ejabberdctl list_cluster`)."""
        return [name.strip("'\"") for name in self.ctl(k, "list_cluster").split()]

    def connected_users(self, k: int) -> int:
        """Sessions on the whole cluster, as node k counts them."""
        return int(self.ctl(k, "connected_users_number").strip())

    def beam_pid(self, k: int) -> int | None:
        path = self.servers[k].run_dir / self.servers[k].flavor.pidfile
        with contextlib.suppress(OSError, ValueError):
            return int(path.read_text().strip())
        return None

    def kill(self, k: int) -> int:
        """SIGKILL node k's Erlang VM (beam.smp): a node crash, no goodbye to its peers."""
        pid = self.beam_pid(k)
        if pid is None:
            raise ClusterError(f"{self.node(k)} has no pid file")
        os.kill(pid, signal.SIGKILL)
        return pid

    def stop(self) -> None:
        for server in reversed(self.servers):
            server.stop()
