"""Where the XMPP server is: an embedded pyjabber child process, or an external address.

The embedded server runs in its own OS process (own session/process group) so that the
agents' processes never share its event loop, and so it can be killed as a whole.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import os
import select
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from fleetbid.platform.accounts import SECRET_ENV, AccountKeys, new_secret
from fleetbid.platform.client_accounts import DEFAULT_RETENTION_S
from fleetbid.platform.rate_limit import DEFAULT_PER_MINUTE

SERVER_LOG = "xmpp-server.log"
SERVER_STDERR = "xmpp-server.stderr"
_READY_PREFIX = "READY"
# Every body messages.decode() accepts (MAX_BODY_BYTES, 1 MiB: an open-auction may list a
# cluster's idle vehicles) plus room for the envelope: a legitimate agent whose stanza were
# refused would lose its stream, i.e. drop out of the fleet.
DEFAULT_MAX_STANZA_BYTES = 1024 * 1024 + 64 * 1024


@dataclass(frozen=True)
class XmppEndpoint:
    """How agents reach the server: TCP `host:port`; JIDs live in `domain`.

    `accounts`: keys to derive account passwords (embedded server only, see accounts.py);
    None means random passwords, as on an external server.
    """

    host: str
    port: int
    domain: str
    embedded: bool
    accounts: AccountKeys | None = field(default=None, repr=False)
    # More servers of the same domain (nodes of one cluster): where an agent goes when its
    # stream to host:port is lost, in this order (docs/scale-out.md, "A clustered server").
    alternates: tuple[tuple[str, int], ...] = ()

    def jid(self, name: str) -> str:
        return f"{name}@{self.domain}"

    @property
    def addresses(self) -> tuple[tuple[str, int], ...]:
        """Every address of the server, the one to use first at the head."""
        return ((self.host, self.port), *self.alternates)

    def rotated(self, turn: int) -> XmppEndpoint:
        """The same server, entered at address number `turn` (modulo): worker `turn` of a
        fleet connects there, and fails over to the others in order."""
        addresses = self.addresses
        k = turn % len(addresses)
        (host, port), *rest = addresses[k:] + addresses[:k]
        return dataclasses.replace(self, host=host, port=port, alternates=tuple(rest))


def free_port(host: str = "127.0.0.1") -> int:
    """A port free right now on `host` (the OS picks it; racy, so callers retry on clash)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def parse_xmpp_address(address: str) -> tuple[str, int]:
    """Parse ``HOST:PORT`` (IPv6 as ``[::1]:5222``) into ``(host, port)``."""
    text = address.strip()
    host, sep, port_text = text.rpartition(":")
    if not sep or not host:
        raise ValueError(f"XMPP address {address!r} must look like HOST:PORT, e.g. 127.0.0.1:5222")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"XMPP address {address!r}: write IPv6 hosts in brackets, [::1]:5222")
    if not host:
        raise ValueError(f"XMPP address {address!r} has an empty host")
    if not port_text.isdigit():
        raise ValueError(f"XMPP address {address!r}: port {port_text!r} is not a number")
    port = int(port_text)
    if not 1 <= port <= 65535:
        raise ValueError(f"XMPP address {address!r}: port {port} is outside 1..65535")
    return host, port


def external_endpoint(address: str, domain: str) -> XmppEndpoint:
    """Endpoint of a server we do not manage (e.g. a shared prosody/pyjabber).

    `address` may list several HOST:PORT, comma-separated: nodes of one clustered server.
    """
    if not domain or "@" in domain or "/" in domain:
        raise ValueError(f"XMPP domain {domain!r} is not a bare domain name")
    (host, port), *alternates = [parse_xmpp_address(a) for a in address.split(",")]
    return XmppEndpoint(host=host, port=port, domain=domain, embedded=False,
                        alternates=tuple(alternates))


class XmppServerError(RuntimeError):
    """The embedded server did not come up."""


