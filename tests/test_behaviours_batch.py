"""The batch auction's handlers driven directly over a fake agent (no XMPP): the vehicle's one
sealed bid of its k best, the proxy's merged report, the manager's clearing and awards."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment
from test_behaviours_roles import (
    MAIN,
    MANAGER,
    NODES,
    PROXY,
    STARTS,
    VEHICLES,
    WORLD,
    FakeAgent,
    deliver,
    make,
    run,
)

from fleetbid.behaviours.batch_auction import BatchAuctionBehaviour
from fleetbid.behaviours.proxy import ProxyBehaviour
from fleetbid.behaviours.vehicle import TO_PICKUP, BiddingBehaviour, TripBehaviour
from fleetbid.core.roles import Role
from fleetbid.laws.book import book_for
from fleetbid.laws.controller import Controller
from fleetbid.protocol import messages as m

PICKUPS = tuple(m.BatchPickup(f"r{i}", NODES[40 * i + 13]) for i in range(8))
RIDES = tuple(m.BatchRide(p.request_id, f"passenger-{i}@localhost", p.pickup, NODES[5])
              for i, p in enumerate(PICKUPS[:3]))


def batch_call(k: int = 3, vehicles: tuple[str, ...] = (), pickups: Any = PICKUPS) -> m.BatchCall:
    return m.BatchCall(batch_id="b1", manager=MANAGER, pickups=pickups, k=k, deadline=1e9,
                       vehicles=vehicles)


def vehicle(name: str = VEHICLES[0]) -> BiddingBehaviour:
    return run(make(BiddingBehaviour(), FakeAgent(name, Role.VEHICLE, node=STARTS[name])))


def eta(v: str, node: str) -> float:
    return float(WORLD.travel.time_to(STARTS[v], node))


def test_the_vehicle_bids_once_for_the_batch_listing_its_k_best_pickup_times() -> None:
    v = vehicle()

    async def go() -> list[tuple[str, m.Body]]:
        await deliver(v, MANAGER, batch_call(k=3))
        return v.agent.take()

    [(to, bid)] = run(go())
    best = sorted((eta(VEHICLES[0], p.pickup), p.request_id) for p in PICKUPS)[:3]
    assert to == MANAGER and isinstance(bid, m.BatchBid)
    assert [(t.request_id, t.eta_s) for t in bid.times] == [(r, pytest.approx(t))
                                                            for t, r in best]


def test_a_busy_vehicle_bids_for_none_and_says_why() -> None:
    v = vehicle()
    v.agent.state = TO_PICKUP

    async def go() -> list[tuple[str, m.Body]]:
        await deliver(v, PROXY, batch_call())
        return v.agent.take()

    [(to, bid)] = run(go())
    assert to == PROXY and isinstance(bid, m.BatchBid) and not bid.times
    assert bid.reason == TO_PICKUP


def test_the_vehicle_takes_a_batch_award_only_from_the_batch_s_manager() -> None:
    v = vehicle()
    award = m.BatchAward(batch_id="b1", ride=RIDES[0])

    async def go() -> list[tuple[str, m.Body]]:
        await deliver(v, PROXY, batch_call())  # called through a proxy, cleared by MANAGER
        v.agent.take()
        await deliver(v, PROXY, award)  # not the manager: refused
        await deliver(v, MANAGER, award)
        return v.agent.take()

    [(to1, refused), (to2, confirmed)] = run(go())
    assert to1 == PROXY and isinstance(refused, m.Refused)
    assert to2 == MANAGER and isinstance(confirmed, m.AwardConfirmed)
    assert confirmed.auction_id == "r0" and v.agent.state == TO_PICKUP
    assert any(isinstance(b, TripBehaviour) for b in v.agent.added)


def test_the_proxy_merges_its_group_s_batch_bids_into_one_message() -> None:
    p = run(make(ProxyBehaviour(), FakeAgent(PROXY, Role.PROXY)))
    members = VEHICLES[:3]
    bidders = {v: vehicle(v) for v in members}

    async def go() -> tuple[list[tuple[str, m.Body]], list[tuple[str, m.Body]]]:
        await deliver(p, MANAGER, batch_call(vehicles=members))
        calls = p.agent.take()
        for v, behaviour in bidders.items():
            await deliver(behaviour, PROXY, batch_call())
            [(_, bid)] = behaviour.agent.take()
            await deliver(p, v, bid)
        return calls, p.agent.take()

    calls, [(to, merged)] = run(go())
    assert sorted(to for to, _ in calls) == sorted(members)
    assert all(isinstance(c, m.BatchCall) and not c.vehicles for _, c in calls)
    assert to == MANAGER and isinstance(merged, m.BatchGroupBids)
    assert [b.vehicle for b in merged.bids] == sorted(members)


def test_the_manager_clears_the_batch_as_the_optimal_assignment_and_awards() -> None:
    mgr = run(make(BatchAuctionBehaviour(), FakeAgent(MANAGER, Role.AUCTION_MANAGER)))
    bidders = {v: vehicle(v) for v in VEHICLES}
    open_batch = m.OpenBatch(batch_id="b1", cluster=0, rides=RIDES,
                             candidates=tuple(m.Candidate(v, STARTS[v]) for v in VEHICLES))

    async def go() -> tuple[list[tuple[str, m.Body]], ...]:
        await deliver(mgr, MAIN, open_batch)
        calls = mgr.agent.take()
        for v, behaviour in bidders.items():
            await deliver(behaviour, MANAGER, next(c for to, c in calls if to == v))
            [(_, bid)] = behaviour.agent.take()
            await deliver(mgr, v, bid)
        awards = mgr.agent.take()
        for to, award in awards:
            await deliver(bidders[to], MANAGER, award)
            [(_, confirmed)] = bidders[to].agent.take()
            await deliver(mgr, to, confirmed)
        return calls, awards, mgr.agent.take()

    calls, awards, results = run(go())
    assert sorted(to for to, _ in calls) == sorted(VEHICLES)  # one call per vehicle
    times = np.array([[eta(v, r.pickup) for r in RIDES] for v in VEHICLES])
    rows, cols = linear_sum_assignment(times)
    optimum = {RIDES[j].request_id: VEHICLES[i] for i, j in zip(rows, cols, strict=True)}
    assert {a.ride.request_id: to for to, a in awards} == optimum
    assigned = [b for _, b in results if isinstance(b, m.RideAssigned)]
    [closed] = [b for to, b in results if isinstance(b, m.BatchClosed) and to == MAIN]
    assert {a.auction_id: a.vehicle for a in assigned} == optimum
    assert {s.request_id: s.vehicle for s in closed.served} == optimum
    assert mgr.batch is None


def test_the_manager_refuses_a_bid_beyond_k_or_for_rides_not_in_the_batch() -> None:
    mgr = run(make(BatchAuctionBehaviour(), FakeAgent(MANAGER, Role.AUCTION_MANAGER)))
    open_batch = m.OpenBatch(batch_id="b1", cluster=0, rides=RIDES,
                             candidates=(m.Candidate(VEHICLES[0], STARTS[VEHICLES[0]]),))
    stranger = m.BatchBid(batch_id="b1", times=(m.PickupTime("r7", 10.0),))

    async def go() -> list[tuple[str, m.Body]]:
        await deliver(mgr, MAIN, open_batch)
        mgr.agent.take()
        await deliver(mgr, VEHICLES[0], stranger)
        await deliver(mgr, VEHICLES[1], m.BatchBid(batch_id="b1"))  # not called
        return mgr.agent.take()

    replies = run(go())
    assert [type(b) for _, b in replies] == [m.Refused, m.Refused]
    assert mgr.batch is not None and not mgr.batch.bids


def test_only_the_roles_of_the_batch_protocol_may_send_its_kinds() -> None:
    def problem(role: Role, kind: str) -> str | None:
        return Controller("x@localhost", role, book_for("sealed-first-price"), {}, "",
                          lambda: 0.0).role_problem(kind)

    assert problem(Role.VEHICLE, m.BatchBid.TYPE) is None
    assert problem(Role.PASSENGER, m.BatchBid.TYPE) is not None
    assert problem(Role.VEHICLE, m.BatchAward.TYPE) is not None
    assert problem(Role.VEHICLE, m.BatchGroupBids.TYPE) is not None
    assert problem(Role.PROXY, m.BatchGroupBids.TYPE) is None
