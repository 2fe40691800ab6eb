"""`fleetbid xmpp prosody|ejabberd`: run one server in the foreground until Ctrl-C/SIGTERM."""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from typing import TextIO

from fleetbid.platform.external_servers.flavors import FLAVORS
from fleetbid.platform.external_servers.server import ManagedServer
from fleetbid.platform.xmpp_server import XmppServerError


def serve_foreground(kind: str, run_dir: str | Path, port: int | None, domain: str,
                     out: TextIO = sys.stdout) -> int:
    """Start the server, say where it is, stop it on SIGINT/SIGTERM; 0, or 1 if it died."""
    server = ManagedServer(FLAVORS[kind](), run_dir, port=port, domain=domain)
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set())
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            ep = server.start()
        except XmppServerError as exc:
            print(f"fleetbid: error: {exc}", file=sys.stderr)
            return 1
        print(f"{kind} running (pid {server.pid}), files in {server.run_dir}\n"
              f"host {ep.host}\nport {ep.port}\ndomain {ep.domain}\n"
              f"use it: fleetbid run --xmpp {ep.host}:{ep.port} --domain {ep.domain}\n"
              "Ctrl-C stops it.", file=out, flush=True)
        while not stop.wait(0.5):
            if server.exited():
                print(f"{kind} exited by itself; see {server.run_dir}", file=sys.stderr)
                return 1
        return 0
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
