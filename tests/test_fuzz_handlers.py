"""Hypothesis fuzzing of every role's handler table, over the fake agent (no XMPP).

Each example starts a fresh behaviour in a known state (for the manager: an open auction;
for the proxy: a called group; for the vehicle: a bid standing), then hands it a message:
valid, mutated or hostile (wrong types, NaN and huge numbers, unknown fields, forged
senders, other performatives, oversized text). Whatever arrives, the behaviour must not
raise, may answer only `refused` / `not-understood` (with a reason) or its protocol, and an
error reply must come with no change of state.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from spade.message import Message
from test_behaviours_roles import (
    MAIN,
    MANAGER,
    PASSENGER,
    PICKUP,
    PROXY,
    STARTS,
    VEHICLES,
    FakeAgent,
    T,
    deliver,
    group_call,
    make,
    open_auction,
    real_bid,
    run,
)

from fleetbid.behaviours.auction import AuctionBehaviour
from fleetbid.behaviours.base import ProtocolBehaviour
from fleetbid.behaviours.proxy import ProxyBehaviour
from fleetbid.behaviours.registry import RegistryBehaviour
from fleetbid.behaviours.vehicle import BiddingBehaviour
from fleetbid.core.roles import Role
from fleetbid.laws import senders as law_senders
from fleetbid.protocol import codec
from fleetbid.protocol import messages as m
from fleetbid.protocol.schema import SCHEMAS

SENDERS = [MAIN, MANAGER, PROXY, PASSENGER, *VEHICLES[:2], "stranger@localhost",
           "main-manager@elsewhere", "x@y"]
HOSTILE_TEXT = st.sampled_from(["", "a1", "<x/>&'\"", "a" * 70, "\u202e\x00\n", "r00001",
                                "1", "-1", "nan", PICKUP, VEHICLES[0]])
NUMBERS = st.one_of(st.integers(-2**70, 2**70), st.floats(allow_nan=True, allow_infinity=True),
                    st.sampled_from([0, -0.0, 1e300, -1e300, 1e-300, 0.5, 1.0, T[VEHICLES[0]]]))
VALUES = st.recursive(st.one_of(st.none(), st.booleans(), NUMBERS, HOSTILE_TEXT),
                      lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(HOSTILE_TEXT, inner, max_size=3), max_leaves=6)


BY_ROLE = {Role.VEHICLE: VEHICLES[:2], Role.PROXY: [PROXY], Role.AUCTION_MANAGER: [MANAGER],
           Role.MAIN_MANAGER: [MAIN], Role.PASSENGER: [PASSENGER]}


def _fields(kind: str) -> list[str]:
    return list(SCHEMAS[kind].__struct_fields__)


V0, V1 = VEHICLES[0], VEHICLES[1]
# One well-formed body per type a role handles: the fuzzer mutates these ("mutated") as well
# as building bodies from scratch ("hostile").
VALID: list[m.Body] = [
    m.RideRequest(request_id="a2", source=PICKUP, destination=STARTS[V1], requested_at=0.0),
    m.VehicleAvailable(node=STARTS[V0], trips=1),
    open_auction(),
    m.Participation(auction_id="a1", candidates=(m.Candidate(V1, STARTS[V1]),)),
    m.AuctionPhase(auction_id="a1", phase="waiting"),
    m.AuctionClosed(auction_id="a1", winner=V0),
    m.WithdrawAuction(auction_id="a1"),
    group_call(VEHICLES[:3]),
    m.CallForBids(auction_id="a1", pickup=PICKUP, n=3, deadline=1e9, round=1),
    real_bid(V0), real_bid(V1),
    m.BidDeclined(auction_id="a1", reason="busy", round=1),
    m.GroupBest(auction_id="a1", vehicle=V0, bid=real_bid(V0).bid, eta_s=T[V0], bidders=2),
    m.Award(auction_id="a1", vehicle=V0, passenger=PASSENGER, pickup=PICKUP,
            dropoff=STARTS[V1], price=0.01),
    m.AwardConfirmed(auction_id="a1", vehicle=V0, eta_s=T[V0]),
    m.AwardDeclined(auction_id="a1", vehicle=V0, reason="taken"),
    m.AuctionResult(auction_id="a1", winner=V0),
]


@st.composite
def mutated(draw: st.DrawFn) -> Message:
    body = draw(st.sampled_from(VALID))
    data = json.loads(codec.encode("x@y", body).body)
    if data and draw(st.booleans()):
        name = draw(st.sampled_from(sorted(data)))
        if draw(st.booleans()):
            data[name] = draw(VALUES)
        else:
            del data[name]
    msg = codec.encode("someone@localhost", body)
    msg.body = json.dumps(data, allow_nan=True)
    # Mostly from a role the law lets send it, so the mutation reaches the handler's own
    # checks (a stranger's message stops at the receiver's law).
    natural = [jid for role in law_senders.SENDERS[body.TYPE] for jid in BY_ROLE[role]]
    msg.sender = f"{draw(st.sampled_from(natural * 3 + SENDERS))}/res"
    return msg


HANDLES = {  # what each fuzzed role handles (tests/test_behaviours_sends.py checks the tables)
    "manager": {"open-auction", "participation", "group-best", "bid", "bid-declined",
                "award-confirmed", "award-declined"},
    "proxy": {"group-call", "bid", "bid-declined", "award", "award-confirmed", "award-declined",
              "auction-result", "bid-received"},
    "vehicle": {"call-for-bids", "award", "auction-result", "bid-received"},
    "registry": {"ride-request", "vehicle-available", "auction-phase", "auction-closed"},
}
BOUNDARY = [0, -0.0, 1e-300, 1e300, -1.0, 2**63, 0.5, T[V0], T[V0] / 2]
WRONG_TEXT = ["nowhere", "-1", "", "a2", V1, PICKUP, PASSENGER, "x" * 65]


def _scalar(value: object) -> bool:
    return isinstance(value, int | float | str) and not isinstance(value, bool)


@st.composite
def boundary(draw: st.DrawFn, role: str) -> Message:
    """A valid message of a kind the role handles, from a role that may send it, with one
    field at a boundary (a number) or wrong but well-formed (a node, id or JID): it decodes,
    passes the law, and meets the handler's own checks."""
    body = draw(st.sampled_from([b for b in VALID if b.TYPE in HANDLES[role]]))
    data = json.loads(codec.encode("x@y", body).body)
    name = draw(st.sampled_from(sorted(k for k, v in data.items() if _scalar(v))))
    data[name] = draw(st.sampled_from(WRONG_TEXT if isinstance(data[name], str)
                                      else BOUNDARY))
    msg = codec.encode("someone@localhost", body)
    msg.body = json.dumps(data)
    natural = [jid for r in law_senders.SENDERS[body.TYPE] for jid in BY_ROLE[r]]
    msg.sender = f"{draw(st.sampled_from(natural))}/res"
    return msg


