"""`fleetbid node --join`: run a share of a running fleet's vehicles on this host.

Two ways to join (docs/hosts.md):

  --join fleetbid://HOST:PORT/DOMAIN?token=TOKEN
      the join string `fleetbid join-token` prints on the serve's host: the node fetches
      the fleet's config, keys and its slots from the serve's join service, over an
      exchange authenticated and encrypted with the single-use token. The serve gives out
      the next free join slots (--vehicles K of them, default all that are left) and the
      replica slot asked for (--replica-slot R); --first-slot is not used.
  --join STATE
      the serve's state file, with STATE.join beside it (or --token FILE), the serve's
      join file: copy both here over a channel you trust. The node takes join slots
      FIRST .. FIRST+K-1; each node must be given its own range (like the ordinals of a
      stateful set): two nodes running one slot would be two agents under one name.

With `--replica-slot R` it also runs a replica of the AuctionManagers (serve started with
`--replica-slots`), one R per node. Runs until Ctrl-C or SIGTERM, or until one of its
worker processes ends.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fleetbid.core.values import ipv4_address, non_negative_int, positive_int
from fleetbid.options import add_log_level
from fleetbid.platform import eventloop
from fleetbid.service.join_token import DEFAULT_TTL_S, JoinString, join_target, mint

if TYPE_CHECKING:
    from fleetbid.service.state import ServeState


def say(text: str) -> None:
    print(f"fleetbid node: {text}", file=sys.stderr, flush=True)


def local_address_towards(host: str) -> str:
    """This host's address on the route to `host` (no packet is sent: UDP connect)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect((host, 9))
        return str(sock.getsockname()[0])


def on_replica_event(event: dict[str, Any]) -> None:
    """What the node's replica host says about its group, for the operator (and tests)."""
    kind, member = event.get("kind"), event.get("member")
    if kind == "view":
        inside = "member of the group" if member in event.get("members", ()) else "outside"
        say(f"replica {member}: view {list(event.get('members', ()))} ({inside})")
    elif kind == "group-status":
        state = f"frozen: {event['reason']}" if event.get("frozen") else "makes progress"
        say(f"replica {member}: the managers' group {state}")


async def joined_state(args: argparse.Namespace) -> tuple[ServeState, int, int]:
    """The serve's state with its join secrets, and the slots this node runs (first, count):
    from the join service (a join string) or from the state and join files."""
    from fleetbid.service.join import join_path, read_join
    from fleetbid.service.join_channel import fetch
    from fleetbid.service.state import read_state

    if isinstance(args.join, JoinString):
        granted = await fetch(args.join, args.vehicles, args.replica_slot)
        say(f"the join service at {args.join.host}:{args.join.port} gave this node "
            f"{granted.vehicles} join slots from {granted.first_slot}")
        return granted.state, granted.first_slot, granted.vehicles
    path = Path(args.join)
    state = read_join(read_state(path), Path(args.token) if args.token else join_path(path))
    first = args.first_slot
    count = len(state.join_slots) - first if args.vehicles is None else args.vehicles
    return state, first, count


async def run_node(args: argparse.Namespace) -> str:
    from fleetbid.run import node as joined
    from fleetbid.service.join import node_endpoint, node_replica
    from fleetbid.service.state import stale_reason

    state, first, count = await joined_state(args)
    endpoint = node_endpoint(state)
    stale = stale_reason(state)
    if stale is not None:
        raise joined.JoinError(f"the fleet of {args.join} is gone: {stale}")
    config, directory = state.run_config(), state.directory()
    workers: list[joined.JoinedNode] = []
    what: list[str] = []
    if count:
        slots = joined.slot_plan(config, state.join_slots, first, count)
        workers.append(joined.JoinedNode(config, endpoint, directory, state.epoch,
                                  joined.vehicle_specs(slots), args.log_level, index=0))
        what.append(f"{len(slots)} vehicles ({slots[0].name} .. {slots[-1].name})")
    if args.replica_slot is not None:
        interface = args.mcast_interface or local_address_towards(state.host)
        replica = node_replica(state, args.replica_slot, interface)
        workers.append(joined.JoinedNode(config, endpoint, directory, state.epoch,
                                  joined.manager_specs(directory), args.log_level, index=1,
                                  replica=replica, on_event=on_replica_event))
        what.append(f"replica {args.replica_slot} of the managers (multicast on {interface})")
    if not workers:
        raise joined.JoinError("nothing to run: give --vehicles K >= 1 or --replica-slot R")
    try:
        # One after the other: the vehicles' logins load this host's cores, and a replica
        # recruited meanwhile may miss heartbeats (measured: 2 x 250 vehicles froze a group).
        for worker in workers:
            await worker.start()
        say(f"joined the fleet at XMPP {state.host}:{state.port} with {' and '.join(what)};"
            f" stop with Ctrl-C or SIGTERM")
        done, _ = await asyncio.wait([asyncio.ensure_future(w.wait()) for w in workers],
                                     return_when=asyncio.FIRST_COMPLETED)
        return str(next(iter(done)).result())
    finally:
        await asyncio.gather(*(w.stop() for w in workers), return_exceptions=True)


