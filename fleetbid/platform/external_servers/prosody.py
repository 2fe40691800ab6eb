"""Prosody 0.12 configuration: loopback c2s only, memory storage, no s2s, no throttling.

Performance-relevant choices (measured with `fleetbid bench servers`, docs/scale-out.md):
Debian's sample config enables `mod_limits` at 10 kB/s per client connection, which delays
every busy agent (the MainManager above all) by seconds; it is not loaded here. Prosody's
epoll backend leaves Nagle's algorithm on (`nagle = true`): small stanzas wait for the
peer's delayed ACK; `network_settings.nagle = false` turns on TCP_NODELAY.
"""

from __future__ import annotations

from fleetbid.platform.external_servers.server import Layout

CONFIG = "prosody.cfg.lua"


def _lua(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Prosody:
    name = "prosody"
    binary = "prosody"
    service_user = "prosody"
    run_as_service_user = True  # Prosody refuses to run as root (only prosodyctl switches)

    pidfile = "prosody.pid"

    def __init__(self, c2s_rate_limit: str | None = None) -> None:
        # Only to measure what Debian's sample config costs (`fleetbid bench servers`).
        self.c2s_rate_limit = c2s_rate_limit

    def write_config(self, layout: Layout) -> list[str]:
        d = layout.run_dir
        (d / "data").mkdir(exist_ok=True)
        limits, rate = "", ""
        if self.c2s_rate_limit is not None:
            limits = ', "limits"'
            rate = f"limits = {{ c2s = {{ rate = {_lua(self.c2s_rate_limit)} }} }}"
        text = f"""-- written by fleetbid: loopback only, no s2s
data_path = {_lua(str(d / "data"))}
certificates = {_lua(str(d))}
pidfile = {_lua(str(d / "prosody.pid"))}
log = {{ warn = {_lua(str(d / "prosody.log"))} }}
interfaces = {{ {_lua(layout.host)} }}
c2s_interfaces = {{ {_lua(layout.host)} }}
c2s_ports = {{ {layout.port} }}
s2s_ports = {{ }}
admin_ports = {{ }}
modules_enabled = {{ "roster", "saslauth", "tls", "disco", "ping", "register", "posix"{limits} }}
-- s2s: no federation; offline: like the embedded server, no storage for absent agents
modules_disabled = {{ "s2s", "offline" }}
storage = "memory"
authentication = "internal_hashed"
c2s_require_encryption = true
c2s_stanza_size_limit = {layout.max_stanza_bytes}
network_settings = {{ nagle = false }}
-- In-band registration from loopback only (the only interface we listen on); allowlisted
-- addresses are never throttled: a fleet registers all its agents at once.
allow_registration = true
registration_whitelist = {{ "127.0.0.1", "::1" }}
whitelist_registration_only = true
ssl = {{ certificate = {_lua(str(layout.cert))}, key = {_lua(str(layout.key))} }}
{rate}
VirtualHost {_lua(layout.domain)}
"""
        (d / CONFIG).write_text(text)
        return ["prosody", "-F", "--config", str(d / CONFIG)]
