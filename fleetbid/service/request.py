"""`fleetbid request`: join a running fleet as PassengerPersonalAgents of this process.

The serve's state file gives everything a passenger needs: the XMPP endpoint, the Directory
of well-known JIDs, the run configuration (to build the same World: map, clusters, travel
times) and the epoch, so this process's simulated clock agrees with the fleet's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import secrets
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fleetbid.agents.passenger import passenger, ride_session
from fleetbid.core.directory import Directory
from fleetbid.core.outcome import RideOutcome
from fleetbid.core.world import World
from fleetbid.laws.book import resolve
from fleetbid.laws.schema import Law
from fleetbid.maps import MapError, RoadMap
from fleetbid.platform import eventloop
from fleetbid.platform.xmpp_server import XmppEndpoint
from fleetbid.run.summary import rejection_lines, service_lines, summarize
from fleetbid.service.script import BadRow, Place, Ride, ScriptError, load_rides, parse_place
from fleetbid.service.state import NoRunningFleet, ServeState, load_running, state_path
from fleetbid.service.status import refusal

LOGIN_LEAD_S = 1.0  # wall seconds a scripted passenger logs in before its request time
PASSENGER_LOGINS = 8  # concurrent logins: each costs the XMPP server a SASL handshake


@dataclass
class Client:
    """This process's view of the running fleet."""

    state: ServeState
    world: World
    directory: Directory
    endpoint: XmppEndpoint
    timeout_s: float
    gate: asyncio.Semaphore
    law: Law | None = None  # `--law`: the law this client's passengers choose
    state_file: Path | None = None  # the serve's state file (its status file is beside it)

    @classmethod
    def join(cls, state: ServeState, timeout_s: float | None = None,
             state_file: Path | None = None) -> Client:
        config = state.run_config()
        world = World.build(config, state.epoch)
        if timeout_s is None:
            # The passenger gives up by itself after patience plus bidding, then waits for
            # its vehicle; this wall limit only catches a fleet that went away meanwhile.
            timeout_s = 2 * (config.patience_s + 4 * config.bid_window_s()) / config.speed + 30
        return cls(state, world, state.directory(), state.endpoint(), timeout_s,
                   asyncio.Semaphore(PASSENGER_LOGINS), state_file=state_file)

    @property
    def roadmap(self) -> RoadMap:
        return self.world.roadmap

    async def ride(
        self, source: str, destination: str, label: str | None = None, at: float | None = None
    ) -> RideOutcome:
        """One passenger agent, start to outcome."""
        token = secrets.token_hex(6)
        # Unique names and ids: other clients and earlier runs share the server and the
        # MainManager, and a passenger's account is registered with a one-off password.
        request_id = f"{label}-{token}" if label else f"req-{token}"
        refused = refusal(self.state_file) if self.state_file else ""
        if refused:  # the managers lost their quorum: no auction could run
            return RideOutcome(request_id, source, destination,
                               requested_at=self.world.clock.now(), reason=f"refused: {refused}")
        agent, done = passenger(f"passenger-{token}", self.endpoint, self.world, self.directory,
                                request_id, source, destination, at, self.law)
        return await ride_session(agent, done, self.gate, timeout_s=self.timeout_s)


async def finish_loop() -> None:
    # slixmpp leaves keepalive and reconnect tasks behind: end them before the loop closes.
    current = asyncio.current_task()
    leftovers = [t for t in asyncio.all_tasks() if t is not current]
    for task in leftovers:
        task.cancel()
    await asyncio.gather(*leftovers, return_exceptions=True)


def describe(o: RideOutcome) -> str:
    if o.served:
        wait = "" if o.wait_s is None else f", picked up after {o.wait_s:.1f} s"
        return (f"served by {o.vehicle}: ETA {o.eta_s or 0.0:.1f} s, price "
                f"{o.price or 0.0:.6g}{wait} (auction {o.request_id})")
    return f"rejected: {o.reason} (auction {o.request_id})"


# --- one request -------------------------------------------------------------------------------


def endpoint_node(roadmap: RoadMap, point: str | None, node: str | None, what: str) -> str:
    if (point is None) == (node is None):
        raise ValueError(f"give exactly one of --{what} LAT,LON and --{what}-node ID")
    if node is not None:
        return Place(node=node).resolve(roadmap)
    assert point is not None
    place = parse_place(point, f"--{what}")
    if place.node is not None:
        raise ValueError(f"--{what} must be LAT,LON (use --{what}-node for a node id)")
    return place.resolve(roadmap)


