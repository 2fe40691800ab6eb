"""Start and stop a real XMPP server (a `Flavor`: Prosody or ejabberd) on loopback.

Everything the server writes lives under one directory: config, certificate, accounts,
logs. The server runs in its own process group, as its Debian service user when we are
root (Prosody refuses root; ejabberdctl switches to `ejabberd` itself), and stops on
SIGTERM; `stop()` waits for that, then kills the group.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Protocol

from fleetbid.platform.accounts import AccountKeys, new_secret
from fleetbid.platform.external_servers.certs import write_self_signed
from fleetbid.platform.xmpp_server import XmppEndpoint, XmppServerError, free_port

SERVER_LOG = "server.out"
_DOMAIN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")
CERT = "cert.pem"
KEY = "key.pem"


@dataclass(frozen=True)
class Layout:
    """What a flavor needs to write its config: where, which address, which files."""

    run_dir: Path
    host: str
    port: int
    domain: str
    cert: Path
    key: Path
    max_stanza_bytes: int


class Flavor(Protocol):
    name: str
    binary: str  # looked up on PATH: absent means not installed
    service_user: str  # owns the run directory when we run as root
    run_as_service_user: bool  # we switch to it (else the flavor's own launcher does)
    pidfile: str  # the server's own pid file in the run directory

    def write_config(self, layout: Layout) -> list[str]:
        """Write the config files into layout.run_dir; return the foreground command."""
        ...


def installed(flavor: Flavor) -> bool:
    return shutil.which(flavor.binary) is not None


class ManagedServer:
    """One server of `flavor`, c2s on host:port (a free port if None), files in `run_dir`.

    `endpoint.accounts` holds keys derived from a secret of this server object, so agents of
    the same name get the same password in every Fleet started against it (the server keeps
    accounts for its lifetime; random passwords would clash with the earlier registration).
    """

    def __init__(
        self, flavor: Flavor, run_dir: str | os.PathLike[str], *, port: int | None = None,
        domain: str = "localhost", host: str = "127.0.0.1", startup_timeout: float = 60.0,
        max_stanza_bytes: int = 1024 * 1024 + 64 * 1024,
        command_prefix: Sequence[str] = (),
        reachable: Callable[[str, int], bool] | None = None,
    ) -> None:
        """`command_prefix` (e.g. `ip netns exec NS`) runs the server inside a network
        namespace; only then may `host` be other than loopback (an address that exists in
        that namespace alone), and `reachable(host, port)` must tell from there whether
        the c2s port accepts connections."""
        if not _DOMAIN.fullmatch(domain):  # it is written into config files verbatim
            raise ValueError(f"XMPP domain {domain!r}: letters, digits, '-' and '.' only")
        if host not in ("127.0.0.1", "::1", "localhost") and not command_prefix:
            raise ValueError(f"{flavor.name} is run on loopback only, not on {host!r}")
        self.command_prefix = list(command_prefix)
        self._reachable = reachable or _accepts
        self.flavor = flavor
        self.run_dir = Path(run_dir).resolve()
        self.host = host
        self.domain = domain
        self._port = port
        self.startup_timeout = startup_timeout
        self.max_stanza_bytes = max_stanza_bytes
        self._secret = new_secret()
        self._proc: subprocess.Popen[bytes] | None = None
        self._endpoint: XmppEndpoint | None = None
        self.layout: Layout | None = None

    @property
    def endpoint(self) -> XmppEndpoint:
        if self._endpoint is None:
            raise RuntimeError(f"{self.flavor.name} is not running (call start() first)")
        return self._endpoint

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self) -> XmppEndpoint:
        if self._endpoint is not None:
            return self._endpoint
        binary = shutil.which(self.flavor.binary)
        if binary is None:
            raise XmppServerError(
                f"{self.flavor.binary} not found: install it (Debian: apt-get install -y "
                f"{self.flavor.name})"
            )
        self.run_dir.mkdir(parents=True, exist_ok=True)
        port = self._port or free_port(self.host)
        layout = Layout(self.run_dir, self.host, port, self.domain, self.run_dir / CERT,
                        self.run_dir / KEY, self.max_stanza_bytes)
        write_self_signed(layout.cert, layout.key, self.domain)
        self.layout = layout
        command = self.command_prefix + self.flavor.write_config(layout)
        user = None
        if os.geteuid() == 0:
            _hand_over(self.run_dir, self.flavor.service_user)
            if self.flavor.run_as_service_user:
                user = self.flavor.service_user
        atexit.register(self.stop)
        with open(self.run_dir / SERVER_LOG, "wb") as out:
            self._proc = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                cwd=self.run_dir, start_new_session=True,  # killable as one group
                user=user, group=user, extra_groups=[] if user else None,
            )
        try:
            self._wait_ready(port)
        except BaseException:
            self.stop()
            raise
        self._endpoint = XmppEndpoint(self.host, port, self.domain, embedded=False,
                                      accounts=AccountKeys.from_master(self._secret))
        return self._endpoint

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM the group, wait up to `timeout` s, then SIGKILL it. Idempotent."""
        self._endpoint = None
        proc, self._proc = self._proc, None
        if proc is None:
            return
        # su (ejabberdctl as root) starts the server in a session of its own: out of our
        # process group's reach, so it is signalled through its pid file as well.
        server_pid = _read_pid(self.run_dir / self.flavor.pidfile)
        _signal(proc.pid, server_pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and (
            proc.poll() is None or _group_alive(proc.pid) or _alive(server_pid)
        ):
            time.sleep(0.1)
        _signal(proc.pid, server_pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5.0)
        with contextlib.suppress(Exception):
            atexit.unregister(self.stop)

    def exited(self) -> bool:
        """The server process is gone (it was started and has not been stopped)."""
        return self._proc is not None and self._proc.poll() is not None

    def __enter__(self) -> ManagedServer:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def _wait_ready(self, port: int) -> None:
        """Until the c2s port accepts a connection (listeners open once the config loaded)."""
        proc = self._proc
        assert proc is not None
        deadline = time.monotonic() + self.startup_timeout
        while True:
            if proc.poll() is not None:
                raise XmppServerError(f"{self.flavor.name} exited with code {proc.returncode} "
                                      f"before it listened{self._diagnostics()}")
            if self._reachable(self.host, port):
                return
            if time.monotonic() > deadline:
                raise XmppServerError(f"{self.flavor.name} not listening on {port} after "
                                      f"{self.startup_timeout:.0f} s{self._diagnostics()}")
            time.sleep(0.1)

    def _diagnostics(self) -> str:
        parts = []
        for path in sorted(self.run_dir.rglob("*.log")) + [self.run_dir / SERVER_LOG]:
            with contextlib.suppress(OSError):
                tail = path.read_text(errors="replace").strip().splitlines()[-15:]
                if tail:
                    parts.append(f"\n--- tail of {path} ---\n" + "\n".join(tail))
        return "".join(parts)


def _accepts(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), 0.5):
        return True
    return False


def _hand_over(run_dir: Path, user: str) -> None:
    """Give the run directory to the service user the server drops to (we are root)."""
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise XmppServerError(f"user {user!r} does not exist (is the package installed?)") \
            from None
    for path in [run_dir, *run_dir.rglob("*")]:
        os.chown(path, entry.pw_uid, entry.pw_gid)
    # The service user must also reach the directory: every parent needs search permission.
    for parent in run_dir.parents:
        if not os.stat(parent).st_mode & 0o001:
            raise XmppServerError(
                f"{user} cannot reach {run_dir}: {parent} is not searchable by others; "
                f"use a directory under /tmp or /var/tmp"
            )


def _read_pid(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _signal(pgid: int, pid: int | None, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
    if pid is not None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def _alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped by its parent) counts as gone.
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    return True


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
