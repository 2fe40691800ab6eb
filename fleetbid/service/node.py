"""`fleetbid node --join STATE`: run a share of a running fleet's vehicles on this host.

STATE is the serve's state file (copied here over a channel you trust: it holds the join
token). The node takes join slots FIRST .. FIRST+K-1; each node of a fleet must be given its
own range (like the ordinals of a stateful set): two nodes running one slot would be two
agents under one name. Runs until Ctrl-C or SIGTERM, or until its worker process ends.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from fleetbid.core.values import non_negative_int, positive_int
from fleetbid.platform import eventloop


def say(text: str) -> None:
    print(f"fleetbid node: {text}", file=sys.stderr, flush=True)


async def run_node(path: Path, first: int, count: int | None, log_level: str) -> str:
    from fleetbid.run.node import JoinedNode, JoinError, slot_plan
    from fleetbid.service.join import node_endpoint
    from fleetbid.service.state import port_open, read_state

    state = read_state(path)
    endpoint = node_endpoint(state)
    # The serve's pid means nothing on another host: the server answering is what counts.
    if not port_open(state.host, state.port, timeout=5.0):
        raise JoinError(f"nothing accepts connections on XMPP {state.host}:{state.port}")
    config = state.run_config()
    count = len(state.join_slots) - first if count is None else count
    slots = slot_plan(config, state.join_slots, first, count)
    node = JoinedNode(config, endpoint, state.directory(), state.epoch, slots, log_level)
    try:
        await node.start()
        say(f"joined the fleet at XMPP {state.host}:{state.port} with {len(slots)} vehicles "
            f"({slots[0].name} .. {slots[-1].name}); stop with Ctrl-C or SIGTERM")
        return await node.wait()
    finally:
        await node.stop()


def cmd_node(args: argparse.Namespace) -> int:
    # Imported here: `fleetbid --help` must not load the agent platform.
    from fleetbid.platform.xmpp_agent import AgentStartError
    from fleetbid.run.node import JoinError
    from fleetbid.service.join import NotJoinable
    from fleetbid.service.state import StateError

    try:
        why = eventloop.run(run_node(Path(args.join), args.first_slot, args.vehicles,
                                     args.log_level))
    except (KeyboardInterrupt, eventloop.Terminated):
        say("stopped: vehicles logged out")
        return 0
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
    node.add_argument("--join", metavar="STATE", required=True,
                      help="the state file of the fleet's serve (started with --join-slots)")
    node.add_argument("--first-slot", type=non_negative_int, default=0, metavar="S",
                      help="first join slot this node runs (%(default)s)")
    node.add_argument("--vehicles", type=positive_int, default=None, metavar="K",
                      help="join slots this node runs (default: all from --first-slot)")
    node.add_argument("--log-level", default="WARNING",
                      choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="agent log level")
    node.set_defaults(func=cmd_node)
