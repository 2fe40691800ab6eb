"""`fleetbid complain`: file a complaint about an auction of a running fleet (docs/laws.md)."""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sys
from typing import Any

from spade.behaviour import CyclicBehaviour

from fleetbid.core.roles import Role
from fleetbid.core.values import positive_float
from fleetbid.platform import eventloop
from fleetbid.platform.xmpp_agent import XmppAgent, start_agents
from fleetbid.protocol import codec
from fleetbid.protocol import law_messages as lm
from fleetbid.protocol import messages as m
from fleetbid.service.request import finish_loop
from fleetbid.service.state import NoRunningFleet, load_running, state_path


def add_parser(sub: Any) -> None:
    complain = sub.add_parser("complain", help="file a complaint about an auction of a "
                                               "running fleet (fleetbid serve)")
    complain.add_argument("--auction", required=True, help="the auction (request) id")
    complain.add_argument("--reason", required=True, choices=["no-show", "shill", "clearing"],
                          help="no-show: the winner never arrived; shill: the passenger's "
                               "identity bid in its own auction; clearing: a batch (its "
                               "id as --auction) was not cleared or priced by its law")
    complain.add_argument("--note", default="", help="free text for the record")
    complain.add_argument("--timeout", type=positive_float, default=30.0,
                          help="wall seconds to wait for the decision (%(default)s)")
    complain.add_argument("--state", metavar="PATH", default=None,
                          help="state file of the running serve (default: .fleetbid/serve.json)")
    complain.add_argument("--json", action="store_true", help="print the decision as JSON")
    complain.set_defaults(func=cmd_complain, log_level="WARNING")


def cmd_complain(args: argparse.Namespace) -> int:
    try:
        state = load_running(state_path(args.state))
    except NoRunningFleet as exc:
        print(f"fleetbid: {exc}", file=sys.stderr)
        return 2
    complaints = state.law_agents.get(Role.COMPLAINTS)
    if not complaints:
        print("fleetbid: this fleet has no complaints agent", file=sys.stderr)
        return 2

    async def go() -> dict[str, Any]:
        try:
            return await file_complaint(state.endpoint(), complaints, args.auction, args.reason,
                                        args.note, args.timeout)
        finally:
            await finish_loop()

    decision = eventloop.run(go())
    if args.json:
        print(json.dumps(decision))
    else:
        verdict = "UPHELD" if decision["upheld"] else "REJECTED"
        print(f"{args.auction}: {verdict}: {decision['reason']}")
        if decision.get("revoked"):
            print(f"asked the certification authority to revoke {decision['offender']}")
    return 0


async def file_complaint(
    endpoint: Any, complaints: str, auction_id: str, reason: str, note: str, timeout: float
) -> dict[str, Any]:
    """Log in as a one-off complainant, send the complaint, return the decision's body."""
    answer: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()

    class Inbox(CyclicBehaviour):
        async def run(self) -> None:
            msg = await self.receive(timeout=1)
            if msg is None or answer.done():
                return
            kind = msg.get_metadata("type")
            if kind == lm.ComplaintDecision.TYPE:
                answer.set_result(json.loads(msg.body))
            elif kind in (m.Refused.TYPE, m.NotUnderstood.TYPE):
                body = json.loads(msg.body)
                answer.set_result({"upheld": False, "reason": f"{kind}: {body['reason']}"})

    agent = XmppAgent(f"complainant-{secrets.token_hex(4)}", endpoint)
    inbox = Inbox()
    agent.add_behaviour(inbox)
    await start_agents([agent], concurrency=1)
    try:
        complaint = lm.Complaint(auction_id=auction_id, reason=reason, note=note[:500])
        await agent.send(codec.encode(complaints, complaint), inbox)
        return await asyncio.wait_for(answer, timeout)
    except TimeoutError:
        return {"upheld": False, "reason": f"no decision within {timeout:.0f} s"}
    finally:
        await agent.stop()