@st.composite
def hostile(draw: st.DrawFn) -> Message:
    kind = draw(st.sampled_from(sorted(SCHEMAS)) | st.sampled_from(["", "lost", "bogus"]))
    names = _fields(kind) if kind in SCHEMAS else []
    body: dict[str, Any] = {}
    for name in names:
        if draw(st.booleans()):  # keep the field, often with a plausible value
            plausible = {"auction_id": "a1", "vehicle": VEHICLES[0], "node": STARTS[VEHICLES[0]],
                         "pickup": PICKUP, "passenger": PASSENGER}.get(name)
            body[name] = plausible if plausible and draw(st.booleans()) else draw(VALUES)
    if draw(st.booleans()):
        body[draw(HOSTILE_TEXT)] = draw(VALUES)  # an unknown or duplicated field
    performatives = list(SCHEMAS[kind].PERFORMATIVES) if kind in SCHEMAS else []
    performative = draw(st.sampled_from([*performatives, "inform", "cfp", ""]))
    raw = draw(st.sampled_from([json.dumps(body, allow_nan=True), "{", "", "[]", "null"]))
    msg = Message(to="someone@localhost", body=raw, metadata={
        "performative": performative, "protocol": draw(st.sampled_from(
            [codec.PROTOCOL, codec.PROTOCOL, "other"])), "ontology": codec.ONTOLOGY,
        "conversation": draw(st.sampled_from(["a1", "a2", ""])), "type": kind,
        "mid": draw(st.sampled_from(["", "m1", "m2"]))})
    msg.sender = f"{draw(st.sampled_from(SENDERS))}/res"
    return msg


