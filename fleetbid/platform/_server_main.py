"""Child-process entry point of `EmbeddedXmppServer`: one pyjabber server, loopback only.

Run as ``python -m fleetbid.platform._server_main --run-dir D --port P --server-port S``.
The registration secret comes from the environment (accounts.SECRET_ENV), never from the
command line; see server_guard.py for what this server enforces beyond pyjabber.
Prints ``READY <port>`` on stdout once listening.  Stops on SIGTERM/SIGINT or when stdin
reaches EOF, which is how it notices that the parent died (no orphans).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import os
import shutil
import signal
import socket
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from fleetbid.platform.client_accounts import DEFAULT_RETENTION_S, ClientAccounts
from fleetbid.platform.rate_limit import DEFAULT_PER_MINUTE, RequestLimiter
from fleetbid.platform.xmpp_server import DEFAULT_MAX_STANZA_BYTES

_PR_SET_PDEATHSIG = 1
# The admin/upload HTTP page listens on fixed port 9090: two servers would collide.
_UPLOAD_PLUGIN = "urn:xmpp:http:upload:0"
_UPLOAD_ITEM = "upload.$"
_EOF_GRACE_S = 10.0


def _die_with_parent() -> None:
    """ProcessPool worker initializer: SIGKILL this worker if the server process dies."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="fleetbid.platform._server_main")
    p.add_argument("--run-dir", required=True, type=Path)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (IPv4)")
    p.add_argument("--domain", default="localhost", help="XMPP domain served")
    p.add_argument("--port", required=True, type=int, help="client (c2s) port")
    p.add_argument("--server-port", required=True, type=int, help="s2s port")
    p.add_argument("--connection-timeout", default=3600, type=int)
    p.add_argument("--pool-workers", default=0, type=int, help="SASL hashing workers, 0=cpus")
    p.add_argument("--log-level", default="INFO")
    p.add_argument("--max-stanza-bytes", default=DEFAULT_MAX_STANZA_BYTES, type=int,
                   help="larger stanzas close the client's stream (policy-violation)")
    p.add_argument("--limit-target", default="",
                   help="local part of the JID whose client senders are rate-limited "
                        "(the MainManager; empty: no limit)")
    p.add_argument("--max-requests-per-minute", default=DEFAULT_PER_MINUTE, type=int,
                   help="per client account, messages to --limit-target per minute")
    p.add_argument("--session-watcher", default="",
                   help="local part told (unavailable presence) when a session of a "
                        "--watched-prefix account ends (the MainManager; empty: nobody)")
    p.add_argument("--watched-prefix", default="vehicle-",
                   help="local parts whose ended sessions the watcher is told of")
    p.add_argument("--client-account-retention", default=DEFAULT_RETENTION_S, type=float,
                   help="seconds after its last connection closed that a client account "
                        "(passenger-*, complainant-*) is removed")
    p.add_argument("--open-registration", action="store_true",
                   help="anyone may register (a stand-in for an external server, in tests)")
    return p.parse_args(argv)


def _prepare_certs(run_dir: Path) -> Path:
    """pyjabber signs the host cert with ca_cert/ca_key found in cert_path: copy the CA in."""
    import pyjabber

    cert_dir = run_dir / "certs"
    cert_dir.mkdir(parents=True, exist_ok=True)
    pkg_certs = Path(pyjabber.__file__).parent / "network" / "certs"
    for name in ("ca_cert.pem", "ca_key.pem"):
        if not (cert_dir / name).exists():
            shutil.copyfile(pkg_certs / name, cert_dir / name)
    return cert_dir


def _patch_pyjabber(
    pool_workers: int, secret: str | None, max_stanza_bytes: int, open_registration: bool,
    limiter: RequestLimiter | None = None, accounts: ClientAccounts | None = None,
    watcher: str = "", watched_prefix: str = "",
) -> None:
    import pyjabber.server as pjs

    from fleetbid.platform import server_guard, session_watch

    # Otherwise Server also listens (c2s and s2s) on the machine's outward IP.
    pjs.setup_query_local_ip = lambda: None
    # Pool workers are forked lazily from this process; tie their life to it.
    workers = pool_workers or os.cpu_count() or 1

    def make_pool(*_args: object, **_kwargs: object) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=workers, initializer=_die_with_parent)

    pjs.ProcessPoolExecutor = make_pool  # type: ignore[attr-defined,assignment]
    _speed_up_routing()
    _cheap_password_hashing()
    server_guard.install(secret, max_stanza_bytes, open_registration=open_registration,
                         limiter=limiter, accounts=accounts)
    if watcher:
        session_watch.install(watcher, watched_prefix)


