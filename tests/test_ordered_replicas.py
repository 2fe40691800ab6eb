"""AuctionManager replicas driven by one total order reach the same state and outputs.

Real AuctionBehaviour code on three replicas in one process, an in-memory total order
(the group is tested on its own in test_replication_*): only the leader speaks, outputs
are named after their place in the log, and a new leader re-sends them with the same ids.
"""

from __future__ import annotations

import asyncio
from typing import Any

from spade.message import Message

from fleetbid.auction.rules import equilibrium_bid
from fleetbid.behaviours.auction import AuctionBehaviour
from fleetbid.core.config import RunConfig
from fleetbid.core.world import World
from fleetbid.laws.book import book_for
from fleetbid.laws.controller import Controller
from fleetbid.protocol import codec
from fleetbid.protocol import messages as m
from fleetbid.replicated.ordered import ENCODER, AppliedKeys, Entry, OrderedSlot

MANAGER = "auction-0@localhost"
MAIN = "main-manager@localhost"
PROXIES = ("proxy-0@localhost", "proxy-1@localhost")
VEHICLES = tuple(f"vehicle-{i}@localhost" for i in range(4))


class Order:
    """The group: collects submissions; `flush` delivers them in order to every replica."""

    def __init__(self) -> None:
        self.submitted: list[bytes] = []
        self.leader = 2
        self.seq = 0

    def port(self, member: int) -> Any:
        order = self

        class Port:
            is_member = True

            @property
            def is_leader(self) -> bool:
                return order.leader == member

            def submit(self, payload: bytes) -> None:
                order.submitted.append(payload)

        return Port()


class FakeAgent:
    def __init__(self, world: World) -> None:
        self.world = world
        self.name = "auction-0"
        self.manager_jid = MAIN
        self.managers = frozenset({MANAGER})
        self.proxies = PROXIES
        self.fleet = frozenset(VEHICLES)
        self.sent: list[Message] = []
        # The default law's controller, as a real AuctionManager has one.
        self.controller = Controller(MANAGER, "auction-manager", book_for(), {}, "",
                                     world.clock.now)

    async def send(self, msg: Message, behaviour: Any) -> None:
        self.sent.append(msg)


class Replica:
    def __init__(self, world: World, order: Order, member: int) -> None:
        self.agent = FakeAgent(world)
        self.behaviour = AuctionBehaviour()
        self.behaviour.agent = self.agent  # type: ignore[assignment]
        self.slot = OrderedSlot(self.behaviour, order.port(member), AppliedKeys())
        self.slot.slot = MANAGER
        self.behaviour.ordered = self.slot


def inbound(sender: str, body: m.Body) -> Message:
    msg = codec.encode(MANAGER, body)
    msg.sender = f"{sender}/res"
    return msg


async def scenario() -> dict[str, Any]:
    config = RunConfig(vehicles=4, clusters=1, proxies="2", speed=1000.0, radius_m=1e6)
    world = World.build(config)
    order = Order()
    replicas = [Replica(world, order, member) for member in range(3)]
    for r in replicas:
        await r.behaviour.on_start()
    nodes = world.roadmap.nodes

    async def deliver_all() -> None:
        while order.submitted:
            payload = order.submitted.pop(0)
            for r in replicas:
                await r.slot.apply(order.seq, _decode(payload))
            order.seq += 1

    async def send_to_all(sender: str, body: m.Body) -> None:
        msg = inbound(sender, body)
        for r in replicas:  # the server hands every replica the same message
            r.slot.capture(msg)
        await deliver_all()

    candidates = tuple(m.Candidate(vehicle=v, node=nodes[i]) for i, v in enumerate(VEHICLES))
    await send_to_all(MAIN, m.OpenAuction(
        auction_id="a1", passenger="passenger-1@localhost", pickup=nodes[10],
        dropoff=nodes[20], cluster=0, requested_at=0.0, candidates=candidates,
    ))
    calls = [msg for msg in replicas[2].agent.sent if msg.get_metadata("type") == "group-call"]
    for msg in calls:
        call = codec.decode(msg)
        assert isinstance(call, m.GroupCall)
        best = call.vehicles[0]
        # An honest report: the vehicle's real travel time and the law's bid for it (the
        # manager checks both).
        eta = max(world.travel.time_to(nodes[VEHICLES.index(best)], nodes[10]),
                  config.min_eta_s)
        await send_to_all(str(msg.to), m.GroupBest(
            auction_id="a1", vehicle=best, bid=equilibrium_bid(call.n, eta), eta_s=eta,
            bidders=len(call.vehicles)))
    leader_outputs_before = [msg.get_metadata("mid") for msg in replicas[2].agent.sent]
    # The leader dies; member 1 takes over and re-sends what the old leader may have missed.
    order.leader = 1
    resent = await replicas[1].slot.take_over(resend_window_s=1e9)
    award = next(msg for msg in replicas[1].agent.sent if msg.get_metadata("type") == "award")
    winner = codec.decode(award)
    assert isinstance(winner, m.Award)
    await send_to_all(str(award.to), m.AwardConfirmed(auction_id="a1", vehicle=winner.vehicle,
                                                      eta_s=60.0))
    return {"replicas": replicas, "order": order, "resent": resent,
            "leader_outputs_before": leader_outputs_before}


