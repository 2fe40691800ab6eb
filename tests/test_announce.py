"""Announcements (no server): the signed datagrams, what a process announces from its
agents' messages, the board that merges them, and `fleetbid auctions`' table and JSON."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
from rich.console import Console
from spade.message import Message

from fleetbid.cli import main
from fleetbid.maps import load_map, make_clusters
from fleetbid.platform.announce import AnnounceGroup, Announcer, Listener
from fleetbid.platform.newsroom import Newsroom
from fleetbid.protocol import announce as a
from fleetbid.protocol import codec
from fleetbid.protocol import messages as m
from fleetbid.replication.wire import Kind
from fleetbid.service import geo
from fleetbid.service.board import Board
from fleetbid.service.monitor import cells, json_line, table

GROUP = AnnounceGroup("239.253.7.7", 40000, "ab" * 32)


def news(auction_id: str = "r1", state: str = "open", **fields: Any) -> a.AuctionNews:
    return a.AuctionNews(at=fields.pop("at", 10.0), wall=fields.pop("wall", 1000.0),
                         auction_id=auction_id, state=state, **fields)  # type: ignore[arg-type]


def signed(group: AnnounceGroup, body: bytes, msg_id: int = 1, sender: int = 3) -> bytes:
    return group.codec().encode(Kind.ANNOUNCE, 0, sender, 1, msg_id, body)


# --- the signed datagrams ------------------------------------------------------------------------


def test_listener_takes_signed_announcements_and_drops_forged_ones_with_a_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    got: list[a.Announcement] = []
    listener = Listener(GROUP, got.append)
    good = news(bidders=3)
    listener.receive(signed(GROUP, a.encode(good)), ("127.0.0.1", 1))
    assert got == [good]

    forger = AnnounceGroup(GROUP.address, GROUP.port, "cd" * 32)  # right group, wrong key
    with caplog.at_level(logging.WARNING, logger="fleetbid.announce"):
        listener.receive(signed(forger, a.encode(news("forged")), msg_id=2), ("10.0.0.9", 7))
    assert got == [good]
    assert listener.dropped["bad_mac"] == 1
    assert "announcement from ('10.0.0.9', 7) dropped: bad_mac" in caplog.text

    listener.receive(signed(GROUP, a.encode(good)), ("127.0.0.1", 1))  # replayed
    listener.receive(signed(GROUP, b'{"kind":"auction"}', msg_id=3), ("127.0.0.1", 1))
    listener.receive(GROUP.codec().encode(Kind.MSG, 0, 3, 1, 4, a.encode(good)), "x")
    assert got == [good]
    assert listener.dropped == {"bad_mac": 1, "duplicate": 1, "bad_body": 1,
                                "not_announcement": 1}


def test_an_announcement_crosses_the_loopback_multicast_group() -> None:
    async def scenario() -> list[a.Announcement]:
        group = AnnounceGroup.fresh()
        got: list[a.Announcement] = []
        arrived = asyncio.Event()
        listener = Listener(group, lambda n: (got.append(n), arrived.set()))
        await listener.open()
        announcer = Announcer(group, process=0)
        await announcer.open()
        try:
            # Best-effort: a datagram may be lost, so send until one arrives.
            while not arrived.is_set():
                announcer.emit(news("over-udp"))
                try:
                    await asyncio.wait_for(arrived.wait(), 1.0)
                except TimeoutError:
                    pass
        finally:
            announcer.close()
            listener.close()
        return got

    got = asyncio.run(asyncio.wait_for(scenario(), 60))
    assert isinstance(got[0], a.AuctionNews) and got[0].auction_id == "over-udp"


# --- what a process announces -----------------------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.sent: list[a.Announcement] = []

    def emit(self, item: a.Announcement) -> None:
        self.sent.append(item)


def message(sender: str, to: str, body: m.Body) -> Message:
    msg = codec.encode(to, body)
    msg.sender = sender
    return msg


def test_messages_become_announcements_once_per_round() -> None:
    recorder = Recorder()
    room = Newsroom(recorder, lambda: 5.0, 120.0, lambda: True)  # type: ignore[arg-type]
    mm, am, v1, v2 = ("main@x", "am-0@x", "vehicle-1@x", "vehicle-2@x")
    cands = (m.Candidate(v1, "3"), m.Candidate(v2, "4"))
    room.sent(message(mm, am, m.OpenAuction(auction_id="r1", passenger="p@x", pickup="1",
                                            dropoff="2", cluster=1, requested_at=0.0,
                                            candidates=cands)))
    for v in (v1, v2):  # one call per bidder: one round announcement
        room.sent(message(am, v, m.CallForBids(auction_id="r1", pickup="1", n=2, deadline=60.0,
                                               round=1)))
    room.received(message(v1, am, m.Bid(auction_id="r1", bid=0.2, eta_s=5.0, round=1)))
    room.received(message(v2, am, m.Bid(auction_id="r1", bid=0.1, eta_s=9.0, round=1)))
    room.sent(message(am, "p@x", m.RideAssigned(auction_id="r1", vehicle=v1, eta_s=5.0,
                                                price=0.2, bidders=2)))
    room.sent(message(am, mm, m.AuctionClosed(auction_id="r1", winner=v1)))
    room.sent(message(v1, mm, m.VehicleAvailable(node="7")))
    kinds = [(n.state, getattr(n, "auction_id", getattr(n, "vehicle", ""))) for n in recorder.sent]
    assert kinds == [("open", "r1"), ("round", "r1"), ("round", "r1"), ("assigned", "r1"),
                     ("closed", "r1"), ("idle", v1)]
    opened, called, best = recorder.sent[:3]
    assert isinstance(opened, a.AuctionNews) and (opened.cluster, opened.bidders) == (1, 2)
    assert isinstance(called, a.AuctionNews) and (called.deadline, called.round) == (60.0, 1)
    assert isinstance(best, a.AuctionNews) and best.best_bid == 0.2  # the lower bid: no news


def test_a_replica_that_is_not_the_leader_announces_no_bids() -> None:
    recorder = Recorder()
    room = Newsroom(recorder, lambda: 5.0, 120.0, lambda: False)  # type: ignore[arg-type]
    room.received(message("vehicle-1@x", "am-0@x",
                          m.Bid(auction_id="r1", bid=0.2, eta_s=5.0, round=1)))
    assert recorder.sent == []


# --- the board, the table, the JSON lines -----------------------------------------------------


def test_board_fills_fields_keeps_the_best_bid_and_does_not_reopen_an_ended_auction() -> None:
    board = Board()
    board.add(news(cluster=2, pickup="9", bidders=4, speed=2.0, wall=100.0))
    board.add(news(state="round", deadline=40.0, round=1, at=20.0, wall=100.5))
    board.add(news(state="round", best_bid=0.5, at=20.0, wall=100.5))
    board.add(news(state="round", best_bid=0.3, at=20.0, wall=100.5))
    row = board.auctions["r1"]
    assert (row.state, row.cluster, row.bidders, row.best_bid) == ("round", 2, 4, 0.5)
    assert row.time_left(now_wall=100.5 + 5.0) == pytest.approx(10.0)  # 20 s at speed 2
    board.add(news(state="assigned", winner="vehicle-3@localhost", price=0.5, wall=100.75))
    board.add(news(state="round", best_bid=0.9))  # a late bid report: no longer bidding
    assert row.state == "assigned" and row.latency_ms() == pytest.approx(750.0)
    board.add(news(state="closed"))
    board.add(news(state="waiting"))
    assert row.state == "closed" and row.time_left() is None


def test_table_and_json_lines_show_the_auctions() -> None:
    board = Board()
    board.add(news("r1", cluster=0, bidders=3, speed=1.0, wall=50.0))
    board.add(news("r1", "round", best_bid=0.0125, deadline=70.0, at=10.0, wall=50.0))
    board.add(news("r2", cluster=3, bidders=2))
    board.add(news("r2", "assigned", winner="vehicle-7@localhost"))
    assert cells(board.auctions["r1"], now_wall=55.0) == ("r1", "0", "3", "0.0125", "55 s", "",
                                                          "round")
    console = Console(record=True, width=120)
    console.print(table(board, now_wall=55.0))
    text = console.export_text()
    for header in ("auction", "cluster", "bidders", "best bid", "time left", "winner"):
        assert header in text
    assert text.index("r2") < text.index("r1")  # newest first
    assert "vehicle-7" in text and "55 s" in text
    line = json.loads(json_line(news("r3", "unserved", reason="no vehicle")))
    assert line == {"kind": "auction", "auction_id": "r3", "state": "unserved",
                    "reason": "no vehicle", "at": 10.0, "wall": 1000.0}


# --- the live map's base layer and the command line -------------------------------------------


def test_geojson_has_every_cluster_and_the_roads_in_lon_lat() -> None:
    roadmap = load_map(None, 0)
    cells_ = make_clusters(roadmap, 4, 0)
    features = geo.feature_collection(roadmap, cells_)["features"]
    clusters = [f for f in features if f["properties"]["layer"] == "cluster"]
    roads = [f for f in features if f["properties"]["layer"] == "road"]
    assert sorted(f["properties"]["cluster"] for f in clusters) == [0, 1, 2, 3]
    pairs = {frozenset((str(u), str(v))) for u, v in roadmap.graph.edges}
    assert len(roads) == len(pairs)
    lon, lat = roadmap.lonlat(roads[0]["properties"]["a"])
    assert roads[0]["geometry"]["coordinates"][0] == pytest.approx([lon, lat])


@pytest.mark.parametrize("argv", [
    ["serve", "--web", "0.0.0.0:8080"], ["serve", "--web", "99999"],
    ["auctions", "--group", "10.0.0.1:5000", "--key", "ab" * 16],
    ["auctions", "--group", "239.1.1.1:5000", "--key", "xyz"],
])
def test_bad_monitoring_options_are_usage_errors(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2


def test_auctions_without_a_running_fleet_exits_2(tmp_path: Any,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["auctions", "--state", str(tmp_path / "none.json")]) == 2
    assert "no running fleet" in capsys.readouterr().err


def test_a_quiet_process_flushes_its_last_trace_records(tmp_path: Any) -> None:
    """The live map draws a conversation from the trace soon after it ends: a process that
    sends nothing more must not hold its last records back until it exits."""
    from fleetbid.platform.trace import TraceWriter

    path = tmp_path / "trace.jsonl"

    async def scenario() -> str:
        writer = TraceWriter(str(path), 0, lambda: 1.0)
        writer.record("send", message("main@x", "am-0@x", m.AuctionClosed(auction_id="r1")))
        while not path.read_text():  # flushed by the loop, not by another record
            await asyncio.sleep(0.05)
        text = path.read_text()
        writer.close()
        return text

    text = asyncio.run(asyncio.wait_for(scenario(), 60))
    assert json.loads(text)["type"] == m.AuctionClosed.TYPE