PBKDF2_ROUNDS = 1  # see _cheap_password_hashing


def _cheap_password_hashing() -> None:
    """One PBKDF2 round instead of pyjabber's 100,000, computed inline.

    Key stretching protects guessable human passwords. Every account on this server has a
    128-bit random or HMAC-derived password (platform/accounts.py), which no stretching makes
    harder to guess, while 100,000 rounds cost 50 ms of CPU at registration and again at
    each login: that capped agent start-up at about 10 agents/s per core (measured,
    docs/performance.md). The stored hash records its rounds, so verification follows it.
    """
    import binascii
    import hashlib

    from pyjabber.features.SASL.SASL import SASL

    async def _hash_scram_async(self, password: str, salt: bytes, iterations: int) -> str:  # type: ignore[no-untyped-def]
        rounds = PBKDF2_ROUNDS if iterations == 100_000 else iterations
        digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, rounds)
        salt_hex = binascii.hexlify(salt).decode("ascii")
        return f"sha256${rounds}${salt_hex}${binascii.hexlify(digest).decode('ascii')}"

    SASL._hash_scram_async = _hash_scram_async


def _speed_up_routing() -> None:
    """Route messages without pyjabber's per-message regex and JID.__eq__ over every client.

    pyjabber 0.4.5 finds a recipient's connections by scanning all clients with a regex
    built per call (bare JIDs) or JID.__eq__ (full JIDs): with a fleet of a hundred agents
    that scan was most of the server's CPU per message. Same semantics, plain attribute
    comparisons.
    """
    from pyjabber.network.ConnectionManager import ConnectionManager

    def get_transport_online(self, jid):  # type: ignore[no-untyped-def]
        user, domain, resource = jid.user, jid.domain, jid.resource
        found = []
        for client in self._peerList.values():
            other = client.jid
            if (client.online and other is not None and other._user == user
                    and other._domain == domain and (not resource or other._resource == resource)):
                found.append(client)
        return found

    ConnectionManager.get_transport_online = get_transport_online


def _build_server(args: argparse.Namespace, cert_dir: Path):  # -> pyjabber.server.Server
    from pyjabber.server import Server
    from pyjabber.server_parameters import Parameters

    defaults = Parameters()
    # Fresh containers: attrs defaults are shared mutable objects. The upload plugin stays
    # listed: without it pyjabber 0.4.5 silently stops routing messages between clients
    # (seen here). Its HTTP server on fixed port 9090 is dropped below instead.
    plugins = list(defaults.plugins)
    items = dict(defaults.items)
    params = Parameters(
        host=args.domain,
        client_port=args.port,
        server_port=args.server_port,
        family=socket.AF_INET,
        connection_timeout=args.connection_timeout,
        database_path=str(args.run_dir / "pyjabber.db"),  # unused in memory; kept inside run_dir
        database_in_memory=True,
        message_persistence=False,
        cert_path=str(cert_dir),
        plugins=plugins,
        items=items,
    )
    server = Server(params)
    # The admin/upload page would bind fixed port 9090: two runs would collide.
    server._http_server = None
    # pyjabber binds to its domain name; bind the loopback address instead so the domain
    # can be any name while nothing listens beyond 127.0.0.1.
    server._host = args.host
    return server


def _watch_stdin(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
    """Blocking read in a daemon thread: EOF means the parent is gone (or asked us to stop).

    Raw os.read on fd 0, never sys.stdin: a thread blocked inside sys.stdin holds its
    buffer lock, and forked pool workers deadlock when multiprocessing closes sys.stdin.
    """
    try:
        while os.read(0, 4096):
            pass
    except OSError:
        pass
    with contextlib.suppress(RuntimeError):  # loop already closed
        loop.call_soon_threadsafe(stop.set)
    # Last resort if the loop is wedged and never gets to stop: no orphan survives this.
    time.sleep(_EOF_GRACE_S)
    if os.getpgid(0) == os.getpid():  # we lead our own group (EmbeddedXmppServer does that)
        os.killpg(0, signal.SIGKILL)
    os._exit(1)


def _shutdown_pool(pool: ProcessPoolExecutor) -> None:
    """Stop the SASL hashing workers without ever blocking on a stuck one."""
    pool.shutdown(wait=False, cancel_futures=True)
    procs = list((getattr(pool, "_processes", None) or {}).values())
    for proc in procs:
        with contextlib.suppress(Exception):
            proc.terminate()
    for proc in procs:
        with contextlib.suppress(Exception):
            proc.join(timeout=2.0)
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=1.0)
    pool.shutdown(wait=True)