async def one_request(args: argparse.Namespace, state: ServeState) -> int:
    client = Client.join(state, args.timeout, state_path(args.state))
    client.law = resolve(args.law) if getattr(args, "law", None) else None
    try:
        source = endpoint_node(client.roadmap, args.source, args.from_node, "from")
        destination = endpoint_node(client.roadmap, args.to, args.to_node, "to")
        outcome = await client.ride(source, destination)
    finally:
        await finish_loop()
    if args.json:
        print(json.dumps(outcome.to_json()))
    else:
        print(f"{source} -> {destination}: {describe(outcome)}")
    return 0 if outcome.served else 1


# --- several requests ----------------------------------------------------------------------------


def random_rides(roadmap: RoadMap, count: int, interval_s: float, seed: int | None) -> list[Ride]:
    rng = random.Random(seed)
    rides = []
    for i in range(count):
        source = roadmap.random_node(rng)
        destination = roadmap.random_node(rng)
        while destination == source:
            destination = roadmap.random_node(rng)
        rides.append(Ride(i + 1, i * interval_s, source, destination, f"rnd{i + 1}"))
    return rides


async def replay(
    client: Client, rides: list[Ride], report: Callable[[Ride, RideOutcome], None]
) -> list[RideOutcome]:
    """Every ride at its time after now, concurrently; outcomes in script order."""
    clock = client.world.clock
    start = clock.now() + LOGIN_LEAD_S * clock.speed  # room for the first logins

    async def one(ride: Ride) -> RideOutcome:
        at = start + ride.at
        # Log in a little early, then ask exactly on time (as `fleetbid run` does).
        await asyncio.sleep(max(0.0, clock.until(at) - LOGIN_LEAD_S))
        outcome = await client.ride(ride.source, ride.destination, ride.id, at=at)
        report(ride, outcome)
        return outcome

    return list(await asyncio.gather(*(one(r) for r in rides)))


def service_summary(
    outcomes: list[RideOutcome], bad: list[BadRow], wall_s: float
) -> dict[str, Any]:
    # No vehicle stats from here: only the service figures of the run summary apply.
    full = summarize(outcomes, [], {})
    keys = ("requests", "served", "rejected", "wait_avg_s", "wait_p95_s", "wait_max_s",
            "latency_p50_ms", "latency_p99_ms", "rejections")
    return {**{k: full[k] for k in keys}, "skipped": len(bad), "wall_s": round(wall_s, 2)}


def format_service_summary(s: dict[str, Any]) -> str:
    lines = [
        f"requests        {s['requests']}  (served {s['served']}, rejected {s['rejected']}, "
        f"skipped {s['skipped']} bad rows)",
        *service_lines(s),
        f"wall time       {s['wall_s']} s",
    ]
    return "\n".join(lines + rejection_lines(s))


async def many_requests(args: argparse.Namespace, state: ServeState) -> int:
    client = Client.join(state, args.timeout, state_path(args.state))
    client.law = resolve(args.law) if getattr(args, "law", None) else None
    bad: list[BadRow] = []
    if args.script is not None:
        rides, bad = load_rides(Path(args.script), client.roadmap)
    else:
        rides = random_rides(client.roadmap, args.random, args.interval, args.seed)
    for row in bad:
        print(f"fleetbid request: {args.script}: {row}: skipped", file=sys.stderr)
    if not rides:
        print("fleetbid request: no valid request to send", file=sys.stderr)
        return 2

    def report(ride: Ride, outcome: RideOutcome) -> None:
        if not args.json:
            name = f" [{ride.id}]" if ride.id else ""
            print(f"line {ride.line}{name}: {describe(outcome)}", flush=True)

    started = time.perf_counter()
    try:
        outcomes = await replay(client, rides, report)
    finally:
        await finish_loop()
    summary = service_summary(outcomes, bad, time.perf_counter() - started)
    if args.json:
        rows = [{**o.to_json(), "line": r.line, "id": r.id}
                for r, o in zip(rides, outcomes, strict=True)]
        print(json.dumps({"outcomes": rows, "skipped": [vars(b) for b in bad],
                          "summary": summary}))
    else:
        print(format_service_summary(summary))
    return 0 if summary["served"] == summary["requests"] else 1


def cmd_request(args: argparse.Namespace) -> int:
    modes = [args.script is not None, args.random is not None,
             any(v is not None for v in (args.source, args.to, args.from_node, args.to_node))]
    if sum(modes) != 1:
        raise ValueError("give --from/--to (or --from-node/--to-node), --script FILE "
                         "or --random N")
    if args.random is not None and args.random < 1:
        raise ValueError("--random must be >= 1")
    try:
        state = load_running(state_path(args.state))
    except NoRunningFleet as exc:
        print(f"fleetbid request: {exc}", file=sys.stderr)
        return 2
    try:
        main = one_request if modes[2] else many_requests
        return eventloop.run(main(args, state))
    except ScriptError as exc:
        print(f"fleetbid request: {exc}", file=sys.stderr)
        return 2
    except MapError as exc:
        print(f"fleetbid request: {exc}", file=sys.stderr)
        return 2
