"""The proxy's protocol steps: call its group, forward only the group's best bid, relay the
award and the result. One proxy serves many auctions at once, one group in each. In a batch
auction it calls its group once and merges the members' batch bids into one message."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import ClassVar

from spade.message import Message

from fleetbid.auction.book import BidBook, Offer
from fleetbid.behaviours.auction_types import auction_type
from fleetbid.behaviours.base import AcknowledgedBids, Ended, Late, Rejected, sender_of
from fleetbid.protocol import messages as m

log = logging.getLogger("fleetbid.proxy")

# Report this many wall seconds before the manager's deadline, so the report arrives in time
# (a margin in simulated time would shrink to nothing at high simulation speeds): one XMPP
# hop, and with replicated managers also the ordering of the report, which takes tens of
# milliseconds when a burst of auctions loads the machine.
DEADLINE_MARGIN_WALL_S = 0.05
REPLICATED_MARGIN_WALL_S = 0.15


@dataclass
class Group:
    manager: str
    call: m.GroupCall
    book: BidBook
    reported: bool = False
    reported_best: str | None = None  # the vehicle the manager was told about
    awarded: str | None = None
    timer: asyncio.Handle | None = None


@dataclass
class BatchGroup:
    manager: str
    members: frozenset[str]
    bids: dict[str, tuple[m.PickupTime, ...]]  # member -> its bid (empty: it bid for none)
    timer: asyncio.Handle | None = None


class ProxyBehaviour(AcknowledgedBids):
    SENDS: ClassVar[frozenset[type[m.Body]]] = frozenset({
        m.CallForBids, m.GroupBest, m.Award, m.AwardConfirmed, m.BatchCall, m.BatchGroupBids,
    })

    AUDIT_ON_SEND = False  # the group's copies go in one batch, once the result is in

    async def on_start(self) -> None:
        self.handlers = {
            m.GroupCall: self.on_group_call,
            m.Bid: self.on_bid,
            m.BidDeclined: self.on_bid_declined,
            m.Award: self.on_award,
            m.AwardConfirmed: self.on_award_confirmed,
            m.AwardDeclined: self.on_award_declined,
            m.AuctionResult: self.on_result,
            m.BatchCall: self.on_batch_call,
            m.BatchBid: self.on_batch_bid,
        }
        self.groups: dict[str, Group] = {}
        self.batches: dict[str, BatchGroup] = {}
        self.ended = Ended()  # auctions whose result came: late bids for them are benign

    def group_of(self, auction_id: str) -> Group:
        group = self.groups.get(auction_id)
        if group is None:
            if auction_id in self.ended:
                raise Late(f"auction {auction_id} has ended")
            raise Rejected(f"unknown auction {auction_id}")
        return group

    def from_member(self, msg: Message, group: Group) -> str:
        vehicle = sender_of(msg)
        if vehicle not in group.book.expected:
            raise Rejected(f"{vehicle} is not in my group of auction {group.call.auction_id}")
        return vehicle

    def from_manager(self, msg: Message, group: Group) -> None:
        if sender_of(msg) != group.manager:
            raise Rejected(f"{sender_of(msg)} does not run auction {group.call.auction_id}")

    async def on_group_call(self, msg: Message, body: m.GroupCall) -> None:
        manager = sender_of(msg)
        if manager not in self.agent.managers:
            raise Rejected(f"{manager} is not an auction manager")
        if body.auction_id in self.groups:
            raise Rejected(f"auction {body.auction_id} already called")
        if len(set(body.vehicles)) != len(body.vehicles) or not body.vehicles:
            raise Rejected("group must list distinct vehicles")
        group = Group(manager, body, BidBook(frozenset(body.vehicles)))
        self.groups[body.auction_id] = group
        call = m.CallForBids(
            auction_id=body.auction_id, pickup=body.pickup, n=body.n, deadline=body.deadline,
            round=body.round,
        )
        for vehicle in body.vehicles:
            await self.tell(vehicle, call)
        group.timer = self.deadline_timer(body.deadline, lambda: self.report(body.auction_id))

    def deadline_timer(self, deadline: float, report: Callable[[], Awaitable[None]],
                       ) -> asyncio.Handle:
        """Report a margin before the manager's deadline (see DEADLINE_MARGIN_WALL_S)."""
        clock = self.agent.world.clock
        replicated = self.agent.world.config.replicas > 1
        margin = REPLICATED_MARGIN_WALL_S if replicated else DEADLINE_MARGIN_WALL_S
        return self.later(deadline - margin * clock.speed - clock.now(), report)

    # --- batch auctions ---------------------------------------------------------------------

    async def on_batch_call(self, msg: Message, body: m.BatchCall) -> None:
        manager = sender_of(msg)
        if manager not in self.agent.managers or body.manager != manager:
            raise Rejected(f"{manager} is not the auction manager of batch {body.batch_id}")
        if body.batch_id in self.batches or body.batch_id in self.ended:
            raise Rejected(f"batch {body.batch_id} already called")
        if not body.vehicles or len(set(body.vehicles)) != len(body.vehicles):
            raise Rejected("group must list distinct vehicles")
        group = BatchGroup(manager, frozenset(body.vehicles), {})
        self.batches[body.batch_id] = group
        call = m.BatchCall(batch_id=body.batch_id, manager=manager, pickups=body.pickups,
                           k=body.k, deadline=body.deadline)
        for vehicle in body.vehicles:
            await self.tell(vehicle, call, conversation=body.batch_id)
        group.timer = self.deadline_timer(body.deadline,
                                          lambda: self.report_batch(body.batch_id))

    async def on_batch_bid(self, msg: Message, body: m.BatchBid) -> None:
        group = self.batches.get(body.batch_id)
        if group is None:
            if body.batch_id in self.ended:
                raise Late(f"batch {body.batch_id} has been reported")
            raise Rejected(f"unknown batch {body.batch_id}")
        vehicle = sender_of(msg)
        if vehicle not in group.members or vehicle in group.bids:
            raise Rejected(f"{vehicle} is not in my group of batch {body.batch_id}, or bid")
        if len(body.times) > 64 or len({t.request_id for t in body.times}) < len(body.times):
            raise Rejected("a batch bid lists each ride at most once")
        group.bids[vehicle] = body.times
        if group.bids.keys() == group.members:
            await self.report_batch(body.batch_id)

    async def report_batch(self, batch_id: str) -> None:
        """The group's bids in one message (the manager checks each against its batch)."""
        group = self.batches.pop(batch_id, None)
        if group is None:
            return
        self.ended.add(batch_id)
        if group.timer is not None:
            group.timer.cancel()
        bids = tuple(m.VehicleBid(v, times) for v, times in sorted(group.bids.items()) if times)
        await self.tell(group.manager, m.BatchGroupBids(batch_id=batch_id, bids=bids),
                        conversation=batch_id)
        await self.file_audit(batch_id)  # my copies of the members' bids, if the law keeps them

    # --- per-request auctions ---------------------------------------------------------------

    async def on_bid(self, msg: Message, body: m.Bid) -> None:
        group = self.groups.get(body.auction_id)
        if group is not None:
            # The bid rule, as far as a proxy can check it (the manager also checks the ETA).
            kind = auction_type(self.agent.controller.law_for(body.auction_id))
            problem = kind.bid_problem(group.call.n, body.bid, body.eta_s,
                                       self.agent.world.config.min_eta_s)
            if problem is not None:
                raise Rejected(problem)
        await self.on_answer(msg, body, lambda book, vehicle: book.add_bid(
            Offer(vehicle, body.bid, body.eta_s)))

    async def on_bid_declined(self, msg: Message, body: m.BidDeclined) -> None:
        await self.on_answer(msg, body, BidBook.add_decline)

    async def on_answer(self, msg: Message, body: m.Bid | m.BidDeclined,
                        record: Callable[[BidBook, str], None]) -> None:
        """A member's bid or decline: into the group's book; report once all answered."""
        group = self.group_of(body.auction_id)
        vehicle = self.from_member(msg, group)
        if self.late(body, group):
            return
        try:
            record(group.book, vehicle)
        except ValueError as exc:
            raise Rejected(str(exc)) from None
        if group.book.complete():
            await self.report(body.auction_id)

    def late(self, body: m.Bid | m.BidDeclined, group: Group) -> bool:
        """An answer to an earlier round of this auction (the manager called again)."""
        if body.round and body.round != group.call.round:
            log.debug("late answer to round %d of %s ignored", body.round, body.auction_id)
            return True
        return False

    async def report(self, auction_id: str, again: bool = False) -> None:
        """Forward the group's best standing bid (once, or again after a declined award)."""
        group = self.groups.get(auction_id)
        if group is None or (group.reported and not again):
            return
        group.reported = True
        if group.timer is not None:
            group.timer.cancel()
        best = group.book.best()
        group.reported_best = None if best is None else best.vehicle
        report = m.GroupBest(auction_id=auction_id, bidders=group.book.bidders)
        if best is not None:
            report = m.GroupBest(
                auction_id=auction_id, vehicle=best.vehicle, bid=best.bid, eta_s=best.eta_s,
                bidders=group.book.bidders,
            )
        await self.tell(group.manager, report)

    async def on_award(self, msg: Message, body: m.Award) -> None:
        group = self.group_of(body.auction_id)
        self.from_manager(msg, group)
        # Late bids may have arrived since: the award is for the bid we reported.
        if group.reported_best is None or group.reported_best != body.vehicle:
            raise Rejected(f"{body.vehicle} is not the best bidder I reported")
        group.awarded = body.vehicle
        await self.tell(body.vehicle, body)

    async def on_award_confirmed(self, msg: Message, body: m.AwardConfirmed) -> None:
        group = self.group_of(body.auction_id)
        if self.from_member(msg, group) != group.awarded or body.vehicle != group.awarded:
            raise Rejected(f"{sender_of(msg)} holds no award in auction {body.auction_id}")
        await self.tell(group.manager, body)

    async def on_award_declined(self, msg: Message, body: m.AwardDeclined) -> None:
        group = self.group_of(body.auction_id)
        if self.from_member(msg, group) != group.awarded or body.vehicle != group.awarded:
            raise Rejected(f"{sender_of(msg)} holds no award in auction {body.auction_id}")
        await self.revise(body.auction_id, group, body.vehicle)

    async def revise(self, auction_id: str, group: Group, vehicle: str) -> None:
        """The awarded vehicle declined: the manager learns of it from a revised report
        naming the group's next best bid."""
        group.book.strike(vehicle)
        group.awarded = None
        await self.report(auction_id, again=True)

    async def on_error_reply(self, msg: Message, body: m.NotUnderstood | m.Refused) -> None:
        await super().on_error_reply(msg, body)
        if body.in_reply_to != m.Award.TYPE:
            return
        # The awarded vehicle would not even consider the award: for the manager, a decline.
        vehicle = sender_of(msg)
        for auction_id, group in list(self.groups.items()):
            if group.awarded == vehicle:
                await self.revise(auction_id, group, vehicle)

    async def on_result(self, msg: Message, body: m.AuctionResult) -> None:
        group = self.group_of(body.auction_id)
        self.from_manager(msg, group)
        del self.groups[body.auction_id]
        self.ended.add(body.auction_id)
        if group.timer is not None:
            group.timer.cancel()
        # A replicated manager sends the result once our report is in its log: that is the
        # acknowledgement (losing members are not told: they hold nothing for the auction).
        if group.reported and self.agent.world.config.replicas > 1:
            self.agent.bids_acknowledged.add(body.auction_id)
        await self.file_audit(body.auction_id)