async def _serve(args: argparse.Namespace, cert_dir: Path) -> int:
    from pyjabber import AppConfig

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    server = _build_server(args, cert_dir)
    task = asyncio.create_task(server.start(), name="pyjabber")
    await asyncio.sleep(0)  # let Server.start() install its signal.signal handlers ...
    for sig in (signal.SIGTERM, signal.SIGINT):  # ... then replace them with a clean stop
        loop.add_signal_handler(sig, stop.set)
    threading.Thread(target=_watch_stdin, args=(loop, stop), daemon=True).start()

    ready = asyncio.create_task(server.ready.wait())
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({ready, task, stopping}, return_when=asyncio.FIRST_COMPLETED)
    rc = 0
    if ready.done() and not task.done() and not stop.is_set():
        print(f"READY {args.port}", flush=True)
        # Nobody reads stdout after READY: make sure a stray print can never block us.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
    if task.done():  # server died on its own (e.g. port taken)
        rc = 1
    for t in (ready, stopping, task):
        t.cancel()
    # Cancelling closes the listeners and disposes the DB engine (Server.run_server).
    with contextlib.suppress(asyncio.CancelledError, SystemExit, Exception):
        await task
    # pyjabber leaves helper tasks (queue getters) behind: cancel them before the loop closes.
    others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for t in others:
        t.cancel()
    await asyncio.gather(*others, return_exceptions=True)
    _log_leftovers()
    config = AppConfig.app_config
    if config is not None:
        _shutdown_pool(config.process_pool_exe)
    return rc


def _log_leftovers() -> None:
    """What the server still holds at its stop: client connections it never forgot would
    show here (see stanza_limit.forget_peer). Tests read this line."""
    from loguru import logger
    from pyjabber.features.presence.PresenceFeature import Presence
    from pyjabber.network.ConnectionManager import ConnectionManager

    from fleetbid.platform.stanza_limit import LOG_TAG

    peers = getattr(ConnectionManager(), "_peerList", {})
    presence = getattr(Presence(), "_online_status", {})
    logger.info(f"{LOG_TAG}: at stop, {len(peers)} client connections registered, "
                f"{len(presence)} accounts with a presence entry")


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    from fleetbid.platform.accounts import SECRET_ENV

    # Out of the environment at once: nothing this process starts later inherits it.
    secret = os.environ.pop(SECRET_ENV, None) or None
    args.run_dir = args.run_dir.resolve()
    args.run_dir.mkdir(parents=True, exist_ok=True)
    os.chdir(args.run_dir)  # anything pyjabber writes relative to cwd stays in run_dir

    from loguru import logger

    logger.remove()
    logger.add(args.run_dir / "xmpp-server.log", level=args.log_level, enqueue=False)

    from fleetbid.platform.eventloop import install_uvloop, new_event_loop

    cert_dir = _prepare_certs(args.run_dir)
    if args.open_registration:
        logger.warning("in-band registration is open to anyone (--open-registration)")
    elif secret is None:
        logger.warning(f"no {SECRET_ENV}: in-band registration is closed to everyone")
    limiter = (RequestLimiter(args.limit_target, args.max_requests_per_minute)
               if args.limit_target else None)
    _patch_pyjabber(args.pool_workers, secret, args.max_stanza_bytes, args.open_registration,
                    limiter, ClientAccounts(args.client_account_retention), args.session_watcher,
                    args.watched_prefix)
    install_uvloop()
    loop = new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        return loop.run_until_complete(_serve(args, cert_dir))
    except SystemExit as e:  # pyjabber's raise_exit on bind failure
        logger.error(f"server exited: {e!r}")
        return 1
    finally:
        with contextlib.suppress(Exception):
            from pyjabber import AppConfig

            if AppConfig.app_config is not None:
                _shutdown_pool(AppConfig.app_config.process_pool_exe)
        loop.close()


if __name__ == "__main__":
    sys.exit(main())
