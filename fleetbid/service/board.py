"""The board: announcements merged into the current picture of the fleet.

`fleetbid auctions` renders its auctions; the live map sends it to a page that joins late.
An announcement may be lost or arrive out of order: a field is only ever filled in (a None
field leaves the old value), an ended auction does not reopen, and the best bid only rises.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field

from fleetbid.protocol.announce import Announcement, AuctionNews, FleetStats, VehicleNews

ENDED = frozenset({"closed", "unserved", "picked_up"})
KEPT = 200  # auctions kept on the board (the oldest ended ones go first)
_FIELDS = ("cluster", "pickup", "dropoff", "bidders", "deadline", "round", "winner", "price",
           "reason", "speed")


@dataclass
class AuctionRow:
    auction_id: str
    state: str = "open"
    cluster: int | None = None
    pickup: str | None = None
    dropoff: str | None = None
    bidders: int | None = None
    best_bid: float | None = None
    deadline: float | None = None
    round: int | None = None
    winner: str | None = None
    price: float | None = None
    reason: str | None = None
    speed: float | None = None
    opened_wall: float | None = None
    assigned_wall: float | None = None
    # The sender's clocks at the last update: `time_left` counts down from there.
    at: float = 0.0
    wall: float = 0.0

    def merge(self, news: AuctionNews) -> None:
        for name in _FIELDS:
            value = getattr(news, name)
            if value is not None:
                setattr(self, name, value)
        if news.best_bid is not None and (self.best_bid is None or news.best_bid > self.best_bid):
            self.best_bid = news.best_bid
        if news.state == "open":
            self.opened_wall = news.wall
        if news.state == "assigned":
            self.assigned_wall = news.wall
        if self.state not in ENDED or news.state == "picked_up":
            # Rounds, waits and bids may arrive after the award: they do not undo it.
            if not (self.state == "assigned" and news.state in ("open", "round", "waiting")):
                self.state = news.state
        self.at, self.wall = news.at, news.wall

    def time_left(self, now_wall: float | None = None) -> float | None:
        """Simulated seconds left in the current round (None once assigned or ended)."""
        if self.deadline is None or self.state in ENDED or self.state == "assigned":
            return None
        speed = self.speed or 1.0
        now = self.at + ((now_wall or time.time()) - self.wall) * speed
        return max(0.0, self.deadline - now)

    def latency_ms(self) -> float | None:
        """Wall time from the auction's opening to its award."""
        if self.opened_wall is None or self.assigned_wall is None:
            return None
        return (self.assigned_wall - self.opened_wall) * 1000.0


@dataclass
class Board:
    auctions: OrderedDict[str, AuctionRow] = field(default_factory=OrderedDict)
    vehicles: dict[str, VehicleNews] = field(default_factory=dict)
    stats: dict[int, FleetStats] = field(default_factory=dict)

    def add(self, news: Announcement) -> None:
        if isinstance(news, AuctionNews):
            row = self.auctions.get(news.auction_id)
            if row is None:
                row = self.auctions[news.auction_id] = AuctionRow(news.auction_id)
                self.trim()
            row.merge(news)
        elif isinstance(news, VehicleNews):
            old = self.vehicles.get(news.vehicle)
            if old is None or news.at >= old.at:
                self.vehicles[news.vehicle] = news
        elif isinstance(news, FleetStats):
            self.stats[news.process] = news
        # DemandNews (the repositioning figures) is for the vehicles: no row of its own.

    def trim(self) -> None:
        while len(self.auctions) > KEPT:
            ended = next((k for k, r in self.auctions.items() if r.state in ENDED), None)
            self.auctions.pop(ended if ended is not None else next(iter(self.auctions)))

    def rows(self, limit: int | None = None) -> list[AuctionRow]:
        """Newest first."""
        rows = list(reversed(self.auctions.values()))
        return rows if limit is None else rows[:limit]
