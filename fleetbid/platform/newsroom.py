"""What a process announces: its agents' messages, seen through the message hooks, made into
announcements (protocol/announce.py) on the process's one Announcer.

Why from the messages and not from the behaviours: the process that sends a message is the
one that acts, so a replicated AuctionManager announces once (only its group's leader
speaks), the per-auction path sends no extra XMPP message, and no behaviour changes. Only a
vehicle's route is not in any message: `VehicleAgent.drive` reports it with `vehicle_moving`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from spade.message import Message

from fleetbid.platform import xmpp_agent
from fleetbid.platform.announce import AnnounceGroup, Announcer
from fleetbid.protocol import announce as a
from fleetbid.protocol import law_messages as lm
from fleetbid.protocol import messages as m

STATS_EVERY_S = 1.0
REMEMBERED = 4096  # auctions whose round or best bid this process remembers (oldest go first)

# The calls that start a round, and the field that numbers it.
_ROUNDS = {m.GroupCall.TYPE: "round", m.CallForBids.TYPE: "round",
           lm.EnglishRound.TYPE: "round", lm.DutchTick.TYPE: "tick"}

_current: Newsroom | None = None


class Newsroom:
    def __init__(self, announcer: Announcer, sim_now: Callable[[], float], speed: float,
                 speaks: Callable[[], bool]) -> None:
        self.announcer = announcer
        self.sim_now = sim_now
        self.speed = speed
        self.speaks = speaks  # False on a replica that is not its group's leader
        self.rounds: OrderedDict[tuple[str, int], None] = OrderedDict()  # announced already
        self.best: OrderedDict[str, float] = OrderedDict()  # auction -> best bid seen here

    def auction(self, auction_id: str, state: str, **fields: Any) -> None:
        self.announcer.emit(a.AuctionNews(at=self.sim_now(), wall=time.time(),
                                          auction_id=auction_id, state=state, **fields))

    def vehicle(self, vehicle: str, state: str, node: str, **fields: Any) -> None:
        self.announcer.emit(a.VehicleNews(at=self.sim_now(), wall=time.time(), vehicle=vehicle,
                                          state=state, node=node, **fields))

    def sent(self, msg: Message) -> None:
        kind = msg.get_metadata("type") or ""
        if kind in _SENT:
            _SENT[kind](self, msg, _body(msg))
        elif kind in _ROUNDS:
            self.round(msg, kind, _body(msg))

    def received(self, msg: Message) -> None:
        # A bid reaches a proxy or an auction manager: the best one so far is news.
        if msg.get_metadata("type") == m.Bid.TYPE and self.speaks():
            body = _body(msg)
            auction_id, bid = body.get("auction_id"), body.get("bid")
            if isinstance(auction_id, str) and isinstance(bid, int | float) \
                    and bid > self.best.get(auction_id, -1.0):
                _remember(self.best, auction_id, float(bid))
                self.auction(auction_id, "round", best_bid=float(bid))

    def round(self, msg: Message, kind: str, body: dict[str, Any]) -> None:
        # A round's call goes to every bidder or proxy: announce it once per process.
        key = (body.get("auction_id", ""), body.get(_ROUNDS[kind], 0))
        if key in self.rounds:
            return
        _remember(self.rounds, key, None)
        self.auction(key[0], "round", round=key[1], deadline=body.get("deadline"),
                     bidders=body.get("n"), speed=self.speed)

    async def stats(self, process: int) -> None:
        while True:
            self.announcer.emit(a.FleetStats(at=self.sim_now(), wall=time.time(),
                                             process=process, sent=xmpp_agent.COUNTERS.sent))
            await asyncio.sleep(STATS_EVERY_S)


def _remember(table: OrderedDict[Any, Any], key: Any, value: Any) -> None:
    table[key] = value
    table.move_to_end(key)
    while len(table) > REMEMBERED:
        table.popitem(last=False)


def _body(msg: Message) -> dict[str, Any]:
    try:
        body = json.loads(msg.body or "{}")
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _open(room: Newsroom, msg: Message, body: dict[str, Any]) -> None:
    room.auction(body["auction_id"], "open", cluster=body.get("cluster"),
                 pickup=body.get("pickup"), dropoff=body.get("dropoff"),
                 bidders=len(body.get("candidates") or ()), speed=room.speed)


def _phase(room: Newsroom, msg: Message, body: dict[str, Any]) -> None:
    if body.get("phase") == "waiting":
        room.auction(body["auction_id"], "waiting")


def _assigned(room: Newsroom, msg: Message, body: dict[str, Any]) -> None:
    room.auction(body["auction_id"], "assigned", winner=body.get("vehicle"),
                 price=body.get("price"), bidders=body.get("bidders"))


def _closed(room: Newsroom, msg: Message, body: dict[str, Any]) -> None:
    room.best.pop(body["auction_id"], None)
    room.auction(body["auction_id"], "closed", winner=body.get("winner"))


def _unserved(room: Newsroom, msg: Message, body: dict[str, Any]) -> None:
    room.auction(body["auction_id"], "unserved", reason=str(body.get("reason", ""))[:256])


def _picked_up(room: Newsroom, msg: Message, body: dict[str, Any]) -> None:
    room.auction(body["auction_id"], "picked_up")


def _available(room: Newsroom, msg: Message, body: dict[str, Any]) -> None:
    room.vehicle(str(msg.sender.bare), "idle", body["node"])


_SENT: dict[str, Callable[[Newsroom, Message, dict[str, Any]], None]] = {
    m.OpenAuction.TYPE: _open, m.AuctionPhase.TYPE: _phase, m.RideAssigned.TYPE: _assigned,
    m.AuctionClosed.TYPE: _closed, m.RideUnserved.TYPE: _unserved,
    m.PickedUp.TYPE: _picked_up, m.VehicleAvailable.TYPE: _available,
}


async def install(group: AnnounceGroup, process: int, sim_now: Callable[[], float],
                  speed: float, speaks: Callable[[], bool] = lambda: True) -> Newsroom:
    """Announce what this process's agents do, from now on, until the process ends."""
    global _current
    announcer = Announcer(group, process)
    await announcer.open()
    room = Newsroom(announcer, sim_now, speed, speaks)

    def guarded(hook: Callable[[Message], None]) -> Callable[[Message], None]:
        def call(msg: Message) -> None:
            with contextlib.suppress(Exception):  # best-effort: never in an agent's way
                hook(msg)
        return call

    xmpp_agent.on_send.append(guarded(room.sent))
    xmpp_agent.on_receive.append(guarded(room.received))
    _current = room
    return room


def vehicle_moving(vehicle: str, loaded: bool, node: str, target: str, start: float,
                   duration: float, state: str = "") -> None:
    """A vehicle starts a leg (to the pickup, with its passenger, or `state` repositioning):
    no-op when not announcing."""
    if _current is not None:
        with contextlib.suppress(Exception):
            _current.vehicle(vehicle, state or ("with_passenger" if loaded else "to_pickup"),
                             node, target=target, start=start, duration=duration)


def demand(window_s: float, clusters: tuple[a.ClusterDemand, ...]) -> bool:
    """The MainManager's repositioning figures (behaviours/demand.py), from its group's
    leader only; False when not announcing."""
    if _current is None or not _current.speaks():
        return False
    _current.announcer.emit(a.DemandNews(at=_current.sim_now(), wall=time.time(),
                                         window_s=window_s, clusters=clusters))
    return True
