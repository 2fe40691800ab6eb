"""`fleetbid serve`: keep a population running until Ctrl-C or SIGTERM.

One serve per state file. A `flock` on `<state>.lock`, held for the serve's life, settles
races between two serves starting at once; the kernel drops it when the process dies, so a
killed serve never blocks the next one (its leftover state file is then merely stale).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import fcntl
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from fleetbid.core.config import RunConfig
from fleetbid.maps.clusters import make_clusters
from fleetbid.options import config_from, endpoint_from
from fleetbid.platform import eventloop
from fleetbid.platform.announce import AnnounceGroup, Listener
from fleetbid.platform.xmpp_agent import AgentStartError
from fleetbid.platform.xmpp_server import XmppEndpoint, XmppServerError
from fleetbid.run.launcher import Fleet, LaunchError
from fleetbid.service.join import remove_join, with_join, write_join
from fleetbid.service.join_channel import JoinService
from fleetbid.service.livemap import LiveMap
from fleetbid.service.state import (
    ServeState,
    StateError,
    read_state,
    remove_state,
    stale_reason,
    state_path,
    write_state,
)
from fleetbid.service.status import keep_status, remove_status, status_path


class AlreadyServing(Exception):
    """Another serve owns this state file."""


class FleetDied(Exception):
    """A part the fleet cannot run without died (the embedded server, a worker of agents).

    Not restarted: the server keeps every session, roster and queued message in memory, so a
    new one on the same port would need every agent to log in again and re-announce itself,
    and the auctions in flight (their messages lost with the old server) would still hang.
    Stopping cleanly, with the reason, lets the operator (or systemd) start a fresh fleet at
    once instead of leaving one that looks up and serves nobody."""


def say(text: str) -> None:
    print(f"fleetbid serve: {text}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def serve_lock(path: Path) -> Iterator[None]:
    """Exclusive, non-blocking ownership of `path` for as long as the block runs."""
    lock_path = path.with_name(path.name + ".lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise AlreadyServing(describe_owner(path)) from None
        # The previous owner may have unlinked the lock file between our open and flock:
        # then we locked an orphan inode, so start over on the file now at that path.
        try:
            if os.stat(lock_path).st_ino == os.fstat(fd).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            lock_path.unlink()
        os.close(fd)


def describe_owner(path: Path) -> str:
    try:
        state = read_state(path)
    except StateError:
        return f"another fleetbid serve is starting with state file {path}"
    return (f"a fleet is already running here (pid {state.pid}, XMPP {state.host}:{state.port}"
            f", state file {path})")


def clear_stale(path: Path) -> None:
    """Called holding the lock: any state file left is from a serve that died."""
    if not path.exists():
        return
    try:
        reason = stale_reason(read_state(path)) or "its serve no longer holds the lock"
    except StateError as exc:
        reason = str(exc)
    say(f"warning: replacing stale state file {path} ({reason})")
    path.unlink(missing_ok=True)


WebAt = tuple[str, int]


async def serve(
    config: RunConfig, endpoint: XmppEndpoint | None, path: Path, log_level: str,
    web_at: WebAt | None = None, join_port: int = 0,
) -> None:
    # Every serve announces on a group of its own (docs/monitoring.md): `fleetbid auctions`
    # and the live map listen there.
    group = AnnounceGroup.fresh()
    fleet = Fleet(config, endpoint=endpoint, log_level=log_level, announce=group)
    async with contextlib.AsyncExitStack() as stack:
        url = ""
        live: LiveMap | None = None
        if web_at is not None:
            live = LiveMap(fleet.roadmap, make_clusters(fleet.roadmap, config.clusters,
                                                        config.seed), config.speed, config.trace)
            # Listening before the fleet goes: the vehicles' first positions are news too.
            listener = Listener(group, live.on_news)
            await listener.open()
            stack.callback(listener.close)
            try:
                url = await live.start(*web_at)
            except OSError as exc:
                raise LaunchError(f"the live map cannot listen on {web_at[0]}:{web_at[1]}: "
                                  f"{exc.strerror or exc}") from None
            stack.push_async_callback(live.stop)
        await stack.enter_async_context(fleet)
        assert fleet.endpoint is not None and fleet.plan is not None
        if live is not None:
            live.epoch = fleet.epoch
        state = ServeState.describe(config, fleet.endpoint, fleet.plan.directory, fleet.epoch,
                                    fleet.roadmap.name, announce=group.as_dict(), web=url,
                                    trace=config.trace or "")
        state = with_join(state, config, fleet.endpoint, fleet.names, fleet.replicas)
        if state.join_key:  # nodes may join with a token alone (service/join_channel.py)
            joins = JoinService(state, lambda text: say(f"join service: {text}"))
            try:
                port = await joins.start(config.listen, join_port)
            except OSError as exc:
                raise LaunchError(f"the join service cannot listen on {config.listen}:"
                                  f"{join_port}: {exc.strerror or exc}") from None
            stack.push_async_callback(joins.close)
            state = joins.state = dataclasses.replace(state, join_host=config.listen,
                                                      join_port=port)
        write_state(path, write_join(path, state))
        status = status_path(path)
        writer = asyncio.ensure_future(keep_status(fleet, status))
        try:
            where = "embedded" if state.embedded else "external"
            say(f"listening on XMPP {state.host}:{state.port} ({where}, domain {state.domain});"
                f" main manager {state.main_manager}; {config.vehicles} vehicles, "
                f"{len(state.proxies)} proxies, {config.auction_managers} auction managers, "
                f"map {state.map_name}, speed x{config.speed:g}")
            if state.join_port:
                say(f"join service on {config.listen}:{state.join_port}: mint a join string "
                    f"with `fleetbid join-token --state {path}`")
            if url:
                say(f"live map on {url} (diagrams from the trace {config.trace})")
            say(f"announcing on {group.address}:{group.port}: follow with `fleetbid auctions`")
            say(f"state file {path}, status {status}; stop with Ctrl-C or SIGTERM")
            # Until Ctrl-C or SIGTERM cancels us, or a part the fleet cannot do without dies.
            raise FleetDied(await fleet.watch())
        finally:
            writer.cancel()
            # Gone before the agents are: no client joins a fleet that is stopping.
            remove_state(path, state.pid)
            remove_status(status, state.pid)
            remove_join(path, state.pid)


WEB_TRACE = "web-trace.jsonl"  # beside the state file: `serve --web` without --trace


def serve_config(args: argparse.Namespace) -> RunConfig:
    config = config_from(args, requests=0, join_slots=getattr(args, "join_slots", 0),
                         replica_slots=getattr(args, "replica_slots", 0))
    if getattr(args, "web", None) and not config.trace:
        # The live map draws an auction's conversation from the trace.
        trace = state_path(args.state).parent / WEB_TRACE
        config = dataclasses.replace(config, trace=str(trace.resolve()))
    if config.map is not None and config.map != "builtin":
        # Clients may run from another directory: record the map as an absolute path.
        config = dataclasses.replace(config, map=str(Path(config.map).expanduser().resolve()))
    return config


def cmd_serve(args: argparse.Namespace) -> int:
    path = state_path(args.state)
    config = serve_config(args)
    endpoint = endpoint_from(args)
    try:
        with serve_lock(path):
            clear_stale(path)
            if args.web and not args.trace and config.trace:
                Path(config.trace).unlink(missing_ok=True)  # ours: a fresh one per serve
            try:
                eventloop.run(serve(config, endpoint, path, args.log_level, args.web,
                                   getattr(args, "join_port", 0)))
            except (KeyboardInterrupt, eventloop.Terminated):
                say("stopped: agents, workers and server shut down")
                return 0
            except (LaunchError, AgentStartError, XmppServerError) as exc:
                say(f"error: the fleet could not start: {exc}")
                return 1
            except FleetDied as exc:
                say(f"error: {exc}; stopped the rest of the fleet and removed {path}")
                return 1
    except AlreadyServing as exc:
        say(f"error: {exc}")
        return 1
    return 0