class EmbeddedXmppServer:
    """pyjabber in a child process, bound to 127.0.0.1 only, all files under `run_dir`.

    Use as a context manager, or call `start()`/`stop()`; `stop()` is idempotent and is
    also run at interpreter exit.  The child stops by itself when this process dies
    (it watches its stdin pipe for EOF).
    """

    def __init__(
        self,
        run_dir: str | os.PathLike[str],
        *,
        domain: str = "localhost",
        host: str = "127.0.0.1",
        port: int | None = None,
        server_port: int | None = None,
        connection_timeout: int = 3600,
        startup_timeout: float = 30.0,
        pool_workers: int = 0,
        log_level: str = "INFO",
        max_stanza_bytes: int = DEFAULT_MAX_STANZA_BYTES,
        secret: str | None = None,
        open_registration: bool = False,
        limit_target: str = "",
        max_requests_per_minute: int = DEFAULT_PER_MINUTE,
        session_watcher: str = "",
        client_account_retention_s: float = DEFAULT_RETENTION_S,
    ) -> None:
        self.run_dir = Path(run_dir).resolve()
        self.domain = domain
        self.host = host
        self._port = port
        self._server_port = server_port
        self.connection_timeout = connection_timeout
        self.startup_timeout = startup_timeout
        self.pool_workers = pool_workers
        self.log_level = log_level
        if max_stanza_bytes < 1024:
            raise ValueError("max_stanza_bytes must be >= 1024")
        self.max_stanza_bytes = max_stanza_bytes
        # A client account (a passenger) is removed this long after its last connection
        # closed (client_accounts.py).
        self.client_account_retention_s = client_account_retention_s
        # Only holders of this secret (or keys derived from it) can register accounts.
        self._secret = secret or new_secret()
        # Anyone may register: only for standing in for an external server in tests.
        self.open_registration = open_registration
        # Client accounts may send at most this many messages a minute to `limit_target`
        # (the MainManager's local part; rate_limit.py). Empty: no limit.
        if max_requests_per_minute < 1:
            raise ValueError("max_requests_per_minute must be >= 1")
        self.limit_target = limit_target
        self.max_requests_per_minute = max_requests_per_minute
        # Told when a vehicle's session ends (session_watch.py): the MainManager's local part.
        self.session_watcher = session_watcher
        self.server_port: int | None = None  # s2s listener (loopback, refuses everyone)
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr_file: int | None = None
        self._endpoint: XmppEndpoint | None = None

    # -- public -----------------------------------------------------------------------
    @property
    def endpoint(self) -> XmppEndpoint:
        if self._endpoint is None:
            raise RuntimeError("EmbeddedXmppServer is not running (call start() first)")
        return self._endpoint

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def exit_code(self) -> int | None:
        """None while the server process runs (or was never started); its code once it died."""
        proc = self._proc
        return None if proc is None else proc.poll()

    @property
    def log_path(self) -> Path:
        return self.run_dir / SERVER_LOG

    def start(self) -> XmppEndpoint:
        if self._endpoint is not None:
            return self._endpoint
        self.run_dir.mkdir(parents=True, exist_ok=True)
        atexit.register(self.stop)
        try:
            # Ports picked by free_port() can be taken before the child binds: retry once.
            attempts = 1 if self._port else 2
            for attempt in range(attempts):
                port = self._port or free_port(self.host)
                server_port = self._server_port or free_port(self.host)
                try:
                    self._launch(port, server_port)
                    break
                except XmppServerError as e:
                    self._kill()
                    if attempt + 1 == attempts or "in use" not in str(e).lower():
                        raise
        except BaseException:  # incl. KeyboardInterrupt while waiting
            self.stop()
            raise
        self._endpoint = XmppEndpoint(self.host, port, self.domain, embedded=True,
                                      accounts=AccountKeys.from_master(self._secret))
        return self._endpoint

    def stop(self) -> None:
        """SIGTERM, wait up to 5 s, then SIGKILL the whole process group. Idempotent."""
        self._endpoint = None
        proc = self._proc
        if proc is None:
            return
        try:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=5.0)
        finally:
            self._kill()
            with contextlib.suppress(Exception):
                atexit.unregister(self.stop)

    def __enter__(self) -> EmbeddedXmppServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- internals --------------------------------------------------------------------
    def _launch(self, port: int, server_port: int) -> None:
        cmd = [
            sys.executable, "-m", "fleetbid.platform._server_main",
            "--run-dir", str(self.run_dir),
            "--host", self.host,
            "--domain", self.domain,
            "--port", str(port),
            "--server-port", str(server_port),
            "--connection-timeout", str(self.connection_timeout),
            "--pool-workers", str(self.pool_workers),
            "--log-level", self.log_level,
            "--limit-target", self.limit_target,
            "--max-requests-per-minute", str(self.max_requests_per_minute),
            "--session-watcher", self.session_watcher,
            "--client-account-retention", repr(self.client_account_retention_s),
            "--max-stanza-bytes", str(self.max_stanza_bytes),
            *(["--open-registration"] if self.open_registration else []),
        ]  # fmt: skip
        # The secret goes through the environment: a command line is world-readable in /proc,
        # a process's environment only to its owner.
        env = {**os.environ, SECRET_ENV: self._secret}
        # stderr to a file: an unread pipe could fill up and block the server.
        self._stderr_file = os.open(
            self.run_dir / SERVER_STDERR, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644
        )
        self._proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE,  # kept open for life: EOF tells the child we are gone
            stdout=subprocess.PIPE,
            stderr=self._stderr_file,
            cwd=self.run_dir,
            env=env,
            start_new_session=True,  # own process group, killable as one, no terminal ^C
        )
        self._wait_ready(port)
        self.server_port = server_port

    def _wait_ready(self, port: int) -> None:
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        fd = proc.stdout.fileno()
        deadline = time.monotonic() + self.startup_timeout
        buf = b""
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise XmppServerError(
                    f"embedded XMPP server not ready after {self.startup_timeout:.0f} s"
                    f"{self._diagnostics()}"
                )
            readable, _, _ = select.select([fd], [], [], min(remaining, 0.5))
            if readable:
                chunk = os.read(fd, 4096)
                buf += chunk
                if f"{_READY_PREFIX} {port}".encode() in buf:
                    return
                if not chunk:  # stdout closed: the child exited
                    proc.wait(timeout=5.0)
            if proc.poll() is not None:
                raise XmppServerError(
                    f"embedded XMPP server exited with code {proc.returncode} before ready"
                    f"{self._diagnostics()}"
                )

    def _diagnostics(self) -> str:
        parts = []
        for name in (SERVER_STDERR, SERVER_LOG):
            path = self.run_dir / name
            with contextlib.suppress(OSError):
                tail = path.read_text(errors="replace").strip().splitlines()[-15:]
                if tail:
                    parts.append(f"\n--- tail of {path} ---\n" + "\n".join(tail))
        return "".join(parts)

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            # The child leads its own group: this also reaches its SASL pool workers.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5.0)
            for stream in (proc.stdin, proc.stdout):
                if stream is not None:
                    with contextlib.suppress(OSError):
                        stream.close()
        if self._stderr_file is not None:
            with contextlib.suppress(OSError):
                os.close(self._stderr_file)
            self._stderr_file = None