def _state(behaviour: ProtocolBehaviour) -> Any:
    """What a message could change: the behaviour's own fields and its agent's."""
    own = {k: v for k, v in vars(behaviour).items()
           if k in ("auction", "groups", "callers", "live", "waiting_requests", "idle",
                    "free_managers", "announced_trips", "opened")}
    agent = behaviour.agent
    return copy.deepcopy(({k: repr(v) for k, v in own.items()},
                          getattr(agent, "state", None), getattr(agent, "node", None)))


async def _manager() -> ProtocolBehaviour:
    am = await make(AuctionBehaviour(), FakeAgent(MANAGER, Role.AUCTION_MANAGER))
    await deliver(am, MAIN, open_auction())
    return am


async def _proxy() -> ProtocolBehaviour:
    p = await make(ProxyBehaviour(), FakeAgent(PROXY, Role.PROXY))
    await deliver(p, MANAGER, group_call(VEHICLES[:3]))
    await deliver(p, VEHICLES[0], real_bid(VEHICLES[0]))
    return p


async def _vehicle() -> ProtocolBehaviour:
    v = await make(BiddingBehaviour(), FakeAgent(VEHICLES[0], Role.VEHICLE,
                                                 node=STARTS[VEHICLES[0]]))
    await deliver(v, PROXY, m.CallForBids(auction_id="a1", pickup=PICKUP, n=3, deadline=1e9,
                                          round=1))
    return v


async def _registry() -> ProtocolBehaviour:
    agent = FakeAgent(MAIN, Role.MAIN_MANAGER)
    agent.auction_managers = (MANAGER,)  # type: ignore[attr-defined]
    reg = await make(RegistryBehaviour(), agent)
    await deliver(reg, VEHICLES[1], m.VehicleAvailable(node=STARTS[VEHICLES[1]]))
    return reg


ROLES = {"manager": _manager, "proxy": _proxy, "vehicle": _vehicle, "registry": _registry}
ERRORS = (m.Refused, m.NotUnderstood)


def _check(role: str, msg: Message) -> None:
    async def go() -> tuple[Any, Any, list[tuple[str, m.Body]]]:
        behaviour = await ROLES[role]()
        behaviour.agent.take()
        before = _state(behaviour)
        await behaviour.handle(msg)  # must not raise
        return before, _state(behaviour), behaviour.agent.take()

    before, after, replies = run(go())
    errors = [body for _, body in replies if isinstance(body, ERRORS)]
    for error in errors:
        assert error.reason, error  # an error reply says why
    if errors:
        assert after == before, (role, msg.get_metadata("type"), msg.body, errors)


FUZZ = settings(max_examples=150, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(msg=st.one_of(mutated(), hostile(), boundary("manager")))
def test_fuzzed_messages_to_the_auction_manager(msg: Message) -> None:
    _check("manager", msg)


@FUZZ
@given(msg=st.one_of(mutated(), hostile(), boundary("proxy")))
def test_fuzzed_messages_to_a_proxy(msg: Message) -> None:
    _check("proxy", msg)


@FUZZ
@given(msg=st.one_of(mutated(), hostile(), boundary("vehicle")))
def test_fuzzed_messages_to_a_vehicle(msg: Message) -> None:
    _check("vehicle", msg)


@FUZZ
@given(msg=st.one_of(mutated(), hostile(), boundary("registry")))
def test_fuzzed_messages_to_the_main_manager(msg: Message) -> None:
    _check("registry", msg)
