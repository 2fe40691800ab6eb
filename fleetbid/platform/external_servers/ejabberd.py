"""ejabberd 23.01 configuration: loopback c2s only, no s2s, no shaper, Erlang on loopback.

The node speaks Erlang distribution on a fixed loopback port without epmd (ERL_DIST_PORT),
so it opens no port on another interface and several nodes can run side by side.
"""

from __future__ import annotations

import json
import shutil

from fleetbid.platform.external_servers.server import Layout
from fleetbid.platform.xmpp_server import free_port

CONFIG = "ejabberd.yml"
CTL_CONFIG = "ejabberdctl.cfg"


class Ejabberd:
    name = "ejabberd"
    binary = "ejabberdctl"
    service_user = "ejabberd"
    run_as_service_user = False  # ejabberdctl, started as root, runs erl as `ejabberd`

    pidfile = "ejabberd.pid"

    @staticmethod
    def node_name(layout: Layout) -> str:
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
    ip: ["127.0.0.0/8", "::1/128"]
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
modules:
  mod_disco: {{}}
  mod_ping: {{}}
  mod_roster: {{versioning: false}}
  mod_register:
    access: register
    ip_access: register_ip
    welcome_message: {{}}
"""
        (d / CONFIG).write_text(text)
        # Sourced by ejabberdctl (sh syntax).
        (d / CTL_CONFIG).write_text(
            f'ERL_DIST_PORT={free_port(layout.host)}\n'
            f'INET_DIST_INTERFACE=127.0.0.1\n'
            f'ERL_EPMD_ADDRESS=127.0.0.1\n'
            f'EJABBERD_PID_PATH="{d / self.pidfile}"\n'
            'ERL_OPTIONS="-env ERL_CRASH_DUMP_BYTES 0"\n'
        )
        return self.ctl_command(layout, "foreground")
