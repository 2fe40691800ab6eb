"""Each role's handlers driven directly over a fake agent (no XMPP): the vehicle, the proxy,
the AuctionManager, and whole auctions under each built-in law between in-process agents.

The fake agent has the real world of the generated city, a directory, the law controller
of its role, and a list instead of XMPP: `ProtocolBehaviour.tell` calls `agent.send`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
from collections.abc import Coroutine
from typing import Any

import pytest
from slixmpp import JID
from spade.message import Message

from fleetbid.auction.book import Offer
from fleetbid.auction.rules import equilibrium_bid
from fleetbid.behaviours.auction import AuctionBehaviour
from fleetbid.behaviours.base import ProtocolBehaviour
from fleetbid.behaviours.proxy import ProxyBehaviour
from fleetbid.behaviours.registry import RegistryBehaviour
from fleetbid.behaviours.vehicle import IDLE, TO_PICKUP, BiddingBehaviour, TripBehaviour
from fleetbid.core.config import RunConfig
from fleetbid.core.directory import Directory
from fleetbid.core.roles import Role
from fleetbid.core.world import World
from fleetbid.laws import auctions
from fleetbid.laws.book import book_for
from fleetbid.laws.controller import Controller
from fleetbid.laws.schema import Dutch, English, Vickrey
from fleetbid.protocol import codec
from fleetbid.protocol import law_messages as lm
from fleetbid.protocol import messages as m

D = "localhost"
MAIN, MANAGER, PROXY, PASSENGER = (f"main-manager@{D}", f"auction-0@{D}", f"proxy-0@{D}",
                                   f"passenger-1@{D}")
VEHICLES = tuple(f"vehicle-{i}@{D}" for i in range(5))
DIRECTORY = Directory(MAIN, (MANAGER,), (PROXY,), frozenset(VEHICLES),
                      authority=f"certification-authority@{D}")
CONFIG = RunConfig(vehicles=len(VEHICLES), clusters=1, radius_m=1e7, speed=100.0, proxies="0")
WORLD = World.build(CONFIG)
NODES = WORLD.roadmap.nodes
PICKUP, DROPOFF = NODES[300], NODES[40]
# The vehicles' start nodes, and their real travel times to the pickup (all distinct).
STARTS = {v: NODES[i * 111 + 7] for i, v in enumerate(VEHICLES)}
T = {v: WORLD.travel.time_to(node, PICKUP) for v, node in STARTS.items()}
BY_ETA = sorted(VEHICLES, key=lambda v: T[v])  # fastest first


def test_the_scenario_has_distinct_finite_travel_times() -> None:
    assert all(math.isfinite(t) and t > CONFIG.min_eta_s for t in T.values())
    assert len(set(T.values())) == len(T)


class FakeAgent:
    """What behaviours use of their agent, with a list instead of XMPP."""

    def __init__(self, jid: str, role: Role, law: str = "sealed-first-price",
                 node: str = "") -> None:
        self.jid = JID(jid)
        self.name = jid.split("@")[0]
        self.world = WORLD
        self.directory = DIRECTORY
        self.manager_jid = DIRECTORY.main_manager
        self.managers = frozenset(DIRECTORY.auction_managers)
        self.proxies = DIRECTORY.proxies
        self.fleet = DIRECTORY.vehicles
        self.controller = Controller(jid, role, book_for(law), DIRECTORY.services(), "",
                                     WORLD.clock.now, role_of=DIRECTORY.role_of)
        self.bids_acknowledged: set[str] = set()
        self.sent: list[Message] = []
        self.audits: list[m.Body] = []
        self.added: list[Any] = []
        self.node, self.state, self.trips = node, IDLE, 0  # a vehicle's
        self.rides_taken: list[str] = []

    async def send(self, msg: Message, behaviour: Any) -> None:
        reason = self.controller.on_send(msg)  # as FleetAgent.send: the law stamps it
        assert reason is None, reason
        if msg.get_metadata("type") == "audit-batch":
            self.audits.append(codec.decode(msg))  # the law's records, not the protocol
            return
        self.sent.append(msg)

    def add_behaviour(self, behaviour: Any) -> None:
        self.added.append(behaviour)

    def take(self) -> list[tuple[str, m.Body]]:
        """What was sent since the last take: (receiver, body)."""
        out = [(str(msg.to), codec.decode(msg)) for msg in self.sent]
        self.sent.clear()
        return out


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coro)


async def make(behaviour: ProtocolBehaviour, agent: FakeAgent) -> ProtocolBehaviour:
    behaviour.agent = agent  # type: ignore[assignment]
    await behaviour.on_start()
    return behaviour


def inbound(sender: str, to: str, body: m.Body) -> Message:
    msg = codec.encode(to, body)
    msg.sender = f"{sender}/res"
    return msg


async def deliver(behaviour: ProtocolBehaviour, sender: str, body: m.Body) -> None:
    await behaviour.handle(inbound(sender, str(behaviour.agent.jid), body))


def call(auction_id: str = "a1", n: int = 3, round_no: int = 1) -> m.CallForBids:
    return m.CallForBids(auction_id=auction_id, pickup=PICKUP, n=n, deadline=1e9,
                         round=round_no)


def award(vehicle: str, auction_id: str = "a1") -> m.Award:
    return m.Award(auction_id=auction_id, vehicle=vehicle, passenger=PASSENGER, pickup=PICKUP,
                   dropoff=DROPOFF, price=0.01)


# --- vehicle ----------------------------------------------------------------------------------


def vehicle(name: str = VEHICLES[0], law: str = "sealed-first-price") -> BiddingBehaviour:
    agent = FakeAgent(name, Role.VEHICLE, law, node=STARTS[name])
    return run(make(BiddingBehaviour(), agent))  # type: ignore[return-value]


def test_vehicle_bids_the_first_price_equilibrium_of_its_travel_time() -> None:
    v = vehicle()

    async def go() -> list[tuple[str, m.Body]]:
        await deliver(v, PROXY, call(n=3, round_no=2))
        return v.agent.take()

    [(to, bid)] = run(go())
    t = T[VEHICLES[0]]
    assert to == PROXY and isinstance(bid, m.Bid)
    assert bid.bid == pytest.approx(2 / 3 / t) and bid.eta_s == pytest.approx(t)
    assert bid.round == 2


def test_vehicle_bids_its_value_under_vickrey() -> None:
    v = vehicle(law="vickrey")

    async def go() -> list[tuple[str, m.Body]]:
        await deliver(v, MANAGER, call(n=3))
        return v.agent.take()

    [(_, bid)] = run(go())
    assert isinstance(bid, m.Bid) and bid.bid == pytest.approx(1 / T[VEHICLES[0]])


def test_a_busy_vehicle_declines_with_its_state() -> None:
    v = vehicle()
    v.agent.state = TO_PICKUP

    async def go() -> list[tuple[str, m.Body]]:
        await deliver(v, PROXY, call(round_no=3))
        return v.agent.take()

    [(to, declined)] = run(go())
    assert to == PROXY and isinstance(declined, m.BidDeclined)
    assert declined.reason == TO_PICKUP and declined.round == 3


def test_vehicle_confirms_the_first_award_and_declines_a_second() -> None:
    v = vehicle()
    me = VEHICLES[0]

    async def go() -> list[tuple[str, m.Body]]:
        await deliver(v, PROXY, call("a1"))
        await deliver(v, MANAGER, call("a2"))
        v.agent.take()
        await deliver(v, PROXY, award(me, "a1"))
        await deliver(v, MANAGER, award(me, "a2"))
        return v.agent.take()

    [(to1, confirmed), (to2, declined)] = run(go())
    assert to1 == PROXY and isinstance(confirmed, m.AwardConfirmed)
    assert confirmed.vehicle == me and confirmed.eta_s == pytest.approx(T[me])
    assert to2 == MANAGER and isinstance(declined, m.AwardDeclined)
    assert declined.reason == f"already assigned ({TO_PICKUP})"
    assert v.agent.state == TO_PICKUP
    [trip] = v.agent.added
    assert isinstance(trip, TripBehaviour) and trip.award.auction_id == "a1"


def test_vehicle_refuses_an_award_from_who_did_not_call_it() -> None:
    v = vehicle()

    async def go() -> list[tuple[str, m.Body]]:
        await deliver(v, PROXY, call())
        v.agent.take()
        await deliver(v, MANAGER, award(VEHICLES[0]))  # the proxy called, not the manager
        return v.agent.take()

    [(to, refused)] = run(go())
    assert to == MANAGER and isinstance(refused, m.Refused)
    assert refused.in_reply_to == "award" and "went to" in refused.reason
    assert v.agent.state == IDLE


def test_vehicle_refuses_calls_from_strangers_and_certificates_not_from_the_authority() -> None:
    v = vehicle()
    cert = lm.Certificate(serial="0" * 32, subject=VEHICLES[0], issuer=DIRECTORY.authority,
                          seats=4, wheelchair=False, issued_at=0.0, expires_at=100.0)

    async def go() -> list[tuple[str, m.Body]]:
        await deliver(v, VEHICLES[1], call())
        await deliver(v, MANAGER, lm.CertificateIssued(certificate=cert))
        return v.agent.take()

    [(to1, r1), (to2, r2)] = run(go())
    assert (to1, to2) == (VEHICLES[1], MANAGER)
    # The law refuses it on receipt (a vehicle may not call for bids), before the handler.
    assert isinstance(r1, m.Refused)
    assert r1.reason == f"{VEHICLES[1]}: the law does not let a vehicle send call-for-bids"
    assert isinstance(r2, m.Refused) and r2.reason == \
        f"{MANAGER}: the law does not let an auction-manager send certificate-issued"
    assert v.agent.controller.certificate is None


def test_vehicle_answers_an_unexpected_type_with_not_understood() -> None:
    v = vehicle()

    async def go() -> list[tuple[str, m.Body]]:
        await deliver(v, MANAGER, m.GroupCall(auction_id="a1", pickup=PICKUP, n=2,
                                              deadline=1e9, vehicles=VEHICLES[:2]))
        return v.agent.take()

    [(to, answer)] = run(go())
    assert to == MANAGER and isinstance(answer, m.NotUnderstood)
    assert answer.in_reply_to == "group-call"


def test_vehicle_raises_by_the_minimum_below_its_value_and_drops_out_above() -> None:
    me = VEHICLES[0]
    v = vehicle(law="english")
    value = 1 / T[me]

    def round_(minimum: float, number: int) -> lm.EnglishRound:
        return lm.EnglishRound(auction_id=f"e{number}", pickup=PICKUP, n=3, round=number,
                               standing=minimum / 1.1, minimum=minimum, deadline=1e9)

    async def go() -> list[tuple[str, m.Body]]:
        await deliver(v, MANAGER, round_(value / 2, 1))
        await deliver(v, MANAGER, round_(value * 2, 2))
        return v.agent.take()

    [(_, raised), (_, dropped)] = run(go())
    assert isinstance(raised, m.Bid) and raised.bid == pytest.approx(value / 2)
    assert raised.round == 1
    assert isinstance(dropped, m.BidDeclined) and dropped.round == 2
    assert dropped.reason == "the minimum raise exceeds my value"


def test_vehicle_takes_the_dutch_clock_once_it_is_at_or_below_its_bid() -> None:
    me = VEHICLES[0]
    v = vehicle(law="dutch")
    own = equilibrium_bid(3, T[me])

    def tick(price: float, number: int) -> lm.DutchTick:
        return lm.DutchTick(auction_id=f"d{number}", pickup=PICKUP, n=3, tick=number,
                            price=price, deadline=1e9)

    async def go() -> list[tuple[str, m.Body]]:
        await deliver(v, MANAGER, tick(own * 1.5, 0))
        await deliver(v, MANAGER, tick(own * 0.9, 1))
        return v.agent.take()

    [(_, waiting), (_, taken)] = run(go())
    assert isinstance(waiting, m.BidDeclined) and waiting.round == 1
    assert isinstance(taken, m.Bid) and taken.bid == pytest.approx(own * 0.9)
    assert taken.round == 2


# --- proxy ------------------------------------------------------------------------------------


def proxy() -> ProxyBehaviour:
    return run(make(ProxyBehaviour(), FakeAgent(PROXY, Role.PROXY)))  # type: ignore[return-value]


def group_call(members: tuple[str, ...]) -> m.GroupCall:
    return m.GroupCall(auction_id="a1", pickup=PICKUP, n=len(VEHICLES), deadline=1e9,
                       vehicles=members, round=1)


def real_bid(v: str, n: int = len(VEHICLES)) -> m.Bid:
    return m.Bid(auction_id="a1", bid=equilibrium_bid(n, T[v]), eta_s=T[v], round=1)


def test_proxy_calls_its_group_and_forwards_the_best_the_shortest_eta() -> None:
    p = proxy()
    members = VEHICLES[:4]
    decliner = members[3]

    async def go() -> tuple[list[tuple[str, m.Body]], list[tuple[str, m.Body]]]:
        await deliver(p, MANAGER, group_call(members))
        calls = p.agent.take()
        for v in members[:3]:
            await deliver(p, v, real_bid(v))
        await deliver(p, decliner, m.BidDeclined(auction_id="a1", reason="busy", round=1))
        return calls, p.agent.take()

    calls, [(to, best)] = run(go())
    assert sorted(to for to, _ in calls) == sorted(members)
    assert all(isinstance(c, m.CallForBids) and c.n == len(VEHICLES) for _, c in calls)
    fastest = min(members[:3], key=lambda v: T[v])
    assert to == MANAGER and isinstance(best, m.GroupBest)
    assert best.vehicle == fastest and best.eta_s == pytest.approx(T[fastest])
    assert best.bidders == 3


def test_proxy_relays_the_award_and_revises_after_a_decline() -> None:
    p = proxy()
    members = VEHICLES[:3]
    ranked = sorted(members, key=lambda v: T[v])

    async def go() -> list[tuple[str, m.Body]]:
        await deliver(p, MANAGER, group_call(members))
        for v in members:
            await deliver(p, v, real_bid(v))
        p.agent.take()
        await deliver(p, MANAGER, award(ranked[0]))
        await deliver(p, ranked[0], m.AwardDeclined(auction_id="a1", vehicle=ranked[0],
                                                    reason="already assigned"))
        await deliver(p, MANAGER, award(ranked[1]))
        await deliver(p, ranked[1], m.AwardConfirmed(auction_id="a1", vehicle=ranked[1],
                                                     eta_s=T[ranked[1]]))
        await deliver(p, MANAGER, m.AuctionResult(auction_id="a1", winner=ranked[1]))
        return p.agent.take()

    out = run(go())
    kinds = [(to, body.TYPE) for to, body in out]
    assert kinds == [(ranked[0], "award"), (MANAGER, "group-best"), (ranked[1], "award"),
                     (MANAGER, "award-confirmed")]  # losers are not told: no `lost`
    revised = out[1][1]
    assert isinstance(revised, m.GroupBest) and revised.vehicle == ranked[1]


def test_proxy_refuses_bids_of_non_members_and_awards_it_did_not_report() -> None:
    p = proxy()
    members = VEHICLES[:2]
    slower = max(members, key=lambda v: T[v])

    async def go() -> tuple[list[tuple[str, m.Body]], list[tuple[str, m.Body]]]:
        await deliver(p, MANAGER, group_call(members))
        p.agent.take()
        await deliver(p, VEHICLES[4], real_bid(VEHICLES[4]))
        stranger = p.agent.take()
        for v in members:
            await deliver(p, v, real_bid(v))
        p.agent.take()
        await deliver(p, MANAGER, award(slower))
        return stranger, p.agent.take()

    [(to1, r1)], [(to2, r2)] = run(go())
    assert to1 == VEHICLES[4] and isinstance(r1, m.Refused) and "not in my group" in r1.reason
    assert to2 == MANAGER and isinstance(r2, m.Refused) and "not the best bidder" in r2.reason


# --- AuctionManager ---------------------------------------------------------------------------


def manager(law: str = "sealed-first-price") -> AuctionBehaviour:
    agent = FakeAgent(MANAGER, Role.AUCTION_MANAGER, law)
    return run(make(AuctionBehaviour(), agent))  # type: ignore[return-value]


def open_auction(vehicles: tuple[str, ...] = VEHICLES) -> m.OpenAuction:
    return m.OpenAuction(
        auction_id="a1", passenger=PASSENGER, pickup=PICKUP, dropoff=DROPOFF, cluster=0,
        requested_at=WORLD.clock.now(),
        candidates=tuple(m.Candidate(vehicle=v, node=STARTS[v]) for v in vehicles),
    )


def test_manager_awards_the_shortest_travel_time_and_assigns_its_eta() -> None:
    am = manager()
    fastest = BY_ETA[0]

    async def go() -> tuple[list[tuple[str, m.Body]], ...]:
        await deliver(am, MAIN, open_auction())
        calls = am.agent.take()
        for v in VEHICLES:
            await deliver(am, v, real_bid(v))
        awarded = am.agent.take()
        await deliver(am, fastest, m.AwardConfirmed(auction_id="a1", vehicle=fastest,
                                                    eta_s=T[fastest], trips=2))
        return calls, awarded, am.agent.take()

    calls, [(to, won)], finished = run(go())
    assert sorted(to for to, _ in calls) == sorted(VEHICLES)  # no proxies: calls go direct
    assert to == fastest and isinstance(won, m.Award) and won.vehicle == fastest
    assigned = [b for to, b in finished if to == PASSENGER]
    assert len(assigned) == 1 and isinstance(assigned[0], m.RideAssigned)
    assert assigned[0].vehicle == fastest and assigned[0].eta_s == T[fastest]
    assert assigned[0].price == pytest.approx(equilibrium_bid(len(VEHICLES), T[fastest]))
    assert assigned[0].bidders == len(VEHICLES)
    closed = [b for to, b in finished if to == MAIN]
    assert closed == [m.AuctionClosed(auction_id="a1", winner=fastest, winner_trips=2)]
    # Nothing goes to the losers (no message to a vehicle that cannot win).
    assert not [to for to, _ in finished if to in BY_ETA[1:]]
    assert am.auction is None


def test_manager_re_awards_the_next_best_after_a_decline() -> None:
    am = manager()

    async def go() -> list[tuple[str, m.Body]]:
        await deliver(am, MAIN, open_auction())
        for v in VEHICLES:
            await deliver(am, v, real_bid(v))
        am.agent.take()
        await deliver(am, BY_ETA[0], m.AwardDeclined(auction_id="a1", vehicle=BY_ETA[0],
                                                     reason="already assigned"))
        return am.agent.take()

    [(to, again)] = run(go())
    assert to == BY_ETA[1] and isinstance(again, m.Award) and again.vehicle == BY_ETA[1]


def test_manager_refuses_wrong_senders_and_does_not_understand_other_types() -> None:
    am = manager()

    async def go() -> list[tuple[str, m.Body]]:
        await deliver(am, VEHICLES[0], open_auction())  # only the MainManager opens
        await deliver(am, VEHICLES[0], m.VehicleAvailable(node=NODES[0]))
        return am.agent.take()

    [(to1, refused), (to2, not_understood)] = run(go())
    assert to1 == to2 == VEHICLES[0]
    assert isinstance(refused, m.Refused)
    assert refused.reason == f"{VEHICLES[0]}: the law does not let a vehicle send open-auction"
    assert isinstance(not_understood, m.NotUnderstood)
    assert not_understood.in_reply_to == "vehicle-available"
    assert am.auction is None


def test_manager_refuses_a_bid_above_the_law_s_rule() -> None:
    """Receivers enforce the bid rule: no more than the law's bid for the ETA sent (an
    admitted vehicle bidding 1e300 would win every auction and be paid its bid)."""
    am = manager()
    greedy, floor_cheat = BY_ETA[-1], BY_ETA[-2]

    async def go() -> list[tuple[str, m.Body]]:
        await deliver(am, MAIN, open_auction())
        am.agent.take()
        await deliver(am, greedy, m.Bid(auction_id="a1", bid=1e300, eta_s=T[greedy], round=1))
        await deliver(am, floor_cheat, m.Bid(auction_id="a1", bid=0.1, eta_s=0.01, round=1))
        return am.agent.take()

    replies = run(go())
    assert [to for to, _ in replies] == [greedy, floor_cheat]
    absurd, under_floor = (body for _, body in replies)
    assert isinstance(absurd, m.Refused) and "exceeds the law's bid" in absurd.reason
    assert isinstance(under_floor, m.Refused) and "below the floor" in under_floor.reason
    book = am.auction.book if am.auction else None
    assert book is not None and not book.offers  # neither counts


def test_proxy_refuses_a_bid_above_the_law_s_rule() -> None:
    p = proxy()
    members = VEHICLES[:2]

    async def go() -> list[tuple[str, m.Body]]:
        await deliver(p, MANAGER, group_call(members))
        p.agent.take()
        await deliver(p, members[0], m.Bid(auction_id="a1", bid=1e300, eta_s=T[members[0]],
                                           round=1))
        return p.agent.take()

    [(to, refused)] = run(go())
    assert to == members[0] and isinstance(refused, m.Refused)
    assert "exceeds the law's bid" in refused.reason


def test_manager_with_proxies_calls_groups() -> None:
    am = manager()
    am.agent.world = World(
        RunConfig(vehicles=len(VEHICLES), clusters=1, radius_m=1e7, speed=100.0, proxies="1"),
        WORLD.roadmap, WORLD.clusters, WORLD.travel, WORLD.clock)

    async def go() -> list[tuple[str, m.Body]]:
        await deliver(am, MAIN, open_auction())
        return am.agent.take()

    [(to, group)] = run(go())
    assert to == PROXY and isinstance(group, m.GroupCall)
    assert sorted(group.vehicles) == sorted(VEHICLES) and group.n == len(VEHICLES)


# --- whole auctions between in-process agents, under each built-in law ----------------------


async def auction_under(law: str) -> tuple[m.RideAssigned, list[tuple[str, m.Body]]]:
    """A manager and the vehicles, messages routed in memory until nobody has more to say."""
    am = await make(AuctionBehaviour(), FakeAgent(MANAGER, Role.AUCTION_MANAGER, law))
    fleet = {v: await make(BiddingBehaviour(), FakeAgent(v, Role.VEHICLE, law, node=STARTS[v]))
             for v in VEHICLES}
    by_jid: dict[str, ProtocolBehaviour] = {MANAGER: am, **fleet}
    await deliver(am, MAIN, open_auction())
    log: list[tuple[str, m.Body]] = []
    for _ in range(10000):
        moved = False
        for jid, behaviour in by_jid.items():
            for msg in list(behaviour.agent.sent):
                behaviour.agent.sent.remove(msg)
                moved = True
                to = str(msg.to)
                log.append((to, codec.decode(msg)))
                if to in by_jid:
                    msg.sender = f"{jid}/res"
                    await by_jid[to].handle(msg)
        if not moved:
            break
    [assigned] = [b for _, b in log if isinstance(b, m.RideAssigned)]
    return assigned, log


def predicted(law: str) -> auctions.Outcome:
    """What the pure rules of laws/auctions.py say the auction ends with."""
    rules = book_for(law).default.auction
    n = len(VEHICLES)
    sealed = [Offer(v, equilibrium_bid(n, T[v]), T[v]) for v in VEHICLES]
    truthful = [Offer(v, auctions.value(T[v]), T[v]) for v in VEHICLES]
    if isinstance(rules, English):
        return auctions.english({o.vehicle: (o.bid, o.eta_s) for o in truthful}, rules)
    if isinstance(rules, Dutch):
        return auctions.dutch(sealed, rules)
    if isinstance(rules, Vickrey):
        return auctions.vickrey(truthful, rules.reserve)
    return auctions.first_price(sealed)


@pytest.mark.parametrize("law", ["sealed-first-price", "vickrey", "english", "dutch"])
def test_every_law_elects_the_shortest_travel_time_at_its_rules_price(law: str) -> None:
    assigned, log = run(auction_under(law))
    fastest = BY_ETA[0]
    assert assigned.vehicle == fastest and assigned.eta_s == T[fastest]
    expected = predicted(law)
    assert expected.winner == fastest
    assert assigned.price == pytest.approx(expected.price, rel=1e-12)
    # Dutch: only who took the clock bid at all; the others bid (or raised) in every type.
    assert assigned.bidders == (1 if law == "dutch" else len(VEHICLES))
    calls = {"english": lm.EnglishRound, "dutch": lm.DutchTick}.get(law, m.CallForBids)
    rounds = {b.round if isinstance(b, lm.EnglishRound) else getattr(b, "tick", 0)
              for _, b in log if isinstance(b, calls)}
    assert len(rounds) == expected.rounds
    if law == "english":
        told = {(b.leader, to) for to, b in log if isinstance(b, lm.Outbid)}
        assert {v for _, v in expected.outbid} == {to for _, to in told}


# --- the MainManager's registry ------------------------------------------------------------


def registry(queue_limit: int = 1000) -> RegistryBehaviour:
    agent = FakeAgent(MAIN, Role.MAIN_MANAGER)
    agent.world = World(dataclasses.replace(CONFIG, queue_limit=queue_limit), WORLD.roadmap,
                        WORLD.clusters, WORLD.travel, WORLD.clock)
    agent.auction_managers = (MANAGER,)
    return run(make(RegistryBehaviour(), agent))  # type: ignore[return-value]


def ride(request_id: str, requested_at: float = 0.0) -> m.RideRequest:
    return m.RideRequest(request_id=request_id, source=PICKUP, destination=DROPOFF,
                         requested_at=requested_at)


def test_registry_stamps_the_request_time_itself() -> None:
    reg = registry()

    async def go() -> list[tuple[str, m.Body]]:
        await deliver(reg, PASSENGER, ride("r1", requested_at=1e12))  # "ask me in 30,000 years"
        return reg.agent.take()

    [(to, opened)] = run(go())
    assert to == MANAGER and isinstance(opened, m.OpenAuction)
    assert opened.requested_at == pytest.approx(WORLD.clock.now(), abs=60.0)


def test_registry_never_reopens_an_ended_request() -> None:
    reg = registry()

    async def go() -> list[tuple[str, m.Body]]:
        await deliver(reg, PASSENGER, ride("r1"))
        await deliver(reg, MANAGER, m.AuctionClosed(auction_id="r1", winner=None))
        reg.agent.take()
        await deliver(reg, PASSENGER, ride("r1"))  # replayed
        return reg.agent.take()

    [(to, refused)] = run(go())
    assert to == PASSENGER and isinstance(refused, m.Refused)
    assert "has already ended" in refused.reason
    assert not reg.live and not reg.waiting_requests


def test_registry_queue_is_bounded_and_times_out_with_a_reason() -> None:
    reg = registry(queue_limit=1)

    async def go() -> tuple[list[tuple[str, m.Body]], list[tuple[str, m.Body]]]:
        for request_id in ("r1", "r2", "r3"):  # one manager: r1 opens, r2 waits, r3 is extra
            await deliver(reg, PASSENGER, ride(request_id))
        first = reg.agent.take()
        await reg.expire(reg.waiting_requests[0])  # r2's patience ends before a manager frees
        return first, reg.agent.take()

    first, expired = run(go())
    assert [(to, type(b).__name__) for to, b in first] == [
        (MANAGER, "OpenAuction"), (PASSENGER, "RideUnserved")]
    assert "overloaded" in first[1][1].reason  # type: ignore[union-attr]
    [(to, unserved)] = expired
    assert to == PASSENGER and isinstance(unserved, m.RideUnserved)
    assert unserved.auction_id == "r2" and "patience" in unserved.reason
    assert not reg.waiting_requests


# --- rounds of English/Dutch auctions -----------------------------------------------------------


class RoundsDesk:
    """The Manager an auction type sees, recording calls and holding timers until fired."""

    def __init__(self) -> None:
        self.told: list[tuple[str, m.Body]] = []
        self.timers: list[Any] = []
        self.decided: list[Any] = []

    async def tell(self, to: str, body: m.Body, conversation: str | None = None,
                   performative: str = "") -> None:
        self.told.append((to, body))

    def later(self, sim_seconds: float, callback: Any) -> None:
        self.timers.append(callback)

    def now(self) -> float:
        return 0.0

    def bid_window(self) -> float:
        return 30.0

    def bidding(self) -> bool:
        return True

    async def decide_on(self, book: Any, bidders: int) -> None:
        self.decided.append((book, bidders))


def test_an_old_round_timer_does_not_close_a_rerun_auction_s_round() -> None:
    """A bidless auction is run again: its rounds start over at 1, and the deadline timer of
    the first run's round 1 must not close the second run's round 1."""
    from fleetbid.behaviours.auction_types import auction_type
    from fleetbid.laws.book import builtin_laws

    kind = auction_type(builtin_laws()["english"])
    desk = RoundsDesk()
    spec = open_auction()

    async def go() -> tuple[int, int]:
        await kind.start(desk, spec, list(VEHICLES))  # type: ignore[arg-type]
        first_timer = desk.timers[-1]
        await kind.start(desk, spec, list(VEHICLES))  # the re-run
        calls_before = len(desk.told)
        await first_timer()  # the first run's deadline fires late
        return calls_before, len(desk.told)

    calls_before, calls_after = run(go())
    assert calls_after == calls_before  # no round closed, no new round called
    assert kind.rounds is not None and kind.rounds.number == 1 and not desk.decided


# --- one outcome per ride: withdrawing an auction past its deadline (issue 15) ---------------


def test_registry_withdraws_through_the_manager_and_frees_it_only_when_it_closes() -> None:
    reg = registry()

    async def go() -> tuple[list[tuple[str, m.Body]], ...]:
        await deliver(reg, PASSENGER, ride("r1"))  # the one manager runs r1
        await deliver(reg, PASSENGER, ride("r2"))  # r2 waits for it
        reg.agent.take()
        await reg.withdraw("r1", reg.live["r1"])  # r1's deadline passes
        withdrawn = reg.agent.take()
        await reg.withdraw("r1", reg.live["r1"])  # a second deadline: asked once only
        again = reg.agent.take()
        await deliver(reg, MANAGER, m.AuctionClosed(auction_id="r1", winner=None))
        return withdrawn, again, reg.agent.take()

    withdrawn, again, after_close = run(go())
    assert withdrawn == [(MANAGER, m.WithdrawAuction(auction_id="r1"))]  # nothing to passenger
    assert again == []
    [(to, opened)] = after_close  # the manager is free only now: r2 opens on it
    assert to == MANAGER and isinstance(opened, m.OpenAuction) and opened.auction_id == "r2"
    assert not reg.waiting_requests and list(reg.live) == ["r2"]


def test_registry_tells_the_passenger_itself_only_when_the_manager_does_not_know_the_auction(
) -> None:
    reg = registry()

    async def go() -> list[tuple[str, m.Body]]:
        await deliver(reg, PASSENGER, ride("r1"))
        await reg.withdraw("r1", reg.live["r1"])
        reg.agent.take()
        refused = inbound(MANAGER, MAIN, m.Refused(reason="unknown auction r1",
                                                   in_reply_to="withdraw-auction"))
        refused.set_metadata("conversation", "r1")  # error replies copy the conversation
        await reg.handle(refused)
        await deliver(reg, MANAGER, m.AuctionClosed(auction_id="r1", winner=None))  # late
        return reg.agent.take()

    [(to, unserved)] = run(go())
    assert to == PASSENGER and isinstance(unserved, m.RideUnserved)
    assert not reg.live and list(reg.free_managers) == [MANAGER]


def test_manager_withdrawn_while_waiting_ends_the_auction_once() -> None:
    am = manager()

    async def go() -> tuple[list[tuple[str, m.Body]], list[tuple[str, m.Body]]]:
        await deliver(am, MAIN, open_auction(vehicles=()))  # nobody to call: waiting
        am.agent.take()
        await deliver(am, MAIN, m.WithdrawAuction(auction_id="a1"))
        ended = am.agent.take()
        await deliver(am, MAIN, m.WithdrawAuction(auction_id="a1"))  # late: ignored
        return ended, am.agent.take()

    ended, late = run(go())
    assert [(to, type(b)) for to, b in ended] == [(PASSENGER, m.RideUnserved),
                                                  (MAIN, m.AuctionClosed)]
    assert "withdrawn" in ended[0][1].reason  # type: ignore[union-attr]
    assert late == [] and am.auction is None


def test_manager_withdrawn_while_awarding_lets_the_award_finish_and_re_awards_nobody() -> None:
    def awarding() -> AuctionBehaviour:
        am = manager()

        async def go() -> None:
            await deliver(am, MAIN, open_auction())
            for v in VEHICLES:
                await deliver(am, v, real_bid(v))
            await deliver(am, MAIN, m.WithdrawAuction(auction_id="a1"))
        run(go())
        return am

    confirmed = awarding()
    [(to, won)] = confirmed.agent.take()[-1:]
    assert isinstance(won, m.Award)  # the award went before the withdrawal: nothing after it
    run(deliver(confirmed, BY_ETA[0], m.AwardConfirmed(auction_id="a1", vehicle=BY_ETA[0],
                                                       eta_s=T[BY_ETA[0]])))
    told = [b for to, b in confirmed.agent.take() if to == PASSENGER]
    assert [type(b) for b in told] == [m.RideAssigned]

    declined = awarding()
    declined.agent.take()
    run(deliver(declined, BY_ETA[0], m.AwardDeclined(auction_id="a1", vehicle=BY_ETA[0],
                                                     reason="already assigned")))
    sent = declined.agent.take()
    assert not [b for _, b in sent if isinstance(b, m.Award)]  # no second award
    assert [type(b) for to, b in sent if to == PASSENGER] == [m.RideUnserved]
    assert declined.auction is None
