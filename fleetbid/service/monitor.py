"""`fleetbid auctions`: follow a running fleet's auctions on its announcement group.

Reads the group, port and key from the serve state file (or --group/--key), and shows the
auctions live in a table, or prints them as JSON lines. It only listens: the fleet neither
knows nor waits for its monitors.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

from rich.console import Console
from rich.live import Live
from rich.table import Table

from fleetbid.platform import eventloop
from fleetbid.platform.announce import AnnounceGroup, Listener
from fleetbid.protocol.announce import Announcement, AuctionNews, to_builtins
from fleetbid.service.board import ENDED, AuctionRow, Board
from fleetbid.service.state import NoRunningFleet, load_running, state_path

COLUMNS = ("auction", "cluster", "bidders", "best bid", "time left", "winner", "state")
REFRESH_PER_S = 4


def short(jid: str | None) -> str:
    return "" if not jid else jid.split("@", 1)[0]


def cells(row: AuctionRow, now_wall: float) -> tuple[str, ...]:
    left = row.time_left(now_wall)
    return (
        row.auction_id,
        "" if row.cluster is None else str(row.cluster),
        "" if row.bidders is None else str(row.bidders),
        "" if row.best_bid is None else f"{row.best_bid:.4g}",
        "" if left is None else f"{left:.0f} s",
        short(row.winner),
        row.state,
    )


def table(board: Board, now_wall: float | None = None, limit: int = 30) -> Table:
    """The newest `limit` auctions, newest first."""
    now = time.time() if now_wall is None else now_wall
    t = Table(title=f"auctions ({len(board.auctions)} seen)", expand=False)
    for name in COLUMNS:
        t.add_column(name, justify="right" if name in ("bidders", "best bid", "time left",
                                                       "cluster") else "left")
    for row in board.rows(limit):
        style = "dim" if row.state in ENDED else ("green" if row.state == "assigned" else "")
        t.add_row(*cells(row, now), style=style)
    return t


def json_line(news: Announcement) -> str:
    return json.dumps(to_builtins(news), separators=(",", ":"))


def group_from(args: argparse.Namespace) -> AnnounceGroup:
    """--group ADDR:PORT with --key HEX, else the running serve's state file."""
    if args.group:
        if not args.key:
            raise ValueError("--group needs --key")
        address, port = args.group
        return AnnounceGroup(address, port, args.key)
    state = load_running(state_path(args.state))
    if not state.announce:
        raise NoRunningFleet("the serve announces nothing (started by an older fleetbid?)")
    return AnnounceGroup.from_dict(state.announce)


class Monitor:
    def __init__(self, as_json: bool, everything: bool, count: int | None) -> None:
        self.board = Board()
        self.as_json, self.everything, self.count = as_json, everything, count
        self.ended: set[str] = set()
        self.done = asyncio.Event()

    def on_news(self, news: Announcement) -> None:
        self.board.add(news)
        is_auction = isinstance(news, AuctionNews)
        if self.as_json and (is_auction or self.everything):
            sys.stdout.write(json_line(news) + "\n")
            sys.stdout.flush()
        if is_auction and news.state in ("closed", "unserved"):
            self.ended.add(news.auction_id)
            if self.count is not None and len(self.ended) >= self.count:
                self.done.set()

    async def run(self, group: AnnounceGroup) -> None:
        listener = Listener(group, self.on_news)
        await listener.open()
        print(f"fleetbid auctions: listening on {group.address}:{group.port}", file=sys.stderr,
              flush=True)
        try:
            if self.as_json:
                await self.done.wait()
                return
            console = Console()
            with Live(table(self.board), console=console, refresh_per_second=REFRESH_PER_S,
                      transient=False) as live:
                while not self.done.is_set():
                    live.update(table(self.board))
                    try:
                        await asyncio.wait_for(self.done.wait(), 1 / REFRESH_PER_S)
                    except TimeoutError:
                        pass
                live.update(table(self.board))
        finally:
            listener.close()


def cmd_auctions(args: argparse.Namespace) -> int:
    try:
        group = group_from(args)
    except NoRunningFleet as exc:
        print(f"fleetbid auctions: error: {exc}", file=sys.stderr)
        return 2
    except (ValueError, TypeError) as exc:
        print(f"fleetbid auctions: error: bad announcement group: {exc}", file=sys.stderr)
        return 2
    monitor = Monitor(args.json, args.all, args.count)
    try:
        eventloop.run(monitor.run(group))
    except (KeyboardInterrupt, eventloop.Terminated):
        return 0
    return 0
