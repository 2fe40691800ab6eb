"""What each role handles and sends: the handler tables, the SENDS declarations, and the
checks that turn a forgotten declaration into an error when an agent is built or sends."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
from spade.message import Message

from fleetbid.agents import (
    AuctionManagerAgent,
    FleetAgent,
    MainManagerAgent,
    PassengerAgent,
    ProxyAgent,
    VehicleAgent,
)
from fleetbid.agents.law_services import (
    AuditorAgent,
    AuditorBehaviour,
    AuthorityAgent,
    AuthorityBehaviour,
    ComplaintsAgent,
    ComplaintsBehaviour,
)
from fleetbid.behaviours.auction import AuctionBehaviour
from fleetbid.behaviours.base import ProtocolBehaviour
from fleetbid.behaviours.batch_auction import BatchAuctionBehaviour
from fleetbid.behaviours.batch_registry import BatchRegistryBehaviour
from fleetbid.behaviours.dispatch import DispatchBehaviour
from fleetbid.behaviours.passenger import RideBehaviour
from fleetbid.behaviours.proxy import ProxyBehaviour
from fleetbid.behaviours.registry import RegistryBehaviour
from fleetbid.behaviours.vehicle import BiddingBehaviour
from fleetbid.core.config import RunConfig
from fleetbid.core.directory import Directory
from fleetbid.core.roles import Role
from fleetbid.core.world import World
from fleetbid.laws import certificates, senders
from fleetbid.platform.xmpp_server import XmppEndpoint
from fleetbid.protocol import codec
from fleetbid.protocol import messages as m

WORLD = World.build(RunConfig(vehicles=2, clusters=1))
ENDPOINT = XmppEndpoint("127.0.0.1", 5222, "localhost", False)
DIRECTORY = Directory("main-manager@localhost", ("auction-0@localhost",), ("proxy-0@localhost",),
                      frozenset({"vehicle-0@localhost"}),
                      authority="certification-authority@localhost")

# What each behaviour handles: the receiving side of docs/architecture.md and docs/laws.md.
HANDLES: dict[type[ProtocolBehaviour], set[str]] = {
    BiddingBehaviour: {"call-for-bids", "award", "bid-received",
                       "dispatch", "english-round", "dutch-tick", "outbid",
                       "certificate-issued", "revoked", "batch-call", "batch-award"},
    ProxyBehaviour: {"group-call", "bid", "bid-declined", "award", "award-confirmed",
                     "award-declined", "auction-result", "batch-call", "batch-bid"},
    AuctionBehaviour: {"open-auction", "participation", "group-best", "bid", "bid-declined",
                       "award-confirmed", "award-declined", "withdraw-auction"},
    RegistryBehaviour: {"ride-request", "vehicle-available", "auction-phase", "auction-closed"},
    BatchAuctionBehaviour: {"open-batch", "batch-bid", "batch-group-bids", "award-confirmed",
                            "award-declined"},
    BatchRegistryBehaviour: {"ride-request", "vehicle-available", "batch-closed"},
    DispatchBehaviour: {"ride-request", "vehicle-available", "dispatch-confirmed",
                        "dispatch-declined"},
    RideBehaviour: {"ride-assigned", "ride-unserved", "picked-up"},
    AuthorityBehaviour: {"certificate-request", "revoke"},
    AuditorBehaviour: {"audit-batch", "audit-query"},
    ComplaintsBehaviour: {"complaint", "audit-record"},
}

# What each role sends: the table the law controller kept by hand before the roles declared
# it (less the passenger's complaint and audit-query, which no passenger agent sends, and
# less `lost` and `admission-refused`: vehicles that cannot win are told nothing).
ROLE_SENDS: dict[type[FleetAgent], set[str]] = {
    PassengerAgent: {"ride-request"},
    VehicleAgent: {"vehicle-available", "bid", "bid-declined", "award-confirmed",
                   "award-declined", "picked-up", "certificate-request", "dispatch-confirmed",
                   "dispatch-declined", "batch-bid"},
    MainManagerAgent: {"open-auction", "participation", "ride-unserved", "dispatch",
                       "ride-assigned", "withdraw-auction", "open-batch"},
    AuctionManagerAgent: {"group-call", "call-for-bids", "award",
                          "auction-result", "ride-assigned", "ride-unserved",
                          "auction-phase", "auction-closed", "english-round", "outbid",
                          "dutch-tick", "bid-received", "batch-call", "batch-award",
                          "batch-closed"},
    ProxyAgent: {"call-for-bids", "group-best", "award", "award-confirmed", "batch-call",
                 "batch-group-bids"},
    AuthorityAgent: {"certificate-issued", "revoked"},
    AuditorAgent: {"audit-record"},
    ComplaintsAgent: {"complaint-decision", "revoke", "audit-query"},
}


BUILT: list[FleetAgent] = []


@pytest.fixture(scope="module", autouse=True)
def _forget_built_agents() -> Iterator[None]:
    """spade registers every agent it constructs in a process-wide container, and a send to
    a registered JID is delivered in-process: unregister ours, or a later test's message to
    `proxy-0` would go to an agent that never started."""
    yield
    for agent in BUILT:
        if agent.container.has_agent(str(agent.jid)):
            agent.container.unregister(str(agent.jid))


def build(cls: type[FleetAgent]) -> FleetAgent:
    """A real agent of the class (not connected): its sends go to a list, `agent.sent`."""
    args: dict[str, Any] = {}
    if issubclass(cls, VehicleAgent):
        args = {"node": WORLD.roadmap.nodes[0]}
    elif issubclass(cls, PassengerAgent):
        args = {"request_id": "r1", "source": WORLD.roadmap.nodes[0],
                "destination": WORLD.roadmap.nodes[1], "on_outcome": lambda outcome: None}
    elif issubclass(cls, AuthorityAgent):
        args = {"secret": certificates.new_key()[0]}
    agent = cls(f"sends-test-{cls.ROLE}", ENDPOINT, WORLD, DIRECTORY, **args)
    BUILT.append(agent)
    return agent


async def started(cls: type[ProtocolBehaviour]) -> tuple[ProtocolBehaviour, list[Message]]:
    """The behaviour started on a real agent of its role, and the list its sends go to."""
    [agent_class] = [a for a in ROLE_SENDS if cls in a.BEHAVIOURS]
    agent = build(agent_class)
    sent: list[Message] = []

    async def send(msg: Message, behaviour: Any) -> None:
        sent.append(msg)

    agent.send = send  # type: ignore[method-assign]
    behaviour = cls()
    behaviour.agent = agent
    await behaviour.on_start()
    return behaviour, sent


@pytest.mark.parametrize("cls", list(HANDLES), ids=lambda c: c.__name__)
def test_handler_tables_hold_exactly_the_protocol_types(cls: type[ProtocolBehaviour]) -> None:
    behaviour, _ = asyncio.run(started(cls))
    assert {body.TYPE for body in behaviour.handlers} == HANDLES[cls]


@pytest.mark.parametrize("cls", list(ROLE_SENDS), ids=lambda c: c.__name__)
def test_each_role_sends_what_its_behaviours_declare(cls: type[FleetAgent]) -> None:
    agent = build(cls)  # the start-up check passes: the law lets the role send all of it
    assert agent.send_kinds() == ROLE_SENDS[cls]
    assert agent.controller.role == cls.ROLE


def test_every_role_has_an_agent_class() -> None:
    assert {cls.ROLE for cls in ROLE_SENDS} == set(Role)


def test_the_law_lets_each_role_send_exactly_what_its_agent_declares() -> None:
    # Receivers refuse by this table (laws/senders.py): a role it allows more than its agent
    # sends would widen what a forger in that role may do; one it allows less would refuse
    # honest traffic. (Clients with no agent class, in the passenger role, send complaints
    # (`fleetbid laws complain`) and may ask the auditor for a record.)
    declared: dict[str, set[str]] = {}
    for cls, kinds in ROLE_SENDS.items():
        for kind in kinds - senders.ANY_ROLE:
            declared.setdefault(kind, set()).add(str(cls.ROLE))
    for kind in ("complaint", "audit-query"):
        declared.setdefault(kind, set()).add(str(Role.PASSENGER))
    assert declared == {kind: {str(r) for r in roles} for kind, roles in senders.SENDERS.items()}


def test_an_agent_s_controller_knows_the_roles_of_its_senders() -> None:
    agent = build(VehicleAgent)
    assert agent.controller.role_of is not None
    assert agent.controller.role_of(DIRECTORY.main_manager) == Role.MAIN_MANAGER
    assert agent.controller.role_of("someone@localhost") == Role.PASSENGER


class ShillBehaviour(ProtocolBehaviour):
    SENDS: ClassVar[frozenset[type[m.Body]]] = frozenset({m.Bid})


class ShillPassenger(PassengerAgent):
    BEHAVIOURS = (*PassengerAgent.BEHAVIOURS, ShillBehaviour)


def test_a_role_declaring_what_the_law_forbids_it_fails_at_start_up() -> None:
    with pytest.raises(TypeError, match="the law does not let a passenger send bid"):
        build(ShillPassenger)


def test_telling_an_undeclared_type_raises_and_sends_nothing() -> None:
    async def go() -> list[Message]:
        behaviour, sent = await started(RideBehaviour)
        sent.clear()  # its ride request
        with pytest.raises(TypeError, match="RideBehaviour sends bid .* SENDS"):
            await behaviour.tell("auction-0@localhost", m.Bid(auction_id="a1", bid=0.1,
                                                              eta_s=10.0))
        # Error replies need no declaration.
        await behaviour.tell("auction-0@localhost", m.Refused(reason="no", in_reply_to="bid"))
        return sent

    [sent] = asyncio.run(go())
    assert sent.get_metadata("type") == "refused"


def test_an_agent_refuses_to_send_a_kind_none_of_its_behaviours_declares() -> None:
    agent = build(ProxyAgent)
    msg = codec.encode("vehicle-0@localhost", m.PickedUp(auction_id="a1", at=1.0))
    with pytest.raises(TypeError, match="ProxyAgent sends 'picked-up'"):
        asyncio.run(agent.send(msg, None))