def cmd_node(args: argparse.Namespace) -> int:
    # Imported here: `fleetbid --help` must not load the agent platform.
    from fleetbid.platform.xmpp_agent import AgentStartError
    from fleetbid.run.node import JoinError
    from fleetbid.service.join import NotJoinable
    from fleetbid.service.join_channel import JoinRefused
    from fleetbid.service.state import StateError

    if isinstance(args.join, JoinString) and (args.first_slot or args.token):
        say("error: with a join string the serve gives out the slots and the keys: "
            "--first-slot and --token are for --join STATE")
        return 2
    try:
        why = eventloop.run(run_node(args))
    except (KeyboardInterrupt, eventloop.Terminated):
        say("stopped: vehicles logged out")
        return 0
    except JoinRefused as exc:
        say(f"error: join refused: {exc}")
        return 1
    except (StateError, NotJoinable, JoinError, AgentStartError, OSError) as exc:
        say(f"error: {exc}")
        return 1
    say(f"the node's worker ended ({why})")
    return 1


def add_parser(subparsers: Any) -> None:
    node = subparsers.add_parser(
        "node", help="run a share of a running fleet's vehicles on this host",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    node.add_argument("--join", metavar="STATE|JOIN-STRING", required=True, type=join_target,
                      help="a join string fleetbid://HOST:PORT/DOMAIN?token=... from "
                           "`fleetbid join-token`, or the state file of the fleet's serve "
                           "(started with --join-slots)")
    node.add_argument("--token", metavar="FILE", default=None,
                      help="the serve's join file, which holds the join token (default: "
                           "STATE.join beside the state file)")
    node.add_argument("--first-slot", type=non_negative_int, default=0, metavar="S",
                      help="first join slot this node runs (%(default)s)")
    node.add_argument("--vehicles", type=non_negative_int, default=None, metavar="K",
                      help="join slots this node runs (default: all from --first-slot)")
    node.add_argument("--replica-slot", type=non_negative_int, default=None, metavar="R",
                      help="also run replica R of the AuctionManagers (serve started with "
                           "--replica-slots; each node its own R)")
    node.add_argument("--mcast-interface", type=ipv4_address, default=None, metavar="ADDR",
                      help="this host's address for the replicas' multicast (default: the "
                           "one on the route to the XMPP server)")
    add_log_level(node)
    node.set_defaults(func=cmd_node)

    token = subparsers.add_parser(
        "join-token", help="mint a single-use join string for `fleetbid node --join`",
        description="On the serve's host: print a join string fleetbid://HOST:PORT/DOMAIN?"
                    "token=TOKEN for one `fleetbid node --join` (single-use, expires after "
                    "--ttl). It is a secret until used: hand it to the node's operator over "
                    "a channel you trust.",
    )
    token.add_argument("--state", metavar="PATH", default=None,
                       help="state file of the running serve (default: .fleetbid/serve.json)")
    token.add_argument("--ttl", type=positive_int, default=DEFAULT_TTL_S, metavar="SECONDS",
                       help="seconds the token stays valid (%(default)s)")
    token.set_defaults(func=cmd_join_token, log_level="WARNING")


def cmd_join_token(args: argparse.Namespace) -> int:
    from fleetbid.service.join import NotJoinable, join_path, read_join
    from fleetbid.service.state import NoRunningFleet, load_running, state_path

    path = state_path(args.state)
    try:
        state = read_join(load_running(path), join_path(path))
    except (NoRunningFleet, NotJoinable) as exc:
        print(f"fleetbid join-token: error: {exc}", file=sys.stderr)
        return 1
    if not (state.join_key and state.join_port):
        print("fleetbid join-token: error: this serve has no join service (it writes one "
              "with --join-slots or --replica-slots)", file=sys.stderr)
        return 1
    token = mint(state.join_key, args.ttl)
    # The join service listens on serve's --listen address (with an external XMPP server,
    # not the server's host).
    print(JoinString(state.join_host or state.host, state.join_port, state.domain, token))
    return 0
