"""The passenger's protocol steps: ask for a ride, learn the outcome, wait for the pickup."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import ClassVar

from spade.message import Message

from fleetbid.behaviours.base import ProtocolBehaviour, Rejected, sender_of
from fleetbid.core.outcome import RideOutcome
from fleetbid.protocol import messages as m

GIVE_UP_WALL_S = 20.0

log = logging.getLogger("fleetbid.passenger")


class RideBehaviour(ProtocolBehaviour):
    """Sends the ride request at start; ends when picked up, refused or out of patience."""

    SENDS: ClassVar[frozenset[type[m.Body]]] = frozenset({m.RideRequest})

    async def on_start(self) -> None:
        agent = self.agent
        world = agent.world
        self.handlers = {
            m.RideAssigned: self.on_assigned,
            m.RideUnserved: self.on_unserved,
            m.PickedUp: self.on_picked_up,
        }
        if agent.at is not None:  # logged in ahead of time: ask exactly when the script says
            await asyncio.sleep(world.clock.until(agent.at))
        self.outcome = RideOutcome(agent.request_id, agent.source, agent.destination,
                                   requested_at=world.clock.now())
        request = m.RideRequest(
            request_id=agent.request_id, source=agent.source, destination=agent.destination,
            requested_at=self.outcome.requested_at,
        )
        self.early_pickup: tuple[Message, m.PickedUp] | None = None
        self.sent_at = time.perf_counter()
        await self.tell(agent.manager_jid, request, conversation=agent.request_id)
        # Generous: patience plus a full bidding round, so only a lost system times out; and
        # never sooner than GIVE_UP_WALL_S of wall time (at a fast simulated clock the rounds
        # of an English auction on a loaded machine outlast 1 s of wall time, and the
        # MainManager answers a request it cannot serve by itself, with its reason).
        give_up = max(world.config.patience_s + 2 * world.config.bid_window_s(),
                      GIVE_UP_WALL_S * world.clock.speed)
        self.timer = self.later(give_up, lambda: self.end("no answer from the system in time"))

    def latency(self) -> float:
        return (time.perf_counter() - self.sent_at) * 1000.0

    def from_auction_manager(self, msg: Message) -> None:
        # With a non-auction policy the MainManager itself assigns the ride.
        if sender_of(msg) not in self.agent.managers and sender_of(msg) != self.agent.manager_jid:
            raise Rejected(f"{sender_of(msg)} runs no auction of mine")

    async def on_assigned(self, msg: Message, body: m.RideAssigned) -> None:
        self.from_auction_manager(msg)
        outcome = self.outcome
        if body.auction_id == outcome.request_id and outcome.served \
                and body.vehicle != outcome.vehicle:
            outcome.assignments += 1
            self.log_double(body)
        if body.auction_id != outcome.request_id or outcome.served:
            raise Rejected(f"unexpected assignment for {body.auction_id}")
        outcome.served = True
        outcome.assignments = 1
        outcome.latency_ms = self.latency()
        outcome.vehicle, outcome.eta_s = body.vehicle, body.eta_s
        outcome.price, outcome.bidders = body.price, body.bidders
        self.timer.cancel()
        # The vehicle drives in simulated time; allow it the ETA and some slack.
        if self.early_pickup is not None:  # the vehicle was faster than this message
            await self.on_picked_up(*self.early_pickup)
            return
        wait = body.eta_s * 1.5 + 2 * self.agent.world.config.bid_window_s()
        self.timer = self.later(wait, lambda: self.end("the vehicle never arrived"))

    def log_double(self, body: m.RideAssigned) -> None:
        log.error("%s: assigned %s after %s: two vehicles for one ride", self.agent.name,
                  body.vehicle, self.outcome.vehicle)

    async def on_unserved(self, msg: Message, body: m.RideUnserved) -> None:
        if sender_of(msg) != self.agent.manager_jid:
            self.from_auction_manager(msg)
        if body.auction_id != self.outcome.request_id:
            raise Rejected(f"unexpected answer for {body.auction_id}")
        self.outcome.latency_ms = self.latency()
        await self.end(body.reason)

    async def on_picked_up(self, msg: Message, body: m.PickedUp) -> None:
        outcome = self.outcome
        if outcome.vehicle is None and body.auction_id == outcome.request_id \
                and sender_of(msg) in self.agent.fleet and self.early_pickup is None:
            # Award and pickup travel different paths: a vehicle already at the pickup can
            # arrive before the auction manager's message does.
            self.early_pickup = (msg, body)
            return
        if sender_of(msg) != outcome.vehicle or body.auction_id != outcome.request_id:
            raise Rejected(f"{sender_of(msg)} is not my vehicle")
        outcome.picked_up_at = body.at
        outcome.wait_s = max(0.0, body.at - outcome.requested_at)
        await self.end("")

    async def on_error_reply(self, msg: Message, body: m.NotUnderstood | m.Refused) -> None:
        await super().on_error_reply(msg, body)
        if sender_of(msg) == self.agent.manager_jid and not self.outcome.served:
            self.outcome.latency_ms = self.latency()
            await self.end(f"refused: {body.reason}")

    async def end(self, reason: str) -> None:
        if self.is_killed():
            return
        self.timer.cancel()
        if reason and not self.outcome.reason:
            self.outcome.reason = reason
        self.kill()
        # The ride's audit copies go before the outcome is reported (the agent stops then).
        await self.file_audit(self.agent.request_id)
        self.agent.ride_ended(self.outcome)