def _decode(payload: bytes) -> Entry:
    from fleetbid.replicated.ordered import DECODER

    return DECODER.decode(payload)


def run() -> dict[str, Any]:
    return asyncio.run(scenario())


def test_followers_stay_silent_and_all_replicas_reach_the_same_state() -> None:
    result = run()
    replicas = result["replicas"]
    assert replicas[0].agent.sent == []  # never led
    for r in replicas:
        assert r.behaviour.auction is None  # the auction finished everywhere
    outputs = [[(msg.get_metadata("mid"), str(msg.to), msg.body) for _, msg in r.slot.recent]
               for r in replicas]
    assert outputs[0] == outputs[1] == outputs[2]
    kinds = [msg.get_metadata("type") for _, msg in replicas[0].slot.recent]
    assert "ride-assigned" in kinds and "auction-closed" in kinds


def test_new_leader_resends_with_the_original_ids() -> None:
    result = run()
    old, new = result["replicas"][2], result["replicas"][1]
    assert result["resent"] > 0
    resent_ids = [msg.get_metadata("mid") for msg in new.agent.sent[: result["resent"]]]
    assert set(resent_ids) <= set(result["leader_outputs_before"])
    # After the take-over only the new leader speaks.
    after = [msg.get_metadata("type") for msg in new.agent.sent[result["resent"]:]]
    assert "ride-assigned" in after
    assert all(msg.get_metadata("type") != "ride-assigned" for msg in old.agent.sent)


def test_an_input_captured_twice_is_applied_once() -> None:
    async def go() -> int:
        config = RunConfig(vehicles=4, clusters=1)
        world = World.build(config)
        order = Order()
        replica = Replica(world, order, 2)
        await replica.behaviour.on_start()
        msg = inbound("stranger@localhost", m.AuctionResult(auction_id="zz"))
        replica.slot.capture(msg)
        replica.slot.capture(msg)  # the leader is slow to order: a second copy arrives
        payloads = list(order.submitted)
        for seq, payload in enumerate(payloads):
            await replica.slot.apply(seq, _decode(payload))
        return sum(1 for s in replica.agent.sent if s.get_metadata("type") == "not-understood")

    assert asyncio.run(go()) == 1


def test_entries_round_trip() -> None:
    entry = Entry(MANAGER, "input", "k", 1.5, "x@y/z", {"type": "bid"}, "{}", "")
    assert _decode(ENCODER.encode(entry)) == entry


def test_different_entries_at_one_log_position_give_outputs_different_ids() -> None:
    # An excluded old leader and the new view's leader could apply different entries at the
    # same log position; outputs named after the position then shared an id and receivers
    # dropped the second as a duplicate (issue 14). They are named after the entry's id.
    async def leader_output(sender: str, uid: str) -> Message:
        world = World.build(RunConfig(vehicles=4, clusters=1))
        order = Order()
        replica = Replica(world, order, 2)
        await replica.behaviour.on_start()
        replica.slot.capture(inbound(sender, m.AuctionResult(auction_id="zz")))
        [payload] = order.submitted
        await replica.slot.apply(7, _decode(payload), uid=uid)
        [out] = replica.agent.sent
        return out

    first = asyncio.run(leader_output("stranger@localhost", "1.40"))
    second = asyncio.run(leader_output("someone@localhost", "3.12"))
    assert str(first.to) != str(second.to)  # two different outputs ...
    assert first.get_metadata("mid") != second.get_metadata("mid")  # ... never one id


def test_a_standby_keeps_nothing_of_what_it_receives() -> None:
    # Standby hosts log their managers in and receive every message for them; they used
    # to keep each in `pending` (never ordered, never applied there): memory grew for as
    # long as the standby waited. Fails on the old code (pending held all 3,000).
    async def go() -> tuple[int, int]:
        world = World.build(RunConfig(vehicles=4, clusters=1))
        order = Order()
        replica = Replica(world, order, 0)
        replica.slot.group.is_member = False  # type: ignore[attr-defined]
        await replica.behaviour.on_start()
        for i in range(3000):
            replica.slot.capture(inbound(f"p{i}@localhost", m.AuctionResult(auction_id=f"a{i}")))
        standby = len(replica.slot.pending)
        replica.slot.group.is_member = True  # type: ignore[attr-defined]
        replica.slot.capture(inbound("p@localhost", m.AuctionResult(auction_id="b")))
        return standby, len(replica.slot.pending)

    assert asyncio.run(go()) == (0, 1)
