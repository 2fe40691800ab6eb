"""ejabberd 23.01 configuration: loopback c2s only, no s2s, no shaper, Erlang on loopback.

The node speaks Erlang distribution on a fixed loopback port without epmd (ERL_DIST_PORT),
so it opens no port on another interface and several nodes can run side by side.

A cluster node (`ClusterNode`, run/ejabberd_cluster.py) is the same config on a namespace's
address: c2s and Erlang distribution bound to that address, a node name `ejabberd@ADDR`,
one fixed distribution port (every node of the cluster uses the same one, which is what
`-erl_epmd_port` assumes of its peers, so no epmd is needed) and a cookie shared by the
cluster in a 0600 vm.args file (never on a command line, where `ps` would show it).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field

from fleetbid.platform.external_servers.server import Layout
from fleetbid.platform.xmpp_server import free_port

CONFIG = "ejabberd.yml"
CTL_CONFIG = "ejabberdctl.cfg"
VM_ARGS = "vm.args"  # ejabberdctl passes CONFIG_DIR/vm.args to every erl it starts
LOOPBACK = ("127.0.0.0/8", "::1/128")


@dataclass(frozen=True)
class ClusterNode:
    """What makes a node a cluster member: its name, where it speaks Erlang, the cookie."""

    name: str  # ejabberd@ADDR
    dist_interface: str  # the address Erlang distribution listens on
    dist_port: int  # the same on every node of the cluster
    cookie: str = field(repr=False)
    register_from: Sequence[str] = LOOPBACK  # networks agents may register from


class Ejabberd:
    name = "ejabberd"
    binary = "ejabberdctl"
    service_user = "ejabberd"
    run_as_service_user = False  # ejabberdctl, started as root, runs erl as `ejabberd`

    pidfile = "ejabberd.pid"

    def __init__(self, cluster: ClusterNode | None = None) -> None:
        self.cluster = cluster

    def node_name(self, layout: Layout) -> str:
        if self.cluster is not None:
            return self.cluster.name
        return f"fleetbid-{layout.port}@localhost"

    def ctl_command(self, layout: Layout, *args: str) -> list[str]:
        d = layout.run_dir
        return ["ejabberdctl", "--config-dir", str(d), "--config", str(d / CONFIG),
                "--ctl-config", str(d / CTL_CONFIG), "--logs", str(d / "logs"),
                "--spool", str(d / "spool"), "--node", self.node_name(layout), *args]

    def write_config(self, layout: Layout) -> list[str]:
        d = layout.run_dir
        # Mnesia's files name the node (fleetbid-PORT): a new port needs a new database.
        shutil.rmtree(d / "spool", ignore_errors=True)
        for sub in ("logs", "spool"):
            (d / sub).mkdir(exist_ok=True)
        (d / "inetrc").write_text("{lookup, [file, native]}.\n")  # ejabberdctl points here
        q = json.dumps  # a JSON string is a valid YAML scalar
        register_from = self.cluster.register_from if self.cluster else LOOPBACK
        text = f"""# written by fleetbid: loopback only, no s2s
hosts: [{q(layout.domain)}]
loglevel: warning
log_rotate_count: 0
certfiles: [{q(str(layout.cert))}, {q(str(layout.key))}]
listen:
  - port: {layout.port}
    ip: {q(layout.host)}
    module: ejabberd_c2s
    starttls_required: true
    max_stanza_size: {layout.max_stanza_bytes}
    shaper: none
acl:
  loopback:
    ip: [{", ".join(q(net) for net in register_from)}]
access_rules:
  local: {{allow: all}}
  c2s: {{allow: all}}
  register: {{allow: all}}
  register_ip: {{allow: loopback}}
  s2s: {{deny: all}}
s2s_access: s2s
shaper_rules:
  c2s_shaper: none
  max_user_sessions: 10
# a fleet registers all its agents at once, from one address
registration_timeout: infinity
# 23.01's auth cache keeps {{error,exists}} when two processes register one account at once
# (a manager's replicas do) and every later login of it crashes (docs/scale-out.md)
auth_use_cache: false
modules:
  mod_disco: {{}}
  mod_ping: {{}}
  mod_roster: {{versioning: false}}
  mod_register:
    access: register
    ip_access: register_ip
    welcome_message: {{}}
"""
        if self.cluster is not None:  # `ejabberdctl stats onlineusersnode`: sessions per node
            text += "  mod_admin_extra: {}\n"
        (d / CONFIG).write_text(text)
        c = self.cluster
        if c is not None:
            vm_args = d / VM_ARGS
            vm_args.touch(mode=0o600)
            vm_args.write_text(f"-setcookie {c.cookie}\n")
        dist_port = c.dist_port if c else free_port(layout.host)
        interface = c.dist_interface if c else "127.0.0.1"
        # Sourced by ejabberdctl (sh syntax).
        (d / CTL_CONFIG).write_text(
            f'ERL_DIST_PORT={dist_port}\n'
            f'INET_DIST_INTERFACE={interface}\n'
            f'ERL_EPMD_ADDRESS={interface}\n'
            f'EJABBERD_PID_PATH="{d / self.pidfile}"\n'
            'ERL_OPTIONS="-env ERL_CRASH_DUMP_BYTES 0"\n'
        )
        return self.ctl_command(layout, "foreground")
